"""The broker's operations: one implementation behind every front end.

The TCP server (and the REST and gRPC front ends) decode a request, call one
method here and encode what it returns. Writes go through the group-commit
loop, whose writes and fsyncs run in a worker thread, and so do the reads
that scan (listings, sweeps) or take the engine's index lock, which a commit
holds while it writes. Reading one task calls the engine directly: it touches
neither that lock nor (mostly) the disk and takes a few microseconds, where
handing it to a thread and back costs a hundred or more.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import trio

from tq import _core
from tq.broker.commit import CommitLoop, ParkedClaim
from tq.broker.config import BrokerConfig
from tq.broker.events import EventHub
from tq.broker.meter import TaskMeter
from tq.broker.retry import RetryDecision, RetryPolicy
from tq.broker.workers import WorkerInfo, WorkerRegistry
from tq.errors import QueueFull, StorageError, Timeout, TqError

__all__ = ["FINISHED_STATES", "Broker", "Delivery", "TaskSpec"]

log = logging.getLogger("tq.broker")

FINISHED_STATES = frozenset({"completed", "dead_letter", "cancelled"})
"""States a task leaves only by deletion or requeue."""

LEASE_GRACE_S = 5.0
"""Added to a task's timeout for its lease, so a worker that enforces the
timeout itself has time to report before the broker gives the task away."""


ORPHAN_MARGIN_S = 2.0
"""A lease younger than this is not called orphaned by a heartbeat that lacks
it: the claim's answer may still be on its way to the worker."""


_STATUS_OF_KIND = {
    "task.completed": "completed",
    "task.failed": "failed",
    "task.retrying": "retried",
    "task.dead_lettered": "dead_lettered",
    "task.cancelled": "cancelled",
}
"""The status a task event counts under in the meter."""

_KIND_OF_STATE = {
    "completed": "task.completed",
    "dead_letter": "task.dead_lettered",
    "cancelled": "task.cancelled",
}
"""The event that tells a task reached a finished state."""

_ATTEMPT_ENDS = frozenset({"task.completed", "task.failed"})
"""Events that end an attempt, whose run time the meter records."""


def now_ms() -> int:
    """Wall time in milliseconds, as the engine's clock reads it."""
    return int(time.time() * 1000)


@dataclass(slots=True)
class TaskSpec:
    """A submit as a client states it; unset limits take the broker's defaults."""

    task_type: str
    payload: bytes
    priority: int = 100
    delay_s: float = 0.0
    timeout_s: float | None = None
    max_retries: int | None = None
    idempotency_key: str | None = None


@dataclass(slots=True)
class Delivery:
    """A task handed to a worker, remembered for logs, events and metrics."""

    task_type: str
    attempt: int
    max_retries: int
    worker_id: str
    lease_id: int
    submitted_ms: int
    started_ms: int


class Broker:
    """The broker's state and operations, shared by all front ends.

    Create it with an open engine, then run `run` in a nursery.
    """

    def __init__(
        self,
        engine: _core.Engine,
        config: BrokerConfig,
        *,
        policy: RetryPolicy | None = None,
    ) -> None:
        """Create the broker around an open engine."""
        self.engine = engine
        self.config = config
        self.policy = policy or RetryPolicy(
            config.backoff_base_s, config.backoff_max_s, config.backoff_jitter
        )
        self.commit = CommitLoop(
            engine, on_commit=self._on_commit, on_undelivered=self._undelivered
        )
        self.events = EventHub()
        self.workers = WorkerRegistry(
            worker_timeout_s=config.worker_timeout_s,
            on_lost=self._worker_lost,
            on_join=self._worker_joined,
        )
        self.totals: Counter[str] = Counter()
        self.meter = TaskMeter()
        self.started_ms = now_ms()
        self.storage_error: str | None = None
        self._queue_depth = engine.queue_depth()
        self._default_timeout_ms = round(config.task_timeout_s * 1000)
        self._next_due_ms = engine.next_due_ms()
        self._due_changed = trio.Event()
        self._finish_waiters: dict[int, trio.Event] = {}
        self._cancel_requested: set[int] = set()
        self._delivered: dict[int, Delivery] = {}
        self._nursery: trio.Nursery | None = None

    # Running

    async def run(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Run the commit loop, scheduler, worker monitor and retention sweep."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            await nursery.start(self.commit.run)
            await self._recover_leases()
            await nursery.start(self.workers.run_monitor)
            nursery.start_soon(self._run_scheduler)
            nursery.start_soon(self._run_retention)
            task_status.started()

    async def _recover_leases(self) -> None:
        """Give workers that held leases before a restart one timeout to return."""
        cursor: bytes | None = None
        while True:
            page = await trio.to_thread.run_sync(
                self.engine.list_tasks, "in_progress", None, 1000, cursor
            )
            for task in page.tasks:
                self._remember_recovered(task)
            cursor = page.next_cursor
            if cursor is None:
                return

    def _remember_recovered(self, task: _core.Task) -> None:
        if task.worker_id is None or task.lease_id is None:
            return
        self.workers.expect(task.worker_id)
        if task.cancel_requested:
            self._cancel_requested.add(task.task_id)
        started = task.history[-1].started_ms if task.history else task.updated_ms
        self._delivered[task.task_id] = Delivery(
            task.task_type,
            task.attempts,
            task.max_retries,
            task.worker_id,
            task.lease_id,
            task.created_ms,
            started,
        )

    def _on_commit(self, next_due_ms: int | None, queue_depth: int) -> None:
        self.storage_error = None
        self._queue_depth = queue_depth
        if next_due_ms != self._next_due_ms:
            self._next_due_ms = next_due_ms
            self._due_changed.set()

    async def _run_scheduler(self) -> None:
        """Promote due tasks and fail expired leases, sleeping until next due."""
        while True:
            due_ms = self._next_due_ms
            if due_ms is None:
                await self._due_changed.wait()
            else:
                with trio.move_on_after(max(due_ms - now_ms(), 0) / 1000):
                    await self._due_changed.wait()
            self._due_changed = trio.Event()
            if self._next_due_ms is not None and self._next_due_ms <= now_ms():
                await self._run_due_work()

    async def _run_due_work(self) -> None:
        try:
            await self.commit.execute(_core.PromoteDue())
            expired = await trio.to_thread.run_sync(self.engine.expired_leases, 1000)
            if expired:
                await self._fail_leases(
                    expired, "lease expired: no answer within the task timeout"
                )
        except StorageError as exc:
            self.storage_error = str(exc)
            log.error("scheduler could not write, retrying in 1s: %s", exc)
            await trio.sleep(1)

    async def _run_retention(self) -> None:
        """Delete completed tasks and dead letters older than their retention."""
        while True:
            await trio.sleep(self.config.retention_sweep_interval_s)
            try:
                deleted = await trio.to_thread.run_sync(self._sweep_all)
            except StorageError as exc:
                self.storage_error = str(exc)
                log.error("retention sweep failed, next try in one interval: %s", exc)
                continue
            if deleted:
                log.info("retention sweep deleted=%d", deleted)

    def _sweep_all(self) -> int:
        """Runs in a worker thread: sweep in chunks until nothing is left to sweep."""
        now = now_ms()
        completed_before = now - int(self.config.completed_retention_s * 1000)
        dead_before = now - int(self.config.dead_letter_retention_s * 1000)
        total = 0
        while (deleted := self.engine.sweep(completed_before, dead_before, 1000)) > 0:
            total += deleted
        return total

    # Submitting and reading

    def _check_room(self, count: int) -> None:
        if self._queue_depth + count > self.config.max_pending:
            raise QueueFull(
                f"queue depth {self._queue_depth} + {count} would pass the threshold "
                f"of {self.config.max_pending} waiting tasks; submit again later"
            )

    def new_task(self, spec: TaskSpec) -> _core.NewTask:
        """Turn a spec into an engine task, filling in the broker's defaults.

        Raises:
            BadRequest: A field is out of bounds.
        """
        timeout_ms = (
            self._default_timeout_ms
            if spec.timeout_s is None
            else round(spec.timeout_s * 1000)
        )
        max_retries = (
            self.config.max_retries if spec.max_retries is None else spec.max_retries
        )
        return _core.NewTask(
            spec.task_type,
            spec.payload,
            priority=spec.priority,
            delay_ms=round(spec.delay_s * 1000) if spec.delay_s else 0,
            timeout_ms=timeout_ms,
            max_retries=max_retries,
            idempotency_key=spec.idempotency_key,
        )

    async def submit(self, spec: TaskSpec) -> _core.Submitted:
        """Store one task.

        Raises:
            QueueFull: The queue is at its depth threshold.
            BadRequest: A field is out of bounds.
            StorageError: The write failed; the task was not stored.
        """
        return (await self.submit_many([spec]))[0]

    async def submit_many(self, specs: list[TaskSpec]) -> list[_core.Submitted]:
        """Store many tasks with one commit; all or none pass the depth check."""
        ops = self.submit_ops(specs)
        return self.submitted(specs, await self.commit.execute_many(ops))

    def submit_many_soon(
        self,
        specs: list[TaskSpec],
        reply: Callable[[list[_core.Submitted] | TqError], None],
    ) -> None:
        """`submit_many` without waiting: ``reply`` gets its outcome after the commit.

        Raises:
            QueueFull: As `submit_many`, before anything is queued.
            BadRequest: As `submit_many`, before anything is queued.
        """
        ops = self.submit_ops(specs)

        def committed(outcomes: list[object]) -> None:
            try:
                result = self.submitted(specs, outcomes)
            except TqError as exc:
                reply(exc)
            else:
                reply(result)

        self.commit.enqueue(ops, committed)

    def submit_ops(self, specs: list[TaskSpec]) -> list[_core.Op]:
        """The first half of `submit_many`: check room, and build the ops.

        Commit the ops as one entry, then pass their outcomes to `submitted`.

        Raises:
            QueueFull: The queue has no room for all of them.
            BadRequest: A field is out of bounds.
        """
        self._check_room(len(specs))
        ops: list[_core.Op] = [_core.Submit(self.new_task(spec)) for spec in specs]
        self._queue_depth += len(ops)
        return ops

    def submitted(
        self, specs: list[TaskSpec], outcomes: list[object]
    ) -> list[_core.Submitted]:
        """The second half of `submit_many`: account for the committed tasks.

        Raises:
            StorageError: The write failed; none of the tasks was stored.
        """
        results: list[_core.Submitted] = []
        created: list[tuple[int, TaskSpec]] = []
        for spec, outcome in zip(specs, outcomes, strict=True):
            if isinstance(outcome, TqError):
                self._note_storage(outcome)
                raise outcome
            assert isinstance(outcome, _core.Submitted)
            results.append(outcome)
            if outcome.created:
                created.append((outcome.task_id, spec))
        if created:
            self._submitted(created)
        return results

    def _submitted(self, created: list[tuple[int, TaskSpec]]) -> None:
        """Count, log and announce newly stored tasks, a batch at a time."""
        self.totals["submitted"] += len(created)
        for task_type, times in Counter(spec.task_type for _, spec in created).items():
            self.meter.count("submitted", task_type, times)
        if log.isEnabledFor(logging.DEBUG):
            for task_id, spec in created:
                log.debug("task submitted task_id=%d type=%s", task_id, spec.task_type)
        if self.events.has_subscribers:
            for task_id, spec in created:
                self.events.publish(
                    "task.submitted",
                    task_id=task_id,
                    task_type=spec.task_type,
                    priority=spec.priority,
                )

    def _note_storage(self, error: TqError) -> None:
        if isinstance(error, StorageError):
            self.storage_error = str(error)

    async def get(self, task_id: int) -> _core.Task:
        """One task. Raises `TaskNotFound`."""
        # A point read from RocksDB's memtable or cache: see the module docstring.
        return self.engine.get(task_id)

    async def list_tasks(
        self, state: str, task_type: str | None, limit: int, cursor: bytes | None
    ) -> _core.Page:
        """A page of tasks in one state, optionally of one type."""
        return await trio.to_thread.run_sync(
            lambda: self.engine.list_tasks(state, task_type, limit, cursor)
        )

    async def cancel(self, task_id: int) -> str:
        """Cancel a task; an in-progress one is flagged for its worker.

        Returns:
            ``cancelled``, or ``in_progress`` when the worker must stop it.
        """
        state = await self.commit.execute(_core.Cancel(task_id))
        assert isinstance(state, str)
        if state == "in_progress":
            self._cancel_requested.add(task_id)
            log.info("task cancel requested task_id=%d", task_id)
        else:
            # The engine answers with the state alone; the event (and the
            # metrics, and type filters on event streams) need the type.
            task = await self.get(task_id)
            self._finished(task_id, "cancelled", None, task_type=task.task_type)
        return state

    async def wait(self, task_id: int, timeout_s: float) -> _core.Task:
        """Wait until a task is completed, dead-lettered or cancelled.

        Raises:
            Timeout: It did not finish within ``timeout_s``.
            TaskNotFound: No such task.
        """
        task = self.engine.get(task_id)
        if task.state in FINISHED_STATES:
            return task
        # No checkpoint since the read, so the task cannot have finished
        # unseen: `_finished` runs on this thread too.
        finished = self._finish_waiters.setdefault(task_id, trio.Event())
        with trio.move_on_after(timeout_s):
            await finished.wait()
        task = self.engine.get(task_id)
        if task.state not in FINISHED_STATES:
            raise Timeout(f"task {task_id} is still {task.state} after {timeout_s:g}s")
        return task

    async def stats(self) -> dict[str, object]:
        """Counts by state, type and tier, with the broker's own figures."""
        counts = await trio.to_thread.run_sync(self.engine.counts)
        return {
            "by_state": counts.by_state,
            "by_type": counts.by_type,
            "pending_by_tier": counts.pending_by_tier,
            "queue_depth": self._queue_depth,
            "max_pending": self.config.max_pending,
            "workers": len(self.workers),
            "totals": dict(self.totals),
            "commits": self.commit.stats.commits,
            "committed_ops": self.commit.stats.ops,
            "uptime_s": (now_ms() - self.started_ms) / 1000,
            "storage_error": self.storage_error,
        }

    async def worker_leases(self, worker_id: str) -> list[_core.Lease]:
        """The leases a worker holds."""
        return await trio.to_thread.run_sync(self.engine.worker_leases, worker_id)

    # Dead letters

    async def dlq_requeue(self, task_id: int) -> None:
        """Move one dead letter back to pending with fresh retries."""
        await self.commit.execute(_core.Requeue(task_id))
        log.info("dead letter requeued task_id=%d", task_id)

    async def dlq_requeue_all(self, task_type: str | None, limit: int) -> int:
        """Requeue up to ``limit`` dead letters, of one type or all."""
        count = await trio.to_thread.run_sync(
            lambda: self.engine.requeue_dead_letters(task_type, limit)
        )
        await self.commit.execute(_core.PromoteDue())
        log.info("dead letters requeued count=%d type=%s", count, task_type or "*")
        return count

    async def dlq_purge(
        self, older_than_s: float | None, task_type: str | None, limit: int
    ) -> int:
        """Delete dead letters dead-lettered more than ``older_than_s`` ago."""
        before = None if older_than_s is None else now_ms() - round(older_than_s * 1000)
        count = await trio.to_thread.run_sync(
            lambda: self.engine.purge_dead_letters(before, task_type, limit)
        )
        log.info("dead letters purged count=%d type=%s", count, task_type or "*")
        return count

    # Workers

    async def claim(
        self,
        worker_id: str,
        max_tasks: int,
        task_types: list[str] | None,
        wait_s: float,
    ) -> list[_core.ClaimedTask]:
        """Lease up to ``max_tasks`` ready tasks, waiting up to ``wait_s`` for any."""
        self.workers.touch(worker_id)
        grace_ms = round(LEASE_GRACE_S * 1000)
        claim = _core.Claim(worker_id, max_tasks, task_types, grace_ms)
        deadline = trio.current_time() + wait_s
        while True:
            if self.commit.nothing_pending:
                # An idle worker asking again: no commit round for an empty
                # answer; any batch that brings work will carry the claim.
                left_s = deadline - trio.current_time()
                tasks = await self._wait_for_tasks(claim, left_s) if left_s > 0 else []
                break
            waking_before = self.commit.waking_batches
            committed = await self.commit.execute(claim)
            assert isinstance(committed, list)
            tasks = committed
            left_s = deadline - trio.current_time()
            if tasks or left_s <= 0:
                break
            if self.commit.waking_batches == waking_before:
                # Nothing can have become pending unseen: park, and ride along
                # with the next batch that may bring work.
                tasks = await self._wait_for_tasks(claim, left_s)
                break
            # A batch that may have brought work started after this claim was
            # queued, and parked claims it did not carry: claim again.
        self._started(worker_id, tasks)
        return tasks

    async def _wait_for_tasks(
        self, claim: _core.Claim, wait_s: float
    ) -> list[_core.ClaimedTask]:
        parked = ParkedClaim(claim)
        self.commit.park(parked)
        try:
            with trio.move_on_after(wait_s):
                await parked.filled.wait()
            if not parked.filled.is_set() and not self.commit.unpark(parked):
                # A commit carrying this claim is writing now: take its answer.
                await parked.settled.wait()
                self.commit.unpark(parked)
        finally:
            if not parked.filled.is_set() and not self.commit.unpark(parked):
                parked.abandoned = True
        return parked.tasks

    def _started(self, worker_id: str, tasks: list[_core.ClaimedTask]) -> None:
        """Remember tasks handed to a worker, for their outcome's logs and events."""
        started_ms = now_ms()
        debug = log.isEnabledFor(logging.DEBUG)
        for task in tasks:
            self._delivered[task.task_id] = Delivery(
                task.task_type,
                task.attempt,
                task.max_retries,
                worker_id,
                task.lease_id,
                task.submitted_ms,
                started_ms,
            )
            if debug:
                log.debug(
                    "task started task_id=%d type=%s attempt=%d worker_id=%s",
                    task.task_id,
                    task.task_type,
                    task.attempt,
                    worker_id,
                )
            if self.events.has_subscribers:
                self.events.publish(
                    "task.started",
                    task_id=task.task_id,
                    task_type=task.task_type,
                    attempt=task.attempt,
                    worker_id=worker_id,
                )

    def _undelivered(self, tasks: list[_core.ClaimedTask]) -> None:
        """Tasks leased to a claim whose caller left: give them back at once."""
        if self._nursery is None:
            return
        leases = [
            (task.task_id, task.lease_id, task.attempt, task.max_retries)
            for task in tasks
        ]
        self._nursery.start_soon(self._return_undelivered, leases)

    async def _return_undelivered(
        self, leases: list[tuple[int, int, int, int]]
    ) -> None:
        # Returning them is a failed attempt in the engine's eyes; it costs one
        # retry of the task's budget, which beats waiting out the lease.
        ops = [
            _core.Fail(
                task_id, lease_id, "claim answer could not be delivered", now_ms()
            )
            for task_id, lease_id, _, _ in leases
        ]
        await self.commit.execute_many(ops)

    async def ack(self, task_id: int, lease_id: int, result: bytes) -> None:
        """Complete a task.

        Raises:
            StaleLease: The lease is no longer current; nothing changed.
        """
        await self.commit.execute(_core.Ack(task_id, lease_id, result))
        self._acked(task_id, now_ms())

    async def ack_many(
        self, acks: list[tuple[int, int, bytes]]
    ) -> list[TqError | None]:
        """Complete many tasks with one commit.

        Args:
            acks: ``(task_id, lease_id, result)`` of each task.

        Returns:
            One entry per ack, in order: None when the task was completed, or
            the error that ack met (`StaleLease`, `TaskNotFound`,
            `StorageError`); an error of one changes nothing of the others.
        """
        return self.acked(acks, await self.commit.execute_many(self.ack_ops(acks)))

    def ack_many_soon(
        self,
        acks: list[tuple[int, int, bytes]],
        reply: Callable[[list[TqError | None]], None],
    ) -> None:
        """`ack_many` without waiting: ``reply`` gets its outcome after the commit."""
        self.commit.enqueue(
            self.ack_ops(acks), lambda outcomes: reply(self.acked(acks, outcomes))
        )

    @staticmethod
    def ack_ops(acks: list[tuple[int, int, bytes]]) -> list[_core.Op]:
        """The first half of `ack_many`: the ops to commit as one entry."""
        return [
            _core.Ack(task_id, lease_id, result) for task_id, lease_id, result in acks
        ]

    def acked(
        self, acks: list[tuple[int, int, bytes]], outcomes: list[object]
    ) -> list[TqError | None]:
        """The second half of `ack_many`: account for the committed acks."""
        now = now_ms()
        errors: list[TqError | None] = []
        for (task_id, _, _), outcome in zip(acks, outcomes, strict=True):
            if isinstance(outcome, TqError):
                self._note_storage(outcome)
                errors.append(outcome)
            else:
                self._acked(task_id, now)
                errors.append(None)
        return errors

    def _acked(self, task_id: int, now: int) -> None:
        delivery = self._delivered.pop(task_id, None)
        self.totals["completed"] += 1
        self._finished(task_id, "completed", delivery, now=now)

    async def fail(
        self,
        task_id: int,
        lease_id: int,
        error: str,
        *,
        retry_delay_s: float | None = None,
        reject: bool = False,
    ) -> str:
        """End an attempt with an error; the retry policy decides what follows.

        Returns:
            The task's new state: ``failed`` (to be retried), ``dead_letter``
            or ``cancelled``.

        Raises:
            StaleLease: The lease is no longer current; nothing changed.
        """
        attempt, max_retries = await self._attempt_of(task_id, lease_id)
        decision = self.policy.decide(
            attempt=attempt,
            max_retries=max_retries,
            now_ms=now_ms(),
            retry_delay_s=retry_delay_s,
            reject=reject,
        )
        state = await self.commit.execute(
            _core.Fail(task_id, lease_id, error, decision.retry_at_ms)
        )
        assert isinstance(state, str)
        self._after_fail(task_id, state, decision, error)
        return state

    async def _attempt_of(self, task_id: int, lease_id: int) -> tuple[int, int]:
        delivery = self._delivered.get(task_id)
        if delivery is not None and delivery.lease_id == lease_id:
            return delivery.attempt, delivery.max_retries
        task = await self.get(task_id)
        return task.attempts, task.max_retries

    def _after_fail(
        self, task_id: int, state: str, decision: RetryDecision, error: str
    ) -> None:
        delivery = self._delivered.pop(task_id, None)
        task_type = delivery.task_type if delivery else "?"
        attempt = delivery.attempt if delivery else 0
        worker_id = delivery.worker_id if delivery else "?"
        if state == "cancelled":
            # Its cancel was requested and the attempt ended: the outcome is
            # the cancel, not a failure, in the counts as in the events.
            self._finished(task_id, state, delivery)
            return
        self.totals["failed"] += 1
        self._publish_task("task.failed", task_id, delivery, error=error[:1000])
        if state == "failed" and decision.retry_at_ms is not None:
            self.totals["retried"] += 1
            log.info(
                "task failed, retrying task_id=%d type=%s attempt=%d worker_id=%s "
                "retry_in_s=%.3f error=%r",
                task_id,
                task_type,
                attempt,
                worker_id,
                (decision.retry_at_ms - now_ms()) / 1000,
                error[:200],
            )
            retry_in_s = (decision.retry_at_ms - now_ms()) / 1000
            self._publish_task(
                "task.retrying", task_id, delivery, retry_in_s=retry_in_s
            )
            return
        if state == "dead_letter":
            self.totals["dead_lettered"] += 1
            log.info(
                "task dead-lettered task_id=%d type=%s attempt=%d worker_id=%s "
                "reason=%r error=%r",
                task_id,
                task_type,
                attempt,
                worker_id,
                decision.reason,
                error[:200],
            )
        self._finished(task_id, state, delivery)

    async def _fail_leases(self, leases: list[_core.Lease], error: str) -> None:
        """Fail leases the broker gave up on, through the retry policy."""
        now = now_ms()
        decisions = [
            self.policy.decide(
                attempt=lease.attempt, max_retries=lease.max_retries, now_ms=now
            )
            for lease in leases
        ]
        ops = [
            _core.Fail(lease.task_id, lease.lease_id, error, decision.retry_at_ms)
            for lease, decision in zip(leases, decisions, strict=True)
        ]
        outcomes = await self.commit.execute_many(ops)
        for lease, decision, outcome in zip(leases, decisions, outcomes, strict=True):
            if isinstance(outcome, str):
                self._after_fail(lease.task_id, outcome, decision, error)

    async def heartbeat(self, worker_id: str, task_ids: list[int]) -> list[int]:
        """Record a worker's sign of life and reconcile its leases.

        A lease the worker holds in the store but does not report running is
        orphaned: its claim was committed but the answer never reached the
        worker (the broker crashed, the connection broke). It is failed back
        at once rather than after its whole timeout. Leases younger than
        `ORPHAN_MARGIN_S` are spared: their answer may still be on its way.

        Returns:
            The ids among ``task_ids`` whose cancel has been requested.
        """
        self.workers.touch(worker_id)
        running = set(task_ids)
        cutoff_ms = now_ms() - round(ORPHAN_MARGIN_S * 1000)
        orphans = [
            lease
            for lease in await self.worker_leases(worker_id)
            if lease.task_id not in running and lease.claimed_ms < cutoff_ms
        ]
        if orphans:
            log.warning(
                "orphaned leases worker_id=%s tasks=%s: the worker never got them; "
                "failing them so they are retried",
                worker_id,
                [lease.task_id for lease in orphans],
            )
            await self._fail_leases(
                orphans, f"worker {worker_id} never received the task"
            )
        return [task_id for task_id in task_ids if task_id in self._cancel_requested]

    def _worker_joined(self, info: WorkerInfo) -> None:
        if self.events.has_subscribers:
            self.events.publish(
                "worker.joined", worker_id=info.worker_id, host=info.hostname
            )

    async def _worker_lost(self, info: WorkerInfo, silence_s: float) -> None:
        if self.events.has_subscribers:
            self.events.publish("worker.lost", worker_id=info.worker_id)
        leases = await self.worker_leases(info.worker_id)
        if leases:
            error = (
                f"worker {info.worker_id} lost: no sign of life for {silence_s:.0f}s"
            )
            await self._fail_leases(leases, error)

    # Finishing

    def _finished(
        self,
        task_id: int,
        state: str,
        delivery: Delivery | None,
        *,
        now: int | None = None,
        **extra: object,
    ) -> None:
        self._cancel_requested.discard(task_id)
        waiter = self._finish_waiters.pop(task_id, None)
        if waiter is not None:
            waiter.set()
        if (
            state == "completed"
            and delivery is not None
            and log.isEnabledFor(logging.DEBUG)
        ):
            log.debug(
                "task completed task_id=%d type=%s attempt=%d worker_id=%s",
                task_id,
                delivery.task_type,
                delivery.attempt,
                delivery.worker_id,
            )
        self._publish_task(_KIND_OF_STATE[state], task_id, delivery, now=now, **extra)

    def _publish_task(
        self,
        kind: str,
        task_id: int,
        delivery: Delivery | None,
        *,
        now: int | None = None,
        **extra: object,
    ) -> None:
        """Count a task's outcome in the meter, then tell event subscribers."""
        if now is None:
            now = now_ms()
        self._meter_outcome(kind, delivery, extra.get("task_type"), now)
        if not self.events.has_subscribers:
            return
        fields: dict[str, object] = {"task_id": task_id, **extra}
        if delivery is not None:
            fields.update(
                task_type=delivery.task_type,
                attempt=delivery.attempt,
                worker_id=delivery.worker_id,
                run_s=(now - delivery.started_ms) / 1000,
                since_submit_s=(now - delivery.submitted_ms) / 1000,
            )
        self.events.publish(kind, **fields)

    def _meter_outcome(
        self, kind: str, delivery: Delivery | None, task_type: object, now: int
    ) -> None:
        if delivery is not None:
            task_type = delivery.task_type
        self.meter.count(
            _STATUS_OF_KIND[kind], task_type if isinstance(task_type, str) else None
        )
        if delivery is None or kind not in _ATTEMPT_ENDS:
            return
        self.meter.attempt_ended((now - delivery.started_ms) / 1000)
        if kind == "task.completed":
            self.meter.acked((now - delivery.submitted_ms) / 1000)
