"""Helpers of the REST tests: JSON task bodies, waiting on task states, and a
small WebSocket client over a plain socket (so a test can stop reading)."""

from __future__ import annotations

import base64
import json
import socket
from collections import deque
from collections.abc import Iterable
from typing import Any

import httpx
from processes import wait_until
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    CloseConnection,
    Event,
    Ping,
    RejectConnection,
    RejectData,
    Request,
    TextMessage,
)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def task_body(
    task_type: str = "echo", payload: bytes = b"hello", **extra: Any
) -> dict[str, Any]:
    return {"task_type": task_type, "payload": b64(payload), **extra}


def submit(
    api: httpx.Client, task_type: str = "echo", payload: bytes = b"hello", **extra: Any
) -> int:
    response = api.post("/api/v1/tasks", json=task_body(task_type, payload, **extra))
    assert response.status_code == 201, response.text
    return int(response.json()["task_id"])


def wait_for_state(
    api: httpx.Client, task_id: int, state: str, timeout_s: float = 30
) -> dict[str, Any]:
    seen: list[dict[str, Any]] = []

    def reached() -> bool:
        seen.append(api.get(f"/api/v1/tasks/{task_id}").json())
        return bool(seen[-1]["state"] == state)

    wait_until(reached, timeout_s, f"task {task_id} to be {state}")
    return seen[-1]


def error_of(response: httpx.Response) -> dict[str, str]:
    """The ``{code, message}`` of an error response, checking its shape."""
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message"}, body
    return dict(body["error"])


class Rejected(Exception):
    """The server answered the WebSocket handshake with an HTTP error."""

    def __init__(self, status: int, body: bytes) -> None:
        super().__init__(f"handshake refused with {status}: {body!r}")
        self.status = status
        self.body = body


class Closed(Exception):
    """The server closed the WebSocket."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"closed with {code}: {reason}")
        self.code = code
        self.reason = reason


class WsClient:
    """A blocking WebSocket client that reads only when asked to.

    ``receive_buffer`` shrinks the socket's receive buffer, so that a client
    that stops reading pushes back on the server after a few kilobytes.
    """

    def __init__(
        self,
        port: int,
        target: str,
        *,
        headers: Iterable[tuple[str, str]] = (),
        receive_buffer: int | None = None,
        timeout_s: float = 30.0,
    ) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if receive_buffer is not None:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        self.sock.settimeout(timeout_s)
        self.sock.connect(("127.0.0.1", port))
        self.ws = WSConnection(ConnectionType.CLIENT)
        self.messages: deque[dict[str, Any]] = deque()
        self.closed: Closed | None = None
        self._text = ""
        host = f"127.0.0.1:{port}"
        self._send(
            Request(
                host=host,
                target=target,
                extra_headers=[(k.encode(), v.encode()) for k, v in headers],
            )
        )
        self._handshake()

    def _send(self, event: Event) -> None:
        self.sock.sendall(self.ws.send(event))

    def _events(self) -> list[Event]:
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError(
                "the server closed the connection without a close frame"
            )
        self.ws.receive_data(data)
        return list(self.ws.events())

    def _handshake(self) -> None:
        status = 0
        body = b""
        while True:
            for event in self._events():
                if isinstance(event, AcceptConnection):
                    return
                if isinstance(event, RejectConnection):
                    status = event.status_code
                    if not event.has_body:
                        raise Rejected(status, b"")
                elif isinstance(event, RejectData):
                    body += event.data
                    if event.body_finished:
                        raise Rejected(status, body)
                else:
                    self._handle(event)

    def _handle(self, event: Event) -> None:
        if isinstance(event, TextMessage):
            self._text += event.data
            if event.message_finished:
                self.messages.append(json.loads(self._text))
                self._text = ""
        elif isinstance(event, Ping):
            self._send(event.response())
        elif isinstance(event, CloseConnection) and self.closed is None:
            self.closed = Closed(event.code, event.reason or "")
            self._send(event.response())

    def receive(self) -> dict[str, Any]:
        """The next message; raises `Closed` once the server has closed."""
        while not self.messages:
            if self.closed is not None:
                raise self.closed
            for event in self._events():
                self._handle(event)
        return self.messages.popleft()

    def receive_until(self, done: Any, limit: int = 10_000) -> list[dict[str, Any]]:
        """Messages up to and including the first for which ``done`` is true."""
        received: list[dict[str, Any]] = []
        while len(received) < limit:
            received.append(self.receive())
            if done(received[-1]):
                return received
        raise AssertionError(f"no matching message among {limit} received")

    def close(self) -> None:
        self.sock.close()
