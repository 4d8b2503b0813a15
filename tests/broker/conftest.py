"""Fixtures for end-to-end tests: a real broker process and real workers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from processes import BrokerProcess

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
