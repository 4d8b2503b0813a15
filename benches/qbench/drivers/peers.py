"""One adapter per peer: how it enqueues, waits for a result and counts.

Each adapter uses the peer's own public API, as its documentation shows it,
with the app modules of `qbench.apps` (imported lazily, so a driver loads only
the peer it drives).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from qbench.drivers.common import PAD

WAIT_TIMEOUT_S = 60


class Peer(ABC):
    """The operations a driver needs from one peer."""

    name: str
    queue_key: str
    """The Redis list that holds the queued messages."""
    batch_api: str
    """How ``enqueue_batch`` sends a batch, for the report."""
    result_api: str
    """How ``wait`` learns that a task completed, for the report."""

    def for_thread(self) -> Peer:
        """The adapter one client thread should use (its own connection if needed)."""
        return self

    @abstractmethod
    def enqueue(self) -> Any:
        """Enqueue one noop task; returns the peer's handle."""

    @abstractmethod
    def enqueue_batch(self, n: int) -> None:
        """Enqueue ``n`` noop tasks with the peer's bulk API, if it has one."""

    @abstractmethod
    def submit_stamp(self, send_ns: int) -> Any:
        """Enqueue one stamp task; returns the handle to wait on."""

    @abstractmethod
    def wait(self, handle: Any) -> None:
        """Block until the task's result is in (the peer's result API)."""

    @abstractmethod
    def seeds(self, handle: Any) -> list[str]:
        """The ids one enqueued message carries (for `replicate.capture`)."""

    @abstractmethod
    def pending(self) -> int:
        """Queued messages, by the peer's own count."""


class RqPeer(Peer):
    name = "rq"
    queue_key = "rq:queue:bench"
    batch_api = "Queue.enqueue_many (one pipeline)"
    result_api = "job.latest_result(timeout) (blocking XREAD)"

    def __init__(self, url: str) -> None:
        from redis import Redis  # noqa: PLC0415 - each driver loads one peer
        from rq import Queue  # noqa: PLC0415

        from qbench.apps import rq_app  # noqa: PLC0415

        self._url = url
        self._tasks = rq_app
        self._queue_class = Queue
        self.queue = Queue("bench", connection=Redis.from_url(url))

    def for_thread(self) -> Peer:
        return RqPeer(self._url)

    def enqueue(self) -> Any:
        return self.queue.enqueue(self._tasks.noop, PAD)

    def enqueue_batch(self, n: int) -> None:
        prepare = self._queue_class.prepare_data
        self.queue.enqueue_many([prepare(self._tasks.noop, (PAD,)) for _ in range(n)])

    def submit_stamp(self, send_ns: int) -> Any:
        return self.queue.enqueue(self._tasks.stamp, send_ns, PAD)

    def wait(self, handle: Any) -> None:
        if handle.latest_result(timeout=WAIT_TIMEOUT_S) is None:
            raise TimeoutError(f"rq job {handle.id}: no result")

    def seeds(self, handle: Any) -> list[str]:
        return [handle.id]

    def pending(self) -> int:
        return int(self.queue.count)


class CeleryPeer(Peer):
    name = "celery"
    queue_key = "bench"
    batch_api = "group(...).apply_async() (one message per task)"
    result_api = "AsyncResult.get() on the Redis backend (pub/sub)"

    def __init__(self, url: str) -> None:
        from celery import group  # noqa: PLC0415
        from redis import Redis  # noqa: PLC0415

        from qbench.apps import celery_app  # noqa: PLC0415

        self._app = celery_app
        self._group = group
        self._redis = Redis.from_url(url)

    def enqueue(self) -> Any:
        return self._app.noop.apply_async((PAD,))

    def enqueue_batch(self, n: int) -> None:
        self._group(self._app.noop.s(PAD) for _ in range(n)).apply_async()

    def submit_stamp(self, send_ns: int) -> Any:
        return self._app.stamp.apply_async((send_ns, PAD))

    def wait(self, handle: Any) -> None:
        handle.get(timeout=WAIT_TIMEOUT_S)

    def seeds(self, handle: Any) -> list[str]:
        return [handle.id]

    def pending(self) -> int:
        # Celery has no count API; its docs inspect the list with LLEN.
        return int(self._redis.llen(self.queue_key))


class DramatiqPeer(Peer):
    name = "dramatiq"
    queue_key = "dramatiq:bench"
    batch_api = "none: group(...).run() enqueues one by one"
    result_api = "message.get_result(block=True) (Results, BRPOPLPUSH)"

    def __init__(self, url: str) -> None:
        from dramatiq import group  # noqa: PLC0415

        from qbench.apps import dramatiq_app  # noqa: PLC0415

        self._app = dramatiq_app
        self._group = group

    def enqueue(self) -> Any:
        return self._app.noop.send(PAD)

    def enqueue_batch(self, n: int) -> None:
        self._group(self._app.noop.message(PAD) for _ in range(n)).run()

    def submit_stamp(self, send_ns: int) -> Any:
        return self._app.stamp.send(send_ns, PAD)

    def wait(self, handle: Any) -> None:
        handle.get_result(block=True, timeout=WAIT_TIMEOUT_S * 1000)

    def seeds(self, handle: Any) -> list[str]:
        return [handle.message_id, handle.options["redis_message_id"]]

    def pending(self) -> int:
        return int(self._app.broker.client.llen(self.queue_key))


class HueyPeer(Peer):
    name = "huey"
    queue_key = "huey.redis.bench"
    batch_api = "none: a loop of calls"
    result_api = "result.get(blocking=True), notify_result (BLPOP)"

    def __init__(self, url: str) -> None:
        from qbench.apps import huey_app  # noqa: PLC0415

        self._app = huey_app

    def enqueue(self) -> Any:
        return self._app.noop(PAD)

    def enqueue_batch(self, n: int) -> None:
        for _ in range(n):
            self._app.noop(PAD)

    def submit_stamp(self, send_ns: int) -> Any:
        return self._app.stamp(send_ns, PAD)

    def wait(self, handle: Any) -> None:
        handle.get(blocking=True, timeout=WAIT_TIMEOUT_S)

    def seeds(self, handle: Any) -> list[str]:
        return [handle.id]

    def pending(self) -> int:
        return int(self._app.huey.pending_count())


PEERS: dict[str, type[Peer]] = {
    peer.name: peer for peer in (CeleryPeer, RqPeer, DramatiqPeer, HueyPeer)
}
