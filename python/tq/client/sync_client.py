"""`Client`: the blocking tq client, for ordinary Python programs.

It uses a plain socket (or a TLS one), one request at a time, and is safe to
share between threads (calls take turns). When the connection breaks, the call
in flight raises `ConnectionLost` and the next call reconnects, backing off
until ``reconnect_timeout`` has passed.
"""

from __future__ import annotations

import itertools
import os
import socket
import ssl
import threading
import time
from collections.abc import Iterable, Mapping
from datetime import timedelta
from types import TracebackType
from typing import Any, TypeVar

from tq.client import calls
from tq.client.calls import Call, TaskTuple, result_of
from tq.client.connection import (
    Backoff,
    TlsSetting,
    hello_args,
    hello_refusal,
    parse_address,
    tls_context,
    tls_failure,
)
from tq.client.models import Priority, TaskInfo, TaskPage
from tq.errors import ConnectionLost
from tq.protocol import FrameDecoder, Op, decode_body, encode_frame, request

__all__ = ["Client"]

T = TypeVar("T")


class Client:
    """A blocking client of one tq broker.

    Use it as ``with Client.connect("127.0.0.1:6379") as client:``, or for a
    broker that serves TLS with a self-signed certificate,
    ``Client.connect("broker:6379", tls_ca="broker-cert.pem")``.
    """

    def __init__(
        self,
        address: str = "127.0.0.1:6379",
        *,
        token: str | None = None,
        tls: TlsSetting = False,
        tls_ca: str | os.PathLike[str] | None = None,
        reconnect_timeout: float = 30.0,
    ) -> None:
        """Prepare a client; the first call (or `connect`) opens the connection.

        Args:
            address: The broker's ``HOST:PORT``.
            token: The broker's auth token, if it has one.
            tls: True to speak TLS, trusting the system's certificate
                authorities; or an ``ssl.SSLContext`` to use as it is. The
                broker's certificate must name the host of ``address``.
            tls_ca: A PEM file of the certificate authorities to trust instead
                of the system's (for a self-signed broker certificate, the
                certificate itself). Implies TLS.
            reconnect_timeout: How long a call keeps trying to reconnect.

        Raises:
            ValueError: The address is malformed, or ``tls_ca`` cannot be read.
        """
        self.address = address
        self._host, self._port = parse_address(address)
        self._token = token
        self._tls = tls_context(tls, tls_ca)
        self._reconnect_timeout = reconnect_timeout
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._decoder = FrameDecoder()
        self.server_info: dict[str, Any] = {}

    @classmethod
    def connect(
        cls,
        address: str = "127.0.0.1:6379",
        *,
        token: str | None = None,
        tls: TlsSetting = False,
        tls_ca: str | os.PathLike[str] | None = None,
        reconnect_timeout: float = 30.0,
    ) -> Client:
        """Connect to a broker; the arguments are those of `Client`.

        Raises:
            ConnectionLost: The broker could not be reached in time.
            TlsError: TLS could not be set up: the broker's certificate is not
                trusted, or one side speaks TLS and the other does not.
            TooManyConnections: The broker is at its max_connections.
            Unauthorized: The token was refused.
            ValueError: The address is malformed, or ``tls_ca`` cannot be read.
        """
        client = cls(
            address,
            token=token,
            tls=tls,
            tls_ca=tls_ca,
            reconnect_timeout=reconnect_timeout,
        )
        with client._lock:
            client._ensure_socket()
        return client

    def __enter__(self) -> Client:
        """Use the client as a context manager that closes it."""
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close the connection."""
        self.close()

    def close(self) -> None:
        """Close the connection; a later call opens a new one."""
        with self._lock:
            self._close_socket()

    def _close_socket(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
            self._decoder = FrameDecoder()

    # Connection handling

    def _ensure_socket(self) -> socket.socket:
        if self._sock is not None:
            return self._sock
        backoff = Backoff()
        deadline = time.monotonic() + self._reconnect_timeout
        while True:
            try:
                return self._open_socket()
            except OSError as exc:
                failure = tls_failure(exc, self.address)
                if failure is not None:
                    raise failure from exc
                delay = backoff.next_delay()
                if time.monotonic() + delay > deadline:
                    raise ConnectionLost(
                        f"cannot reach the broker at {self.address}: {exc} "
                        f"(gave up after {self._reconnect_timeout:g}s)"
                    ) from exc
                time.sleep(delay)

    def _open_socket(self) -> socket.socket:
        sock = socket.create_connection((self._host, self._port), timeout=10)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self._tls is not None:
            # The handshake runs here, under the connect timeout.
            sock = self._wrap(sock, self._tls)
        sock.settimeout(None)
        self._sock = sock
        try:
            hello = request(0, Op.HELLO, hello_args(self._token, None))
            self.server_info = result_of(self._say_hello(sock, encode_frame(hello)))
        except BaseException:
            self._close_socket()
            raise
        return sock

    def _wrap(self, sock: socket.socket, context: ssl.SSLContext) -> ssl.SSLSocket:
        try:
            return context.wrap_socket(sock, server_hostname=self._host)
        except BaseException:
            sock.close()
            raise

    def _say_hello(self, sock: socket.socket, frame: bytes) -> dict[str, Any]:
        """Send the hello and return its answer.

        A broker that refuses the connection outright answers with a frame
        without an id, and that refusal is raised as its error.
        """
        sock.sendall(frame)
        while True:
            data = sock.recv(65536)
            if not data:
                raise ConnectionResetError(
                    "the broker closed the connection before answering the hello"
                )
            for body in self._decoder.feed(data):
                response = decode_body(body)
                refusal = hello_refusal(response, self.address)
                if refusal is not None:
                    raise refusal
                if response.get("id") == 0:
                    return response

    def _exchange(
        self, sock: socket.socket, request_id: int, frame: bytes
    ) -> dict[str, Any]:
        sock.sendall(frame)
        while True:
            data = sock.recv(65536)
            if not data:
                raise ConnectionResetError("the broker closed the connection")
            for body in self._decoder.feed(data):
                response = decode_body(body)
                if response.get("id") == request_id:
                    return response

    def call(self, call: Call[T]) -> T:
        """Send one request and decode its result.

        Raises:
            TqError: The broker's error, as its `tq.errors` class.
            ConnectionLost: The connection broke; the request may or may not
                have taken effect.
        """
        with self._lock:
            sock = self._ensure_socket()
            request_id = next(self._ids)
            frame = encode_frame(request(request_id, call.op, call.args))
            try:
                response = self._exchange(sock, request_id, frame)
            except OSError as exc:
                self._close_socket()
                raise ConnectionLost(
                    f"connection to {self.address} broke: {exc}"
                ) from exc
        return call.decode(result_of(response))

    # Operations

    def submit_task(
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
        return self.call(calls.submit(args))

    def submit_many(self, tasks: Iterable[TaskTuple | Mapping[str, Any]]) -> list[int]:
        """Submit tasks with one commit and return their ids in order."""
        return self.call(calls.submit_many(tasks))

    def get_task(self, task_id: int) -> TaskInfo:
        """One task. Raises `TaskNotFound`."""
        return self.call(calls.get_task(task_id))

    def list_tasks(
        self,
        status: str = "pending",
        *,
        task_type: str | None = None,
        limit: int = 100,
        cursor: bytes | None = None,
    ) -> TaskPage:
        """A page of tasks in one state."""
        return self.call(calls.list_tasks(status, task_type, limit, cursor))

    def cancel(self, task_id: int) -> str:
        """Cancel a task: ``cancelled``, or ``in_progress`` if its worker is told."""
        return self.call(calls.cancel(task_id))

    def wait_for_result(self, task_id: int, timeout: float | timedelta = 60.0) -> bytes:
        """Wait for a task's result.

        Raises:
            TaskFailed: It was dead-lettered or cancelled.
            Timeout: It did not finish in time.
        """
        return self.call(calls.wait_for_result(task_id, timeout))

    def stats(self) -> dict[str, Any]:
        """Counts by state, type and priority tier, and broker figures."""
        return self.call(calls.stats())

    def workers(self) -> list[dict[str, Any]]:
        """Live workers with their current tasks and heartbeat age."""
        return self.call(calls.workers())

    def dlq_list(
        self,
        *,
        task_type: str | None = None,
        limit: int = 100,
        cursor: bytes | None = None,
    ) -> TaskPage:
        """A page of dead letters."""
        return self.call(calls.dlq_list(task_type, limit, cursor))

    def dlq_requeue(self, task_id: int) -> int:
        """Requeue one dead letter with fresh retries."""
        return self.call(calls.dlq_requeue(task_id))

    def dlq_requeue_all(
        self, *, task_type: str | None = None, limit: int = 1000
    ) -> int:
        """Requeue dead letters, of one type or all; returns how many."""
        return self.call(calls.dlq_requeue_all(task_type, limit))

    def dlq_purge(
        self,
        *,
        older_than: float | timedelta | None = None,
        task_type: str | None = None,
        limit: int = 1000,
    ) -> int:
        """Delete dead letters; returns how many."""
        return self.call(calls.dlq_purge(older_than, task_type, limit))
