"""Task handlers and the worker runtime that runs them.

Register handlers in `registry` (or a `HandlerRegistry` of your own) and run
them with `tq worker --handlers your.module`, or with `Worker` from trio code.
A handler that needs to know which task it runs calls `current_task()`.
"""

from tq.worker.builtins import register_builtins
from tq.worker.context import CurrentTask, current_task
from tq.worker.outcomes import Reject, Retry
from tq.worker.registry import HandlerRegistry, TaskHandler, registry
from tq.worker.runtime import Worker, default_worker_id

__all__ = [
    "CurrentTask",
    "HandlerRegistry",
    "Reject",
    "Retry",
    "TaskHandler",
    "Worker",
    "current_task",
    "default_worker_id",
    "register_builtins",
    "registry",
]
