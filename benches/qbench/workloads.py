"""The five workloads, each the same for every system.

Each function runs one workload once on one system, from a fresh store, and
returns what it measured; `queues.py` repeats them and takes medians. What is
timed, exactly, is said in each docstring (and in the report's notes).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qbench import stamps
from qbench.procs import BenchError, Proc, run_drivers, vm_rss_bytes, wait_until
from qbench.systems.base import System

PERCENTILES = (50, 90, 99)
DRIVER_TIMEOUT_S = 300.0
PROBE_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class Settings:
    """Sizes and durations of one benchmark run."""

    drain_tasks: int
    drain_window_s: float
    submit_s: float
    concurrent_clients: int
    client_processes: int
    latency_rate: float
    latency_s: float
    latency_senders: int
    memory_tasks: int


@dataclass(frozen=True)
class DrainRun:
    """Tasks/s from the first no-op handler call to the last."""

    rate: float
    done: int
    complete: bool


@dataclass(frozen=True)
class LatencyRun:
    """Percentiles in ms, and the rates in tasks/s."""

    offered: float
    achieved: float
    ack_ms: dict[str, float]
    start_ms: dict[str, float]
    complete_ms: dict[str, float]
    errors: int


@dataclass(frozen=True)
class MemoryRun:
    """Store RSS in bytes, empty and full, and seconds to serve after kill -9."""

    rss_empty: int
    rss_full: int
    serving_s: float


def drain(system: System, settings: Settings) -> DrainRun:
    """Fill the queue with no-op tasks, then start the workers and time them.

    Timed: from the earliest to the latest no-op handler call, by the
    ``time.time_ns()`` stamp each call appends (see `qbench.stamps`). A system
    still running ``drain_window_s`` after its first call is stopped there and
    measured over the calls made by then (``complete`` is False).
    """
    n = settings.drain_tasks
    system.start()
    workers: list[Proc] = []
    try:
        _drivers(system, "fill", [system.driver("fill", n=n)])
        folder = _stamps_dir(system)
        workers = system.start_workers(folder)

        def started() -> bool:
            _check_alive(system, workers)
            return stamps.count(folder) > 0

        wait_until(started, 60, f"{system.name} workers")
        first_seen = time.monotonic()

        def finished() -> bool:
            _check_alive(system, workers)
            window_over = time.monotonic() - first_seen > settings.drain_window_s
            return window_over or stamps.count(folder) >= n

        wait_until(
            finished,
            settings.drain_window_s + 60,
            f"{system.name} drain",
            interval_s=0.05,
        )
    finally:
        for worker in workers:
            worker.kill()
        system.stop()
    calls = sorted(stamps.read_all(folder))
    done = min(len(calls), n)
    seconds = (calls[done - 1] - calls[0]) / 1e9
    if seconds <= 0:
        raise BenchError(f"{system.name}: {done} handler calls, too few to time")
    return DrainRun(done / seconds, done, done >= n)


def submit(system: System, settings: Settings, mode: str) -> float:
    """Submit no-op tasks for ``submit_s`` seconds with no workers; tasks/s.

    Modes: ``seq`` (one client, one task per request, each waiting for its
    answer), ``concurrent`` (``concurrent_clients`` clients spread over
    ``client_processes`` processes, each one task per request) and ``batch``
    (one client, 1,000 tasks per request with the system's batch API).
    Timed: in each driver process, from go until its last request after
    ``submit_s`` is answered; the rate is all answered tasks over the longest
    process's time.
    """
    system.start()
    try:
        if mode == "concurrent":
            per_process = settings.concurrent_clients // settings.client_processes
            options = {"mode": mode, "clients": per_process}
            argvs = [system.driver("submit", duration=settings.submit_s, **options)]
            argvs *= settings.client_processes
        else:
            argvs = [system.driver("submit", duration=settings.submit_s, mode=mode)]
        results = _drivers(system, f"submit-{mode}", argvs)
    finally:
        system.stop()
    return sum(r["count"] for r in results) / max(r["seconds"] for r in results)


def latency(system: System, settings: Settings) -> LatencyRun:
    """Open loop at ``latency_rate`` submits/s against idle, warmed-up workers.

    ``client_processes`` drivers share the rate; each has ``latency_senders``
    senders (at most that many tasks in flight) and first runs 20 warm-up
    tasks, not counted. Submit-to-start: the handler's start time minus the
    client's send time (both ``time.time_ns()``), recorded by the handler.
    Submit-to-complete: from the send time until the client's result call
    returns (tq: ``wait_for_result``; the peers: their result API).
    """
    system.start()
    folder = _stamps_dir(system)
    workers = system.start_workers(folder)
    try:
        argv = system.driver(
            "latency",
            rate=settings.latency_rate / settings.client_processes,
            duration=settings.latency_s,
            clients=settings.latency_senders,
        )
        results = _drivers(
            system, "latency", [argv] * settings.client_processes, workers=workers
        )
    finally:
        for worker in workers:
            worker.kill()
        system.stop()
    return _latency_run(settings, results, stamps.read_all(folder))


def _latency_run(
    settings: Settings, results: list[dict[str, Any]], starts: list[int]
) -> LatencyRun:
    sent = sum(int(r["sent"]) for r in results)
    first = min(int(r["first_send_ns"]) for r in results)
    last = max(int(r["last_send_ns"]) for r in results)
    acks = [ns for r in results for ns in r["ack_ns"]]
    completes = [ns for r in results for ns in r["complete_ns"]]
    return LatencyRun(
        offered=settings.latency_rate,
        achieved=(sent - 1) / ((last - first) / 1e9) if last > first else 0.0,
        ack_ms=percentiles(acks),
        start_ms=percentiles(starts),
        complete_ms=percentiles(completes),
        errors=sum(int(r["errors"]) for r in results),
    )


def memory_and_restart(system: System, settings: Settings) -> MemoryRun:
    """RSS of the store empty and with ``memory_tasks`` pending; then kill -9.

    The fill is a batch submit (tq: ``submit_many`` of 1,000, fsync on; the
    peers: copies of one message their API wrote, see
    `qbench.drivers.replicate`). RSS is VmRSS of the broker or redis-server
    process. Then the store is made durable where it is not yet (Redis:
    SAVE), killed with SIGKILL, and started again; timed from the new
    process's spawn until a client already waiting sees the fill again (tq:
    ``get`` of the last task succeeds; Redis: LLEN of the queue is full).
    """
    system.start()
    try:
        rss_empty = vm_rss_bytes(system.store_pid)
        [filled] = _drivers(
            system, "fill", [system.driver("fill", n=settings.memory_tasks)]
        )
        rss_full = vm_rss_bytes(system.store_pid)
        system.before_crash()
        serving_s = _time_restart(system, filled)
    finally:
        system.stop()
    return MemoryRun(rss_empty, rss_full, serving_s)


def _time_restart(system: System, filled: dict[str, Any]) -> float:
    spawned_ns = 0

    def crash_and_restart() -> None:
        nonlocal spawned_ns
        system.crash()
        spawned_ns = time.monotonic_ns()
        system.restart()

    [probed] = _drivers(
        system,
        "probe",
        [system.probe(filled)],
        before_go=crash_and_restart,
        timeout_s=PROBE_TIMEOUT_S,
    )
    pending = probed.get("pending")
    if pending is not None and pending != filled["n"]:
        raise BenchError(f"{system.name}: {pending} pending after the restart")
    return (int(probed["ok_ns"]) - spawned_ns) / 1e9


def percentiles(values_ns: list[int]) -> dict[str, float]:
    """p50, p90, p99 and max, in ms (nearest-rank on the sorted values)."""
    if not values_ns:
        return {}
    ordered = sorted(values_ns)
    picked = {
        f"p{p}": ordered[min(len(ordered) - 1, (len(ordered) * p + 99) // 100 - 1)]
        for p in PERCENTILES
    }
    picked["max"] = ordered[-1]
    return {key: value / 1e6 for key, value in picked.items()}


def median(values: list[float]) -> float | None:
    """The median of some runs; None when none of them worked."""
    return statistics.median(values) if values else None


def _stamps_dir(system: System) -> Path:
    return Path(
        tempfile.mkdtemp(prefix=f"stamps-{system.name}-", dir=system.ctx.work_dir)
    )


def _drivers(
    system: System,
    name: str,
    argvs: list[list[str]],
    *,
    workers: Sequence[Proc] = (),
    before_go: Callable[[], None] | None = None,
    timeout_s: float = DRIVER_TIMEOUT_S,
) -> list[dict[str, Any]]:
    """`run_drivers`, ended early if the store or a worker exits."""

    def watch() -> list[Proc]:
        return [p for p in (system.store, *workers) if p is not None]

    return run_drivers(
        system.ctx.procs,
        name,
        argvs,
        timeout_s=timeout_s,
        before_go=before_go,
        watch=watch,
    )


def _check_alive(system: System, workers: Sequence[Proc]) -> None:
    for proc in (system.store, *workers):
        if proc is not None and not proc.alive():
            raise BenchError(f"{proc.name} exited early:\n{proc.log_tail()}")
