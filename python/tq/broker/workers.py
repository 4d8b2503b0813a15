"""Workers known to the broker, and the monitor that notices lost ones.

A worker is known from its hello until it goes silent for longer than the
worker timeout; every request on its connection counts as a sign of life, and
an idle worker sends a heartbeat every heartbeat interval. The monitor sleeps
until the earliest moment a known worker could time out, never on a fixed tick.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import trio

__all__ = ["WorkerInfo", "WorkerRegistry"]

log = logging.getLogger("tq.broker.workers")


@dataclass
class WorkerInfo:
    """What the broker knows of one worker.

    Attributes:
        worker_id: The worker's self-chosen unique id.
        hostname: Where it runs.
        pid: Its process id there.
        concurrency: How many tasks it runs at once.
        task_types: The types it handles, empty for any.
        joined_ms: Wall time of its first hello.
        last_seen: Monotonic time (trio clock) of its last sign of life.
    """

    worker_id: str
    hostname: str = ""
    pid: int = 0
    concurrency: int = 1
    task_types: tuple[str, ...] = ()
    joined_ms: int = field(default_factory=lambda: int(time.time() * 1000))
    last_seen: float = 0.0


class WorkerRegistry:
    """The live workers, with a monitor that declares silent ones lost."""

    def __init__(
        self,
        *,
        worker_timeout_s: float,
        on_lost: Callable[[WorkerInfo, float], Awaitable[None]],
        on_join: Callable[[WorkerInfo], None] | None = None,
    ) -> None:
        """Create a registry.

        Args:
            worker_timeout_s: Silence after which a worker is lost.
            on_lost: Called with a lost worker and its silence in seconds; it
                fails the worker's leases.
            on_join: Called when a worker is first seen.
        """
        self.worker_timeout_s = worker_timeout_s
        self._on_lost = on_lost
        self._on_join = on_join
        self._workers: dict[str, WorkerInfo] = {}
        self._changed = trio.Event()

    def __len__(self) -> int:
        return len(self._workers)

    def all(self) -> list[WorkerInfo]:
        """Every live worker, in order of joining."""
        return sorted(self._workers.values(), key=lambda w: w.joined_ms)

    def get(self, worker_id: str) -> WorkerInfo | None:
        """The worker with this id, if live."""
        return self._workers.get(worker_id)

    def join(self, info: WorkerInfo) -> None:
        """Register a worker's hello (or its return after a reconnect)."""
        known = self._workers.get(info.worker_id)
        info.last_seen = trio.current_time()
        if known is not None:
            info.joined_ms = known.joined_ms
        self._workers[info.worker_id] = info
        if known is None:
            log.info(
                "worker joined worker_id=%s host=%s pid=%d concurrency=%d",
                info.worker_id,
                info.hostname,
                info.pid,
                info.concurrency,
            )
            if self._on_join is not None:
                self._on_join(info)
        self._changed.set()

    def expect(self, worker_id: str) -> None:
        """Start the clock on a worker that held leases before a broker restart.

        It has one worker timeout from now to come back before its leases are
        failed.
        """
        if worker_id not in self._workers:
            self._workers[worker_id] = WorkerInfo(
                worker_id, last_seen=trio.current_time()
            )
            self._changed.set()

    def touch(self, worker_id: str) -> None:
        """Record a sign of life."""
        info = self._workers.get(worker_id)
        if info is not None:
            info.last_seen = trio.current_time()

    def leave(self, worker_id: str) -> None:
        """Forget a worker that said goodbye; its leases stay until acked or lost."""
        if self._workers.pop(worker_id, None) is not None:
            log.info("worker left worker_id=%s", worker_id)

    async def run_monitor(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Declare workers lost when silent past the timeout; runs until cancelled."""
        task_status.started()
        while True:
            deadline = self._earliest_deadline()
            if deadline is None:
                await self._changed.wait()
            else:
                with trio.move_on_at(deadline):
                    await self._changed.wait()
            self._changed = trio.Event()
            await self._reap(trio.current_time())

    def _earliest_deadline(self) -> float | None:
        if not self._workers:
            return None
        return min(w.last_seen for w in self._workers.values()) + self.worker_timeout_s

    async def _reap(self, now: float) -> None:
        lost = [
            w
            for w in self._workers.values()
            if now - w.last_seen >= self.worker_timeout_s
        ]
        for info in lost:
            del self._workers[info.worker_id]
            silence = now - info.last_seen
            log.warning(
                "worker lost worker_id=%s silent_s=%.1f: failing its leases so "
                "their tasks are retried elsewhere",
                info.worker_id,
                silence,
            )
            await self._on_lost(info, silence)
