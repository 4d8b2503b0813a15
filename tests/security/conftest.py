"""Fixtures for the security tests: a self-signed certificate, real broker
processes with a test's own settings, and real workers."""

from __future__ import annotations

import itertools
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from processes import BrokerProcess, WorkerProcess
from security_support import FAST_CONFIG, CertFiles, make_certificate


@pytest.fixture(scope="session")
def certs_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the certificates are made; tests that need one skip without openssl
    (the ``cryptography`` package is not among tq's dependencies)."""
    if shutil.which("openssl") is None:
        pytest.skip("making a test certificate needs the openssl binary")
    return tmp_path_factory.mktemp("certs")


@pytest.fixture(scope="session")
def cert(certs_dir: Path) -> CertFiles:
    """The broker's certificate, for 127.0.0.1 and localhost; its own CA."""
    return make_certificate(certs_dir, "broker", "127.0.0.1", "localhost")


@pytest.fixture(scope="session")
def stranger(certs_dir: Path) -> CertFiles:
    """Another self-signed certificate, which signed nothing the broker has."""
    return make_certificate(certs_dir, "stranger", "127.0.0.1", "localhost")


@pytest.fixture
def start_broker(tmp_path: Path) -> Iterator[Callable[..., BrokerProcess]]:
    """Start brokers with the fast settings plus the test's own; killed after."""
    started: list[BrokerProcess] = []
    numbers = itertools.count()

    def start(**config: object) -> BrokerProcess:
        root = tmp_path / f"broker-{next(numbers)}"
        root.mkdir()
        process = BrokerProcess(
            root / "data", root / "broker.log", {**FAST_CONFIG, **config}
        )
        started.append(process)
        process.start()
        return process

    yield start
    for process in started:
        process.kill()


@pytest.fixture
def spawn_worker(tmp_path: Path) -> Iterator[Callable[..., WorkerProcess]]:
    """Start `tq worker` processes on an address, with extra environment."""
    started: list[WorkerProcess] = []

    def spawn(address: str, **env: str) -> WorkerProcess:
        log = tmp_path / f"worker-{len(started)}.log"
        worker = WorkerProcess(address, log, 1, env)
        worker.start()
        started.append(worker)
        return worker

    yield spawn
    for worker in started:
        worker.kill()
