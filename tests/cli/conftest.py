"""Fixtures for the command-line tests: real broker and worker processes, the
installed ``tq`` scripts pointed at them, and a real terminal in tmux.

One broker serves every test of a module, to keep the suite quick; tests keep
out of each other's way by giving their tasks a type of their own (the
``task_type`` fixture). Tests that stop or restart a broker get their own.
"""

from __future__ import annotations

import itertools
import os
import re
import shutil
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cli_support import FAST_CONFIG, Cli, Terminal
from processes import BrokerProcess, WorkerProcess

_terminals = itertools.count()
_task_types = itertools.count(1)


def _start_broker(root: Path, config: dict[str, object]) -> BrokerProcess:
    process = BrokerProcess(root / "data", root / "broker.log", config)
    process.start()
    return process


@pytest.fixture(scope="module")
def broker_config() -> dict[str, object]:
    """What the module's broker runs with; a module overrides it to change it."""
    return dict(FAST_CONFIG)


@pytest.fixture(scope="module")
def broker(
    tmp_path_factory: pytest.TempPathFactory, broker_config: dict[str, object]
) -> Iterator[BrokerProcess]:
    """The module's broker."""
    process = _start_broker(tmp_path_factory.mktemp("broker"), broker_config)
    yield process
    process.kill()


@pytest.fixture
def fresh_broker(tmp_path: Path) -> Iterator[BrokerProcess]:
    """A broker of the test's own, for tests that stop or restart it."""
    process = _start_broker(tmp_path, dict(FAST_CONFIG))
    yield process
    process.kill()


@pytest.fixture(scope="module")
def cli(broker: BrokerProcess) -> Cli:
    """``tq`` pointed at the module's broker."""
    return Cli(broker.address)


@pytest.fixture(scope="module")
def spawn_worker(
    broker: BrokerProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[..., WorkerProcess]]:
    """Start ``tq worker`` processes with the end-to-end handlers."""
    logs = tmp_path_factory.mktemp("workers")
    started: list[WorkerProcess] = []

    def spawn(concurrency: int = 1, **env: str) -> WorkerProcess:
        worker = WorkerProcess(
            broker.address, logs / f"worker-{len(started)}.log", concurrency, env
        )
        worker.start()
        started.append(worker)
        return worker

    yield spawn
    for worker in started:
        worker.kill()


@pytest.fixture
def task_type(request: pytest.FixtureRequest) -> str:
    """A task type no other test uses: the start of the test's name and a
    number, short enough that tables do not wrap it."""
    name = re.sub(r"[^a-z0-9]+", "-", request.node.name.removeprefix("test_"))
    return f"{name[:18].strip('-')}-{next(_task_types)}"


@pytest.fixture
def unreachable() -> str:
    """The address of a port nothing listens on (it was free a moment ago)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"127.0.0.1:{port}"


@pytest.fixture
def terminal(tmp_path: Path) -> Iterator[Terminal]:
    """A tmux terminal on a private tmux server, killed after the test."""
    if shutil.which("tmux") is None:
        pytest.skip(
            "tmux is not installed: the tq top tests run it in a real terminal "
            "(scripts/setup installs it; or apt-get install tmux)"
        )
    opened = Terminal(f"tq-cli-{os.getpid()}-{next(_terminals)}", tmp_path)
    yield opened
    opened.close()
