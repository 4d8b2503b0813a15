"""Helpers of the command-line tests: run the installed console scripts, check
their one-line errors, make dead letters, and drive a real terminal in tmux."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trio
from typer.testing import CliRunner

from tq import AsyncClient
from tq.cli import ExitCode, app
from tq.client import WorkerHello, calls

BIN = Path(sys.executable).parent
"""Where the virtual environment installed ``tq``, ``tq-admin`` and the rest."""

# Short intervals so that workers join and leave in moments; no gRPC, whose
# start-up every broker here would pay for nothing.
FAST_CONFIG: dict[str, object] = {
    "heartbeat_interval": "0.3s",
    "worker_timeout": "1.5s",
    "backoff_base": "0.1s",
    "backoff_max": "0.5s",
    "grpc_port": None,
    "log_level": "info",
}

RUN_TIMEOUT_S = 30.0
"""Longest any one command may run before the test fails."""


def clean_env(**extra: str) -> dict[str, str]:
    """The environment for a command: no stray TQ_BROKER or TQ_TOKEN of ours."""
    env = {k: v for k, v in os.environ.items() if k not in ("TQ_BROKER", "TQ_TOKEN")}
    env.update(extra)
    return env


@dataclass(frozen=True, repr=False)
class Run:
    """What one command did: its exit code and what it printed.

    Attributes:
        crash: The traceback of an exception that escaped the command when it
            ran in this process (a subprocess prints its own on stderr).
    """

    args: tuple[str, ...]
    code: int
    stdout_bytes: bytes
    stderr: str
    crash: str | None = None

    @property
    def stdout(self) -> str:
        return self.stdout_bytes.decode(errors="replace")

    def json(self) -> Any:
        """Stdout parsed as JSON; fails the test, showing the run, if it is not."""
        assert self.code == 0, self
        return json.loads(self.stdout)

    def __repr__(self) -> str:
        return (
            f"{' '.join(self.args)} exited {self.code}\n"
            f"--- stdout\n{self.stdout}--- stderr\n{self.stderr}"
            + (f"--- escaped\n{self.crash}" if self.crash else "")
        )


def run_script(
    script: str,
    *args: str,
    input: bytes | str | None = None,
    env: dict[str, str] | None = None,
    timeout_s: float = RUN_TIMEOUT_S,
) -> Run:
    """Run an installed console script (``tq``, ``tq-admin``...) to its end."""
    data = input.encode() if isinstance(input, str) else input
    done = subprocess.run(
        [str(BIN / script), *args],
        input=data,
        stdin=None if data is not None else subprocess.DEVNULL,
        capture_output=True,
        env=env if env is not None else clean_env(),
        timeout=timeout_s,
        check=False,
    )
    return Run(
        (script, *args),
        done.returncode,
        done.stdout,
        done.stderr.decode(errors="replace"),
    )


def run_in_process(
    *args: str,
    input: bytes | str | None = None,
    env: dict[str, str | None] | None = None,
) -> Run:
    """Run ``tq`` in this process with typer's runner: the same entry point
    and error handling as the script, without a Python start-up per call."""
    result = CliRunner().invoke(
        app, list(args), input=input, env=env, prog_name="tq", catch_exceptions=True
    )
    crash = None
    escaped = result.exception
    if escaped is not None and not isinstance(escaped, SystemExit):
        crash = "".join(traceback.format_exception(*result.exc_info))
    return Run(
        ("tq", *args), result.exit_code, result.stdout_bytes, result.stderr, crash
    )


def run_scripts_together(
    commands: Iterable[list[str]], env: dict[str, str], timeout_s: float = RUN_TIMEOUT_S
) -> list[Run]:
    """Run ``tq`` once per command, all at the same time, and wait for all."""
    started = [
        (
            command,
            subprocess.Popen(
                [str(BIN / "tq"), *command],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=env,
            ),
        )
        for command in commands
    ]
    runs = []
    for command, proc in started:
        out, err = proc.communicate(timeout=timeout_s)
        runs.append(Run(("tq", *command), proc.returncode, out, err.decode()))
    return runs


@dataclass(frozen=True)
class Cli:
    """The ``tq`` command pointed at one broker through ``TQ_BROKER``.

    Commands run in this process by default (see `run_in_process`); with
    ``process=True``, or any ``script`` but ``tq``, as a subprocess of the
    installed console script.
    """

    address: str

    def __call__(
        self,
        *args: str,
        input: bytes | str | None = None,
        process: bool = False,
        script: str = "tq",
        **env: str,
    ) -> Run:
        if process or script != "tq":
            full_env = clean_env(TQ_BROKER=self.address, **env)
            return run_script(script, *args, input=input, env=full_env)
        in_env: dict[str, str | None] = {"TQ_TOKEN": None, **env}
        return run_in_process(
            *args, input=input, env={**in_env, "TQ_BROKER": self.address}
        )

    def many(self, commands: Iterable[list[str]]) -> list[Run]:
        """Run the script once per command, side by side (see
        `run_scripts_together`)."""
        return run_scripts_together(commands, clean_env(TQ_BROKER=self.address))


def assert_one_line_error(run: Run, code: ExitCode, *fragments: str) -> str:
    """The command failed with ``code`` and one ``tq: reason`` line naming
    each fragment, nothing on stdout and no traceback; returns the line."""
    assert run.code == code, f"expected exit {int(code)} ({code.name}); {run}"
    assert "Traceback" not in run.stderr, str(run)
    assert run.crash is None, str(run)
    lines = run.stderr.splitlines()
    assert len(lines) == 1, f"expected one line on stderr; {run}"
    assert run.stdout == "", str(run)
    prog = run.args[0]
    assert lines[0].startswith(f"{prog}: "), str(run)
    for fragment in fragments:
        assert fragment in lines[0], f"expected {fragment!r} in the reason; {run}"
    return lines[0]


def assert_last_line_error(run: Run, code: ExitCode, *fragments: str) -> str:
    """As `assert_one_line_error`, for a daemon whose log lines come first."""
    assert run.code == code, f"expected exit {int(code)} ({code.name}); {run}"
    assert "Traceback" not in run.stderr, str(run)
    assert run.crash is None, str(run)
    last = run.stderr.splitlines()[-1]
    assert last.startswith(f"{run.args[0]}: "), str(run)
    for fragment in fragments:
        assert fragment in last, f"expected {fragment!r} in the reason; {run}"
    return last


def dead_letters(
    address: str, task_type: str, payloads: Iterable[bytes], error: str
) -> list[int]:
    """Submit tasks and dead-letter them at once, playing their worker.

    The test claims the tasks over the wire protocol as a worker would and
    rejects each, so dead letters exist without a worker process racing the
    test for them afterwards.

    Returns:
        The ids of the dead letters, in submit order.
    """
    items = [
        {"task_type": task_type, "payload": p, "priority": 150, "max_retries": 0}
        for p in payloads
    ]

    async def reject_all() -> list[int]:
        hello = WorkerHello(f"cli-tests-{task_type}", len(items), (task_type,))
        async with AsyncClient(address, worker=hello) as client:
            ids = await client.submit_many(items)
            claimed: list[dict[str, Any]] = []
            while len(claimed) < len(ids):
                want = len(ids) - len(claimed)
                claimed += await client.call(calls.claim(want, (task_type,), 5.0))
            for task in claimed:
                await client.call(
                    calls.fail(task["task_id"], task["lease_id"], error, reject=True)
                )
        return ids

    return trio.run(reject_all)


def poll(
    read: Callable[[], str],
    check: Callable[[str], bool],
    timeout_s: float,
    what: str,
) -> str:
    """Read until ``check`` holds and return what was read; fail showing the
    last reading if it never does within ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    seen = read()
    while not check(seen):
        if time.monotonic() > deadline:
            raise AssertionError(
                f"timed out after {timeout_s}s waiting for {what}; last saw:\n{seen}"
            )
        time.sleep(0.05)
        seen = read()
    return seen


class Terminal:
    """One tmux session on a private server, running one command.

    The command's exit code is written to a file when it ends, so a test can
    tell that it quit, and how; its pane stays open with what it showed last.
    """

    def __init__(self, socket_name: str, workdir: Path) -> None:
        tmux = shutil.which("tmux")
        assert tmux is not None
        self._tmux = tmux
        self._socket = socket_name
        self._workdir = workdir
        self._exit_file = workdir / f"{socket_name}.exit"

    def tmux(self, *args: str) -> str:
        done = subprocess.run(
            [self._tmux, "-u", "-L", self._socket, *args],
            capture_output=True,
            env=clean_env(LANG="C.UTF-8", LC_ALL="C.UTF-8"),
            timeout=10,
            check=True,
        )
        return done.stdout.decode(errors="replace")

    def start(self, command: list[str], width: int, height: int) -> None:
        """Open a ``width`` x ``height`` terminal running ``command``."""
        line = " ".join(shlex.quote(arg) for arg in command)
        shell = f"{line}; echo $? > {shlex.quote(str(self._exit_file))}"
        # The pane stays when the command ends, so its last screen can be read.
        self.tmux(
            *("-f", "/dev/null", "start-server", ";"),
            *("set-option", "-g", "remain-on-exit", "on", ";"),
            *("new-session", "-d", "-s", "t", "-x", str(width), "-y", str(height)),
            shell,
        )

    def screen(self) -> str:
        """The text on the screen now."""
        return self.tmux("capture-pane", "-p", "-t", "t")

    def scrollback(self) -> str:
        """Every line the terminal has shown, those scrolled off the top too
        (tmux's note that the command ended pushes the first one off)."""
        return self.tmux("capture-pane", "-p", "-S", "-", "-t", "t")

    def wait_for(
        self, check: Callable[[str], bool], what: str, timeout_s: float = 15.0
    ) -> str:
        """The screen once ``check`` holds for it (polled, bounded)."""
        return poll(self.screen, check, timeout_s, what)

    def wait_for_text(self, *texts: str, timeout_s: float = 15.0) -> str:
        """The screen once it shows every one of ``texts``."""
        return self.wait_for(
            lambda screen: all(text in screen for text in texts),
            " and ".join(repr(text) for text in texts),
            timeout_s,
        )

    def send_keys(self, *keys: str) -> None:
        self.tmux("send-keys", "-t", "t", *keys)

    def resize(self, width: int, height: int) -> None:
        self.tmux("resize-window", "-t", "t", "-x", str(width), "-y", str(height))

    def exit_code(self, timeout_s: float = 10.0) -> int:
        """The command's exit code, once it has ended."""
        text = poll(
            lambda: self._exit_file.read_text() if self._exit_file.exists() else "",
            lambda seen: seen.endswith("\n"),
            timeout_s,
            "the command in the terminal to end",
        )
        return int(text)

    def close(self) -> None:
        subprocess.run(
            [self._tmux, "-L", self._socket, "kill-server"],
            capture_output=True,
            timeout=10,
            check=False,
        )
