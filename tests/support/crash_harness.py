"""The crash harness: kill a broker under load, again and again, then count.

Usage: python tests/support/crash_harness.py [--cycles 60] [--seed N] [--dir DIR]

A producer submits a mix of tasks (`load_producer`) and logs every submit with
its outcome; two workers run them (`crash_handlers`) and log every delivery
with its task id, lease id and attempt. Every cycle ends with the broker's
death, with fsync on: either a kill -9 from outside at a random moment, or a
named crash point (``TQ_CRASH_AT``) at which the broker kills itself: after
the write before fsync, after fsync before the reply, during a retry
reschedule, during a dead-letter move, during the retention sweep. The broker
then starts again on the same data dir and port. After each outside kill, one
of the workers is killed with -9 as well, in the middle of its tasks, and
started again.

After the last restart the producer stops, the workers drain the queue, and
the harness reads every task the broker has and prints its verdict:

- lost: acknowledged submits the broker no longer has. The retention sweep
  deletes dead letters after a few seconds, so a ``doomed`` task that was
  delivered and is gone counts as swept instead; ``steady`` and ``flaky``
  tasks are never swept (completed tasks are kept for days).
- unexpected: tasks whose token no producer tried to submit, or that hold
  another token than the submit acknowledged under their id.
- unfinished: tasks neither completed nor dead-lettered after the drain.
- wrong end: ``steady`` or ``flaky`` tasks not completed, ``doomed`` ones not
  dead-lettered.
- runs beyond attempts: deliveries of a task beyond its attempt count. A task
  may run again after a crash, but only as a new attempt under a new lease.
- leases delivered twice: one lease id in two deliveries.

Each must be zero; the harness exits with status 1 otherwise.
"""

from __future__ import annotations

import argparse
import contextlib
import random
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from processes import HERE, BrokerProcess, WorkerProcess, wait_until

from tq import Client, TaskInfo
from tq.errors import ConnectionLost

# Crash points and the passes after which one kills: a write point is passed
# by every commit (hundreds a second), the others only now and then.
CRASH_POINTS: dict[str, tuple[int, int]] = {
    "after_write_before_fsync": (1, 400),
    "after_fsync_before_reply": (1, 400),
    "retry_reschedule": (1, 6),
    "dead_letter_move": (1, 3),
    "retention_sweep": (1, 1),
}
CYCLE_KINDS = ["kill -9", *CRASH_POINTS]
POINT_WAIT_S = 20.0
"""How long a cycle waits for the broker to reach its crash point."""

BROKER_CONFIG: dict[str, object] = {
    "fsync": True,
    "heartbeat_interval": "0.5s",
    "worker_timeout": "3s",
    "task_timeout": "10s",
    "backoff_base": "50ms",
    "backoff_max": "200ms",
    "dead_letter_retention": "3s",
    "retention_sweep_interval": "1s",
}
FINAL_STATES = ("completed", "dead_letter", "cancelled")
ALL_STATES = ("scheduled", "pending", "in_progress", "failed", *FINAL_STATES)
EXPECTED_END = {"steady": "completed", "flaky": "completed", "doomed": "dead_letter"}


@dataclass
class CycleLog:
    """How the cycles ended, by kind."""

    runs: Counter[str] = field(default_factory=Counter)
    reached: Counter[str] = field(default_factory=Counter)
    workers_killed: int = 0

    def table(self) -> str:
        lines = [f"{'cycle ends with':<26} {'runs':>5} {'reached':>8}"]
        for kind in CYCLE_KINDS:
            reached = str(self.reached[kind]) if kind in CRASH_POINTS else "-"
            lines.append(f"{kind:<26} {self.runs[kind]:>5} {reached:>8}")
        lines.append(f"{'workers killed with -9':<26} {self.workers_killed:>5}")
        return "\n".join(lines)


@dataclass(frozen=True)
class Delivery:
    token: str
    task_id: int
    lease_id: int
    attempt: int


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def run(workdir: Path, cycles: int, seed: int) -> tuple[CycleLog, dict[str, int]]:
    """Run `cycles` crash cycles under load, drain, and count."""
    rng = random.Random(seed)
    broker = BrokerProcess(workdir / "data", workdir / "broker.log", BROKER_CONFIG)
    broker.port = free_port()
    deliveries = workdir / "deliveries.txt"
    deliveries.touch()
    produced = workdir / "produced.txt"
    workers = [
        WorkerProcess(
            broker.address,
            workdir / f"worker{n}.log",
            concurrency=4,
            extra_env={"TQ_CRASH_DELIVERIES": str(deliveries)},
            handlers="crash_handlers",
        )
        for n in range(2)
    ]
    log = CycleLog()
    broker.start()
    producer = subprocess.Popen(
        [sys.executable, str(HERE / "load_producer.py"), broker.address, str(produced)]
    )
    try:
        for worker in workers:
            worker.start()
        reached_early = False
        for cycle in range(cycles):
            kind = CYCLE_KINDS[cycle % len(CYCLE_KINDS)]
            following = CYCLE_KINDS[(cycle + 1) % len(CYCLE_KINDS)]
            last = cycle == cycles - 1
            log.runs[kind] += 1
            next_env = {} if last else _arm(following, rng)
            reached, next_reached_early = _crash_once(broker, next_env, rng)
            if reached or reached_early:
                log.reached[kind] += 1
            reached_early = next_reached_early
            if kind == "kill -9":
                # Workers die too, mid-task, and their leases must come back.
                victim = workers[log.runs[kind] % len(workers)]
                victim.kill()
                victim.start()
                log.workers_killed += 1
        time.sleep(1.0)
        producer.terminate()
        producer.wait(timeout=60)
        verdict = _drain_and_count(broker.address, produced, deliveries)
    finally:
        producer.kill()
        for worker in workers:
            worker.kill()
        broker.kill()
    return log, verdict


def _crash_once(
    broker: BrokerProcess, next_env: dict[str, str], rng: random.Random
) -> tuple[bool, bool]:
    """End the running broker and start it again with `next_env`.

    A broker armed with a crash point is left to reach it (and killed from
    outside if it does not within `POINT_WAIT_S`); one not armed is killed
    after a random while. Returns whether the broker killed itself, and
    whether the next one did so while starting (recovery work such as
    failing leases that expired while it was down passes the crash points
    too); that one is started again unarmed.
    """
    armed = broker.extra_env.get("TQ_CRASH_AT")
    if armed is None:
        time.sleep(rng.uniform(0.3, 1.5))
        broker.kill()
        reached = False
    else:
        code = broker.wait_for_exit(POINT_WAIT_S)
        reached = code == -9
        if code is None:
            broker.kill()
        elif not reached:
            raise AssertionError(f"armed broker ({armed}) exited with {code}")
    broker.extra_env = next_env
    try:
        broker.start()
    except RuntimeError:
        if not next_env or broker.wait_for_exit(0) != -9:
            raise
        broker.extra_env = {}
        broker.start()
        return reached, True
    return reached, False


def _arm(kind: str, rng: random.Random) -> dict[str, str]:
    if kind not in CRASH_POINTS:
        return {}
    low, high = CRASH_POINTS[kind]
    return {"TQ_CRASH_AT": f"{kind}:{rng.randint(low, high)}"}


def _drain_and_count(address: str, produced: Path, deliveries: Path) -> dict[str, int]:
    tried, acked = _read_producer_log(produced)
    with Client.connect(address, reconnect_timeout=30) as client:
        # A drain that does not finish is counted below, as unfinished tasks.
        with contextlib.suppress(AssertionError):
            wait_until(lambda: _unfinished(client) == 0, 120, "every task to finish")
        present = _all_tasks(client)
    # Read once the workers are idle: every run of every task is logged.
    runs = _read_deliveries(deliveries)
    runs_of: dict[int, list[Delivery]] = defaultdict(list)
    for delivery in runs:
        runs_of[delivery.task_id].append(delivery)
    swept = {
        task_id
        for task_id, token in acked.items()
        if task_id not in present and token.startswith("doomed-") and runs_of[task_id]
    }
    lease_uses = Counter(delivery.lease_id for delivery in runs)
    return {
        "acknowledged": len(acked),
        "stored": len(present),
        "swept dead letters": len(swept),
        "deliveries": len(runs),
        "ran more than once": sum(1 for r in runs_of.values() if len(r) > 1),
        "lost": sum(1 for t in acked if t not in present and t not in swept),
        "unexpected": sum(
            1
            for task_id, task in present.items()
            if task.payload.decode() not in tried
            or acked.get(task_id, task.payload.decode()) != task.payload.decode()
        ),
        "unfinished": sum(1 for t in present.values() if t.state not in FINAL_STATES),
        "wrong end": sum(
            1
            for t in present.values()
            if t.state in FINAL_STATES and t.state != EXPECTED_END[t.task_type]
        ),
        "runs beyond attempts": sum(
            max(0, len(runs_of[task_id]) - task.attempts)
            for task_id, task in present.items()
        ),
        "leases delivered twice": sum(1 for n in lease_uses.values() if n > 1),
    }


MUST_BE_ZERO = (
    "lost",
    "unexpected",
    "unfinished",
    "wrong end",
    "runs beyond attempts",
    "leases delivered twice",
)


def _read_producer_log(path: Path) -> tuple[set[str], dict[int, str]]:
    tried: set[str] = set()
    acked: dict[int, str] = {}
    for line in path.read_text().splitlines():
        parts = line.split()
        if parts[:1] == ["try"] and len(parts) == 2:
            tried.add(parts[1])
        elif parts[:1] == ["ok"] and len(parts) == 3:
            acked[int(parts[1])] = parts[2]
    return tried, acked


def _read_deliveries(path: Path) -> list[Delivery]:
    runs = []
    for line in path.read_text().splitlines():
        parts = line.split()
        if parts[:1] == ["run"] and len(parts) == 5:
            runs.append(Delivery(parts[1], int(parts[2]), int(parts[3]), int(parts[4])))
    return runs


def _unfinished(client: Client) -> int:
    try:
        by_state = client.stats()["by_state"]
    except ConnectionLost:
        return -1
    return sum(by_state[s] for s in ALL_STATES if s not in FINAL_STATES)


def _all_tasks(client: Client) -> dict[int, TaskInfo]:
    tasks: dict[int, TaskInfo] = {}
    for state in ALL_STATES:
        cursor = None
        while True:
            page = client.list_tasks(state, limit=1000, cursor=cursor)
            tasks.update({task.task_id: task for task in page.tasks})
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
    return tasks


def report(log: CycleLog, verdict: dict[str, int]) -> str:
    """The cycle table and the counts, with the verdict on the last line."""
    counts = "\n".join(f"{name:<26} {value:>8}" for name, value in verdict.items())
    failed = [name for name in MUST_BE_ZERO if verdict[name]]
    ending = "verdict: FAIL (" + ", ".join(failed) + ")" if failed else "verdict: PASS"
    return f"{log.table()}\n\n{counts}\n\n{ending}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=60)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument(
        "--dir", type=Path, default=None, help="keep logs and data here"
    )
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(2**32)
    workdir = args.dir or Path(tempfile.mkdtemp(prefix="tq-crash-"))
    workdir.mkdir(parents=True, exist_ok=True)
    print(f"crash harness: {args.cycles} cycles, seed {seed}, logs in {workdir}")
    started = time.monotonic()
    log, verdict = run(workdir, args.cycles, seed)
    print(report(log, verdict))
    print(f"took {time.monotonic() - started:.0f}s")
    return 1 if any(verdict[name] for name in MUST_BE_ZERO) else 0


if __name__ == "__main__":
    sys.exit(main())
