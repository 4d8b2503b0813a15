"""The task a handler is running, for handlers that need more than its payload.

A handler gets the payload as its argument. One that needs to know which task
it runs (to log its id, to make a side effect idempotent per task, to act
differently on a last attempt) calls `current_task()`; it works in async
handlers and in plain functions run in threads alike.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass

__all__ = ["CurrentTask", "current_task"]


@dataclass(frozen=True, slots=True)
class CurrentTask:
    """The task a handler is running, under the lease its worker holds."""

    task_id: int
    task_type: str
    attempt: int
    """1 on the first run, 2 on the first retry, and so on."""
    max_retries: int
    lease_id: int
    worker_id: str

    @property
    def is_last_attempt(self) -> bool:
        """Whether a failure now sends the task to the dead letter queue."""
        return self.attempt > self.max_retries


_current: ContextVar[CurrentTask] = ContextVar("tq_current_task")


def enter_task(task: CurrentTask) -> None:
    """Make `task` what `current_task()` returns in the calling trio task.

    The worker runtime calls it before it runs a handler; threads started with
    `trio.to_thread.run_sync` from there see it too.
    """
    _current.set(task)


def current_task() -> CurrentTask:
    """The task the calling handler runs.

    Raises:
        RuntimeError: when called outside a handler run by a tq worker.
    """
    try:
        return _current.get()
    except LookupError:
        raise RuntimeError(
            "current_task(): expected a call from a handler run by a tq worker, "
            "got a call outside any task"
        ) from None
