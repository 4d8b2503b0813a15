"""Addresses, the hello, and how both clients back off while reconnecting."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from typing import Any

from tq.protocol import PROTOCOL_VERSION

__all__ = ["Backoff", "WorkerHello", "hello_args", "parse_address"]

DEFAULT_PORT = 6379


def parse_address(address: str) -> tuple[str, int]:
    """Split ``HOST:PORT`` (or ``HOST``, for the default port 6379).

    Raises:
        ValueError: The port is not a number from 1 to 65535.
    """
    host, sep, port_text = address.rpartition(":")
    if not sep:
        return address, DEFAULT_PORT
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"broker address: expected HOST:PORT, got {address!r}")
    return host.strip("[]") or "127.0.0.1", int(port_text)


@dataclass(frozen=True)
class WorkerHello:
    """Who a worker is, said in its hello."""

    worker_id: str
    concurrency: int = 1
    task_types: tuple[str, ...] = ()
    hostname: str = field(default_factory=socket.gethostname)
    pid: int = field(default_factory=os.getpid)


def hello_args(token: str | None, worker: WorkerHello | None) -> dict[str, Any]:
    """The arguments of a hello."""
    args: dict[str, Any] = {"version": PROTOCOL_VERSION, "client": "tq-python"}
    if token is not None:
        args["token"] = token
    if worker is not None:
        args.update(
            worker_id=worker.worker_id,
            concurrency=worker.concurrency,
            hostname=worker.hostname,
            pid=worker.pid,
        )
        if worker.task_types:
            args["task_types"] = list(worker.task_types)
    return args


@dataclass
class Backoff:
    """Delays between reconnect attempts: doubling from ``first_s`` to ``max_s``."""

    first_s: float = 0.05
    max_s: float = 2.0
    _next_s: float = 0.0

    def next_delay(self) -> float:
        """The delay before the next attempt."""
        self._next_s = (
            self.first_s if self._next_s == 0 else min(self._next_s * 2, self.max_s)
        )
        return self._next_s

    def reset(self) -> None:
        """Start again from ``first_s`` after a success."""
        self._next_s = 0.0
