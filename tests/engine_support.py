"""Helpers shared by the engine tests: task factories, snapshots and listings."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest

from tq._core import ClaimedTask, Engine, ManualClock, NewTask, Task
from tq.errors import EngineClosed

T0 = 1_700_000_000_000
TIMEOUT_MS = 1_000
RETRY_MS = 60_000
DELAY_MS = 60_000


class Store:
    """An engine on one data directory that a test may close and open again."""

    def __init__(self, path: Path, clock: ManualClock) -> None:
        self.path = path
        self.clock = clock
        self.engine = Engine(str(path), clock=clock)

    def reopen(self) -> Engine:
        """Close the engine and open the same directory with the same clock."""
        self.engine.close()
        self.engine = Engine(str(self.path), clock=self.clock)
        return self.engine

    def close(self) -> None:
        """Close the engine if the test has not already."""
        with contextlib.suppress(EngineClosed):
            self.engine.close()


def submit(
    engine: Engine,
    task_type: str = "job",
    *,
    priority: int = 100,
    delay_ms: int = 0,
    payload: bytes = b"payload",
) -> int:
    """Submit one task with a short timeout and return its id."""
    new = NewTask(
        task_type, payload, priority=priority, delay_ms=delay_ms, timeout_ms=TIMEOUT_MS
    )
    return engine.submit(new).task_id


def claim_one(engine: Engine, worker_id: str = "w1") -> ClaimedTask:
    """Claim exactly one task, failing the test if none or several come."""
    claimed = engine.claim(worker_id, 1)
    assert len(claimed) == 1
    return claimed[0]


def put_in_state(engine: Engine, state: str, task_type: str = "job") -> int:
    """Make a task of ``task_type`` and walk it to ``state``.

    It is claimed by type at priority 255, so callers create leased tasks before
    other pending tasks of the same type.
    """
    if state == "scheduled":
        return submit(engine, task_type, delay_ms=DELAY_MS)
    if state == "pending":
        return submit(engine, task_type)
    if state == "cancelled":
        task_id = submit(engine, task_type)
        assert engine.cancel(task_id) == "cancelled"
        return task_id

    task_id = submit(engine, task_type, priority=255)
    (claimed,) = engine.claim("w1", 1, [task_type])
    assert claimed.task_id == task_id
    if state == "completed":
        engine.ack(task_id, claimed.lease_id, b"done")
    elif state == "failed":
        retry_at = engine.now_ms() + RETRY_MS
        assert engine.fail(task_id, claimed.lease_id, "boom", retry_at) == "failed"
    elif state == "dead_letter":
        assert engine.fail(task_id, claimed.lease_id, "boom") == "dead_letter"
    else:
        assert state == "in_progress"
    return task_id


def snapshot(task: Task) -> dict[str, object]:
    """Every field of a task, history included, as plain comparable values."""
    fields = {
        name: getattr(task, name)
        for name in (
            "task_id",
            "task_type",
            "payload",
            "priority",
            "state",
            "run_at_ms",
            "timeout_ms",
            "max_retries",
            "attempts",
            "idempotency_key",
            "created_ms",
            "updated_ms",
            "finished_ms",
            "last_error",
            "result",
            "lease_id",
            "worker_id",
            "lease_deadline_ms",
            "cancel_requested",
        )
    }
    fields["history"] = [
        (a.attempt, a.worker_id, a.started_ms, a.ended_ms, a.outcome, a.error)
        for a in task.history
    ]
    return fields


def nonzero(counts: dict[str, int]) -> dict[str, int]:
    """Drop zero entries: the stub does not say whether empty states are listed."""
    return {key: value for key, value in counts.items() if value}


def list_all(engine: Engine, state: str, task_type: str | None = None) -> list[int]:
    """Page through a listing with a small page size and return every id."""
    ids: list[int] = []
    cursor: bytes | None = None
    for _ in range(1_000):
        page = engine.list_tasks(state, task_type, limit=3, cursor=cursor)
        ids.extend(task.task_id for task in page.tasks)
        cursor = page.next_cursor
        if cursor is None:
            return ids
    pytest.fail(f"listing {state} never reached its last page")
