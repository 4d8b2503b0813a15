"""Acks of tasks that finish together, sent to the broker as one ``ack_many``.

A worker running many short tasks finishes dozens of them in one turn of the
event loop. Sending each ack as its own request costs the broker a request,
a commit entry and a response per task; gathering the acks of one moment into
one ``ack_many`` costs it one request, and the engine stores them all in the
same write.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import trio

from tq.client import AsyncClient, calls
from tq.errors import ConnectionLost, StaleLease, TqError

__all__ = ["AckBatcher", "FinishedTask"]

log = logging.getLogger("tq.worker")

SEND_ATTEMPTS = 5
"""How many times one ``ack_many`` is sent across reconnects before giving up."""


@dataclass(frozen=True)
class FinishedTask:
    """A task whose handler returned, with the lease it ran under."""

    task_id: int
    task_type: str
    lease_id: int
    attempt: int
    result: bytes


class AckBatcher:
    """Gathers acks and sends each gathering as one ``ack_many``.

    `add` never waits: the first ack of a gathering schedules a send in the
    given nursery, which yields once so that every task finishing in the same
    turn adds its ack, then sends them all. Sends are shielded from
    cancellation and retried across reconnects, so a worker that is stopping
    still reports what it finished.
    """

    def __init__(
        self,
        client: AsyncClient,
        nursery: trio.Nursery,
        *,
        worker_id: str,
        max_batch: int,
        on_reported: Callable[[FinishedTask, bool], None],
    ) -> None:
        """Create a batcher.

        Args:
            client: The worker's connection to the broker.
            nursery: Where sends run; it closes only once they are done.
            worker_id: For logs.
            max_batch: The broker's largest batch (its hello's ``max_batch``).
            on_reported: Called once per ack when its send is over, with
                whether the broker completed the task.
        """
        self._client = client
        self._nursery = nursery
        self._worker_id = worker_id
        self._max_batch = max_batch
        self._on_reported = on_reported
        self._gathering: list[FinishedTask] = []

    def add(self, task: FinishedTask) -> None:
        """Queue an ack; it goes out with the others of this moment."""
        if not self._gathering:
            self._nursery.start_soon(self._send_gathered)
        self._gathering.append(task)

    async def _send_gathered(self) -> None:
        # One checkpoint lets every task that finishes in this turn add its ack.
        await trio.lowlevel.checkpoint()
        gathered, self._gathering = self._gathering, []
        for start in range(0, len(gathered), self._max_batch):
            batch = gathered[start : start + self._max_batch]
            self._nursery.start_soon(self._send, batch)

    async def _send(self, batch: list[FinishedTask]) -> None:
        errors: list[TqError | None] = [None] * len(batch)
        with trio.CancelScope(shield=True):
            try:
                errors = await self._call(batch)
            except TqError as exc:
                errors = [exc] * len(batch)
        for task, error in zip(batch, errors, strict=True):
            if error is not None:
                self._log_refused(task, error)
            self._on_reported(task, error is None)

    async def _call(self, batch: list[FinishedTask]) -> list[TqError | None]:
        call = calls.ack_many((t.task_id, t.lease_id, t.result) for t in batch)
        for attempt in range(1, SEND_ATTEMPTS + 1):
            try:
                return await self._client.call(call)
            except ConnectionLost as exc:
                # Sending again is safe: an ack the broker already stored
                # comes back as a stale lease and changes nothing.
                log.warning(
                    "ack of %d tasks failed (try %d of %d), sending again: %s",
                    len(batch),
                    attempt,
                    SEND_ATTEMPTS,
                    exc,
                )
        raise ConnectionLost(
            f"gave up sending the acks of {len(batch)} tasks after "
            f"{SEND_ATTEMPTS} tries; their leases will expire and they will run again"
        )

    def _log_refused(self, task: FinishedTask, error: TqError) -> None:
        log_at = logging.WARNING if isinstance(error, StaleLease) else logging.ERROR
        log.log(
            log_at,
            "ack refused task_id=%d type=%s attempt=%d worker_id=%s: %s",
            task.task_id,
            task.task_type,
            task.attempt,
            self._worker_id,
            error,
        )
