"""Child processes: started in their own process group, always killed at the end.

Every process the benchmark starts (brokers, Redis servers, workers, client
drivers) goes through one `Processes` registry, whose `close` kills each
process group that is still alive, so nothing outlives a run, even when a
workload fails half way. Drivers speak a three-line protocol on stdout and
stdin (see `qbench.drivers.common`).
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

KILL_WAIT_S = 10.0
WATCH_INTERVAL_S = 0.25


class BenchError(RuntimeError):
    """A workload could not be run as planned (a process died, a timeout)."""


@dataclass
class Proc:
    """One child process, leader of its own process group."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        """The process id (also its process group id)."""
        return self.popen.pid

    def alive(self) -> bool:
        """Whether it has not exited yet."""
        return self.popen.poll() is None

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to its whole process group and wait for the leader."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, sig)
        try:
            self.popen.wait(KILL_WAIT_S)
        except subprocess.TimeoutExpired:
            os.killpg(self.pid, signal.SIGKILL)
            self.popen.wait(KILL_WAIT_S)

    def log_tail(self, lines: int = 15) -> str:
        """The last lines of its stderr log, for error messages."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


@dataclass
class Processes:
    """Starts child processes and kills whatever is left of them on `close`."""

    log_dir: Path
    env: dict[str, str]
    _procs: list[Proc] = field(default_factory=list)
    _serial: int = 0

    def spawn(
        self,
        name: str,
        argv: Sequence[str],
        *,
        env: dict[str, str] | None = None,
        pipes: bool = False,
    ) -> Proc:
        """Start ``argv`` in a new session; stderr goes to a log file.

        With ``pipes``, stdin and stdout are pipes (for drivers); otherwise
        stdout joins stderr in the log and stdin is closed.
        """
        self._serial += 1
        log_path = self.log_dir / f"{self._serial:03d}-{name}.log"
        with log_path.open("wb") as log:
            popen = subprocess.Popen(  # noqa: S603 - our own argv, no shell
                list(argv),
                env={**self.env, **(env or {})},
                stdin=subprocess.PIPE if pipes else subprocess.DEVNULL,
                stdout=subprocess.PIPE if pipes else log,
                stderr=log,
                start_new_session=True,
            )
        proc = Proc(name, popen, log_path)
        self._procs.append(proc)
        return proc

    def close(self) -> None:
        """Kill every process group still alive."""
        for proc in reversed(self._procs):
            if proc.alive():
                proc.kill()
        self._procs.clear()


class Driver:
    """A client process that says ``ready``, waits for ``go``, then reports."""

    def __init__(self, proc: Proc) -> None:
        self.proc = proc
        self._lines: queue.Queue[bytes] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.popen.stdout is not None
        for line in self.proc.popen.stdout:
            self._lines.put(line)
        self._lines.put(b"")

    def expect(
        self, key: str, timeout_s: float, watch: Sequence[Proc] = ()
    ) -> dict[str, Any]:
        """The next message carrying ``key``.

        Raises:
            BenchError: The driver exited or said nothing in time, or one of
                the ``watch`` processes (the store, the workers) exited.
        """
        deadline = time.monotonic() + timeout_s
        while True:
            line = self._next_line(key, deadline, timeout_s, watch)
            if not line:
                raise self._failure(f"exited before {key!r}")
            try:
                message = json.loads(line)
            except ValueError:
                continue  # a library printing to stdout: not for us
            if "error" in message:
                raise self._failure(str(message["error"].get("message")))
            if key in message:
                return dict(message[key])

    def _next_line(
        self, key: str, deadline: float, timeout_s: float, watch: Sequence[Proc]
    ) -> bytes:
        while True:
            for proc in watch:
                if not proc.alive():
                    raise BenchError(
                        f"{proc.name} exited while {self.proc.name} waited for "
                        f"{key!r}:\n{proc.log_tail()}"
                    )
            left = deadline - time.monotonic()
            if left <= 0:
                raise self._failure(f"no {key!r} within {timeout_s:g}s")
            try:
                return self._lines.get(timeout=min(left, WATCH_INTERVAL_S))
            except queue.Empty:
                continue

    def go(self) -> None:
        """Tell the driver to start measuring."""
        assert self.proc.popen.stdin is not None
        self.proc.popen.stdin.write(b"go\n")
        self.proc.popen.stdin.flush()

    def _failure(self, what: str) -> BenchError:
        return BenchError(
            f"driver {self.proc.name}: {what}\n--- its log:\n{self.proc.log_tail()}"
        )


def run_drivers(
    procs: Processes,
    name: str,
    argvs: Sequence[Sequence[str]],
    *,
    timeout_s: float,
    env: dict[str, str] | None = None,
    before_go: Callable[[], None] | None = None,
    watch: Callable[[], Sequence[Proc]] = tuple,
) -> list[dict[str, Any]]:
    """Start one driver per argv, wait until all are ready, start them together.

    ``before_go`` runs once every driver is ready, just before go; ``watch``
    names the processes whose exit ends the wait at once (asked anew at each
    step, since ``before_go`` may replace them).

    Returns:
        Each driver's result, in the order of ``argvs``.
    """
    drivers = [
        Driver(procs.spawn(f"{name}{i}", argv, env=env, pipes=True))
        for i, argv in enumerate(argvs)
    ]
    try:
        for driver in drivers:
            driver.expect("ready", timeout_s, watch())
        if before_go is not None:
            before_go()
        for driver in drivers:
            driver.go()
        return [driver.expect("result", timeout_s, watch()) for driver in drivers]
    finally:
        for driver in drivers:
            driver.proc.kill()


def vm_rss_bytes(pid: int) -> int:
    """A process's resident set size, from the VmRSS line of /proc/PID/status."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise BenchError(f"no VmRSS in /proc/{pid}/status")


def wait_until(
    ready: Callable[[], bool],
    timeout_s: float,
    what: str,
    *,
    interval_s: float = 0.02,
) -> None:
    """Poll ``ready`` until it is true.

    Raises:
        BenchError: Naming ``what`` when ``timeout_s`` passes first.
    """
    deadline = time.monotonic() + timeout_s
    while not ready():
        if time.monotonic() > deadline:
            raise BenchError(f"timed out after {timeout_s:g}s waiting for {what}")
        time.sleep(interval_s)
