"""Helpers of the security tests: self-signed certificates, raw frames on the
TCP port, a WebSocket handshake over TLS, and the broker's gRPC port."""

from __future__ import annotations

import re
import shutil
import socket
import ssl
import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cbor2
import psutil
from processes import BrokerProcess, wait_until
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, RejectConnection, Request, TextMessage

from tq.protocol import Op

TOKEN = "s3cret-token"  # noqa: S105 (a test token, not a secret)
GRPC_LISTENING = re.compile(r" grpc listening host=\S+ port=(\d+)")

# Short intervals so that workers join and leave in moments.
FAST_CONFIG: dict[str, object] = {
    "heartbeat_interval": "0.3s",
    "worker_timeout": "1.5s",
    "backoff_base": "0.1s",
    "backoff_max": "0.5s",
    "log_level": "info",
    "grpc_port": 0,
}


# Every op with arguments it would serve


def args_for(op: Op, task_id: int) -> dict[str, Any]:
    """Arguments that would change ``task_id`` or the queue if they were served."""
    lease = {"task_id": task_id, "lease_id": 1}
    return {
        Op.SUBMIT: {"task_type": "echo", "payload": b"x"},
        Op.SUBMIT_MANY: {"tasks": [{"task_type": "echo", "payload": b"x"}]},
        Op.GET: {"task_id": task_id},
        Op.LIST: {"state": "pending"},
        Op.CANCEL: {"task_id": task_id},
        Op.WAIT: {"task_id": task_id, "timeout_ms": 0},
        Op.STATS: {},
        Op.WORKERS: {},
        Op.DLQ_LIST: {},
        Op.DLQ_REQUEUE: {"all": True},
        Op.DLQ_PURGE: {},
        Op.CLAIM: {"max_tasks": 1},
        Op.ACK: {**lease, "result": b"forged"},
        Op.ACK_MANY: {"acks": [lease]},
        Op.FAIL: {**lease, "error": "forged", "reject": True},
        Op.HEARTBEAT: {"task_ids": [task_id]},
    }[op]


OPS = [op for op in Op if op != Op.HELLO]


# Certificates


@dataclass(frozen=True)
class CertFiles:
    """A self-signed certificate (its own CA) and its private key, as PEM."""

    cert: Path
    key: Path


def make_certificate(directory: Path, name: str, *hosts: str) -> CertFiles:
    """A self-signed certificate naming ``hosts`` (DNS names or IP addresses)."""
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / f"{name}-cert.pem", directory / f"{name}-key.pem"
    names = ",".join(
        f"IP:{host}" if host.replace(".", "").isdigit() else f"DNS:{host}"
        for host in hosts
    )
    openssl = shutil.which("openssl")
    assert openssl is not None, "the security tests need the openssl binary"
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            f"/CN={name}",
            "-addext",
            f"subjectAltName={names}",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return CertFiles(cert, key)


def trusting(cert: CertFiles) -> ssl.SSLContext:
    """A client context that trusts ``cert`` alone."""
    return ssl.create_default_context(cafile=str(cert.cert))


# Raw frames on the TCP port


def frame(message: object) -> bytes:
    body = cbor2.dumps(message)
    return struct.pack(">I", len(body)) + body


def rss_mb(pid: int) -> float:
    """The resident memory of process ``pid``, in MB."""
    rss: int = psutil.Process(pid).memory_info().rss
    return rss / 2**20


def hello(token: object = None, *, worker_id: str | None = None) -> bytes:
    args: dict[str, Any] = {"version": 1}
    if token is not None:
        args["token"] = token
    if worker_id is not None:
        args["worker_id"] = worker_id
    return frame({"id": 0, "op": "hello", "args": args})


@dataclass
class Answers:
    """What the broker sent on a connection, and whether it closed it."""

    responses: list[dict[str, Any]]
    closed: bool


def read_answers(sock: socket.socket, timeout_s: float = 10.0) -> Answers:
    """Every response until the broker closes, or ``timeout_s`` of silence."""
    sock.settimeout(timeout_s)
    data = b""
    closed = False
    try:
        while chunk := sock.recv(65536):
            data += chunk
        closed = True
    except TimeoutError:
        pass
    except ConnectionResetError:
        closed = True
    responses = []
    while len(data) >= 4:
        (length,) = struct.unpack(">I", data[:4])
        responses.append(cbor2.loads(data[4 : 4 + length]))
        data = data[4 + length :]
    return Answers(responses, closed)


class Wire:
    """One raw protocol connection that sends a request and reads its answer."""

    def __init__(self, port: int, context: ssl.SSLContext | None = None) -> None:
        sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.sock = (
            sock
            if context is None
            else context.wrap_socket(sock, server_hostname="127.0.0.1")
        )
        self._ids = 0
        self._buffer = b""

    def request(self, op: str, args: dict[str, Any] | None = None) -> dict[str, Any]:
        self._ids += 1
        self.sock.sendall(frame({"id": self._ids, "op": op, "args": args or {}}))
        return self.receive()

    def say_hello(self, token: str | None, worker_id: str | None = None) -> Any:
        self.sock.sendall(hello(token, worker_id=worker_id))
        return self.receive()

    def receive(self) -> dict[str, Any]:
        while True:
            if len(self._buffer) >= 4:
                (length,) = struct.unpack(">I", self._buffer[:4])
                if len(self._buffer) >= 4 + length:
                    body = self._buffer[4 : 4 + length]
                    self._buffer = self._buffer[4 + length :]
                    message: dict[str, Any] = cbor2.loads(body)
                    return message
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("the broker closed the connection")
            self._buffer += chunk

    def close(self) -> None:
        self.sock.close()


def result(response: dict[str, Any]) -> Any:
    """The result of a response, failing the test on an error."""
    assert response.get("ok") is True, response
    return response["result"]


# WebSocket over TLS


def open_event_stream(
    port: int, target: str, context: ssl.SSLContext
) -> tuple[ssl.SSLSocket, WSConnection]:
    """A WebSocket on ``target`` over TLS, its handshake accepted."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock = context.wrap_socket(raw, server_hostname="127.0.0.1")
    ws = WSConnection(ConnectionType.CLIENT)
    sock.sendall(ws.send(Request(host=f"127.0.0.1:{port}", target=target)))
    while True:
        data = sock.recv(65536)
        if not data:
            raise ConnectionError("closed during the WebSocket handshake")
        ws.receive_data(data)
        for event in ws.events():
            if isinstance(event, AcceptConnection):
                return sock, ws
            if isinstance(event, RejectConnection):
                raise AssertionError(f"handshake refused: {event.status_code}")


def next_text(sock: ssl.SSLSocket, ws: WSConnection) -> str:
    """The next text message of a WebSocket (short messages: one frame each)."""
    while True:
        for event in ws.events():
            if isinstance(event, TextMessage):
                return str(event.data)
        data = sock.recv(65536)
        if not data:
            raise ConnectionError("closed before a message came")
        ws.receive_data(data)


# gRPC


def grpc_port_of(broker: BrokerProcess) -> int:
    """The gRPC port the broker logged, waiting for the line if need be."""
    ports: list[int] = []

    def logged() -> bool:
        ports[:] = [int(p) for p in GRPC_LISTENING.findall(broker.log_text())]
        return bool(ports)

    wait_until(logged, 30, "the broker to log its gRPC port")
    return ports[-1]
