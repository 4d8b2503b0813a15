"""Running a broker: open the store, start every part, stop cleanly on a signal.

Shutdown order on SIGTERM or SIGINT: stop accepting connections, let the commit
in flight finish (its thread is never abandoned), then close the store.
"""

from __future__ import annotations

import logging
import signal
from dataclasses import dataclass

import trio

from tq import _core
from tq.broker.config import BrokerConfig
from tq.broker.server import ProtocolServer
from tq.broker.service import Broker

__all__ = ["BrokerHandle", "configure_logging", "run_broker", "serve_forever"]

log = logging.getLogger("tq.broker")


@dataclass
class BrokerHandle:
    """A running broker, as handed to whoever started it.

    Attributes:
        broker: Its operations and state.
        port: The TCP port it listens on (useful when configured as 0).
        cancel_scope: Cancel it to shut the broker down.
    """

    broker: Broker
    port: int
    cancel_scope: trio.CancelScope


async def run_broker(
    config: BrokerConfig,
    *,
    task_status: trio.TaskStatus[BrokerHandle] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run a broker until cancelled, then close its store.

    Raises:
        StoreLocked: The data dir is open in another process.
        StorageError: The store cannot be opened.
    """
    await trio.Path(config.data_dir).mkdir(parents=True, exist_ok=True)
    engine = await trio.to_thread.run_sync(
        lambda: _core.Engine(config.data_dir, fsync=config.fsync)
    )
    log.info(
        "store open data_dir=%s fsync=%s queue_depth=%d",
        config.data_dir,
        config.fsync,
        engine.queue_depth(),
    )
    try:
        with trio.CancelScope() as scope:
            async with trio.open_nursery() as nursery:
                broker = Broker(engine, config)
                await nursery.start(broker.run)
                server = ProtocolServer(broker)
                listeners = await nursery.start(server.serve)
                port = listeners[0].socket.getsockname()[1]
                task_status.started(BrokerHandle(broker, port, scope))
    finally:
        await trio.to_thread.run_sync(engine.close)
        log.info("store closed data_dir=%s", config.data_dir)


async def serve_forever(config: BrokerConfig) -> None:
    """Run a broker until SIGTERM or SIGINT."""
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async with trio.open_nursery() as nursery:
            handle: BrokerHandle = await nursery.start(run_broker, config)
            async for signum in signals:
                log.info("shutting down on %s", signal.Signals(signum).name)
                handle.cancel_scope.cancel()
                break


def configure_logging(level: str) -> None:
    """Log to stderr as ``time level logger message``."""
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
