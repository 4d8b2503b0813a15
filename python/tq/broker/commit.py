"""Group commit: many operations, one write, one fsync.

Operations from every connection queue up while a commit is in flight and all
go into the next one, so with fsync on the broker pays one disk flush per batch
rather than per request. The engine call runs in a worker thread, never on the
event loop.

Claims that found nothing park here. Whenever a batch may have made tasks
pending (a submit, a requeue, a promotion of due tasks), the parked claims ride
along at the end of that same batch, so a waiting worker gets a new task in the
very write that stored it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import trio

from tq import _core
from tq.errors import TqError

__all__ = ["CommitLoop", "CommitStats", "ParkedClaim"]

log = logging.getLogger("tq.broker.commit")

_WAKING_OPS = (_core.Submit, _core.Requeue, _core.PromoteDue)


Committed = Callable[[list[object]], None]
"""Called with the outcomes of an entry's ops once their commit is over."""


class _Entry:
    """The operations of one caller, and whom to tell once they are committed.

    An entry always goes into one commit whole, so the ops of one caller
    (the tasks of one ``submit_many``, say) are stored together or not at all.
    """

    __slots__ = ("on_committed", "ops")

    def __init__(self, ops: Sequence[_core.Op], on_committed: Committed) -> None:
        self.ops = ops
        self.on_committed = on_committed


@dataclass(eq=False)
class ParkedClaim:
    """A claim waiting for tasks to become pending.

    Attributes:
        claim: The claim op to retry in batches that may have new work.
        tasks: What it got once filled.
        in_flight: Whether a commit carrying it is running right now.
        filled: Set once it got tasks.
        settled: Set when the commit carrying it last finished.
        abandoned: Its caller left while a commit carrying it was in flight;
            whatever that commit leases must be given back.
    """

    claim: _core.Claim
    tasks: list[_core.ClaimedTask] = field(default_factory=list)
    in_flight: bool = False
    filled: trio.Event = field(default_factory=trio.Event)
    settled: trio.Event = field(default_factory=trio.Event)
    abandoned: bool = False


@dataclass
class CommitStats:
    """Counters of the commit loop, for metrics and benchmarks."""

    commits: int = 0
    ops: int = 0
    failed_commits: int = 0


@dataclass(frozen=True)
class _BatchResult:
    outcomes: list[object]
    next_due_ms: int | None
    queue_depth: int


def _tell(entry: _Entry, outcomes: list[object]) -> None:
    """Hand an entry its outcomes; a fault in the callee spares the loop."""
    try:
        entry.on_committed(outcomes)
    except Exception:
        log.exception("handling the outcome of %d committed ops failed", len(outcomes))


class CommitLoop:
    """Serialises all writes to the engine into group commits.

    Run `run` in a nursery; call `execute` and `execute_many` from any task.
    """

    def __init__(
        self,
        engine: _core.Engine,
        *,
        on_commit: Callable[[int | None, int], None] | None = None,
        on_undelivered: Callable[[list[_core.ClaimedTask]], None] | None = None,
        max_batch: int = 4096,
    ) -> None:
        """Create a commit loop.

        Args:
            engine: The engine to commit to.
            on_commit: Called after each commit with the engine's next due time
                and its queue depth, read in the same thread call.
            on_undelivered: Called with tasks leased to an abandoned claim.
            max_batch: The most ops one commit takes; the rest wait for the next
                (a caller's ops are never split, so a larger call goes alone).
        """
        self._engine = engine
        self._on_commit = on_commit
        self._on_undelivered = on_undelivered
        self._max_batch = max_batch
        self._queue: list[_Entry] = []
        self._parked: list[ParkedClaim] = []
        self._wakeup = trio.Event()
        self.stats = CommitStats()
        # Batches started so far that may have made tasks pending. A claim
        # that found nothing parks only if none started since it was queued;
        # otherwise the tasks of such a batch may be waiting for it already.
        self.waking_batches = 0
        self._waking_in_flight = False
        # Pending plus delayed tasks after the last commit; None after a
        # failed one, whose rollback may have made tasks pending again.
        self._queue_depth: int | None = engine.queue_depth()

    async def execute(self, op: _core.Op) -> object:
        """Commit one op and return its result.

        Raises:
            TqError: The op's own error, or `StorageError` when the write failed.
        """
        (outcome,) = await self.execute_many([op])
        if isinstance(outcome, TqError):
            raise outcome
        return outcome

    async def execute_many(self, ops: Sequence[_core.Op]) -> list[object]:
        """Commit ops together and return each one's result or error instance.

        The ops go into one batch, in order. A storage failure of the write is
        returned as the outcome of every op.
        """
        if not ops:
            return []
        done = trio.Event()
        outcomes: list[object] = []

        def committed(results: list[object]) -> None:
            outcomes.extend(results)
            done.set()

        self.enqueue(ops, committed)
        await done.wait()
        return outcomes

    def enqueue(self, ops: Sequence[_core.Op], on_committed: Committed) -> None:
        """Queue ops for the next commit, without waiting for it.

        ``on_committed`` is called from the commit loop with one outcome per op,
        in order (a result, or the `TqError` it failed with), right after the
        write; it must not block. This spares a caller with nothing else to do
        meanwhile, such as a request that only needs answering, a task of its
        own to wait in.
        """
        self._queue.append(_Entry(ops, on_committed))
        self._wakeup.set()

    @property
    def nothing_pending(self) -> bool:
        """Whether no task can be pending now, known without asking the engine.

        True when the last commit left no pending or delayed task and no batch
        that may make some is being written. A claim may then park at once:
        any batch that brings work starts after it parked, and carries it.
        """
        return self._queue_depth == 0 and not self._waking_in_flight

    def park(self, claim: ParkedClaim) -> None:
        """Wait for work: retry ``claim`` in every batch that may bring some."""
        self._parked.append(claim)

    def unpark(self, claim: ParkedClaim) -> bool:
        """Stop retrying ``claim``. False if a commit carrying it is in flight."""
        if claim.in_flight:
            return False
        if claim in self._parked:
            self._parked.remove(claim)
        return True

    async def run(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Commit batches until cancelled; a commit in flight always finishes."""
        task_status.started()
        while True:
            await self._wakeup.wait()
            self._wakeup = trio.Event()
            while self._queue:
                await self._commit_next_batch()

    def _next_batch(self) -> list[_Entry]:
        """Whole entries from the head of the queue, up to about `max_batch` ops.

        The first entry always goes, however many ops it has; the others only
        while the batch stays within `max_batch`.
        """
        taken = 0
        size = 0
        for entry in self._queue:
            if taken and size + len(entry.ops) > self._max_batch:
                break
            taken += 1
            size += len(entry.ops)
        batch = self._queue[:taken]
        del self._queue[:taken]
        return batch

    async def _commit_next_batch(self) -> None:
        batch = self._next_batch()
        riders = self._riders(batch)
        ops = [op for entry in batch for op in entry.ops]
        ops += [parked.claim for parked in riders]
        for parked in riders:
            parked.in_flight = True
            parked.settled = trio.Event()
        try:
            # Not cancellable: once the write is submitted its outcome is
            # delivered, so a shutdown never leaves a commit half-reported.
            result = await trio.to_thread.run_sync(self._commit, ops)
        except TqError as exc:
            self.stats.failed_commits += 1
            log.error("commit of %d ops failed: %s", len(ops), exc)
            outcomes: list[object] = [exc] * len(ops)
            self._queue_depth = None
        else:
            outcomes = result.outcomes
            self._queue_depth = result.queue_depth
            if self._on_commit is not None:
                self._on_commit(result.next_due_ms, result.queue_depth)
        finally:
            self._waking_in_flight = False
        self.stats.commits += 1
        self.stats.ops += len(ops)
        start = 0
        for entry in batch:
            end = start + len(entry.ops)
            _tell(entry, outcomes[start:end])
            start = end
        self._settle_riders(riders, outcomes[start:])

    def _riders(self, batch: list[_Entry]) -> list[ParkedClaim]:
        """The parked claims worth retrying with this batch.

        Counts the batch in `waking_batches` when it may make tasks pending.
        """
        if not any(isinstance(op, _WAKING_OPS) for entry in batch for op in entry.ops):
            return []
        self.waking_batches += 1
        self._waking_in_flight = True
        return list(self._parked)

    def _settle_riders(self, riders: list[ParkedClaim], outcomes: list[object]) -> None:
        for parked, outcome in zip(riders, outcomes, strict=True):
            parked.in_flight = False
            got = outcome if isinstance(outcome, list) else []
            if isinstance(outcome, TqError):
                log.warning("parked claim failed and stays parked: %s", outcome)
            if got or parked.abandoned:
                self._parked.remove(parked)
            if got and parked.abandoned and self._on_undelivered is not None:
                self._on_undelivered(got)
            elif got:
                parked.tasks = got
                parked.filled.set()
            parked.settled.set()

    def _commit(self, ops: list[_core.Op]) -> _BatchResult:
        """Runs in a worker thread: the write, then the reads that follow it."""
        outcomes = self._engine.commit(ops)
        return _BatchResult(
            outcomes, self._engine.next_due_ms(), self._engine.queue_depth()
        )
