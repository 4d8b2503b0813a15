"""``tq broker`` and ``tq worker``: the two long-running processes.

Each stops with a one-line reason on a user mistake (a bad config, an address
already in use, an unreachable broker, a handler module that does not import)
rather than a traceback.
"""

from __future__ import annotations

import importlib
import logging
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated

import trio
import typer

from tq.broker.config import BrokerConfig, ConfigError, load_config
from tq.cli.base import sole_error, stop
from tq.cli.exits import ExitCode
from tq.cli.options import DEFAULT_BROKER, TlsCaOption, TlsOption, tls_setting
from tq.client.connection import parse_address
from tq.errors import TqError
from tq.worker import Worker, register_builtins, registry

__all__ = ["broker", "worker"]

log = logging.getLogger("tq.cli")


def _configure_logging(level: str) -> None:
    # Imported on use: the broker's REST, metrics and gRPC stacks take about
    # 0.4 s to import, which every short client command would pay otherwise.
    from tq.broker.app import configure_logging  # noqa: PLC0415

    configure_logging(level)


def broker(
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="YAML config file.")
    ] = None,
    data_dir: Annotated[str | None, typer.Option(help="Where the store lives.")] = None,
    host: Annotated[str | None, typer.Option(help="Address to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="TCP protocol port.")] = None,
    rest_port: Annotated[int | None, typer.Option(help="REST API port.")] = None,
    metrics_port: Annotated[int | None, typer.Option(help="Prometheus port.")] = None,
    grpc_port: Annotated[int | None, typer.Option(help="gRPC port.")] = None,
    fsync: Annotated[
        bool | None,
        typer.Option("--fsync/--no-fsync", help="Sync each commit to disk."),
    ] = None,
    log_level: Annotated[
        str | None, typer.Option(help="debug, info, warning, error.")
    ] = None,
) -> None:
    """Run the broker daemon on its embedded RocksDB store."""
    try:
        settings = load_config(config).with_overrides(
            data_dir=data_dir,
            host=host,
            port=port,
            rest_port=rest_port,
            metrics_port=metrics_port,
            grpc_port=grpc_port,
            fsync=fsync,
            log_level=log_level,
        )
        settings = settings.validated()
    except ConfigError as exc:
        stop(str(exc))
    _configure_logging(settings.log_level)
    _run_broker(settings)


def _run_broker(settings: BrokerConfig) -> None:
    from tq.broker.app import serve_forever  # noqa: PLC0415 - see _configure_logging

    try:
        trio.run(serve_forever, settings)
    except (BaseExceptionGroup, TqError, OSError) as raised:
        # trio hands a start-up failure over wrapped in the nurseries' groups.
        error = sole_error(raised)
        if isinstance(error, TqError):
            stop(error.message, ExitCode.BROKER_ERROR)
        if isinstance(error, OSError):
            # Neither trio nor hypercorn says which address failed to bind.
            stop(
                f"cannot listen on {settings.host}: {error.strerror or error} "
                f"(ports asked for: {_ports(settings)})",
                ExitCode.UNAVAILABLE,
            )
        raise


def _ports(settings: BrokerConfig) -> str:
    ports = {
        "tcp": settings.port,
        "rest": settings.rest_port,
        "metrics": settings.metrics_port,
        "grpc": settings.grpc_port,
    }
    asked = (f"{name} {port}" for name, port in ports.items() if port is not None)
    return ", ".join(asked)


def worker(
    broker_address: Annotated[
        str,
        typer.Option("--broker", "-b", envvar="TQ_BROKER", help="Broker HOST:PORT."),
    ] = DEFAULT_BROKER,
    concurrency: Annotated[int, typer.Option(min=1, help="Tasks run at once.")] = 4,
    handlers: Annotated[
        str, typer.Option(help="Comma-separated modules that register handlers.")
    ] = "",
    token: Annotated[
        str | None, typer.Option(envvar="TQ_TOKEN", help="Broker auth token.")
    ] = None,
    tls: TlsOption = False,
    tls_ca: TlsCaOption = None,
    drain_grace: Annotated[
        float, typer.Option(help="Seconds running tasks get to finish on shutdown.")
    ] = 30.0,
    log_level: Annotated[
        str, typer.Option(help="debug, info, warning, error.")
    ] = "info",
) -> None:
    """Run a worker: claim tasks from the broker and run their handlers."""
    try:
        parse_address(broker_address)
    except ValueError as exc:
        stop(str(exc))
    context = tls_setting(tls, tls_ca)
    _configure_logging(log_level)
    for module in filter(None, (m.strip() for m in handlers.split(","))):
        _import_handlers(module)
    register_builtins(registry)
    runner = Worker(
        broker_address,
        registry,
        concurrency=concurrency,
        token=token,
        tls=context or False,
        drain_grace_s=drain_grace,
    )
    # A `TqError` (broker unreachable, token refused) ends the command with the
    # exit code of its kind, even wrapped in trio's exception groups.
    trio.run(_work_until_signalled, runner)


def _import_handlers(module: str) -> None:
    if "" not in sys.path:
        sys.path.insert(0, "")
    try:
        importlib.import_module(module)
    except ImportError as exc:
        stop(f"--handlers: cannot import {module!r}: {exc}")


async def _work_until_signalled(runner: Worker) -> None:
    """Run the worker; a signal drains it, or ends it at once before it connects.

    Reaching the broker may take up to the client's reconnect timeout, and
    until then there is nothing to drain: a signal cancels the connecting.
    """
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async with trio.open_nursery() as nursery:
            with trio.CancelScope() as connecting:
                nursery.start_soon(_stop_on_signal, signals, runner, connecting)
                await nursery.start(_work_then_stop, runner, nursery.cancel_scope)
            if connecting.cancelled_caught:
                nursery.cancel_scope.cancel()


async def _work_then_stop(
    runner: Worker,
    watchers: trio.CancelScope,
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run the worker (started once connected), then stop the signal watcher."""
    await runner.run(task_status=task_status)
    watchers.cancel()


async def _stop_on_signal(
    signals: AsyncIterator[int], runner: Worker, connecting: trio.CancelScope
) -> None:
    async for signum in signals:
        log.info("stopping on %s: no new claims, draining", signal.Signals(signum).name)
        runner.stop()
        connecting.cancel()
