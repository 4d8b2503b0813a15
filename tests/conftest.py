"""Fixtures for the engine tests: a manual clock and a fresh data dir per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

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
