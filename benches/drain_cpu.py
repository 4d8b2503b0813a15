"""Where the CPU of a tq drain goes: per process, per task, per commit.

The drain figure (``./scripts/bench --workloads drain``) is 100,000 queued
no-op tasks run by 2 worker processes. This script runs the same drain with
the processes tq ships (``python -m tq broker`` with fsync on, two
``python -m tq worker --concurrency 256``) and prints, over the drain only
(from the first claimed task until the last completes):

- the rate;
- each process's CPU time, as a share of one core and in µs per task (what
  the machine's cores must supply for every task drained);
- the broker's group commits: how many, and how many ops each carried.

When the CPU per task times the rate nears the number of cores, the drain is
bound by CPU, whoever is waiting on whom.

Run from the repository with the extension installed::

    .venv/bin/python benches/drain_cpu.py [--tasks 100000] [--concurrency 256]
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from qbench.systems.tq import CONFIG
from tq import Client

HANDLERS = """
from tq.worker import registry


@registry.handler("noop")
async def noop(payload: bytes) -> bytes:
    return b""
"""

POLL_S = 0.02


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--concurrency", type=int, default=256)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tq-drain-cpu-") as tmp:
        run(Path(tmp), args.tasks, args.concurrency)


def run(tmp: Path, tasks: int, concurrency: int) -> None:
    """Fill, drain with two workers, and print the table."""
    port = _free_port()
    address = f"127.0.0.1:{port}"
    (tmp / "drain_cpu_handlers.py").write_text(HANDLERS)
    config = tmp / "broker.yaml"
    config.write_text(
        CONFIG.format(port=port, data_dir=tmp / "data", max_pending=2 * tasks)
    )
    procs: dict[str, subprocess.Popen[bytes]] = {}
    try:
        procs["broker"] = _spawn(["broker", "--config", str(config)], tmp)
        with Client.connect(address) as client:
            for done in range(0, tasks, 1000):
                client.submit_many([("noop", b"x" * 64, 100)] * min(1000, tasks - done))
            for i in (1, 2):
                procs[f"worker {i}"] = _spawn(
                    [
                        "worker",
                        "--broker",
                        address,
                        "--concurrency",
                        str(concurrency),
                        "--handlers",
                        "drain_cpu_handlers",
                        "--log-level",
                        "warning",
                    ],
                    tmp,
                )
            _report(client, procs, tasks)
    finally:
        for proc in procs.values():
            proc.terminate()
        for proc in procs.values():
            proc.wait(timeout=30)


def _report(
    client: Client, procs: dict[str, subprocess.Popen[bytes]], tasks: int
) -> None:
    watched = {name: psutil.Process(proc.pid) for name, proc in procs.items()}
    while not _started(client):
        time.sleep(POLL_S)
    start = time.monotonic()
    cpu_start = {name: _cpu_s(p) for name, p in watched.items()}
    stats_start = client.stats()
    while _completed(client) < tasks:
        time.sleep(POLL_S)
    elapsed = time.monotonic() - start
    cpu = {name: _cpu_s(p) - cpu_start[name] for name, p in watched.items()}
    stats = client.stats()
    rate = tasks / elapsed
    print(f"drain of {tasks:,} no-op tasks, 2 workers: {rate:,.0f} tasks/s")
    print()
    print("| process | share of one core | CPU µs per task |")
    print("|---|---:|---:|")
    for name, seconds in cpu.items():
        print(
            f"| {name} | {100 * seconds / elapsed:.0f}% | {1e6 * seconds / tasks:.0f} |"
        )
    total = sum(cpu.values())
    print(f"| all | {100 * total / elapsed:.0f}% | {1e6 * total / tasks:.0f} |")
    commits = stats["commits"] - stats_start["commits"]
    ops = stats["committed_ops"] - stats_start["committed_ops"]
    print()
    print(
        f"group commits during the drain: {commits:,}, "
        f"{ops / max(commits, 1):,.0f} ops each on average "
        f"(an ack is one op, a claim of many tasks is one op)"
    )
    cores = psutil.cpu_count() or 1
    print(
        f"CPU the drain needs at this rate: {total / elapsed:.2f} cores of {cores}; "
        f"at 25,000 tasks/s it would need {25_000 * total / tasks:.2f}"
    )


def _started(client: Client) -> bool:
    by_state = client.stats()["by_state"]
    return bool(by_state["in_progress"] or by_state["completed"])


def _completed(client: Client) -> int:
    return int(client.stats()["by_state"]["completed"])


def _cpu_s(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


def _spawn(argv: list[str], cwd: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(  # noqa: S603 - our own interpreter and argv, no shell
        [sys.executable, "-m", "tq", *argv],
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


if __name__ == "__main__":
    main()
