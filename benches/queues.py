"""tq side by side with Celery, RQ, Dramatiq and Huey, on this machine.

How to run
----------
From the repository root, one command does everything (Redis from Debian if
missing, the peers from PyPI into ~/.cache/tq/bench-venv, tq as installed in
.venv by scripts/setup)::

    ./scripts/bench            # full run: medians of 3 runs, ~15-20 min on 2 cores
    ./scripts/bench --quick    # smoke run: 1 run, small counts, ~3 min
    ./scripts/bench --systems tq,huey --workloads drain,latency --runs 5

Every system gets 2 worker processes. The peers run 8 threads each
(``--concurrency``, Dramatiq's default thread count; Celery, Dramatiq and
Huey drain no faster with 64 threads on this machine, and Huey slower with
256), except RQ, which runs one job at a time per process (``SimpleWorker``;
its default forking worker does about 50 jobs/s here). tq runs its async
handlers on each worker's event loop, 256 at once (``--tq-concurrency``): a
waiting handler there costs no thread, so concurrency is how many tasks a
worker holds at once, not how many threads it runs. Each peer uses its own
private ``redis-server`` (Debian's, RDB snapshots at Redis's default save
points, no AOF), tq its broker with fsync on. Every store starts fresh, on an
ephemeral port, in a temporary directory, for every workload and run; every
child process is killed at the end.

What each workload measures
---------------------------
1. drain: 100,000 no-op tasks are queued first (tq: ``submit_many``; the
   peers: copies of one message their API wrote, see
   ``qbench/drivers/replicate.py``), then the 2 workers are started. Timed:
   from the earliest to the latest no-op handler call, each of which appends
   its ``time.time_ns()`` to a per-process stamp file (``qbench/stamps.py``);
   worker start-up is not included. A system still busy 20 s after its first
   call is measured over the calls made by then (marked in the table).
2. submit, no workers running: one client submitting one task per request,
   each waiting for its answer; 64 clients (2 processes x 32: tq
   ``AsyncClient`` instances, the peers threads with their own client), one
   task per request; one client submitting batches of 1,000 with the system's
   batch API (tq ``submit_many``; RQ ``enqueue_many``; Celery ``group``;
   Dramatiq and Huey have none on the wire). Tasks/s over a fixed time.
3. latency: open loop at 5,000 submits/s offered (2 client processes x 2,500
   /s, each with 64 senders, so at most 128 tasks in flight) for a few
   seconds, against idle, warmed-up workers. Submit-to-ack: from the send
   time until the submit call returns, the system having acknowledged the
   task (tq: stored and fsynced; the peers: pushed to Redis). Submit-to-start:
   the handler's start ``time.time_ns()`` minus the client's send time carried
   in the task.
   Submit-to-complete: from the send time until the client's own result call
   returns (tq ``wait_for_result``; RQ ``job.latest_result(timeout)``; Celery
   ``AsyncResult.get`` on the Redis result backend; Dramatiq
   ``get_result(block=True)``; Huey ``result.get(blocking=True)`` with
   ``notify_result``). Achieved rate: tasks sent over the time from the first
   send to the last.
4. memory: VmRSS of the store process (tq broker, redis-server) empty and with
   1,000,000 pending tasks of 256 B (tq: 256 payload bytes; peers: a
   256-character argument).
5. restart: right after 4, the store is made durable where it is not yet
   (Redis: SAVE), killed with SIGKILL and started again. Timed from the new
   process's spawn until a client that was already waiting succeeds (tq: a
   ``get`` of the last task; Redis: LLEN of the queue returns 1,000,000).

Figures are medians over ``--runs`` runs, with the systems interleaved in
each run. The machine is shared, so read them with its load average in mind.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from qbench import report, workloads
from qbench.drivers.peers import PEERS
from qbench.procs import BenchError, Processes
from qbench.report import Column
from qbench.systems.base import Context, System
from qbench.systems.peers import PeerSystem
from qbench.systems.tq import TqSystem
from qbench.workloads import Settings

BENCHES = Path(__file__).resolve().parent
SYSTEMS = ("tq", "celery", "rq", "dramatiq", "huey")
WORKLOADS = ("drain", "submit", "latency", "memory")
FULL = Settings(
    drain_tasks=100_000,
    drain_window_s=20.0,
    submit_s=2.0,
    concurrent_clients=64,
    client_processes=2,
    latency_rate=5_000.0,
    latency_s=3.0,
    latency_senders=64,
    memory_tasks=1_000_000,
)
QUICK = Settings(
    drain_tasks=10_000,
    drain_window_s=5.0,
    submit_s=0.5,
    concurrent_clients=64,
    client_processes=2,
    latency_rate=5_000.0,
    latency_s=1.0,
    latency_senders=64,
    memory_tasks=100_000,
)
SUBMIT_MODES = ("seq", "concurrent", "batch")
LOGS_KEPT = Path.home() / ".cache" / "tq" / "bench-logs"
FAILED_RUNS: list[str] = []
"""Why runs failed, across workloads (their logs are kept if any did)."""


def parse_args() -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(
        description="tq side by side with Celery, RQ, Dramatiq and Huey."
    )
    parser.add_argument("--quick", action="store_true", help="small counts, 1 run")
    parser.add_argument("--runs", type=int, help="runs per figure (default 3)")
    parser.add_argument("--systems", default=",".join(SYSTEMS))
    parser.add_argument("--workloads", default=",".join(WORKLOADS))
    parser.add_argument(
        "--concurrency", type=int, default=8, help="peer threads per worker process"
    )
    parser.add_argument(
        "--tq-concurrency", type=int, default=256, help="tasks at once per tq worker"
    )
    parser.add_argument(
        "--latency-rate", type=float, help="offered submits/s (default 5,000)"
    )
    parser.add_argument("--worker-processes", type=int, default=2)
    parser.add_argument(
        "--tq-python",
        default=str(BENCHES.parent / ".venv" / "bin" / "python"),
        help="the interpreter with tq installed (default: the repo's .venv)",
    )
    args = parser.parse_args()
    args.runs = args.runs or (1 if args.quick else 3)
    args.systems = _choices(args.systems, SYSTEMS, "--systems")
    args.workloads = _choices(args.workloads, WORKLOADS, "--workloads")
    return args


def _choices(value: str, allowed: tuple[str, ...], flag: str) -> list[str]:
    picked = [v.strip() for v in value.split(",") if v.strip()]
    unknown = sorted(set(picked) - set(allowed))
    if unknown:
        raise SystemExit(f"{flag}: unknown {unknown}; choose from {list(allowed)}")
    return [v for v in allowed if v in picked]


def make_systems(ctx: Context, names: list[str]) -> list[System]:
    """tq first, then the peers, in the order of ``SYSTEMS``."""
    return [TqSystem(ctx) if name == "tq" else PeerSystem(ctx, name) for name in names]


def repeat(
    systems: list[System], runs: int, label: str, measure: Callable[[System], Any]
) -> tuple[dict[str, list[Any]], list[str]]:
    """Run ``measure`` ``runs`` times per system, interleaving the systems.

    A run that fails (a process died, a timeout) is left out of the medians
    and reported in the returned footnotes, so one bad run on a busy machine
    does not lose the others.

    Returns:
        The results of the runs that worked, by system, and the footnotes.
    """
    results: dict[str, list[Any]] = {s.name: [] for s in systems}
    failures: list[str] = []
    for run in range(1, runs + 1):
        for system in systems:
            try:
                result = measure(system)
            except BenchError as exc:
                lines = [line for line in str(exc).splitlines() if line.strip()]
                reason = " ... ".join(dict.fromkeys([lines[0], lines[-1]]))
                failures.append(f"- {label}, {system.name}, run {run} failed: {reason}")
                FAILED_RUNS.append(reason)
                progress(f"{label} {system.name} run {run}/{runs} FAILED: {exc}")
                continue
            progress(f"{label} {system.name} run {run}/{runs}: {result}")
            results[system.name].append(result)
    return results, failures


def keep_logs(logs: Path) -> None:
    """Copy the child processes' logs out of the temporary directory."""
    kept = LOGS_KEPT / time.strftime("%Y%m%d-%H%M%S")
    shutil.copytree(logs, kept)
    progress(f"some runs failed: the processes' logs are kept in {kept}")


def progress(line: str) -> None:
    """A progress line, on stderr so stdout holds only the report."""
    print(f"  .. {line}", file=sys.stderr, flush=True)


def durability(systems: list[System]) -> dict[str, str]:
    """The durability column of every table."""
    return {s.name: s.durability for s in systems}


def run_drain(systems: list[System], settings: Settings, runs: int) -> str:
    """Workload 1 as a table."""
    results, failed = repeat(
        systems, runs, "drain", lambda s: workloads.drain(s, settings)
    )
    columns = [Column("tasks/s", report.rate, higher_is_better=True)]
    rows = {n: [workloads.median([r.rate for r in rs])] for n, rs in results.items()}
    cut = {name: [r for r in rs if not r.complete] for name, rs in results.items()}
    marks = {name: "*" for name, rs in cut.items() if rs}
    footnotes = [
        f"\n\\* {name}: in {len(rs)} of {len(results[name])} runs still running "
        f"{settings.drain_window_s:g} s after its first call, so measured over the "
        f"calls made by then ({', '.join(f'{r.done:,}' for r in rs)} of "
        f"{settings.drain_tasks:,})."
        for name, rs in cut.items()
        if rs
    ]
    title = (
        f"### 1. Drain: {settings.drain_tasks:,} queued no-op tasks, "
        f"{_workers(systems)}: first to last handler call (median of {runs})"
    )
    table = report.table(columns, rows, durability(systems), marks)
    bar = _bar(rows, 0, ">=", 25_000, "drain tasks/s")
    return _with_bars([title, "", table, *footnotes, *_failed(failed)], [bar])


def _failed(failures: list[str]) -> list[str]:
    return ["", "Runs left out of the medians:", *failures] if failures else []


def _workers(systems: list[System]) -> str:
    ctx = systems[0].ctx
    return (
        f"{ctx.worker_processes} worker processes (tq: {ctx.tq_concurrency} tasks"
        f" at once each; peers: {ctx.concurrency} threads each)"
    )


def run_submit(systems: list[System], settings: Settings, runs: int) -> str:
    """Workload 2 as a table."""
    rows: dict[str, list[float | None]] = {s.name: [] for s in systems}
    failed: list[str] = []
    for mode in SUBMIT_MODES:
        results, failed_now = repeat(
            systems,
            runs,
            f"submit {mode}",
            lambda s, m=mode: workloads.submit(s, settings, m),
        )
        failed += failed_now
        for name, values in results.items():
            rows[name].append(workloads.median(values))
    clients = settings.concurrent_clients
    columns = [
        Column("1 client /s", report.rate, higher_is_better=True),
        Column(f"{clients} clients /s", report.rate, higher_is_better=True),
        Column("batches of 1,000 /s", report.rate, higher_is_better=True),
    ]
    title = (
        f"### 2. Submit, no workers: tasks/s over {settings.submit_s:g} s "
        f"(median of {runs})"
    )
    bars = [
        _bar(rows, 1, ">=", 20_000, f"tasks/s from {clients} clients"),
        _bar(rows, 2, ">=", 150_000, "tasks/s in batches of 1,000"),
    ]
    table = report.table(columns, rows, durability(systems))
    return _with_bars([title, "", table, *_failed(failed)], bars)


def run_latency(systems: list[System], settings: Settings, runs: int) -> str:
    """Workload 3 as a table."""
    results, failed = repeat(
        systems, runs, "latency", lambda s: workloads.latency(s, settings)
    )
    keys = ("p50", "p90", "p99", "max")
    columns = [Column("achieved /s", report.rate, higher_is_better=True)]
    columns += [Column(f"ack {k} ms", report.ms, False) for k in keys]
    columns += [Column(f"start {k} ms", report.ms, False) for k in keys]
    columns += [Column(f"complete {k} ms", report.ms, False) for k in keys]
    rows = {name: _latency_row(rs, keys) for name, rs in results.items()}
    errors = {name: sum(r.errors for r in rs) for name, rs in results.items()}
    marks = {name: "*" for name, count in errors.items() if count}
    footnotes = [
        f"\n\\* {name}: {count} tasks raised or timed out in the client."
        for name, count in errors.items()
        if count
    ]
    title = (
        f"### 3. Latency at {settings.latency_rate:,.0f} submits/s offered, open "
        f"loop, {settings.latency_s:g} s, idle workers, {_workers(systems)} "
        f"(medians of {runs} runs' percentiles)"
    )
    explain = (
        "ack = client send until the submit call returns (the system has "
        "acknowledged the task: tq once it is on disk); start = handler start "
        "minus client send; complete = client send until the client's result "
        "call returns; achieved = tasks sent / (last send - first send)."
    )
    table = report.table(columns, rows, durability(systems), marks)
    bars = [
        _bar(rows, 3, "<", 5, "submit-to-ack p99 ms", fmt=report.ms),
        _bar(rows, 7, "<", 5, "submit-to-start p99 ms", fmt=report.ms),
    ]
    return _with_bars(
        [title, "", explain, "", table, *footnotes, *_failed(failed)], bars
    )


def _latency_row(
    runs: list[workloads.LatencyRun], keys: tuple[str, ...]
) -> list[float | None]:
    row: list[float | None] = [workloads.median([r.achieved for r in runs])]
    for field in ("ack_ms", "start_ms", "complete_ms"):
        for key in keys:
            values = [getattr(r, field)[key] for r in runs if key in getattr(r, field)]
            row.append(workloads.median(values) if values else None)
    return row


def run_memory(systems: list[System], settings: Settings, runs: int) -> str:
    """Workloads 4 and 5 as one table (they share the fill)."""
    results, failed = repeat(
        systems, runs, "memory", lambda s: workloads.memory_and_restart(s, settings)
    )
    columns = [
        Column("RSS empty MB", report.megabytes, higher_is_better=False),
        Column(f"RSS {settings.memory_tasks:,} pending MB", report.megabytes, False),
        Column("serving after kill -9 s", report.seconds, higher_is_better=False),
    ]
    rows = {
        name: [
            workloads.median([r.rss_empty for r in rs]),
            workloads.median([r.rss_full for r in rs]),
            workloads.median([r.serving_s for r in rs]),
        ]
        for name, rs in results.items()
    }
    title = (
        f"### 4-5. Store memory with {settings.memory_tasks:,} pending tasks of "
        f"256 B, and time to serve again after kill -9 (median of {runs})"
    )
    explain = (
        "RSS: VmRSS of the tq broker or redis-server process. Restart: Redis "
        "runs SAVE first (its RDB snapshot then holds the whole fill); the store "
        "is killed with SIGKILL and started again, timed from the new process's "
        "spawn until a waiting client succeeds (tq: get of the last task; Redis: "
        "LLEN of the queue returns the full count)."
    )
    table = report.table(columns, rows, durability(systems))
    bars = [
        _bar(rows, 1, "<", 300e6, "RSS MB with the fill", fmt=report.megabytes),
        _bar(rows, 2, "<", 5, "seconds to serve again", fmt=report.seconds),
    ]
    return _with_bars([title, "", explain, "", table, *_failed(failed)], bars)


def legend(systems: list[System]) -> str:
    """How each system runs, once, above the tables."""
    rows = [
        (s.name, s.workers_text, s.batch_api, s.result_api, s.persistence)
        for s in systems
    ]
    return "\n".join(["### Systems as measured", "", report.legend(rows)])


def _bar(
    rows: dict[str, list[float | None]],
    column: int,
    op: str,
    bar: float,
    what: str,
    *,
    fmt: Callable[[float], str] = report.rate,
) -> str:
    """One line: whether tq's figure in ``column`` meets its SPEC bar."""
    value = rows.get("tq", [None] * (column + 1))[column]
    if value is None:
        return ""
    met = value >= bar if op == ">=" else value < bar
    verdict = "met" if met else "NOT met"
    return f"- SPEC bar, {what}: {op} {fmt(bar)}: {verdict} (tq: {fmt(value)})"


def _with_bars(parts: list[str], bars: list[str]) -> str:
    lines = [bar for bar in bars if bar]
    return "\n".join([*parts, "", *lines] if lines else parts)


RUNNERS: dict[str, Callable[[list[System], Settings, int], str]] = {
    "drain": run_drain,
    "submit": run_submit,
    "latency": run_latency,
    "memory": run_memory,
}


def main() -> None:
    """Run the chosen workloads on the chosen systems and print the report."""
    args = parse_args()
    settings = QUICK if args.quick else FULL
    if args.latency_rate:
        settings = dataclasses.replace(settings, latency_rate=args.latency_rate)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    print("## tq and its peers, side by side\n")
    print("\n".join(report.machine(args.tq_python)) + "\n", flush=True)
    with tempfile.TemporaryDirectory(prefix="tq-bench-") as temp:
        work_dir = Path(temp)
        (work_dir / "logs").mkdir()
        env = {**os.environ, "PYTHONPATH": str(BENCHES)}
        procs = Processes(work_dir / "logs", env)
        ctx = Context(
            procs, work_dir, sys.executable, args.tq_python,
            args.worker_processes, args.concurrency, args.tq_concurrency,
        )  # fmt: skip
        systems = make_systems(ctx, args.systems)
        print(legend(systems) + "\n", flush=True)
        completed = False
        try:
            for workload in args.workloads:
                print(
                    RUNNERS[workload](systems, settings, args.runs) + "\n", flush=True
                )
            completed = True
        finally:
            procs.close()
            if not completed or FAILED_RUNS:
                keep_logs(work_dir / "logs")


if __name__ == "__main__":
    assert set(PEERS) == set(SYSTEMS) - {"tq"}
    main()
