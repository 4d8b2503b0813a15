"""A short tour of the tq engine, the Rust extension `tq._core`.

It opens an engine on a fresh data directory with fsync on, submits tasks of
different priorities (one of them delayed), claims them to show the priority
order, acks one, fails one with a retry and one into the dead letter queue, and
prints the counts. Then it closes the store, opens it again and shows that every
task is where it was left.

The engine runs on a `ManualClock` set to the current time, so the demo can move
time forward instead of sleeping.

Run it with ``python -m tq._engine_demo`` (or ``scripts/demo``, which builds
everything first).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from tq._core import STATES, ClaimedTask, Engine, ManualClock, NewTask

WORKER_ID = "demo-worker-1"
RETRY_BACKOFF_MS = 5_000
DELAY_MS = 60_000


def main() -> None:
    """Run the demo in a temporary directory, printing each step."""
    with tempfile.TemporaryDirectory(prefix="tq-demo-") as tmp:
        path = str(Path(tmp) / "data")
        clock = ManualClock(time.time_ns() // 1_000_000)

        with Engine(path, fsync=True, clock=clock) as engine:
            print(f"Opened an engine in {engine.path} (fsync on).")
            task_ids = submit_tasks(engine)
            claimed = claim_all(engine)
            finish_attempts(engine, claimed)
            print_counts(engine)
        print("\nClosed the engine.")

        with Engine(path, fsync=True, clock=clock) as engine:
            print(f"Reopened it: every index was rebuilt from RocksDB in {path}.")
            print_tasks(engine, task_ids)
            print_counts(engine)

            clock.advance(DELAY_MS)
            promoted = engine.promote_due()
            print(
                f"\nMoved the clock {DELAY_MS // 1000} s on: {promoted} tasks came due "
                "(the delayed one and the one waiting to retry)."
            )
            print_tasks(engine, task_ids)


def submit_tasks(engine: Engine) -> list[int]:
    """Submit four tasks, one of them delayed, and return their ids."""
    tasks = [
        NewTask("email.send", b'{"to": "ada@example.com"}', priority=50),
        NewTask("report.build", b'{"month": "2026-11"}', priority=150),
        NewTask("payment.capture", b'{"order": 1042}', priority=250),
        NewTask("cache.warm", b"{}", priority=250, delay_ms=DELAY_MS),
    ]
    submitted = engine.submit_many(tasks)
    task_ids = [s.task_id for s in submitted]
    print("\nSubmitted four tasks (priority 0-255, higher first):")
    print_tasks(engine, task_ids)
    return task_ids


def claim_all(engine: Engine) -> list[ClaimedTask]:
    """Claim every ready task for one worker and show the order they came in."""
    claimed = engine.claim(WORKER_ID, max_tasks=10)
    print(f"\n{WORKER_ID} claimed {len(claimed)} tasks, highest priority first")
    print("(the delayed task is not due yet, so it stays behind):")
    for task in claimed:
        print(
            f"  #{task.task_id} {task.task_type:<16} priority {task.priority:>3}"
            f"  lease {task.lease_id}, attempt {task.attempt}"
        )
    return claimed


def finish_attempts(engine: Engine, claimed: list[ClaimedTask]) -> None:
    """Ack the first claimed task, retry the second, dead-letter the third."""
    done, flaky, broken = claimed[:3]

    engine.ack(done.task_id, done.lease_id, result=b'{"captured": true}')
    print(f"\nAcked #{done.task_id} ({done.task_type}).")

    retry_at_ms = engine.now_ms() + RETRY_BACKOFF_MS
    state = engine.fail(
        flaky.task_id, flaky.lease_id, "database timed out", retry_at_ms=retry_at_ms
    )
    print(
        f"Failed #{flaky.task_id} ({flaky.task_type}) with a retry in "
        f"{RETRY_BACKOFF_MS // 1000} s: now {state}."
    )

    state = engine.fail(broken.task_id, broken.lease_id, "mailbox does not exist")
    print(f"Failed #{broken.task_id} ({broken.task_type}) for good: now {state}.")


def print_tasks(engine: Engine, task_ids: list[int]) -> None:
    """Print one line per task: id, type, priority, state and last error."""
    for task_id in task_ids:
        task = engine.get(task_id)
        error = f"  last error: {task.last_error}" if task.last_error else ""
        print(
            f"  #{task.task_id} {task.task_type:<16} priority {task.priority:>3}"
            f"  {task.state}{error}"
        )


def print_counts(engine: Engine) -> None:
    """Print how many tasks are in each state that has any."""
    by_state = engine.counts().by_state
    counts = ", ".join(
        f"{state} {by_state[state]}" for state in STATES if by_state.get(state)
    )
    print(f"\nCounts by state: {counts}.")


if __name__ == "__main__":
    main()
