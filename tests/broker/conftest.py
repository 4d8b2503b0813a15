"""Fixtures for end-to-end tests: a real broker process and real workers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from processes import BrokerProcess, WorkerProcess

# Short intervals so that lost workers and backoffs play out in seconds.
FAST_CONFIG: dict[str, object] = {
    "heartbeat_interval": "0.3s",
    "worker_timeout": "1.5s",
    "backoff_base": "0.2s",
    "backoff_max": "2s",
    "backoff_jitter": 0.5,
    "log_level": "info",
}


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[BrokerProcess]:
    process = BrokerProcess(
        tmp_path / "data", tmp_path / "broker.log", dict(FAST_CONFIG)
    )
    process.start()
    yield process
    process.kill()


@pytest.fixture
def spawn_worker(
    broker: BrokerProcess, tmp_path: Path
) -> Iterator[Callable[..., WorkerProcess]]:
    started: list[WorkerProcess] = []

    def spawn(concurrency: int = 1, **env: str) -> WorkerProcess:
        log = tmp_path / f"worker-{len(started)}.log"
        worker = WorkerProcess(broker.address, log, concurrency, env)
        worker.start()
        started.append(worker)
        return worker

    yield spawn
    for worker in started:
        worker.kill()
