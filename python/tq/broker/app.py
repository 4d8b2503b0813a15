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
from tq.broker.http import serve_rest
from tq.broker.metrics import serve_metrics
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
        rest_port: The port of the REST API and event stream.
        metrics_port: The port of ``/metrics``.
        grpc_port: The port of the gRPC API, or None when it is off.
    """

    broker: Broker
    port: int
    cancel_scope: trio.CancelScope
    rest_port: int = 0
    metrics_port: int = 0
    grpc_port: int | None = None


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
                rest_port = await nursery.start(serve_rest, broker)
                metrics_port = await nursery.start(serve_metrics, broker)
                grpc_port = await _start_grpc(nursery, broker)
                task_status.started(
                    BrokerHandle(
                        broker, port, scope, rest_port, metrics_port, grpc_port
                    )
                )
    finally:
        await trio.to_thread.run_sync(engine.close)
        log.info("store closed data_dir=%s", config.data_dir)


async def _start_grpc(nursery: trio.Nursery, broker: Broker) -> int | None:
    """Start the gRPC API if it is configured and installed; its port or None."""
    if broker.config.grpc_port is None:
        log.info("grpc off: grpc_port is null")
        return None
    try:
        from tq.broker.grpc_server import GrpcServer  # noqa: PLC0415
    except ImportError as exc:
        # grpcio is an optional extra: the broker runs without it.
        log.warning(
            "grpc off: grpc_port is %d but grpcio and protobuf are not both "
            "installed (missing module %s); the other front ends run as usual. "
            "Install them with `pip install 'tq[grpc]'`, or set grpc_port: null "
            "to turn the gRPC API off",
            broker.config.grpc_port,
            exc.name,
        )
        return None
    port: int = await nursery.start(GrpcServer(broker).serve)
    return port


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
