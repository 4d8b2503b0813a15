"""The broker's TCP front end: framed CBOR requests to `Broker` operations.

Each connection starts with a ``hello`` (protocol version, optional token, and
for workers their identity); nothing else is answered before it. Requests after
the hello run concurrently, so a client may pipeline; responses carry the
request's id and go out in whatever order they finish. ``docs/protocol.md``
is the reference for clients in other languages.

With ``tls_cert`` and ``tls_key`` in the config the port serves TLS: each
connection's handshake runs in that connection's own task, under the hello
timeout, so a peer that stalls it holds up no one else.
"""

from __future__ import annotations

import contextlib
import hmac
import logging
import socket
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import trio

from tq import __version__
from tq._core import Submitted
from tq.broker.service import Broker
from tq.broker.specs import (
    MAX_DELAY_MS,
    MAX_ID,
    spec_from_args,
    specs_from_items,
    task_id_from_args,
)
from tq.broker.tls import server_context
from tq.broker.views import claimed_view, task_view, worker_view
from tq.broker.workers import WorkerInfo
from tq.errors import (
    BadRequest,
    FrameTooLarge,
    TlsRequired,
    TooManyConnections,
    TqError,
    Unauthorized,
)
from tq.protocol import (
    PROTOCOL_VERSION,
    Args,
    FrameDecoder,
    Op,
    decode_body,
    encode_frame,
    error_response,
    ok_response,
)
from tq.protocol.streams import Outbox, receiver

__all__ = ["ProtocolServer"]

log = logging.getLogger("tq.broker.server")

HELLO_TIMEOUT_S = 10.0
"""How long a new connection has to say hello before it is closed.

On a TLS port the handshake gets this long first, then the hello as long again.
"""

KEEPALIVE_IDLE_S = 60
"""Silence after which TCP keepalive probes an idle connection's peer."""

KEEPALIVE_INTERVAL_S = 10
KEEPALIVE_PROBES = 6
"""A peer that answers none of these probes, one every `KEEPALIVE_INTERVAL_S`,
is gone (powered off, cut off without a FIN): its half-open connection closes,
giving back its place under max_connections."""

FLUSH_TIMEOUT_S = 5.0
"""How long queued responses get to reach a peer whose connection is closing."""

MAX_IN_FLIGHT = 1024
"""Requests one connection may have unanswered at once; reading pauses beyond.

A request counts until its answer is written to the socket, so a peer that
sends without reading holds at most this many answers in the broker's memory.
The bound is in answers, not bytes: a peer that pipelines reads of the largest
payloads and reads nothing can still hold 1,024 of them.
"""

_MAX_WAIT_MS = 3600 * 1000
_MAX_CLAIM_WAIT_MS = 60 * 1000
_MAX_TOKEN_CHARS = 4096
# A TLS connection opens with a handshake record (content type 22); a tq frame
# opens with the high byte of its length, never 22 under the 1 GiB frame limit.
_TLS_HANDSHAKE = b"\x16"

Handler = Callable[["Connection", Args], Awaitable[Any]]
Reply = Callable[[Any], None]
"""Answers one request: with its result, or with the `TqError` it met."""
Writer = Callable[["Connection", Args, Reply], None]


@dataclass(eq=False)
class Connection:
    """One client's connection and what its hello said.

    ``outbox`` takes its answers, each with the request it answers (None for
    an answer to no request); once an answer is written, the request's place
    in ``in_flight`` is given back.
    """

    stream: trio.abc.Stream
    peer: str
    in_flight: trio.CapacityLimiter = field(
        default_factory=lambda: trio.CapacityLimiter(MAX_IN_FLIGHT)
    )
    worker_id: str | None = None
    said_hello: bool = False
    outbox: Outbox | None = None

    def open_outbox(self) -> Outbox:
        """Open the outbox on the connection's final (maybe TLS) stream."""
        self.outbox = Outbox(self.stream, self.in_flight.release_on_behalf_of)
        return self.outbox

    def require_worker(self, op: str) -> str:
        """The worker id, or a `BadRequest` for a client connection."""
        if self.worker_id is None:
            raise BadRequest(
                f"{op}: only a worker may call it; say hello with a worker id"
            )
        return self.worker_id


class ProtocolServer:
    """Serves the wire protocol for one `Broker`."""

    def __init__(self, broker: Broker) -> None:
        """Create the server; `serve` starts it."""
        self.broker = broker
        self.config = broker.config
        self._connections = 0
        self._tls: ssl.SSLContext | None = None
        if self.config.tls_cert is not None and self.config.tls_key is not None:
            self._tls = server_context(self.config.tls_cert, self.config.tls_key)
        self._handlers: dict[str, Handler] = {
            Op.GET: self._get,
            Op.LIST: self._list,
            Op.CANCEL: self._cancel,
            Op.WAIT: self._wait,
            Op.STATS: self._stats,
            Op.WORKERS: self._workers,
            Op.DLQ_LIST: self._dlq_list,
            Op.DLQ_REQUEUE: self._dlq_requeue,
            Op.DLQ_PURGE: self._dlq_purge,
            Op.CLAIM: self._claim,
            Op.FAIL: self._fail,
            Op.HEARTBEAT: self._heartbeat,
        }
        # Ops that only write: parsed in the read loop and answered from the
        # commit loop, with no task of their own (see `_dispatch`).
        self._writers: dict[str, Writer] = {
            Op.SUBMIT: self._submit,
            Op.SUBMIT_MANY: self._submit_many,
            Op.ACK: self._ack,
            Op.ACK_MANY: self._ack_many,
        }

    async def serve(
        self,
        *,
        task_status: trio.TaskStatus[
            list[trio.SocketListener]
        ] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Listen on the configured host and port until cancelled."""
        listeners = await trio.open_tcp_listeners(
            self.config.port, host=self.config.host
        )
        port = listeners[0].socket.getsockname()[1]
        log.info(
            "listening host=%s port=%d tls=%s",
            self.config.host,
            port,
            "on" if self._tls is not None else "off",
        )
        task_status.started(listeners)
        await trio.serve_listeners(self._handle_connection, listeners)

    # Connections

    async def _handle_connection(self, stream: trio.SocketStream) -> None:
        peer = _peer_name(stream)
        if self._connections >= self.config.max_connections:
            log.warning(
                "connection refused peer=%s: at max_connections=%d",
                peer,
                self.config.max_connections,
            )
            await self._turn_away(stream)
            return
        self._connections += 1
        _keep_alive(stream)
        conn = Connection(stream, peer)
        try:
            if self._tls is not None:
                secured = await self._open_tls(stream, self._tls, peer)
                if secured is None:
                    return
                conn.stream = secured
            # Its queue is unbounded, but never holds more than MAX_IN_FLIGHT
            # answers (and the one refusal of a bad hello or frame): see
            # `Connection.in_flight`.
            outbox = conn.open_outbox()
            async with trio.open_nursery() as writer:
                writer.start_soon(outbox.run)
                async with trio.open_nursery() as requests:
                    await self._read_loop(conn, requests)
                    # The peer is gone or broke the protocol: stop its requests.
                    requests.cancel_scope.cancel()
                # Nothing sends any more; let the writer flush what is queued.
                outbox.close()
                writer.cancel_scope.deadline = trio.current_time() + FLUSH_TIMEOUT_S
        except* trio.BrokenResourceError:
            # A reset (a peer killed with bytes unread) surfaces from inside
            # the nurseries, wrapped in an ExceptionGroup: it ends only this
            # connection, never the server.
            log.debug("connection broken peer=%s", peer)
        finally:
            self._connections -= 1
            # Before the socket closes: a commit that ends later must not
            # write its answer to a file descriptor some other connection
            # may have by then.
            if conn.outbox is not None:
                conn.outbox.close()
            await trio.aclose_forcefully(conn.stream)

    async def _turn_away(self, stream: trio.SocketStream) -> None:
        """Close a connection past max_connections, saying why if it can.

        On a TLS port the reason would have to be encrypted, which costs the
        handshake the limit is there to spare: the connection is just closed.
        """
        with trio.move_on_after(FLUSH_TIMEOUT_S):
            if self._tls is None:
                refusal = TooManyConnections(
                    f"the broker is at max_connections ({self.config.max_connections});"
                    " close another connection or raise max_connections"
                )
                with contextlib.suppress(trio.BrokenResourceError):
                    await stream.send_all(encode_frame(error_response(None, refusal)))
        await trio.aclose_forcefully(stream)

    async def _open_tls(
        self, stream: trio.SocketStream, context: ssl.SSLContext, peer: str
    ) -> trio.SSLStream[trio.SocketStream] | None:
        """The connection with its TLS handshake done, or None if it failed.

        A peer that speaks plain tq frames to the TLS port is told so in a
        plain frame, so that its client can say what is wrong.
        """
        with trio.move_on_after(HELLO_TIMEOUT_S):
            try:
                first = await stream.socket.recv(1, socket.MSG_PEEK)
                if not first:
                    return None
                if first != _TLS_HANDSHAKE:
                    await self._refuse_plaintext(stream, peer)
                    return None
                secured = trio.SSLStream(stream, context, server_side=True)
                await secured.do_handshake()
            except (trio.BrokenResourceError, OSError) as exc:
                log.info(
                    "tls handshake failed peer=%s; closing: %s",
                    peer,
                    exc.__cause__ or exc,
                )
                return None
            return secured
        log.info("no tls handshake within %gs peer=%s; closing", HELLO_TIMEOUT_S, peer)
        return None

    async def _refuse_plaintext(self, stream: trio.SocketStream, peer: str) -> None:
        log.info("plaintext connection to the tls port peer=%s; closing", peer)
        # Read what came so far: closing with bytes unread would reset the
        # connection, and the peer might lose the answer.
        await stream.receive_some(65536)
        refusal = TlsRequired(
            "this port serves TLS: connect with TLS (tls=True or tls_ca=... in "
            "the Python client, --tls or --tls-ca on the command line)"
        )
        await stream.send_all(encode_frame(error_response(None, refusal)))

    async def _read_loop(self, conn: Connection, requests: trio.Nursery) -> None:
        """Read frames until the peer closes or breaks the protocol.

        The first frame must be the hello, within `HELLO_TIMEOUT_S`; every
        later one is dispatched at once (see `_dispatch`), so that requests
        may be pipelined. Past `MAX_IN_FLIGHT` unanswered requests, reading
        pauses until one is answered.
        """
        decoder = FrameDecoder(self.config.max_frame_bytes)
        receive = receiver(conn.stream, 65536)
        hello_deadline = trio.current_time() + HELLO_TIMEOUT_S
        while True:
            data: bytes | bytearray | None = None
            if conn.said_hello:
                data = await receive()
            else:
                with trio.move_on_at(hello_deadline):
                    data = await receive()
            if data is None:
                log.info(
                    "no hello within %gs peer=%s; closing", HELLO_TIMEOUT_S, conn.peer
                )
                return
            if not data:
                return
            try:
                bodies = decoder.feed(data)
            except FrameTooLarge:
                bodies = []
            for body in bodies:
                if not conn.said_hello:
                    if not self._hello(conn, body):
                        return
                    continue
                # Its own borrower: equal bodies (a request sent twice) must
                # each hold a place.
                place = object()
                try:
                    conn.in_flight.acquire_on_behalf_of_nowait(place)
                except trio.WouldBlock:
                    await conn.in_flight.acquire_on_behalf_of(place)
                self._dispatch(conn, body, place, requests)
            if decoder.error is not None:
                log.info(
                    "frame too large peer=%s; closing: %s", conn.peer, decoder.error
                )
                self._reply_error(conn, None, decoder.error)
                return

    def _hello(self, conn: Connection, body: bytes) -> bool:
        """Answer the hello; False if it was refused and the peer must go."""
        request_id: int | None = None
        try:
            message = decode_body(body)
            request_id = _request_id(message)
            if message.get("op") != Op.HELLO:
                raise Unauthorized(
                    f"expected a hello first, got op {message.get('op')!r}"
                )
            result = self._accept_hello(conn, Args(message.get("args")))
        except TqError as exc:
            log.info("hello refused peer=%s: %s", conn.peer, exc)
            self._reply_error(conn, request_id, exc)
            return False
        conn.said_hello = True
        self._send(conn, encode_frame(ok_response(request_id or 0, result)))
        return True

    def _accept_hello(self, conn: Connection, args: Args) -> dict[str, Any]:
        version = args.integer("version", low=0, high=2**31)
        if version != PROTOCOL_VERSION:
            raise BadRequest(f"version: expected {PROTOCOL_VERSION}, got {version}")
        token = self.config.auth_token
        if token is not None and not _token_matches(args.raw.get("token"), token):
            raise Unauthorized("token: missing or wrong")
        if args.has("worker_id"):
            conn.worker_id = self._join_worker(args)
        return {
            "version": PROTOCOL_VERSION,
            "server": f"tq/{__version__}",
            "heartbeat_interval_ms": round(self.config.heartbeat_interval_s * 1000),
            "worker_timeout_ms": round(self.config.worker_timeout_s * 1000),
            "max_frame_bytes": self.config.max_frame_bytes,
            "max_payload_bytes": self.config.max_payload_bytes,
            "max_batch": self.config.max_batch,
            "max_page": self.config.max_page,
        }

    def _join_worker(self, args: Args) -> str:
        worker_id = args.name("worker_id")
        info = WorkerInfo(
            worker_id,
            hostname=args.name("hostname", default="?"),
            pid=args.integer("pid", low=0, high=2**31, default=0),
            concurrency=args.integer("concurrency", low=1, high=100_000, default=1),
            task_types=tuple(args.names("task_types", max_len=1000) or ()),
        )
        self.broker.workers.join(info)
        return worker_id

    def _dispatch(
        self,
        conn: Connection,
        body: bytes,
        place: object,
        requests: trio.Nursery,
    ) -> None:
        """Start answering one request, which holds ``place`` in ``in_flight``.

        Writes (submits and acks) are parsed here and queued for the next group
        commit, which answers them when it is done: the busiest requests cost
        no task and no wake-up of their own. Every other op runs in a task of
        its own, as it may wait (a claim's long poll, a read in a thread).
        """
        request_id: int | None = None

        def reply(outcome: Any) -> None:
            if isinstance(outcome, TqError):
                frame = encode_frame(error_response(request_id, outcome))
            else:
                frame = encode_frame(ok_response(request_id or 0, outcome))
            self._send(conn, frame, place)

        try:
            message = decode_body(body)
            request_id = _request_id(message)
            op = message.get("op")
            writer = self._writers.get(op) if isinstance(op, str) else None
            handler = None if writer is not None else self._handler_for(op)
            if conn.worker_id is not None:
                self.broker.workers.touch(conn.worker_id)
            args = Args(message.get("args"))
            if writer is not None:
                writer(conn, args, reply)
                return
        except TqError as exc:
            reply(exc)
            return
        except Exception:
            log.exception(
                "internal error answering peer=%s request_id=%s", conn.peer, request_id
            )
            reply(TqError("internal error; see the broker log"))
            return
        assert handler is not None
        requests.start_soon(self._run_request, conn, handler, args, reply)

    async def _run_request(
        self, conn: Connection, handler: Handler, args: Args, reply: Reply
    ) -> None:
        try:
            result = await handler(conn, args)
        except TqError as exc:
            reply(exc)
        except Exception:
            log.exception("internal error answering peer=%s", conn.peer)
            reply(TqError("internal error; see the broker log"))
        else:
            reply(result)

    def _handler_for(self, op: object) -> Handler:
        if op == Op.HELLO:
            raise BadRequest("op: hello was already said on this connection")
        handler = self._handlers.get(op) if isinstance(op, str) else None
        if handler is None:
            known = sorted([*self._handlers, *self._writers])
            raise BadRequest(f"op: expected one of {', '.join(known)}, got {op!r}")
        return handler

    @staticmethod
    def _send(conn: Connection, frame: bytes, request: object = None) -> None:
        # A connection that closed while its request was being committed has
        # nobody left to tell: its outbox drops the answer, and the outcome
        # stands all the same.
        assert conn.outbox is not None, "answers start after the outbox opens"
        conn.outbox.put(frame, request)

    def _reply_error(
        self, conn: Connection, request_id: int | None, error: TqError
    ) -> None:
        self._send(conn, encode_frame(error_response(request_id, error)))

    # Client operations

    def _submit(self, conn: Connection, args: Args, reply: Reply) -> None:
        def answer(outcome: list[Submitted] | TqError) -> None:
            if isinstance(outcome, TqError):
                reply(outcome)
            else:
                (submitted,) = outcome
                reply({"task_id": submitted.task_id, "created": submitted.created})

        self.broker.submit_many_soon(
            [spec_from_args(args, self.config.max_payload_bytes)], answer
        )

    def _submit_many(self, conn: Connection, args: Args, reply: Reply) -> None:
        items = args.items("tasks", max_len=self.config.max_batch)
        specs = specs_from_items(items, self.config.max_payload_bytes)

        def answer(outcome: list[Submitted] | TqError) -> None:
            if isinstance(outcome, TqError):
                reply(outcome)
            else:
                reply(
                    {
                        "task_ids": [s.task_id for s in outcome],
                        "created": [s.created for s in outcome],
                    }
                )

        self.broker.submit_many_soon(specs, answer)

    async def _get(self, conn: Connection, args: Args) -> dict[str, Any]:
        return task_view(await self.broker.get(task_id_from_args(args)))

    async def _list(self, conn: Connection, args: Args) -> dict[str, Any]:
        page = await self.broker.list_tasks(
            args.name("state"),
            args.optional_name("task_type"),
            args.integer("limit", low=1, high=self.config.max_page, default=100),
            args.optional_blob("cursor", max_len=64),
        )
        return {
            "tasks": [task_view(task) for task in page.tasks],
            "next_cursor": page.next_cursor,
        }

    async def _cancel(self, conn: Connection, args: Args) -> dict[str, Any]:
        return {"state": await self.broker.cancel(task_id_from_args(args))}

    async def _wait(self, conn: Connection, args: Args) -> dict[str, Any]:
        timeout_ms = args.integer(
            "timeout_ms", low=0, high=_MAX_WAIT_MS, default=30_000
        )
        return task_view(
            await self.broker.wait(task_id_from_args(args), timeout_ms / 1000)
        )

    async def _stats(self, conn: Connection, args: Args) -> dict[str, Any]:
        return await self.broker.stats()

    async def _workers(self, conn: Connection, args: Args) -> list[dict[str, Any]]:
        now = trio.current_time()
        views = []
        for info in self.broker.workers.all():
            leases = await self.broker.worker_leases(info.worker_id)
            views.append(worker_view(info, leases, now))
        return views

    async def _dlq_list(self, conn: Connection, args: Args) -> dict[str, Any]:
        page = await self.broker.list_tasks(
            "dead_letter",
            args.optional_name("task_type"),
            args.integer("limit", low=1, high=self.config.max_page, default=100),
            args.optional_blob("cursor", max_len=64),
        )
        return {
            "tasks": [task_view(task) for task in page.tasks],
            "next_cursor": page.next_cursor,
        }

    async def _dlq_requeue(self, conn: Connection, args: Args) -> dict[str, Any]:
        if args.has("task_id"):
            await self.broker.dlq_requeue(task_id_from_args(args))
            return {"requeued": 1}
        if not args.flag("all", default=False):
            raise BadRequest("dlq_requeue: expected a task_id or all=true, got neither")
        limit = args.integer("limit", low=1, high=100_000, default=1000)
        return {
            "requeued": await self.broker.dlq_requeue_all(
                args.optional_name("task_type"), limit
            )
        }

    async def _dlq_purge(self, conn: Connection, args: Args) -> dict[str, Any]:
        older_than_ms = args.optional_integer("older_than_ms", low=0, high=2**53)
        purged = await self.broker.dlq_purge(
            None if older_than_ms is None else older_than_ms / 1000,
            args.optional_name("task_type"),
            args.integer("limit", low=1, high=100_000, default=1000),
        )
        return {"purged": purged}

    # Worker operations

    async def _claim(self, conn: Connection, args: Args) -> dict[str, Any]:
        worker_id = conn.require_worker("claim")
        tasks = await self.broker.claim(
            worker_id,
            args.integer("max_tasks", low=1, high=self.config.max_batch, default=1),
            args.names("task_types", max_len=1000),
            args.integer("wait_ms", low=0, high=_MAX_CLAIM_WAIT_MS, default=0) / 1000,
        )
        return {"tasks": [claimed_view(task) for task in tasks]}

    def _ack(self, conn: Connection, args: Args, reply: Reply) -> None:
        conn.require_worker("ack")
        ack = self._ack_args(args)

        def answer(errors: list[TqError | None]) -> None:
            (error,) = errors
            reply({} if error is None else error)

        self.broker.ack_many_soon([ack], answer)

    def _ack_many(self, conn: Connection, args: Args, reply: Reply) -> None:
        conn.require_worker("ack_many")
        items = args.items("acks", max_len=self.config.max_batch)
        acks = [self._ack_args(Args(item)) for item in items]

        def answer(errors: list[TqError | None]) -> None:
            reply({"errors": [_error_map(error) for error in errors]})

        self.broker.ack_many_soon(acks, answer)

    def _ack_args(self, args: Args) -> tuple[int, int, bytes]:
        return (
            task_id_from_args(args),
            args.integer("lease_id", low=1, high=MAX_ID),
            args.blob("result", max_len=self.config.max_payload_bytes, default=b""),
        )

    async def _fail(self, conn: Connection, args: Args) -> dict[str, Any]:
        conn.require_worker("fail")
        retry_delay_ms = args.optional_integer(
            "retry_delay_ms", low=0, high=MAX_DELAY_MS
        )
        state = await self.broker.fail(
            task_id_from_args(args),
            args.integer("lease_id", low=1, high=MAX_ID),
            args.text("error", max_len=4096) or "failed without an error message",
            retry_delay_s=None if retry_delay_ms is None else retry_delay_ms / 1000,
            reject=args.flag("reject", default=False),
        )
        return {"state": state}

    async def _heartbeat(self, conn: Connection, args: Args) -> dict[str, Any]:
        worker_id = conn.require_worker("heartbeat")
        task_ids = (
            args.items("task_ids", max_len=100_000) if args.has("task_ids") else []
        )
        ids = [t for t in task_ids if isinstance(t, int) and not isinstance(t, bool)]
        return {"cancel": await self.broker.heartbeat(worker_id, ids)}


def _token_matches(given: object, token: str) -> bool:
    """Whether a hello's token is the broker's, compared in constant time.

    Anything else (absent, empty, not text, too long) is a wrong token, and is
    refused as one: what was wrong with it is nobody's business.
    """
    if not isinstance(given, str) or not 0 < len(given) <= _MAX_TOKEN_CHARS:
        return False
    return hmac.compare_digest(given.encode(), token.encode())


def _error_map(error: TqError | None) -> dict[str, str] | None:
    return None if error is None else {"code": error.code, "message": error.message}


def _request_id(message: dict[str, Any]) -> int:
    request_id = message.get("id")
    if not isinstance(request_id, int) or isinstance(request_id, bool):
        raise BadRequest(f"id: expected an integer request id, got {request_id!r}")
    if not 0 <= request_id <= MAX_ID:
        raise BadRequest(f"id: expected 0 to {MAX_ID}, got {request_id}")
    return request_id


def _keep_alive(stream: trio.SocketStream) -> None:
    """Turn on TCP keepalive with tq's timings, where the platform has them."""
    stream.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, True)
    timings = {
        "TCP_KEEPIDLE": KEEPALIVE_IDLE_S,
        "TCP_KEEPINTVL": KEEPALIVE_INTERVAL_S,
        "TCP_KEEPCNT": KEEPALIVE_PROBES,
    }
    for name, value in timings.items():
        if hasattr(socket, name):
            stream.setsockopt(socket.IPPROTO_TCP, getattr(socket, name), value)


def _peer_name(stream: trio.SocketStream) -> str:
    try:
        host, port = stream.socket.getpeername()[:2]
    except OSError:
        return "?"
    return f"{host}:{port}"
