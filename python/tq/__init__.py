"""tq: a durable task queue.

A broker keeps tasks in an embedded RocksDB store and hands them to workers by
priority. Failed tasks are retried after a backoff and dead-lettered when their
retries run out.

- `Client` and `AsyncClient` submit tasks and read them back.
- `tq.worker` holds the handler registry and the worker runtime; handlers
  raise `Retry` or `Reject` to steer their task.
- `tq.errors` has every error tq raises; `tq.testing` runs a broker inside a
  test.
"""

from tq import errors
from tq._core import __version__
from tq.client import AsyncClient, Client, Priority, TaskInfo, TaskPage
from tq.worker.outcomes import Reject, Retry

__all__ = [
    "AsyncClient",
    "Client",
    "Priority",
    "Reject",
    "Retry",
    "TaskInfo",
    "TaskPage",
    "__version__",
    "errors",
]
