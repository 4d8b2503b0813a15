"""A real broker inside your tests: a temp data dir and an ephemeral port.

From plain (threaded) tests::

    with tq.testing.broker_thread() as broker:
        with tq.Client.connect(broker.address) as client:
            ...

From trio tests::

    async with tq.testing.open_broker() as broker:
        ...

Both run the same broker as ``tq broker``, on a real RocksDB store; nothing is
faked. Pass configuration keys as keywords (``fsync=False``, ``max_pending=10``).
"""

from __future__ import annotations

import tempfile
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Any

import trio

from tq.broker.app import BrokerHandle, run_broker
from tq.broker.config import BrokerConfig
from tq.broker.service import Broker

__all__ = ["TestBroker", "broker_thread", "open_broker"]


@dataclass
class TestBroker:
    """A broker started for a test."""

    __test__ = False  # not a pytest test class

    address: str
    data_dir: str
    broker: Broker


def _config(data_dir: str, overrides: dict[str, Any]) -> BrokerConfig:
    # Every listener on an ephemeral port, so test brokers never collide.
    ports = {"port": 0, "rest_port": 0, "metrics_port": 0, "grpc_port": 0}
    return BrokerConfig(data_dir=data_dir, **{**ports, **overrides}).validated()


@asynccontextmanager
async def open_broker(
    data_dir: str | None = None, **overrides: Any
) -> AsyncIterator[TestBroker]:
    """Run a broker in the current trio run for the duration of the block."""
    with tempfile.TemporaryDirectory(prefix="tq-test-") as temp:
        config = _config(data_dir or temp, overrides)
        async with trio.open_nursery() as nursery:
            handle: BrokerHandle = await nursery.start(run_broker, config)
            yield TestBroker(f"127.0.0.1:{handle.port}", config.data_dir, handle.broker)
            handle.cancel_scope.cancel()


@contextmanager
def broker_thread(
    data_dir: str | None = None, **overrides: Any
) -> Iterator[TestBroker]:
    """Run a broker in a background thread for the duration of the block."""
    started: list[TestBroker | BaseException] = []
    ready = threading.Event()
    stop: list[trio.lowlevel.TrioToken | trio.CancelScope] = []

    async def main(config: BrokerConfig) -> None:
        try:
            async with trio.open_nursery() as nursery:
                handle: BrokerHandle = await nursery.start(run_broker, config)
                stop.extend([trio.lowlevel.current_trio_token(), handle.cancel_scope])
                started.append(
                    TestBroker(
                        f"127.0.0.1:{handle.port}", config.data_dir, handle.broker
                    )
                )
                ready.set()
        except BaseException as exc:
            started.append(exc)
            ready.set()
            raise

    with tempfile.TemporaryDirectory(prefix="tq-test-") as temp:
        config = _config(data_dir or temp, overrides)
        thread = threading.Thread(target=trio.run, args=(main, config), daemon=True)
        thread.start()
        ready.wait()
        outcome = started[0]
        if isinstance(outcome, BaseException):
            thread.join()
            raise outcome
        try:
            yield outcome
        finally:
            token, scope = stop
            assert isinstance(token, trio.lowlevel.TrioToken)
            assert isinstance(scope, trio.CancelScope)
            token.run_sync_soon(scope.cancel)
            thread.join()
