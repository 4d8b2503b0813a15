"""Task and worker events, fanned out to subscribers without slowing the broker.

Publishing never waits: each subscriber has a bounded buffer, and one that falls
behind is dropped with a reason rather than holding anyone else up. Taps are the
exception: plain functions called inline with every event, for in-process
consumers such as metrics that must see everything and never block.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import trio

__all__ = ["EVENT_KINDS", "Event", "EventHub", "SlowConsumer", "Subscription"]

log = logging.getLogger("tq.broker.events")

EVENT_KINDS = (
    "task.submitted",
    "task.started",
    "task.completed",
    "task.failed",
    "task.retrying",
    "task.dead_lettered",
    "task.cancelled",
    "worker.joined",
    "worker.lost",
)
"""Every event kind, as sent to subscribers."""


@dataclass(frozen=True)
class Event:
    """One thing that happened.

    Attributes:
        kind: One of `EVENT_KINDS`.
        at_ms: Wall time it happened.
        data: Its fields: ``task_id``, ``task_type``, ``worker_id``...
    """

    kind: str
    at_ms: int
    data: dict[str, Any]

    def to_map(self) -> dict[str, Any]:
        """The event as a plain map for JSON or CBOR."""
        return {"event": self.kind, "at_ms": self.at_ms, **self.data}


class SlowConsumer(Exception):
    """The subscriber fell more than its buffer behind and was dropped."""


@dataclass(eq=False)
class Subscription:
    """A subscriber's filter and buffer."""

    kinds: frozenset[str] | None
    task_types: frozenset[str] | None
    send: trio.MemorySendChannel[Event]
    receive: trio.MemoryReceiveChannel[Event]
    buffer: int
    dropped: bool = field(default=False)

    def wants(self, event: Event) -> bool:
        """Whether the event passes this subscriber's filters."""
        if self.kinds is not None and event.kind not in self.kinds:
            return False
        task_type = event.data.get("task_type")
        return (
            self.task_types is None or task_type is None or task_type in self.task_types
        )

    async def events(self) -> AsyncIterator[Event]:
        """The events as they come.

        Raises:
            SlowConsumer: The subscriber was dropped for falling behind.
        """
        async for event in self.receive:
            yield event
        if self.dropped:
            raise SlowConsumer(
                f"dropped: fell more than {self.buffer} events behind the broker"
            )


class EventHub:
    """Fan-out of events to any number of subscribers."""

    def __init__(self, buffer: int = 1000) -> None:
        """Create a hub whose subscribers each buffer up to ``buffer`` events."""
        self._buffer = buffer
        self._subscriptions: set[Subscription] = set()
        self._taps: list[Callable[[Event], None]] = []

    @property
    def has_subscribers(self) -> bool:
        """Whether anyone listens; publishers may skip building events if not."""
        return bool(self._subscriptions) or bool(self._taps)

    def tap(self, consumer: Callable[[Event], None]) -> None:
        """Call ``consumer`` inline with every event; it must be quick and not raise."""
        self._taps.append(consumer)

    def publish(self, kind: str, **data: Any) -> None:
        """Send an event to every tap and every subscriber that wants it."""
        if not self.has_subscribers:
            return
        event = Event(kind, int(time.time() * 1000), data)
        for consumer in self._taps:
            consumer(event)
        for subscription in list(self._subscriptions):
            if not subscription.wants(event):
                continue
            try:
                subscription.send.send_nowait(event)
            except trio.WouldBlock:
                self._drop(subscription)

    def _drop(self, subscription: Subscription) -> None:
        log.warning(
            "event subscriber dropped: it fell %d events behind; it must reconnect",
            self._buffer,
        )
        subscription.dropped = True
        self._subscriptions.discard(subscription)
        subscription.send.close()

    @asynccontextmanager
    async def subscribe(
        self,
        kinds: Iterable[str] | None = None,
        task_types: Iterable[str] | None = None,
    ) -> AsyncIterator[Subscription]:
        """Subscribe for the duration of the block."""
        send, receive = trio.open_memory_channel[Event](self._buffer)
        subscription = Subscription(
            frozenset(kinds) if kinds is not None else None,
            frozenset(task_types) if task_types is not None else None,
            send,
            receive,
            self._buffer,
        )
        self._subscriptions.add(subscription)
        try:
            yield subscription
        finally:
            self._subscriptions.discard(subscription)
            send.close()
            receive.close()
