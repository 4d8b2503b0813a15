"""kill -9 of an engine under load, again and again on one data dir, loses nothing.

A child process (``engine_crash_load.py``) runs submits, batched submits, claims
and acks with fsync on and reports each acknowledged operation on stdout. The
test kills it with SIGKILL after a random number of report lines, several rounds
in a row on the same directory, and after each round opens the directory itself
and checks every acknowledgement against what is stored.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tq._core import STATES, Engine, Task
from tq.errors import TaskNotFound

ROUNDS = 8
CHILD = Path(__file__).with_name("engine_crash_load.py")
# Only a hung child ever waits this long; it fails the test rather than pass.
WATCHDOG_S = 120


@dataclass
class InFlight:
    """The one operation the child had started but not reported done."""

    kind: str
    args: list[int]


@dataclass
class Expected:
    """What the acknowledgements so far say about one task."""

    state: str
    lease_id: int | None = None


@dataclass
class Ledger:
    """Everything the child acknowledged, over all rounds so far."""

    tasks: dict[int, Expected] = field(default_factory=dict)
    leases: set[int] = field(default_factory=set)
    operations: int = 0

    def lease(self, task_id: int, lease_id: int) -> None:
        assert lease_id not in self.leases, f"lease id {lease_id} was issued twice"
        self.leases.add(lease_id)
        self.tasks[task_id] = Expected("in_progress", lease_id)

    def replay(self, lines: list[str]) -> InFlight | None:
        """Apply the child's report lines; return the operation left in flight."""
        in_flight: InFlight | None = None
        for line in lines:
            if not line.endswith("\n"):
                break
            kind, *words = line.split()
            if kind == "open":
                continue
            if kind == "begin":
                in_flight = InFlight(words[0], [int(w) for w in words[1:]])
                continue
            in_flight = None
            self.operations += 1
            self.apply(kind, [int(w) for w in words])
        return in_flight

    def apply(self, kind: str, numbers: list[int]) -> None:
        if kind == "submit":
            for task_id in numbers:
                assert task_id not in self.tasks, f"task id {task_id} was reused"
                self.tasks[task_id] = Expected("pending")
        elif kind == "claim":
            for task_id, lease_id in zip(numbers[::2], numbers[1::2], strict=True):
                assert self.tasks[task_id].state == "pending", f"claimed {task_id}"
                self.lease(task_id, lease_id)
        else:
            assert kind == "ack", f"unknown report line {kind}"
            for task_id in numbers:
                assert self.tasks[task_id].state == "in_progress", f"acked {task_id}"
                self.tasks[task_id] = Expected("completed")


def run_until_killed(data: Path, seed: int, kill_after: int, log: Path) -> list[str]:
    """Run the child, SIGKILL it once it has reported ``kill_after`` lines."""
    command = [sys.executable, str(CHILD), str(data), str(seed)]
    with log.open("w") as stderr:
        child = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=stderr, text=True
        )
        hung = threading.Event()

        def watchdog() -> None:
            hung.set()
            child.kill()

        timer = threading.Timer(WATCHDOG_S, watchdog)
        timer.start()
        assert child.stdout is not None
        lines: list[str] = []
        try:
            for line in child.stdout:
                lines.append(line)
                if len(lines) == kill_after:
                    child.send_signal(signal.SIGKILL)
            code = child.wait()
        finally:
            timer.cancel()
    assert not hung.is_set(), f"child hung; stderr:\n{log.read_text()}"
    assert code == -signal.SIGKILL, f"child exited {code}; stderr:\n{log.read_text()}"
    return lines


def list_everything(engine: Engine) -> dict[int, Task]:
    """Every stored task, found by paging through each state's listing."""
    found: dict[int, Task] = {}
    for state in STATES:
        cursor: bytes | None = None
        while True:
            page = engine.list_tasks(state, limit=500, cursor=cursor)
            for task in page.tasks:
                assert task.state == state, f"{state} listing has {task.task_id}"
                assert task.task_id not in found, f"{task.task_id} listed twice"
                found[task.task_id] = task
            cursor = page.next_cursor
            if cursor is None:
                break
    return found


def check_task(
    ledger: Ledger, task: Task, in_flight: InFlight | None, problems: list[str]
) -> None:
    """Compare one stored task with its acknowledgements, within what was in flight.

    An operation in flight at the kill may or may not have reached the disk; where
    it did, the ledger takes the stored outcome on.
    """
    expected = ledger.tasks[task.task_id]
    kind = in_flight.kind if in_flight else None
    if expected.state == "pending" and task.state == "in_progress" and kind == "claim":
        assert task.lease_id is not None
        ledger.lease(task.task_id, task.lease_id)
        return
    if (
        expected.state == "in_progress"
        and task.state == "completed"
        and in_flight is not None
        and kind == "ack"
        and task.task_id in in_flight.args
    ):
        ledger.tasks[task.task_id] = Expected("completed")
        return
    if task.state != expected.state:
        problems.append(f"task {task.task_id} is {task.state}, acked {expected}")
    elif expected.lease_id is not None and task.lease_id != expected.lease_id:
        problems.append(f"task {task.task_id} has lease {task.lease_id}, {expected}")
    elif task.state == "in_progress" and task.lease_deadline_ms is None:
        problems.append(f"task {task.task_id} lost its lease deadline")


def check_store(data: Path, ledger: Ledger, in_flight: InFlight | None) -> str:
    """Open the directory and hold it against the ledger; return a summary line."""
    problems: list[str] = []
    with Engine(str(data), fsync=True) as engine:
        stored = list_everything(engine)
        counts = {k: v for k, v in engine.counts().by_state.items() if v}
        listed = dict(Counter(task.state for task in stored.values()))
        if counts != listed:
            problems.append(f"counts() {counts} but listings {listed}")

        lost = []
        for task_id in sorted(ledger.tasks):
            try:
                task = engine.get(task_id)
            except TaskNotFound:
                lost.append(task_id)
                continue
            if task_id not in stored:
                problems.append(f"task {task_id} is stored but in no listing")
            check_task(ledger, task, in_flight, problems)
        if lost:
            problems.append(f"acknowledged tasks lost: {lost}")
        if in_flight and in_flight.kind == "ack":
            done = [stored[i].state == "completed" for i in in_flight.args]
            if any(done) and not all(done):
                problems.append(f"ack batch {in_flight.args} half applied: {done}")

        # Only the submit in flight at the kill may have stored tasks unreported.
        unreported = sorted(set(stored) - set(ledger.tasks))
        allowed = in_flight.args[0] if in_flight and in_flight.kind == "submit" else 0
        # A batch is one atomic write: all of it is stored or none.
        if len(unreported) not in (0, allowed):
            problems.append(f"unknown tasks {unreported}, in flight {in_flight}")
        for task_id in unreported:
            if stored[task_id].state != "pending":
                problems.append(f"unreported task {task_id} is {stored[task_id].state}")
            ledger.tasks[task_id] = Expected("pending")

    assert not problems, "\n".join(problems)
    return (
        f"acknowledged operations {ledger.operations}, "
        f"acknowledged tasks {len(ledger.tasks) - len(unreported)}, "
        f"present {len(stored)}, lost {len(lost)}, "
        f"stored but unacknowledged {len(unreported)}, by state {listed}"
    )


@pytest.mark.slow
def test_acknowledged_operations_survive_repeated_kill_9_under_load(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    base_seed = int.from_bytes(os.urandom(4), "big")
    kill_points = [random.Random(base_seed - n).randint(3, 500) for n in range(ROUNDS)]
    ledger = Ledger()

    for n, kill_after in enumerate(kill_points):
        seed = base_seed + n
        lines = run_until_killed(data, seed, kill_after, tmp_path / f"child-{n}.err")
        in_flight = ledger.replay(lines)
        summary = check_store(data, ledger, in_flight)
        print(
            f"round {n} (seed {seed}, killed after {kill_after} of "
            f"{len(lines)} lines): {summary}"
        )

    assert ledger.operations > ROUNDS
