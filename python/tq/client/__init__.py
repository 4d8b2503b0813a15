"""tq's clients: `Client` (blocking) and `AsyncClient` (trio), with one vocabulary."""

from tq.client.async_client import AsyncClient
from tq.client.connection import WorkerHello
from tq.client.models import Attempt, Priority, TaskInfo, TaskPage
from tq.client.sync_client import Client

__all__ = [
    "AsyncClient",
    "Attempt",
    "Client",
    "Priority",
    "TaskInfo",
    "TaskPage",
    "WorkerHello",
]
