"""The broker's gRPC front end: grpcio's threaded server, bridged into trio.

grpcio runs each call on a thread of its own pool. A call's handler runs in
the broker's trio loop (`trio.from_thread.run`): it checks and bounds the
request with the same `Args` accessors and limits as the TCP front end, calls
the one `Broker` operation, and turns the answer into a message through the
shared views. Nothing here keeps state beyond the calls in flight and the open
event streams. ``proto/tq/v1/tq.proto`` is the reference for clients.

A failed call gets the gRPC status that `STATUS_FOR_CODE` picks for the tq
error code, the tq message as details, and the tq code itself in the trailing
metadata ``tq-error-code``. With an ``auth_token``, every call must carry the
metadata ``authorization: Bearer <token>``. With ``tls_cert`` and ``tls_key``
the port takes TLS channels only.

Shutdown, when the broker is cancelled: calls still running in trio are
cancelled and answered UNAVAILABLE, event streams end UNAVAILABLE, then the
server stops; all of it before the store is closed.
"""

from __future__ import annotations

import errno
import hmac
import logging
import queue
import threading
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import grpc
import trio
from google.protobuf.message import Message

from tq import _core
from tq.broker.events import EVENT_KINDS, Event, EventHub, SlowConsumer
from tq.broker.service import Broker
from tq.broker.specs import spec_from_args, task_id_from_args
from tq.broker.views import task_view, worker_view
from tq.errors import BadRequest, EngineClosed, TqError, Unauthorized
from tq.protocol import Args
from tq.v1 import tq_pb2, tq_pb2_grpc

__all__ = ["STATUS_FOR_CODE", "GrpcServer", "TokenAuth", "TrioBridge"]

log = logging.getLogger("tq.broker.grpc")

T = TypeVar("T")

GRPC_THREADS = 16
"""Threads serving calls. An event stream holds one for as long as it is open."""

MAX_EVENT_STREAMS = 8
"""Event streams open at once, so that half the threads stay free for calls."""

STREAM_BUFFER = 1000
"""Events one stream may hold while its client is slow before it is dropped."""

SHUTDOWN_GRACE_S = 2.0
"""How long answers already on their way get to reach clients on shutdown."""

ERROR_CODE_KEY = "tq-error-code"
"""Trailing metadata key of a failed call's tq error code."""

STATUS_FOR_CODE: dict[str, grpc.StatusCode] = {
    "BAD_REQUEST": grpc.StatusCode.INVALID_ARGUMENT,
    "NOT_FOUND": grpc.StatusCode.NOT_FOUND,
    "QUEUE_FULL": grpc.StatusCode.RESOURCE_EXHAUSTED,
    "UNAUTHORIZED": grpc.StatusCode.UNAUTHENTICATED,
    "INVALID_STATE": grpc.StatusCode.FAILED_PRECONDITION,
    # The task moved on under the caller: a concurrency conflict, so ABORTED.
    "STALE_LEASE": grpc.StatusCode.ABORTED,
    "STORAGE": grpc.StatusCode.UNAVAILABLE,
    "STORE_LOCKED": grpc.StatusCode.UNAVAILABLE,
    "CLOSED": grpc.StatusCode.UNAVAILABLE,
    "TIMEOUT": grpc.StatusCode.DEADLINE_EXCEEDED,
    "FRAME_TOO_LARGE": grpc.StatusCode.RESOURCE_EXHAUSTED,
}
"""The gRPC status of each tq error code; any other code is INTERNAL."""


def _shutting_down() -> EngineClosed:
    return EngineClosed("the broker is shutting down; call again once it is back")


def abort(context: grpc.ServicerContext, error: TqError) -> NoReturn:
    """End a call with the status, details and metadata of a tq error."""
    context.set_trailing_metadata(((ERROR_CODE_KEY, error.code),))
    status = STATUS_FOR_CODE.get(error.code, grpc.StatusCode.INTERNAL)
    context.abort(status, error.message)


# Calling into trio


class TrioBridge:
    """Runs broker coroutines in the trio loop on behalf of gRPC threads.

    Every call runs under a cancel scope of its own, so that shutdown can
    cancel the calls in flight instead of leaving their threads waiting on
    parts of the broker that are gone.
    """

    def __init__(self, token: trio.lowlevel.TrioToken) -> None:
        """Create a bridge into the trio run that ``token`` belongs to."""
        self._token = token
        self._scopes: set[trio.CancelScope] = set()
        self._closing = False

    def call(self, fn: Callable[[], Awaitable[T]]) -> T:
        """Run ``fn()`` in the trio loop and return its result; from a thread.

        Raises:
            EngineClosed: The broker is shutting down.
            TqError: As ``fn`` raises it.
        """
        try:
            return trio.from_thread.run(self._guarded, fn, trio_token=self._token)
        except trio.RunFinishedError as exc:
            raise _shutting_down() from exc

    def call_sync(self, fn: Callable[[], None]) -> None:
        """Run ``fn()`` in the trio loop from a thread; nothing if it has ended."""
        try:
            trio.from_thread.run_sync(fn, trio_token=self._token)
        except trio.RunFinishedError:
            return

    async def _guarded(self, fn: Callable[[], Awaitable[T]]) -> T:
        if self._closing:
            raise _shutting_down()
        with trio.CancelScope() as scope:
            self._scopes.add(scope)
            try:
                return await fn()
            finally:
                self._scopes.discard(scope)
        raise _shutting_down()

    def close(self) -> None:
        """Cancel the calls in flight and refuse new ones; from the trio thread."""
        self._closing = True
        for scope in self._scopes:
            scope.cancel()


# Authentication


class TokenAuth(grpc.ServerInterceptor):
    """Refuses calls without the metadata ``authorization: Bearer <token>``."""

    def __init__(self, token: str) -> None:
        """Create the interceptor for the broker's ``auth_token``."""
        self._token = token.encode()

    def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], grpc.RpcMethodHandler[Any, Any] | None
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        """Hand the call on when its token is right, else a refusal."""
        handler = continuation(handler_call_details)
        if handler is None or self.authorized(handler_call_details.invocation_metadata):
            return handler
        if handler.response_streaming:
            return grpc.unary_stream_rpc_method_handler(_refuse)
        return grpc.unary_unary_rpc_method_handler(_refuse)

    def authorized(self, metadata: tuple[tuple[str, str | bytes], ...]) -> bool:
        """Whether the call's metadata carries the right bearer token."""
        for key, value in metadata:
            if key != "authorization":
                continue
            given = value if isinstance(value, str) else value.decode(errors="replace")
            scheme, _, credential = given.partition(" ")
            return scheme.lower() == "bearer" and hmac.compare_digest(
                credential.strip().encode(), self._token
            )
        return False


def _refuse(request: object, context: grpc.ServicerContext) -> NoReturn:
    log.info("grpc call refused peer=%s: token missing or wrong", context.peer())
    abort(
        context,
        Unauthorized(
            "token: missing or wrong; send the metadata authorization: Bearer <token>"
        ),
    )


# Messages


def _args(message: Message) -> Args:
    """A request's fields as the wire protocol's argument map.

    A field without presence that holds its default counts as absent, as an
    argument left out on the wire does; repeated fields are always lists.
    """
    fields: dict[str, Any] = {
        field.name: list(getattr(message, field.name))
        for field in message.DESCRIPTOR.fields
        if field.is_repeated
    }
    fields.update(
        (field.name, value)
        for field, value in message.ListFields()
        if not field.is_repeated
    )
    return Args(fields)


def task_message(task: _core.Task) -> tq_pb2.Task:
    """A task as a message, through the view every front end shares."""
    return tq_pb2.Task(**task_view(task))


def stats_message(stats: dict[str, Any]) -> tq_pb2.GetStatsResponse:
    """The broker's statistics as a message."""
    by_type = {
        task_type: tq_pb2.StateCounts(by_state=counts)
        for task_type, counts in stats["by_type"].items()
    }
    return tq_pb2.GetStatsResponse(**{**stats, "by_type": by_type})


_EVENT_FIELDS = frozenset(f.name for f in tq_pb2.Event.DESCRIPTOR.fields) - {
    "kind",
    "at_ms",
    "extra",
}


def event_message(event: Event) -> tq_pb2.Event:
    """An event as a message; fields the schema does not name go in ``extra``."""
    named = {key: value for key, value in event.data.items() if key in _EVENT_FIELDS}
    extra = {
        key: str(value)
        for key, value in event.data.items()
        if key not in _EVENT_FIELDS and value is not None
    }
    return tq_pb2.Event(kind=event.kind, at_ms=event.at_ms, extra=extra, **named)


# Event streams


@dataclass(frozen=True)
class _StreamEnd:
    """The last item of a feed: how the stream ends (no status: it ends OK)."""

    status: grpc.StatusCode | None = None
    details: str = ""


class EventFeed:
    """One stream's subscription, carried from trio to the stream's thread."""

    def __init__(
        self, hub: EventHub, kinds: list[str] | None, task_types: list[str] | None
    ) -> None:
        """Prepare a feed of the events ``kinds`` of ``task_types`` (None: all)."""
        self.items: queue.SimpleQueue[Event | _StreamEnd] = queue.SimpleQueue()
        self._hub = hub
        self._kinds = kinds
        self._task_types = task_types
        self._scope = trio.CancelScope()

    async def run(self, *, task_status: trio.TaskStatus[None]) -> None:
        """Move events to `items` until `stop`, then put a `_StreamEnd`."""
        # Cancelled from outside, the broker is shutting down; `stop` ends the
        # feed by cancelling its own scope instead.
        end = _StreamEnd(grpc.StatusCode.UNAVAILABLE, _shutting_down().message)
        try:
            with self._scope:
                async with self._hub.subscribe(
                    self._kinds, self._task_types
                ) as subscription:
                    task_status.started()
                    async for event in subscription.events():
                        self._put(event)
            end = _StreamEnd()
        except SlowConsumer as exc:
            log.warning(
                "grpc event stream dropped: %s; the client must call again", exc
            )
            end = _StreamEnd(grpc.StatusCode.RESOURCE_EXHAUSTED, f"{exc}; call again")
        finally:
            self.items.put(end)

    def _put(self, event: Event) -> None:
        # grpcio sends at the client's pace: a client that reads too slowly
        # leaves events here, and is dropped rather than let them pile up.
        if self.items.qsize() >= STREAM_BUFFER:
            raise SlowConsumer(f"fell more than {STREAM_BUFFER} events behind")
        self.items.put(event)

    def stop(self) -> None:
        """End the feed; from the trio thread."""
        self._scope.cancel()


# The service


class TqServicer:
    """The ``tq.v1.Tq`` service: one method per RPC, each a `Broker` call."""

    def __init__(self, broker: Broker, bridge: TrioBridge) -> None:
        """Serve ``broker`` through ``bridge``; `run_feeds_in` must follow."""
        self.broker = broker
        self.config = broker.config
        self._bridge = bridge
        self._feeds: trio.Nursery | None = None
        self._stream_slots = threading.BoundedSemaphore(MAX_EVENT_STREAMS)

    def run_feeds_in(self, nursery: trio.Nursery) -> None:
        """Run the event streams' feeds in ``nursery``, before any call comes."""
        self._feeds = nursery

    def _call(
        self, context: grpc.ServicerContext, handler: Callable[[], Awaitable[T]]
    ) -> T:
        """Run ``handler`` in trio; a failure ends the call with its status."""
        try:
            return self._bridge.call(handler)
        except TqError as exc:
            error = exc
        except Exception:
            log.exception("internal error answering grpc peer=%s", context.peer())
            error = TqError("internal error; see the broker log")
        abort(context, error)

    # Tasks

    def Submit(
        self, request: tq_pb2.SubmitRequest, context: grpc.ServicerContext
    ) -> tq_pb2.SubmitResponse:
        """Store one task."""
        return self._call(context, lambda: self._submit(request))

    async def _submit(self, request: tq_pb2.SubmitRequest) -> tq_pb2.SubmitResponse:
        submitted = await self.broker.submit(
            spec_from_args(_args(request), self.config.max_payload_bytes)
        )
        return tq_pb2.SubmitResponse(
            task_id=submitted.task_id, created=submitted.created
        )

    def SubmitMany(
        self, request: tq_pb2.SubmitManyRequest, context: grpc.ServicerContext
    ) -> tq_pb2.SubmitManyResponse:
        """Store many tasks with one commit."""
        return self._call(context, lambda: self._submit_many(request))

    async def _submit_many(
        self, request: tq_pb2.SubmitManyRequest
    ) -> tq_pb2.SubmitManyResponse:
        items = _args(request).items("tasks", max_len=self.config.max_batch)
        submitted = await self.broker.submit_many(
            [
                spec_from_args(_args(item), self.config.max_payload_bytes)
                for item in items
            ]
        )
        return tq_pb2.SubmitManyResponse(
            task_ids=[s.task_id for s in submitted],
            created=[s.created for s in submitted],
        )

    def GetTask(
        self, request: tq_pb2.GetTaskRequest, context: grpc.ServicerContext
    ) -> tq_pb2.Task:
        """One task."""
        return self._call(context, lambda: self._get(request))

    async def _get(self, request: tq_pb2.GetTaskRequest) -> tq_pb2.Task:
        return task_message(await self.broker.get(task_id_from_args(_args(request))))

    def ListTasks(
        self, request: tq_pb2.ListTasksRequest, context: grpc.ServicerContext
    ) -> tq_pb2.ListTasksResponse:
        """A page of tasks in one state."""
        return self._call(context, lambda: self._list(request))

    async def _list(self, request: tq_pb2.ListTasksRequest) -> tq_pb2.ListTasksResponse:
        args = _args(request)
        tasks, cursor = await self._page(args.name("state"), args)
        return tq_pb2.ListTasksResponse(tasks=tasks, next_cursor=cursor)

    async def _page(
        self, state: str, args: Args
    ) -> tuple[list[tq_pb2.Task], bytes | None]:
        page = await self.broker.list_tasks(
            state,
            args.optional_name("task_type"),
            args.integer("limit", low=1, high=self.config.max_page, default=100),
            args.optional_blob("cursor", max_len=64),
        )
        return [task_message(task) for task in page.tasks], page.next_cursor

    def CancelTask(
        self, request: tq_pb2.CancelTaskRequest, context: grpc.ServicerContext
    ) -> tq_pb2.CancelTaskResponse:
        """Cancel a task."""
        return self._call(context, lambda: self._cancel(request))

    async def _cancel(
        self, request: tq_pb2.CancelTaskRequest
    ) -> tq_pb2.CancelTaskResponse:
        state = await self.broker.cancel(task_id_from_args(_args(request)))
        return tq_pb2.CancelTaskResponse(state=state)

    # Broker state

    def GetStats(
        self, request: tq_pb2.GetStatsRequest, context: grpc.ServicerContext
    ) -> tq_pb2.GetStatsResponse:
        """Counts and broker figures."""
        return self._call(context, self._stats)

    async def _stats(self) -> tq_pb2.GetStatsResponse:
        return stats_message(await self.broker.stats())

    def ListWorkers(
        self, request: tq_pb2.ListWorkersRequest, context: grpc.ServicerContext
    ) -> tq_pb2.ListWorkersResponse:
        """Live workers with their current tasks."""
        return self._call(context, self._workers)

    async def _workers(self) -> tq_pb2.ListWorkersResponse:
        now = trio.current_time()
        workers = []
        for info in self.broker.workers.all():
            leases = await self.broker.worker_leases(info.worker_id)
            workers.append(tq_pb2.Worker(**worker_view(info, leases, now)))
        return tq_pb2.ListWorkersResponse(workers=workers)

    # Dead letters

    def ListDeadLetters(
        self, request: tq_pb2.ListDeadLettersRequest, context: grpc.ServicerContext
    ) -> tq_pb2.ListDeadLettersResponse:
        """A page of dead letters."""
        return self._call(context, lambda: self._dead_letters(request))

    async def _dead_letters(
        self, request: tq_pb2.ListDeadLettersRequest
    ) -> tq_pb2.ListDeadLettersResponse:
        tasks, cursor = await self._page("dead_letter", _args(request))
        return tq_pb2.ListDeadLettersResponse(tasks=tasks, next_cursor=cursor)

    def RequeueDeadLetter(
        self, request: tq_pb2.RequeueDeadLetterRequest, context: grpc.ServicerContext
    ) -> tq_pb2.RequeueResponse:
        """Requeue one dead letter."""
        return self._call(context, lambda: self._requeue(request))

    async def _requeue(
        self, request: tq_pb2.RequeueDeadLetterRequest
    ) -> tq_pb2.RequeueResponse:
        await self.broker.dlq_requeue(task_id_from_args(_args(request)))
        return tq_pb2.RequeueResponse(requeued=1)

    def RequeueDeadLetters(
        self, request: tq_pb2.RequeueDeadLettersRequest, context: grpc.ServicerContext
    ) -> tq_pb2.RequeueResponse:
        """Requeue dead letters, of one type or all."""
        return self._call(context, lambda: self._requeue_all(request))

    async def _requeue_all(
        self, request: tq_pb2.RequeueDeadLettersRequest
    ) -> tq_pb2.RequeueResponse:
        args = _args(request)
        count = await self.broker.dlq_requeue_all(
            args.optional_name("task_type"),
            args.integer("limit", low=1, high=100_000, default=1000),
        )
        return tq_pb2.RequeueResponse(requeued=count)

    def PurgeDeadLetters(
        self, request: tq_pb2.PurgeDeadLettersRequest, context: grpc.ServicerContext
    ) -> tq_pb2.PurgeDeadLettersResponse:
        """Delete dead letters."""
        return self._call(context, lambda: self._purge(request))

    async def _purge(
        self, request: tq_pb2.PurgeDeadLettersRequest
    ) -> tq_pb2.PurgeDeadLettersResponse:
        args = _args(request)
        older_than_ms = args.optional_integer("older_than_ms", low=0, high=2**53)
        purged = await self.broker.dlq_purge(
            None if older_than_ms is None else older_than_ms / 1000,
            args.optional_name("task_type"),
            args.integer("limit", low=1, high=100_000, default=1000),
        )
        return tq_pb2.PurgeDeadLettersResponse(purged=purged)

    # Events

    def StreamEvents(
        self, request: tq_pb2.StreamEventsRequest, context: grpc.ServicerContext
    ) -> Iterator[tq_pb2.Event]:
        """Events as they happen, until the client cancels or falls behind."""
        if not self._stream_slots.acquire(blocking=False):
            context.abort(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"at most {MAX_EVENT_STREAMS} event streams may be open; "
                "call again later",
            )
        try:
            feed = self._call(context, lambda: self._open_feed(request))
            # Called when the call ends for any reason, the client's cancel
            # included: the feed's end wakes the loop below.
            context.add_callback(lambda: self._bridge.call_sync(feed.stop))
            # Headers now tell the client that no later event will be missed.
            context.send_initial_metadata(())
            try:
                yield from _relay(feed, context)
            finally:
                self._bridge.call_sync(feed.stop)
        finally:
            self._stream_slots.release()

    async def _open_feed(self, request: tq_pb2.StreamEventsRequest) -> EventFeed:
        args = _args(request)
        kinds = args.names("kinds", max_len=len(EVENT_KINDS))
        for kind in kinds or ():
            if kind not in EVENT_KINDS:
                _bad_kind(kind)
        task_types = args.names("task_types", max_len=1000)
        feed = EventFeed(self.broker.events, kinds or None, task_types or None)
        assert self._feeds is not None, "run_feeds_in is called before serving"
        await self._feeds.start(feed.run)
        return feed


def _bad_kind(kind: str) -> NoReturn:
    raise BadRequest(f"kinds[]: expected one of {', '.join(EVENT_KINDS)}, got {kind!r}")


def _relay(feed: EventFeed, context: grpc.ServicerContext) -> Iterator[tq_pb2.Event]:
    while True:
        item = feed.items.get()
        if isinstance(item, _StreamEnd):
            if item.status is not None:
                context.abort(item.status, item.details)
            return
        yield event_message(item)


# The server


class GrpcServer:
    """Serves the ``tq.v1.Tq`` gRPC service for one `Broker`."""

    def __init__(self, broker: Broker) -> None:
        """Create the server; `serve` starts it."""
        self.broker = broker
        self.config = broker.config

    async def serve(
        self, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Listen on the configured host and ``grpc_port`` until cancelled.

        Reports the port it listens on (useful when configured as 0).

        Raises:
            OSError: The port cannot be bound.
        """
        bridge = TrioBridge(trio.lowlevel.current_trio_token())
        servicer = TqServicer(self.broker, bridge)
        executor = ThreadPoolExecutor(GRPC_THREADS, thread_name_prefix="tq-grpc")
        server = self._build(executor, servicer)
        # Bound outside the nursery, so that a taken port raises a plain
        # OSError, as the TCP server's does.
        port = self._bind(server)
        async with trio.open_nursery() as feeds:
            servicer.run_feeds_in(feeds)
            server.start()
            log.info(
                "grpc listening host=%s port=%d tls=%s",
                self.config.host,
                port,
                "on" if self.config.tls else "off",
            )
            try:
                task_status.started(port)
                await trio.sleep_forever()
            finally:
                with trio.CancelScope(shield=True):
                    await _stop(server, bridge, executor)

    def _build(self, executor: ThreadPoolExecutor, servicer: TqServicer) -> grpc.Server:
        token = self.config.auth_token
        server = grpc.server(
            executor,
            interceptors=[TokenAuth(token)] if token is not None else None,
            options=[
                # The largest request, as for a TCP frame.
                ("grpc.max_receive_message_length", self.config.max_frame_bytes),
                # Two brokers on one port would share its calls silently.
                ("grpc.so_reuseport", 0),
            ],
            maximum_concurrent_rpcs=self.config.max_connections,
        )
        tq_pb2_grpc.add_TqServicer_to_server(servicer, server)
        return server

    def _bind(self, server: grpc.Server) -> int:
        host, wanted = self.config.host, self.config.grpc_port
        shown = f"[{host}]" if ":" in host else host
        try:
            port = self._add_port(server, f"{shown}:{wanted}")
        except RuntimeError as exc:
            port = 0
            reason = str(exc)
        else:
            reason = "the address is taken or not local"
        if port == 0:
            raise OSError(
                errno.EADDRINUSE,
                f"the gRPC API cannot listen on {shown}:{wanted} (grpc_port): {reason}",
            )
        return port

    def _add_port(self, server: grpc.Server, address: str) -> int:
        cert, key = self.config.tls_cert, self.config.tls_key
        if cert is None or key is None:
            return server.add_insecure_port(address)
        credentials = grpc.ssl_server_credentials(
            [(Path(key).read_bytes(), Path(cert).read_bytes())]
        )
        return server.add_secure_port(address, credentials)


async def _stop(
    server: grpc.Server, bridge: TrioBridge, executor: ThreadPoolExecutor
) -> None:
    """Cancel what runs in trio for gRPC calls, then stop the server."""
    bridge.close()
    await trio.to_thread.run_sync(lambda: server.stop(SHUTDOWN_GRACE_S).wait())
    executor.shutdown(wait=False)
    log.info("grpc stopped")
