"""A hypothesis state machine that runs the engine beside a small reference model.

The model keeps, per task, only what the engine's rules decide: state, attempts,
lease, due time, and the order in which pending tasks queue up. After every step
each task and every count must agree with it, also after a close and reopen.

Where the engine's contract leaves a choice open the model accepts either
outcome and then follows the engine: a lease exactly at its deadline may or may
not be listed as expired, tasks promoted by one promotion may come out in any
order among themselves, failing a task whose cancel was requested may end it as
``cancelled`` instead of retrying or dead-lettering it, and a cancel request may
or may not outlive the attempt it was made during.
"""

from __future__ import annotations

import shutil
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import pytest
from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from tq._core import Engine, ManualClock, NewTask
from tq.errors import InvalidState, StaleLease, TaskNotFound

T0 = 1_700_000_000_000
TYPES = ("mail", "sms")
# Tier edges, and one priority weighted so that ties within it are common.
PRIORITIES = (0, 99, 100, 150, 150, 150, 150, 199, 200, 255)
WAITING = ("scheduled", "pending", "failed")

# (task type, priority, delay_ms, timeout_ms) of one task to submit.
TaskSpec = tuple[str, int, int, int]
task_specs = st.tuples(
    st.sampled_from(TYPES),
    st.sampled_from(PRIORITIES),
    st.one_of(st.just(0), st.integers(1, 3_000)),
    st.integers(100, 3_000),
)
retry_delays = st.one_of(st.none(), st.integers(1, 3_000))


@dataclass
class ModelTask:
    """What the reference model knows about one task."""

    task_id: int
    task_type: str
    priority: int
    timeout_ms: int
    state: str
    run_at_ms: int
    queued: int = 0
    attempts: int = 0
    lease_id: int | None = None
    deadline_ms: int | None = None
    worker_id: str | None = None
    claimed_ms: int | None = None
    finished_ms: int | None = None
    cancel_requested: bool = False
    ever_cancel_requested: bool = False

    def rank(self) -> tuple[int, int]:
        """Claim order: higher priority first, then earlier to become pending."""
        return (-self.priority, self.queued)


def nonzero(counts: dict[str, int]) -> dict[str, int]:
    return {key: value for key, value in counts.items() if value}


def tier(priority: int) -> str:
    if priority < 100:
        return "low"
    return "normal" if priority < 200 else "high"


class EngineAgainstModel(RuleBasedStateMachine):
    """Drives one engine on a fresh directory and checks it after every step."""

    base: ClassVar[Path]

    def __init__(self) -> None:
        super().__init__()
        self.path = self.base / uuid.uuid4().hex
        self.clock = ManualClock(T0)
        self.engine = Engine(str(self.path), fsync=False, clock=self.clock)
        self.tasks: dict[int, ModelTask] = {}
        self.queue_counter = 0
        self.leases_seen: set[int] = set()
        self.stale: list[tuple[int, int]] = []

    def teardown(self) -> None:
        self.engine.close()
        shutil.rmtree(self.path, ignore_errors=True)

    # Model bookkeeping

    def now(self) -> int:
        return self.clock.now_ms()

    def ids_in(self, *states: str) -> list[int]:
        return sorted(i for i, t in self.tasks.items() if t.state in states)

    def live_leases(self) -> list[int]:
        """Leased tasks whose deadline is still ahead, so ack and fail must work."""
        return sorted(
            i
            for i, t in self.tasks.items()
            if t.state == "in_progress"
            and t.deadline_ms is not None
            and t.deadline_ms > self.now()
        )

    def enqueue(self, tasks: list[ModelTask]) -> None:
        """Make ``tasks`` pending together, behind every task already pending."""
        self.queue_counter += 1
        for task in tasks:
            task.state = "pending"
            task.queued = self.queue_counter

    def promote(self) -> int:
        due = [
            t
            for t in self.tasks.values()
            if t.state in ("scheduled", "failed") and t.run_at_ms <= self.now()
        ]
        if due:
            self.enqueue(due)
        return len(due)

    def add(self, task_id: int, spec: TaskSpec) -> None:
        task_type, priority, delay_ms, timeout_ms = spec
        assert task_id not in self.tasks, f"task id {task_id} was handed out twice"
        task = ModelTask(
            task_id, task_type, priority, timeout_ms, "scheduled", self.now() + delay_ms
        )
        self.tasks[task_id] = task
        if delay_ms == 0:
            self.enqueue([task])

    def end_lease(self, task: ModelTask, state: str) -> None:
        assert task.lease_id is not None
        self.stale.append((task.task_id, task.lease_id))
        task.state = state
        task.lease_id = task.deadline_ms = task.claimed_ms = None
        task.worker_id = None
        task.cancel_requested = False
        if state in ("completed", "dead_letter", "cancelled"):
            task.finished_ms = self.now()

    def check_deleted(
        self, deleted: int, limit: int, must: set[int], may: set[int]
    ) -> None:
        """Check a bulk delete against the tasks it had to and was allowed to take.

        Tasks at exactly a cutoff, and which of several candidates a limit leaves,
        are the engine's choice: the model reads them back and follows.
        """
        gone = set()
        for task_id in may:
            try:
                self.engine.get(task_id)
            except TaskNotFound:
                gone.add(task_id)
        assert len(gone) == deleted, f"reported {deleted} deleted, {gone} went"
        event("bulk delete took some" if gone else "bulk delete took none")
        assert min(limit, len(must)) <= deleted <= min(limit, len(may))
        if deleted < limit:
            assert must <= gone, f"kept {must - gone}"
        for task_id in gone:
            del self.tasks[task_id]
        self.stale = [(t, lease) for t, lease in self.stale if t not in gone]

    def finished_before(
        self, states: tuple[str, ...], cutoff: int, task_type: str | None = None
    ) -> tuple[set[int], set[int]]:
        """Tasks finished before ``cutoff`` (must) and also at it (may)."""
        candidates = [
            t
            for t in self.tasks.values()
            if t.state in states
            and t.finished_ms is not None
            and (task_type is None or t.task_type == task_type)
        ]
        must = {
            t.task_id
            for t in candidates
            if t.finished_ms is not None and t.finished_ms < cutoff
        }
        may = must | {t.task_id for t in candidates if t.finished_ms == cutoff}
        return must, may

    def fail(self, task: ModelTask, retry_in_ms: int | None) -> None:
        assert task.lease_id is not None
        retry_at = None if retry_in_ms is None else self.now() + retry_in_ms
        expected = "dead_letter" if retry_at is None else "failed"
        allowed = {expected, "cancelled"} if task.ever_cancel_requested else {expected}

        state = self.engine.fail(task.task_id, task.lease_id, "boom", retry_at)

        assert state in allowed, f"fail of task {task.task_id} gave {state}"
        self.end_lease(task, state)
        if state == "failed" and retry_at is not None:
            task.run_at_ms = retry_at

    @staticmethod
    def spec_task(spec: TaskSpec) -> NewTask:
        task_type, priority, delay_ms, timeout_ms = spec
        return NewTask(
            task_type, b"p", priority=priority, delay_ms=delay_ms, timeout_ms=timeout_ms
        )

    # Rules

    @rule(spec=task_specs)
    def submit(self, spec: TaskSpec) -> None:
        submitted = self.engine.submit(self.spec_task(spec))
        assert submitted.created
        self.add(submitted.task_id, spec)

    @rule(specs=st.lists(task_specs, min_size=1, max_size=6))
    def submit_many(self, specs: list[TaskSpec]) -> None:
        results = self.engine.submit_many([self.spec_task(s) for s in specs])
        assert len(results) == len(specs)
        for submitted, spec in zip(results, specs, strict=True):
            self.add(submitted.task_id, spec)

    @rule(
        max_tasks=st.integers(1, 4),
        task_types=st.sampled_from([None, ("mail",), ("sms",), TYPES]),
        grace_ms=st.sampled_from([0, 250]),
        worker_id=st.sampled_from(["w1", "w2"]),
    )
    def claim(
        self,
        max_tasks: int,
        task_types: tuple[str, ...] | None,
        grace_ms: int,
        worker_id: str,
    ) -> None:
        claimed = self.engine.claim(worker_id, max_tasks, task_types, grace_ms)

        self.promote()
        ready = {
            i: self.tasks[i]
            for i in self.ids_in("pending")
            if task_types is None or self.tasks[i].task_type in task_types
        }
        assert len(claimed) == min(max_tasks, len(ready))
        for got in claimed:
            assert got.task_id in ready, f"claimed task {got.task_id} was not ready"
            best = min(t.rank() for t in ready.values())
            task = ready.pop(got.task_id)
            assert task.rank() == best, f"claimed {got.task_id} ahead of its turn"
            if any(t.priority == task.priority for t in ready.values()):
                event("claim chose within a priority")
            assert got.lease_id not in self.leases_seen, "a lease id was reused"
            self.leases_seen.add(got.lease_id)
            task.state = "in_progress"
            task.attempts += 1
            task.lease_id = got.lease_id
            task.worker_id = worker_id
            task.claimed_ms = self.now()
            task.deadline_ms = self.now() + task.timeout_ms + grace_ms
            assert (got.attempt, got.deadline_ms, got.priority) == (
                task.attempts,
                task.deadline_ms,
                task.priority,
            )

    @precondition(lambda self: bool(self.live_leases()))
    @rule(data=st.data())
    def ack(self, data: st.DataObject) -> None:
        task = self.tasks[data.draw(st.sampled_from(self.live_leases()))]
        assert task.lease_id is not None
        self.engine.ack(task.task_id, task.lease_id, b"ok")
        self.end_lease(task, "completed")

    @precondition(lambda self: bool(self.live_leases()))
    @rule(data=st.data(), retry_in_ms=retry_delays)
    def fail_task(self, data: st.DataObject, retry_in_ms: int | None) -> None:
        task = self.tasks[data.draw(st.sampled_from(self.live_leases()))]
        self.fail(task, retry_in_ms)

    @precondition(lambda self: bool(self.live_leases()))
    @rule(data=st.data(), by_ms=st.integers(1, 3_000))
    def extend(self, data: st.DataObject, by_ms: int) -> None:
        task = self.tasks[data.draw(st.sampled_from(self.live_leases()))]
        assert task.lease_id is not None
        deadline = self.now() + by_ms
        cancel = self.engine.extend(task.task_id, task.lease_id, deadline)
        if task.cancel_requested:
            assert cancel is True
        if not task.ever_cancel_requested:
            assert cancel is False
        task.deadline_ms = deadline

    @rule(delta_ms=st.integers(0, 2_500))
    def advance_clock(self, delta_ms: int) -> None:
        self.clock.advance(delta_ms)

    @rule()
    def promote_due(self) -> None:
        assert self.engine.promote_due() == self.promote()

    @rule(data=st.data())
    def fail_expired_leases(self, data: st.DataObject) -> None:
        leases = self.engine.expired_leases()

        now = self.now()
        leased = {i: self.tasks[i] for i in self.ids_in("in_progress")}
        must = {
            i
            for i, t in leased.items()
            if t.deadline_ms is not None and t.deadline_ms < now
        }
        may = must | {i for i, t in leased.items() if t.deadline_ms == now}
        listed = [lease.task_id for lease in leases]
        assert len(listed) == len(set(listed))
        assert must <= set(listed) <= may
        deadlines = [lease.deadline_ms for lease in leases]
        assert deadlines == sorted(deadlines), "expired leases not earliest first"
        for lease in leases:
            task = leased[lease.task_id]
            assert (lease.lease_id, lease.deadline_ms, lease.attempt) == (
                task.lease_id,
                task.deadline_ms,
                task.attempts,
            )
            assert (lease.worker_id, lease.claimed_ms) == (
                task.worker_id,
                task.claimed_ms,
            )
            self.fail(task, data.draw(retry_delays))
            event("failed an expired lease")

    @precondition(lambda self: bool(self.ids_in(*WAITING, "in_progress")))
    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        task = self.tasks[
            data.draw(st.sampled_from(self.ids_in(*WAITING, "in_progress")))
        ]
        state = self.engine.cancel(task.task_id)
        if task.state == "in_progress":
            assert state == "in_progress"
            task.cancel_requested = task.ever_cancel_requested = True
        else:
            assert state == "cancelled"
            task.state = "cancelled"
            task.finished_ms = self.now()

    @precondition(lambda self: bool(self.ids_in("completed", "dead_letter")))
    @rule(data=st.data())
    def cancel_finished(self, data: st.DataObject) -> None:
        task_id = data.draw(st.sampled_from(self.ids_in("completed", "dead_letter")))
        with pytest.raises(InvalidState):
            self.engine.cancel(task_id)

    @precondition(lambda self: bool(self.ids_in("dead_letter")))
    @rule(data=st.data())
    def requeue(self, data: st.DataObject) -> None:
        task = self.tasks[data.draw(st.sampled_from(self.ids_in("dead_letter")))]
        self.engine.requeue(task.task_id)
        task.attempts = 0
        self.enqueue([task])

    @precondition(lambda self: bool(self.ids_in("dead_letter")))
    @rule(
        task_type=st.sampled_from([None, *TYPES]),
        limit=st.integers(1, 4),
    )
    def requeue_dead_letters(self, task_type: str | None, limit: int) -> None:
        candidates = [
            i
            for i in self.ids_in("dead_letter")
            if task_type is None or self.tasks[i].task_type == task_type
        ]

        requeued = self.engine.requeue_dead_letters(task_type, limit)

        assert requeued == min(limit, len(candidates))
        event(f"requeued {min(requeued, 2)}+ dead letters")
        moved = [i for i in candidates if self.engine.get(i).state == "pending"]
        assert len(moved) == requeued
        for task_id in moved:
            self.tasks[task_id].attempts = 0
        self.enqueue([self.tasks[i] for i in moved])

    @rule(
        age_ms=st.integers(-500, 1_500),
        task_type=st.sampled_from([None, *TYPES]),
        limit=st.integers(1, 4),
        cutoff=st.booleans(),
    )
    def purge_dead_letters(
        self, age_ms: int, task_type: str | None, limit: int, *, cutoff: bool
    ) -> None:
        before = self.now() - age_ms if cutoff else None
        if before is None:
            must = may = set(self.ids_in("dead_letter"))
            if task_type is not None:
                must = may = {i for i in may if self.tasks[i].task_type == task_type}
        else:
            must, may = self.finished_before(("dead_letter",), before, task_type)

        deleted = self.engine.purge_dead_letters(before, task_type, limit)

        self.check_deleted(deleted, limit, must, may)

    @rule(
        completed_age_ms=st.integers(-500, 1_500),
        dead_age_ms=st.integers(-500, 1_500),
        limit=st.sampled_from([3, 1_000]),
    )
    def sweep(self, completed_age_ms: int, dead_age_ms: int, limit: int) -> None:
        completed_before = self.now() - completed_age_ms
        dead_before = self.now() - dead_age_ms
        must, may = self.finished_before(("completed", "cancelled"), completed_before)
        dead_must, dead_may = self.finished_before(("dead_letter",), dead_before)

        deleted = self.engine.sweep(completed_before, dead_before, limit)

        self.check_deleted(deleted, limit, must | dead_must, may | dead_may)

    @precondition(lambda self: bool(self.stale))
    @rule(data=st.data(), op=st.sampled_from(["ack", "fail", "extend"]))
    def use_a_stale_lease(self, data: st.DataObject, op: str) -> None:
        task_id, lease_id = data.draw(st.sampled_from(self.stale))
        calls: dict[str, Callable[[], object]] = {
            "ack": lambda: self.engine.ack(task_id, lease_id, b"late"),
            "fail": lambda: self.engine.fail(task_id, lease_id, "late", self.now() + 1),
            "extend": lambda: self.engine.extend(task_id, lease_id, self.now() + 1),
        }
        with pytest.raises(StaleLease):
            calls[op]()

    @rule()
    def close_and_reopen(self) -> None:
        if self.ids_in("in_progress"):
            event("reopen with leases held")
        self.engine.close()
        self.engine = Engine(str(self.path), fsync=False, clock=self.clock)

    # Invariants

    @invariant()
    def every_task_matches_the_model(self) -> None:
        for task in self.tasks.values():
            got = self.engine.get(task.task_id)
            assert (got.state, got.attempts, got.priority, got.task_type) == (
                task.state,
                task.attempts,
                task.priority,
                task.task_type,
            ), f"task {task.task_id}"
            if task.state == "in_progress":
                assert (got.lease_id, got.lease_deadline_ms) == (
                    task.lease_id,
                    task.deadline_ms,
                ), f"lease of task {task.task_id}"
                assert got.cancel_requested or not task.cancel_requested
            if task.state in ("scheduled", "failed"):
                assert got.run_at_ms == task.run_at_ms, f"run_at of {task.task_id}"
            if not task.ever_cancel_requested:
                assert not got.cancel_requested, f"task {task.task_id}"

    @invariant()
    def counts_match_the_model(self) -> None:
        counts = self.engine.counts()
        tasks = list(self.tasks.values())
        assert nonzero(counts.by_state) == dict(Counter(t.state for t in tasks))
        by_type: dict[str, Counter[str]] = {}
        for t in tasks:
            by_type.setdefault(t.task_type, Counter())[t.state] += 1
        assert {k: nonzero(v) for k, v in counts.by_type.items()} == {
            k: dict(v) for k, v in by_type.items()
        }
        tiers = Counter(tier(t.priority) for t in tasks if t.state == "pending")
        assert nonzero(counts.pending_by_tier) == dict(tiers)
        waiting = sum(1 for t in tasks if t.state in WAITING)
        assert self.engine.queue_depth() == waiting

    @invariant()
    def next_due_and_worker_leases_match_the_model(self) -> None:
        parked = ("scheduled", "failed")
        due = [t.run_at_ms for t in self.tasks.values() if t.state in parked]
        due += [t.deadline_ms for t in self.tasks.values() if t.deadline_ms is not None]
        assert self.engine.next_due_ms() == min(due, default=None)
        for worker_id in ("w1", "w2"):
            leases = {
                t.lease_id for t in self.tasks.values() if t.worker_id == worker_id
            }
            got = {lease.lease_id for lease in self.engine.worker_leases(worker_id)}
            assert got == leases, f"leases of {worker_id}"


def test_engine_agrees_with_the_reference_model_after_every_step(
    tmp_path: Path,
) -> None:
    class EngineInTmpPath(EngineAgainstModel):
        base = tmp_path

    run_state_machine_as_test(
        EngineInTmpPath,
        settings=settings(max_examples=60, stateful_step_count=50, deadline=None),
    )
