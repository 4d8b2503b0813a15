"""`AsyncClient`: the tq client for trio programs.

One connection carries many requests at once: each gets an id, a background
task reads responses and hands each to its caller. When the connection breaks,
calls in flight raise `ConnectionLost` and the next call reconnects, backing off
until ``reconnect_timeout`` has passed. TLS, when asked for, wraps the
connection before the hello; a TLS failure or an outright refusal by the
broker is raised at once, without retrying.
"""

from __future__ import annotations

import itertools
import logging
import os
from collections.abc import Iterable, Mapping
from datetime import timedelta
from types import TracebackType
from typing import Any, TypeVar

import trio

from tq.client import calls
from tq.client.calls import Call, TaskTuple, result_of
from tq.client.connection import (
    REFUSALS,
    Backoff,
    TlsSetting,
    WorkerHello,
    hello_args,
    hello_refusal,
    parse_address,
    tls_context,
    tls_failure,
)
from tq.client.models import Priority, TaskInfo, TaskPage
from tq.errors import ConnectionLost, TqError
from tq.protocol import FrameDecoder, Op, decode_body, encode_frame, request
from tq.protocol.streams import FrameSender, receiver

__all__ = ["AsyncClient"]

log = logging.getLogger("tq.client")

T = TypeVar("T")


class _Slot:
    __slots__ = ("done", "response")

    def __init__(self) -> None:
        self.done = trio.Event()
        self.response: dict[str, Any] | None = None


class _Link:
    """One live connection: its stream, reader task and waiting calls."""

    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self.pending: dict[int, _Slot] = {}
        self.sender = FrameSender(stream)
        self.closed = False
        self.hello: dict[str, Any] = {}
        # Why the broker refused the connection before the hello, if it did.
        self.refusal: TqError | None = None


class AsyncClient:
    """A client of one tq broker, for trio.

    Use it as ``async with AsyncClient.connect("127.0.0.1:6379") as client:``,
    or for a broker that serves TLS with a self-signed certificate,
    ``AsyncClient.connect("broker:6379", tls_ca="broker-cert.pem")``.
    """

    def __init__(
        self,
        address: str = "127.0.0.1:6379",
        *,
        token: str | None = None,
        tls: TlsSetting = False,
        tls_ca: str | os.PathLike[str] | None = None,
        worker: WorkerHello | None = None,
        reconnect_timeout: float = 30.0,
    ) -> None:
        """Prepare a client; `__aenter__` opens the connection.

        Args:
            address: The broker's ``HOST:PORT``.
            token: The broker's auth token, if it has one.
            tls: True to speak TLS, trusting the system's certificate
                authorities; or an ``ssl.SSLContext`` to use as it is. The
                broker's certificate must name the host of ``address``.
            tls_ca: A PEM file of the certificate authorities to trust instead
                of the system's (for a self-signed broker certificate, the
                certificate itself). Implies TLS.
            worker: Say hello as this worker (for the worker runtime).
            reconnect_timeout: How long a call keeps trying to reconnect.

        Raises:
            ValueError: The address is malformed, or ``tls_ca`` cannot be read.
        """
        self.address = address
        self._host, self._port = parse_address(address)
        self._token = token
        self._tls = tls_context(tls, tls_ca)
        self._worker = worker
        self._reconnect_timeout = reconnect_timeout
        self._ids = itertools.count(1)
        self._link: _Link | None = None
        self._connect_lock = trio.Lock()
        self._nursery: trio.Nursery | None = None
        self._nursery_cm: Any = None

    @classmethod
    def connect(
        cls,
        address: str = "127.0.0.1:6379",
        *,
        token: str | None = None,
        tls: TlsSetting = False,
        tls_ca: str | os.PathLike[str] | None = None,
        reconnect_timeout: float = 30.0,
    ) -> AsyncClient:
        """A client to use as an async context manager; arguments as `AsyncClient`."""
        return cls(
            address,
            token=token,
            tls=tls,
            tls_ca=tls_ca,
            reconnect_timeout=reconnect_timeout,
        )

    async def __aenter__(self) -> AsyncClient:
        """Open the connection (and the task that reads from it).

        Raises:
            ConnectionLost: The broker could not be reached in time.
            TlsError: TLS could not be set up: the broker's certificate is not
                trusted, or one side speaks TLS and the other does not.
            TooManyConnections: The broker is at its max_connections.
            Unauthorized: The token was refused.

        Each comes inside an ``ExceptionGroup``, as trio hands over whatever
        fails inside the client's nursery: catch it with ``except*``.
        """
        self._nursery_cm = trio.open_nursery()
        self._nursery = await self._nursery_cm.__aenter__()
        try:
            await self._ensure_link()
        except BaseException as exc:
            await self._nursery_cm.__aexit__(type(exc), exc, exc.__traceback__)
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        """Close the connection."""
        assert self._nursery is not None
        try:
            await self.aclose()
        finally:
            # Even when the caller is being cancelled (aclose then raises
            # Cancelled at its checkpoint), the nursery must be exited, or
            # trio's stack of nurseries is left corrupted.
            self._nursery.cancel_scope.cancel()
            result: bool | None = await self._nursery_cm.__aexit__(exc_type, exc, tb)
        return result

    async def aclose(self) -> None:
        """Close the connection; calls in flight raise `ConnectionLost`."""
        if self._link is not None:
            self._drop(self._link)
            await trio.aclose_forcefully(self._link.stream)

    @property
    def server_info(self) -> dict[str, Any]:
        """What the broker said in its hello (version, limits, intervals)."""
        return self._link.hello if self._link is not None else {}

    # Connection handling

    async def _ensure_link(self) -> _Link:
        if self._link is not None and not self._link.closed:
            return self._link
        async with self._connect_lock:
            if self._link is not None and not self._link.closed:
                return self._link
            self._link = await self._reconnect()
            return self._link

    async def _reconnect(self) -> _Link:
        backoff = Backoff()
        with trio.move_on_after(self._reconnect_timeout):
            while True:
                try:
                    return await self._open_link()
                except REFUSALS:
                    raise
                except (OSError, trio.BrokenResourceError, ConnectionLost) as exc:
                    delay = backoff.next_delay()
                    log.debug(
                        "connect to %s failed (%s); retrying in %.2fs",
                        self.address,
                        exc,
                        delay,
                    )
                    await trio.sleep(delay)
        raise ConnectionLost(
            f"cannot reach the broker at {self.address} "
            f"(gave up after {self._reconnect_timeout:g}s)"
        )

    async def _open_link(self) -> _Link:
        stream = await trio.open_tcp_stream(self._host, self._port)
        stream.setsockopt(6, 1, 1)  # TCP_NODELAY: requests are small and latency-bound
        link = _Link(stream if self._tls is None else await self._secure(stream))
        assert self._nursery is not None
        self._nursery.start_soon(self._read_loop, link)
        hello = request(0, Op.HELLO, hello_args(self._token, self._worker))
        try:
            link.hello = await self._exchange(link, 0, encode_frame(hello))
        except ConnectionLost:
            if link.refusal is not None:
                raise link.refusal from None
            raise
        return link

    async def _secure(
        self, stream: trio.SocketStream
    ) -> trio.SSLStream[trio.SocketStream]:
        """The stream with its TLS handshake done.

        Raises:
            TlsError: The handshake failed for a reason retrying cannot fix.
            trio.BrokenResourceError: The broker closed the connection.
        """
        assert self._tls is not None
        secured = trio.SSLStream(stream, self._tls, server_hostname=self._host)
        try:
            await secured.do_handshake()
        except trio.BrokenResourceError as exc:
            await trio.aclose_forcefully(stream)
            failure = tls_failure(exc, self.address)
            if failure is not None:
                raise failure from exc
            raise
        return secured

    async def _read_loop(self, link: _Link) -> None:
        decoder = FrameDecoder()
        receive = receiver(link.stream, 65536)
        try:
            while True:
                data = await receive()
                if not data:
                    break
                for body in decoder.feed(data):
                    self._deliver(link, decode_body(body))
        except (
            trio.BrokenResourceError,
            trio.ClosedResourceError,
            OSError,
            TqError,
        ) as exc:
            log.debug("connection to %s broke: %s", self.address, exc)
        finally:
            self._drop(link)

    def _deliver(self, link: _Link, response: dict[str, Any]) -> None:
        slot = link.pending.pop(response.get("id"), None)  # type: ignore[arg-type]
        if slot is None:
            refusal = None if link.hello else hello_refusal(response, self.address)
            if refusal is not None:
                # Refused before the hello was answered: connecting fails so.
                link.refusal = refusal
                self._drop(link)
                return
            if response.get("ok") is False:
                error = response.get("error") or {}
                log.warning("broker error without a request: %s", error.get("message"))
            return
        slot.response = response
        slot.done.set()

    def _drop(self, link: _Link) -> None:
        link.closed = True
        link.sender.close()
        for slot in link.pending.values():
            slot.done.set()
        link.pending.clear()

    async def _exchange(self, link: _Link, request_id: int, frame: bytes) -> Any:
        slot = _Slot()
        link.pending[request_id] = slot
        try:
            await link.sender.send(frame)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            self._drop(link)
            raise ConnectionLost(f"connection to {self.address} broke: {exc}") from exc
        await slot.done.wait()
        return _result(slot.response, self.address)

    async def call(self, call: Call[T]) -> T:
        """Send one request and decode its result.

        Raises:
            TqError: The broker's error, as its `tq.errors` class.
            ConnectionLost: The connection broke and could not be made again.
        """
        link = await self._ensure_link()
        request_id = next(self._ids)
        frame = encode_frame(request(request_id, call.op, call.args))
        return call.decode(await self._exchange(link, request_id, frame))

    # Operations

    async def submit_task(
        self,
        task_type: str,
        payload: bytes = b"",
        priority: int = Priority.normal(),
        *,
        delay: float | timedelta | None = None,
        max_retries: int | None = None,
        timeout_seconds: float | timedelta | None = None,
        idempotency_key: str | None = None,
    ) -> int:
        """Submit a task and return its id once it is stored (on disk with fsync on).

        Raises:
            QueueFull: The broker is at its queue depth threshold.
            BadRequest: An argument is out of bounds.
        """
        args = calls.task_args(
            task_type,
            payload,
            priority,
            delay=delay,
            max_retries=max_retries,
            timeout_seconds=timeout_seconds,
            idempotency_key=idempotency_key,
        )
        return await self.call(calls.submit(args))

    async def submit_many(
        self, tasks: Iterable[TaskTuple | Mapping[str, Any]]
    ) -> list[int]:
        """Submit tasks with one commit and return their ids in order."""
        return await self.call(calls.submit_many(tasks))

    async def get_task(self, task_id: int) -> TaskInfo:
        """One task. Raises `TaskNotFound`."""
        return await self.call(calls.get_task(task_id))

    async def list_tasks(
        self,
        status: str = "pending",
        *,
        task_type: str | None = None,
        limit: int = 100,
        cursor: bytes | None = None,
    ) -> TaskPage:
        """A page of tasks in one state."""
        return await self.call(calls.list_tasks(status, task_type, limit, cursor))

    async def cancel(self, task_id: int) -> str:
        """Cancel a task: ``cancelled``, or ``in_progress`` if its worker is told."""
        return await self.call(calls.cancel(task_id))

    async def wait_for_result(
        self,
        task_id: int,
        timeout: float | timedelta = 60.0,  # noqa: ASYNC109 - the broker's wait
    ) -> bytes:
        """Wait for a task's result.

        Raises:
            TaskFailed: It was dead-lettered or cancelled.
            Timeout: It did not finish in time.
        """
        return await self.call(calls.wait_for_result(task_id, timeout))

    async def stats(self) -> dict[str, Any]:
        """Counts by state, type and priority tier, and broker figures."""
        return await self.call(calls.stats())

    async def workers(self) -> list[dict[str, Any]]:
        """Live workers with their current tasks and heartbeat age."""
        return await self.call(calls.workers())

    async def dlq_list(
        self,
        *,
        task_type: str | None = None,
        limit: int = 100,
        cursor: bytes | None = None,
    ) -> TaskPage:
        """A page of dead letters."""
        return await self.call(calls.dlq_list(task_type, limit, cursor))

    async def dlq_requeue(self, task_id: int) -> int:
        """Requeue one dead letter with fresh retries."""
        return await self.call(calls.dlq_requeue(task_id))

    async def dlq_requeue_all(
        self, *, task_type: str | None = None, limit: int = 1000
    ) -> int:
        """Requeue dead letters, of one type or all; returns how many."""
        return await self.call(calls.dlq_requeue_all(task_type, limit))

    async def dlq_purge(
        self,
        *,
        older_than: float | timedelta | None = None,
        task_type: str | None = None,
        limit: int = 1000,
    ) -> int:
        """Delete dead letters; returns how many."""
        return await self.call(calls.dlq_purge(older_than, task_type, limit))


def _result(response: dict[str, Any] | None, address: str) -> Any:
    if response is None:
        raise ConnectionLost(f"connection to {address} broke before the answer came")
    return result_of(response)
