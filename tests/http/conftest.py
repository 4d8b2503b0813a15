"""Fixtures for the REST, WebSocket and metrics tests: a real broker process,
real workers, and HTTP clients pointed at the broker's ports."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from processes import BrokerProcess

# Short intervals so that retries and backoffs play out in a second or two.
FAST_CONFIG: dict[str, object] = {
    "heartbeat_interval": "0.3s",
    "worker_timeout": "1.5s",
    "backoff_base": "0.1s",
    "backoff_max": "0.5s",
    "backoff_jitter": 0.5,
    "log_level": "info",
}


@pytest.fixture
def broker_config() -> dict[str, object]:
    """What a test's broker runs with; a test overrides keys by parametrizing."""
    return dict(FAST_CONFIG)


@pytest.fixture
def broker(tmp_path: Path, broker_config: dict[str, object]) -> Iterator[BrokerProcess]:
    process = BrokerProcess(tmp_path / "data", tmp_path / "broker.log", broker_config)
    process.start()
    yield process
    process.kill()


@pytest.fixture
def api(broker: BrokerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=broker.rest_url, timeout=30) as client:
        yield client
