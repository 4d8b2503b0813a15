"""Fixtures shared by the tests: a manual clock and a fresh engine for the
engine tests, and `spawn_worker` for the tests that run a broker process (each
folder's own `broker` fixture says how that broker is configured)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from processes import BrokerProcess, WorkerProcess

from engine_support import T0, Store
from tq._core import Engine, ManualClock


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def store(tmp_path: Path, clock: ManualClock) -> Iterator[Store]:
    opened = Store(tmp_path / "data", clock)
    yield opened
    opened.close()


@pytest.fixture
def engine(store: Store) -> Engine:
    return store.engine


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
