"""Fixtures for the gRPC API's tests: a real broker process, a channel to its
gRPC port, a generated stub, the TCP client to check results against, and
real workers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_support import FAST_CONFIG, grpc_port_of
from processes import BrokerProcess

from tq import Client
from tq.v1 import tq_pb2_grpc


@pytest.fixture
def broker_config() -> dict[str, object]:
    """The broker's settings; a test overrides it to change them."""
    return {}


@pytest.fixture
def broker(tmp_path: Path, broker_config: dict[str, object]) -> Iterator[BrokerProcess]:
    process = BrokerProcess(
        tmp_path / "data",
        tmp_path / "broker.log",
        {**FAST_CONFIG, "grpc_port": 0, **broker_config},
    )
    process.start()
    yield process
    process.kill()


@pytest.fixture
def channel(broker: BrokerProcess) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(f"127.0.0.1:{grpc_port_of(broker)}") as opened:
        yield opened


@pytest.fixture
def stub(channel: grpc.Channel) -> tq_pb2_grpc.TqStub:
    return tq_pb2_grpc.TqStub(channel)


@pytest.fixture
def client(broker: BrokerProcess, broker_config: dict[str, object]) -> Iterator[Client]:
    token = broker_config.get("auth_token")
    assert token is None or isinstance(token, str)
    with Client.connect(broker.address, token=token) as connected:
        yield connected
