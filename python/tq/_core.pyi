"""The tq engine: a durable priority queue, delayed schedule and leases on RocksDB.

All times are milliseconds since the Unix epoch (``*_ms``) and all durations carry
their unit in their name. Task ids and lease ids are positive integers. Every call
is thread-safe and releases the GIL while it touches storage, so the broker runs
them from worker threads.

Errors are raised as the classes of `tq.errors`: `BadRequest`, `TaskNotFound`,
`StaleLease`, `InvalidState`, `StorageError`, `StoreLocked`, `EngineClosed`.
"""

from collections.abc import Sequence
from typing import Self, final

__all__ = [
    "STATES",
    "Ack",
    "Attempt",
    "Cancel",
    "Claim",
    "ClaimedTask",
    "Counts",
    "Engine",
    "Extend",
    "Fail",
    "Lease",
    "ManualClock",
    "NewTask",
    "Page",
    "PromoteDue",
    "Requeue",
    "Submit",
    "Submitted",
    "Task",
    "__version__",
]

__version__: str

STATES: tuple[str, ...]
"""Every task state, in lifecycle order."""

@final
class ManualClock:
    """A clock that moves only when told to, for tests."""

    def __new__(cls, now_ms: int = 0) -> Self: ...
    def now_ms(self) -> int:
        """The clock's current time."""

    def set(self, now_ms: int) -> None:
        """Move the clock to ``now_ms`` (it may go backwards)."""

    def advance(self, delta_ms: int) -> None:
        """Move the clock forward by ``delta_ms``."""

@final
class NewTask:
    """A task to submit."""

    task_type: str
    payload: bytes
    priority: int
    delay_ms: int
    timeout_ms: int
    max_retries: int
    idempotency_key: str | None

    def __new__(
        cls,
        task_type: str,
        payload: bytes,
        *,
        priority: int = 100,
        delay_ms: int = 0,
        timeout_ms: int = 300000,
        max_retries: int = 3,
        idempotency_key: str | None = None,
    ) -> Self: ...

@final
class Submit:
    """Operation: store a new task. Result: `Submitted`."""

    def __new__(cls, task: NewTask) -> Self: ...

@final
class Claim:
    """Operation: lease up to ``max_tasks`` ready tasks. Result: list of `ClaimedTask`.

    Each lease lasts the task's own timeout plus ``lease_grace_ms``.
    """

    def __new__(
        cls,
        worker_id: str,
        max_tasks: int,
        task_types: Sequence[str] | None = None,
        lease_grace_ms: int = 0,
    ) -> Self: ...

@final
class Ack:
    """Operation: complete a leased task with its result. Result: ``None``."""

    def __new__(cls, task_id: int, lease_id: int, result: bytes = b"") -> Self: ...

@final
class Fail:
    """Operation: end a leased attempt with an error.

    With ``retry_at_ms`` the task waits in state ``failed`` until then; without it
    the task is dead-lettered. Result: the new state.
    """

    def __new__(
        cls, task_id: int, lease_id: int, error: str, retry_at_ms: int | None = None
    ) -> Self: ...

@final
class Extend:
    """Operation: move a lease's deadline. Result: whether cancel was requested."""

    def __new__(cls, task_id: int, lease_id: int, deadline_ms: int) -> Self: ...

@final
class Cancel:
    """Operation: cancel a task. Result: the new state.

    A scheduled, failed or pending task becomes ``cancelled``; an in-progress task
    stays ``in_progress`` with ``cancel_requested`` set, for its worker to see.
    """

    def __new__(cls, task_id: int) -> Self: ...

@final
class Requeue:
    """Operation: move a dead-lettered task back to pending with fresh retries.

    Result: ``None``.
    """

    def __new__(cls, task_id: int) -> Self: ...

@final
class PromoteDue:
    """Operation: make scheduled and failed tasks whose time has come pending.

    Result: how many became pending.
    """

    def __new__(cls, limit: int = 10000) -> Self: ...

@final
class Submitted:
    """The outcome of a submit."""

    @property
    def task_id(self) -> int: ...
    @property
    def created(self) -> bool:
        """False when the idempotency key was already held by ``task_id``."""

@final
class ClaimedTask:
    """A task handed to a worker under a new lease."""

    @property
    def task_id(self) -> int: ...
    @property
    def task_type(self) -> str: ...
    @property
    def payload(self) -> bytes: ...
    @property
    def priority(self) -> int: ...
    @property
    def lease_id(self) -> int: ...
    @property
    def deadline_ms(self) -> int: ...
    @property
    def attempt(self) -> int:
        """1 for the first attempt."""

    @property
    def max_retries(self) -> int: ...
    @property
    def timeout_ms(self) -> int: ...
    @property
    def submitted_ms(self) -> int: ...

@final
class Lease:
    """A lease currently held, as reported by `Engine.expired_leases`."""

    @property
    def task_id(self) -> int: ...
    @property
    def lease_id(self) -> int: ...
    @property
    def worker_id(self) -> str: ...
    @property
    def deadline_ms(self) -> int: ...
    @property
    def claimed_ms(self) -> int: ...
    @property
    def task_type(self) -> str: ...
    @property
    def attempt(self) -> int: ...
    @property
    def max_retries(self) -> int: ...

@final
class Attempt:
    """One finished or running attempt in a task's history."""

    @property
    def attempt(self) -> int: ...
    @property
    def worker_id(self) -> str: ...
    @property
    def started_ms(self) -> int: ...
    @property
    def ended_ms(self) -> int | None: ...
    @property
    def outcome(self) -> str:
        """``running``, ``completed``, ``failed``, ``lease_lost`` or ``cancelled``."""

    @property
    def error(self) -> str | None: ...

@final
class Task:
    """A stored task with everything known about it."""

    @property
    def task_id(self) -> int: ...
    @property
    def task_type(self) -> str: ...
    @property
    def payload(self) -> bytes: ...
    @property
    def priority(self) -> int: ...
    @property
    def state(self) -> str: ...
    @property
    def run_at_ms(self) -> int: ...
    @property
    def timeout_ms(self) -> int: ...
    @property
    def max_retries(self) -> int: ...
    @property
    def attempts(self) -> int: ...
    @property
    def idempotency_key(self) -> str | None: ...
    @property
    def created_ms(self) -> int: ...
    @property
    def updated_ms(self) -> int: ...
    @property
    def finished_ms(self) -> int | None: ...
    @property
    def last_error(self) -> str | None: ...
    @property
    def result(self) -> bytes | None: ...
    @property
    def lease_id(self) -> int | None: ...
    @property
    def worker_id(self) -> str | None: ...
    @property
    def lease_deadline_ms(self) -> int | None: ...
    @property
    def cancel_requested(self) -> bool: ...
    @property
    def history(self) -> list[Attempt]: ...

@final
class Page:
    """One page of a listing."""

    @property
    def tasks(self) -> list[Task]: ...
    @property
    def next_cursor(self) -> bytes | None:
        """Pass to the same listing to get the next page; None on the last page."""

@final
class Counts:
    """Task counts, read from the in-memory indexes and counters."""

    @property
    def by_state(self) -> dict[str, int]: ...
    @property
    def by_type(self) -> dict[str, dict[str, int]]:
        """Task type to state to count; types with no tasks are left out."""

    @property
    def pending_by_tier(self) -> dict[str, int]:
        """Pending tasks in the tiers ``low`` (0-99), ``normal`` and ``high`` (200+)."""

Op = Submit | Claim | Ack | Fail | Extend | Cancel | Requeue | PromoteDue

@final
class Engine:
    """The durable task store and its in-memory indexes.

    Opening a data directory rebuilds every index from RocksDB; in-progress tasks
    keep their leases and deadlines. Close it explicitly with `close` (or use it
    as a context manager): RocksDB locks the directory while it is open.
    """

    def __new__(
        cls, path: str, *, fsync: bool = True, clock: ManualClock | None = None
    ) -> Self: ...
    def __enter__(self) -> Engine: ...
    def __exit__(self, *exc_info: object) -> None: ...
    @property
    def path(self) -> str: ...
    @property
    def fsync(self) -> bool: ...
    def now_ms(self) -> int:
        """The engine clock's current time."""

    def commit(self, ops: Sequence[Op]) -> list[object]:
        """Apply many operations with one atomic write (and one fsync).

        Returns:
            One entry per operation, in order: its result, or the `tq.errors`
            exception instance it failed with (the others still apply).

        Raises:
            StorageError: The write failed; no operation took effect.
        """

    def submit(self, task: NewTask) -> Submitted: ...
    def submit_many(self, tasks: Sequence[NewTask]) -> list[Submitted]: ...
    def claim(
        self,
        worker_id: str,
        max_tasks: int,
        task_types: Sequence[str] | None = None,
        lease_grace_ms: int = 0,
    ) -> list[ClaimedTask]: ...
    def ack(self, task_id: int, lease_id: int, result: bytes = b"") -> None: ...
    def fail(
        self, task_id: int, lease_id: int, error: str, retry_at_ms: int | None = None
    ) -> str: ...
    def extend(self, task_id: int, lease_id: int, deadline_ms: int) -> bool: ...
    def cancel(self, task_id: int) -> str: ...
    def requeue(self, task_id: int) -> None: ...
    def promote_due(self, limit: int = 10000) -> int: ...
    def requeue_dead_letters(
        self, task_type: str | None = None, limit: int = 1000
    ) -> int:
        """Requeue up to ``limit`` dead letters (of one type, or all)."""

    def purge_dead_letters(
        self,
        before_ms: int | None = None,
        task_type: str | None = None,
        limit: int = 1000,
    ) -> int:
        """Delete up to ``limit`` dead letters dead-lettered before ``before_ms``."""

    def sweep(
        self, completed_before_ms: int, dead_letter_before_ms: int, limit: int = 1000
    ) -> int:
        """Delete finished tasks past their retention; return how many went.

        Completed and cancelled tasks finished before ``completed_before_ms``
        go, and dead letters from before ``dead_letter_before_ms``.
        """

    def get(self, task_id: int) -> Task: ...
    def list_tasks(
        self,
        state: str,
        task_type: str | None = None,
        limit: int = 100,
        cursor: bytes | None = None,
    ) -> Page: ...
    def counts(self) -> Counts: ...
    def expired_leases(self, limit: int = 1000) -> list[Lease]:
        """Leases whose deadline has passed, earliest first."""

    def worker_leases(self, worker_id: str) -> list[Lease]: ...
    def queue_depth(self) -> int:
        """Tasks waiting to run: pending, scheduled and failed."""

    def next_due_ms(self) -> int | None:
        """When the next scheduled task is due or the next lease expires."""

    def close(self) -> None:
        """Flush and close the store; later calls raise `EngineClosed`."""
