"""Real broker and worker processes for end-to-end tests."""

from __future__ import annotations

import os
import re
import resource
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

HERE = Path(__file__).parent
# The logger name tells the TCP server's line from the REST and metrics ones.
LISTENING = re.compile(r"tq\.broker\.server listening host=\S+ port=(\d+)")
REST_LISTENING = re.compile(r" rest listening host=\S+ port=(\d+)")
METRICS_LISTENING = re.compile(r" metrics listening host=\S+ port=(\d+)")
EPHEMERAL_PORTS = {"rest_port": 0, "metrics_port": 0, "grpc_port": 0}


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(HERE), env.get("PYTHONPATH", "")])
    return env


@dataclass
class BrokerProcess:
    """A `tq broker` process on its own data dir.

    Every port defaults to 0 (an ephemeral port) so tests can run side by side;
    the ports it got are read from the broker's log. A restart keeps the TCP
    port, so clients reconnect to the same address; the REST and metrics
    ports are ephemeral again unless the test's config sets them.

    ``file_size_limit`` caps the size of every file the broker writes
    (RLIMIT_FSIZE, with SIGXFSZ ignored): a write past it fails with EFBIG,
    which stands in for a full disk. ``extra_env`` is added to the broker's
    environment from the next start on (``TQ_CRASH_AT`` arms a crash point).
    """

    data_dir: Path
    log_path: Path
    config: dict[str, object] = field(default_factory=dict)
    extra_env: dict[str, str] = field(default_factory=dict)
    port: int = 0
    rest_port: int = 0
    metrics_port: int = 0
    file_size_limit: int | None = None
    proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def rest_url(self) -> str:
        return f"http://127.0.0.1:{self.rest_port}"

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    def start(self, timeout_s: float = 30.0) -> None:
        config_path = self.data_dir.parent / "broker.yaml"
        settings = {
            "port": self.port,
            "data_dir": str(self.data_dir),
            **EPHEMERAL_PORTS,
            **self.config,
        }
        config_path.write_text(yaml.safe_dump(settings))
        log = self.log_path.open("ab")
        offset = self.log_path.stat().st_size
        limit = self._limit_files if self.file_size_limit else None
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tq", "broker", "--config", str(config_path)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**_env(), **self.extra_env},
            preexec_fn=limit,  # noqa: PLW1509 - only sets an rlimit and a signal
        )
        self.port, self.rest_port, self.metrics_port = self._wait_for_ports(
            offset, timeout_s
        )

    def _limit_files(self) -> None:
        assert self.file_size_limit is not None
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        limit = self.file_size_limit
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    def _wait_for_ports(self, offset: int, timeout_s: float) -> tuple[int, int, int]:
        deadline = time.monotonic() + timeout_s
        patterns = (LISTENING, REST_LISTENING, METRICS_LISTENING)
        while time.monotonic() < deadline:
            text = self.log_path.read_bytes()[offset:].decode(errors="replace")
            matches = [pattern.search(text) for pattern in patterns]
            if all(matches):
                tcp, rest, metrics = (int(m.group(1)) for m in matches if m)
                return tcp, rest, metrics
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"broker exited with {self.proc.returncode}:\n{text}"
                )
            time.sleep(0.02)
        raise TimeoutError(f"broker did not listen within {timeout_s}s")

    def kill(self) -> None:
        """SIGKILL: no shutdown, no flush."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def wait_for_exit(self, timeout_s: float) -> int | None:
        """Wait for the broker to end on its own; its exit code, or None."""
        assert self.proc is not None
        try:
            code = self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return None
        self.proc = None
        return code

    def stop(self) -> int:
        """SIGTERM and wait; returns the exit code."""
        if self.proc is None:
            return 0
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=30)
        self.proc = None
        return code

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")


@dataclass
class WorkerProcess:
    """A `tq worker` process running the handlers of a module in tests/support."""

    address: str
    log_path: Path
    concurrency: int = 1
    extra_env: dict[str, str] = field(default_factory=dict)
    handlers: str = "e2e_handlers"
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {**_env(), **self.extra_env}
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tq",
                "worker",
                "--broker",
                self.address,
                "--concurrency",
                str(self.concurrency),
                "--handlers",
                self.handlers,
                "--drain-grace",
                "2",
            ],
            stdout=self.log_path.open("ab"),
            stderr=subprocess.STDOUT,
            env=env,
        )

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def stop(self) -> int:
        if self.proc is None:
            return 0
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=30)
        self.proc = None
        return code


def wait_until(predicate: object, timeout_s: float, what: str) -> None:
    """Poll ``predicate`` (a callable) until true; fail naming ``what``."""
    assert callable(predicate)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
