"""What the workloads need from a system: a store, workers and client drivers."""

from __future__ import annotations

import shutil
import socket
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

from qbench.procs import BenchError, Proc, Processes

READY_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class Context:
    """What every system is given: where to run, and with what."""

    procs: Processes
    work_dir: Path
    bench_python: str
    tq_python: str
    worker_processes: int
    concurrency: int
    """Threads per worker process of the peers."""
    tq_concurrency: int
    """Tasks at once per tq worker process, on its event loop."""


class System(ABC):
    """One task queue under test: its store (broker or Redis) and its workers."""

    name: str
    durability: str
    """The durability setting, in a few words for the tables' column."""
    persistence: str
    """The durability setting in full, for the list of systems."""
    batch_api: str
    """What the batch submit uses."""
    result_api: str
    """How the latency client learns that a task completed."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.store: Proc | None = None
        self.data_dir = ctx.work_dir / "unused"
        self.port = 0
        self._fresh = 0

    @property
    @abstractmethod
    def workers_text(self) -> str:
        """How the worker processes are started, for the report."""

    @abstractmethod
    def _spawn_store(self) -> Proc:
        """Start the store process on ``self.port`` and ``self.data_dir``."""

    @abstractmethod
    def start_workers(self, stamps_dir: Path) -> list[Proc]:
        """Start the worker processes, which record stamps in ``stamps_dir``."""

    @abstractmethod
    def driver(self, op: str, **options: object) -> list[str]:
        """The argv of a client driver running ``op``."""

    @abstractmethod
    def probe(self, filled: dict[str, object]) -> list[str]:
        """The argv of a driver that waits until the store serves the fill again."""

    def start(self) -> None:
        """Start a fresh store: new data directory, new port."""
        self._fresh += 1
        self.data_dir = self.ctx.work_dir / f"{self.name}-{self._fresh}"
        self.data_dir.mkdir(parents=True)
        self.port = free_port()
        self.restart()
        wait_port(self.port, self.store)

    def restart(self) -> None:
        """Start the store again on the same data and port (no waiting)."""
        self.store = self._spawn_store()

    def before_crash(self) -> None:  # noqa: B027 - most systems need nothing
        """Make what the restart workload filled durable, where it is not yet."""

    def crash(self) -> None:
        """kill -9 the store."""
        assert self.store is not None
        self.store.kill()

    def stop(self) -> None:
        """Kill the store and delete its data."""
        if self.store is not None:
            self.store.kill()
            self.store = None
        shutil.rmtree(self.data_dir, ignore_errors=True)

    @property
    def store_pid(self) -> int:
        """The pid whose RSS the memory workload reads."""
        assert self.store is not None
        return self.store.pid


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_port(port: int, proc: Proc | None, timeout_s: float = READY_TIMEOUT_S) -> None:
    """Wait until something accepts connections on ``port``.

    Raises:
        BenchError: ``proc`` exited first, or the time ran out.
    """
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and not proc.alive():
            raise BenchError(f"{proc.name} exited:\n{proc.log_tail()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.02)
    raise BenchError(f"nothing listens on port {port} after {timeout_s:g}s")
