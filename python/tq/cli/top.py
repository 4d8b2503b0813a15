"""``tq top``: the live dashboard, refreshed from the broker about twice a second.

Three trio tasks share one `Dashboard`: the poller asks the broker for its
figures, the key reader switches views and quits, and the painter redraws the
screen on every poll, key press and terminal resize. When the broker goes
away the poller keeps trying to reconnect and the screen says so, showing the
last figures it had; they come back live as soon as the broker answers again.
"""

from __future__ import annotations

import logging
import math
import os
import signal
import ssl
import sys
import termios
import time
import tty
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Annotated

import trio
import typer
from rich.live import Live

from tq.cli.base import sole_error, stop
from tq.cli.dashboard import Dashboard, handle_key, render
from tq.cli.options import (
    CONNECT_TIMEOUT_S,
    DEFAULT_BROKER,
    BrokerOption,
    TlsCaOption,
    TlsOption,
    TokenOption,
    tls_setting,
)
from tq.cli.output import console
from tq.client import AsyncClient, TaskInfo
from tq.client.connection import parse_address
from tq.errors import ConnectionLost, TqError

__all__ = ["top"]

ANSWER_TIMEOUT_S = 5.0
"""How long one poll may wait for the broker before it counts as gone."""

FAILURES_EVERY = 4
"""Polls between two reads of the recent failures (they change slowly)."""

RECENT_FAILURES = 20


def top(
    refresh: Annotated[
        float, typer.Option(min=0.1, max=60.0, help="Seconds between refreshes.")
    ] = 0.5,
    once: Annotated[
        bool, typer.Option("--once", help="Print one screen and exit, for scripts.")
    ] = False,
    broker: BrokerOption = DEFAULT_BROKER,
    token: TokenOption = None,
    tls: TlsOption = False,
    tls_ca: TlsCaOption = None,
) -> None:
    """Open the live dashboard: queue depth, rates, workers, failures (q quits)."""
    try:
        parse_address(broker)
    except ValueError as exc:
        stop(str(exc))
    context = tls_setting(tls, tls_ca)
    # Client warnings would scribble over the screen; the screen shows trouble.
    logging.getLogger("tq").addHandler(logging.NullHandler())
    try:
        trio.run(_top, broker, token, refresh, once, context)
    except (KeyboardInterrupt, BaseExceptionGroup) as raised:
        # Ctrl-C quits, as q does; trio may hand it over inside a group.
        if not isinstance(sole_error(raised), KeyboardInterrupt):
            raise


async def _top(
    address: str,
    token: str | None,
    refresh_s: float,
    once: bool,
    tls: ssl.SSLContext | None,
) -> None:
    dashboard = Dashboard(address)
    async with AsyncClient.connect(
        address, token=token, tls=tls or False, reconnect_timeout=CONNECT_TIMEOUT_S
    ) as client:
        if once:
            await _print_once(client, dashboard, refresh_s)
            return
        await _run_live(client, dashboard, refresh_s)


async def _print_once(client: AsyncClient, dashboard: Dashboard, gap_s: float) -> None:
    """Poll twice, ``gap_s`` apart so there are rates, and print the screen."""
    await _poll_once(client, dashboard, with_failures=True)
    await trio.sleep(gap_s)
    await _poll_once(client, dashboard, with_failures=False)
    if dashboard.problem is not None:
        raise ConnectionLost(dashboard.problem)
    out = console()
    out.print(
        render(dashboard, time.monotonic(), _now_ms(), out.width, full_screen=False)
    )


async def _run_live(
    client: AsyncClient, dashboard: Dashboard, refresh_s: float
) -> None:
    out = console()
    send, receive = trio.open_memory_channel[None](1)
    with (
        _keys_from_terminal() as keys_fd,
        Live(
            console=out,
            screen=True,
            auto_refresh=False,
            redirect_stdout=False,
            redirect_stderr=False,
        ) as live,
    ):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_poll, client, dashboard, refresh_s, send)
            nursery.start_soon(_repaint_on_resize, send)
            if keys_fd is not None:
                nursery.start_soon(
                    _read_keys, keys_fd, dashboard, nursery.cancel_scope, send
                )
            while True:
                width = out.size.width
                screen = render(
                    dashboard, time.monotonic(), _now_ms(), width, full_screen=True
                )
                live.update(screen, refresh=True)
                with trio.move_on_after(refresh_s):
                    await receive.receive()


def _wake(send: trio.MemorySendChannel[None]) -> None:
    """Ask the painter for a new frame now (one pending request is enough)."""
    with suppress(trio.WouldBlock):
        send.send_nowait(None)


def _now_ms() -> int:
    return math.floor(time.time() * 1000)


# Polling the broker


async def _poll(
    client: AsyncClient,
    dashboard: Dashboard,
    refresh_s: float,
    send: trio.MemorySendChannel[None],
) -> None:
    polls = 0
    while True:
        await _poll_once(client, dashboard, with_failures=polls % FAILURES_EVERY == 0)
        polls = polls + 1 if dashboard.problem is None else 0
        _wake(send)
        await trio.sleep(refresh_s)


async def _poll_once(
    client: AsyncClient, dashboard: Dashboard, *, with_failures: bool
) -> None:
    """Read the broker's figures into ``dashboard``, or note why it could not."""
    try:
        with trio.fail_after(ANSWER_TIMEOUT_S):
            stats = await client.stats()
            workers = await client.workers()
            if with_failures:
                dashboard.failures = await _recent_failures(client)
    except ConnectionLost as exc:
        dashboard.lost(exc.message)
        await client.aclose()
    except trio.TooSlowError:
        dashboard.lost(f"no answer within {ANSWER_TIMEOUT_S:g}s")
        await client.aclose()
    except TqError as exc:
        dashboard.lost(f"{exc.code}: {exc.message}")
    else:
        dashboard.record(time.monotonic(), stats, workers)


async def _recent_failures(client: AsyncClient) -> list[TaskInfo]:
    """Tasks waiting to retry and dead letters, the most recently changed first."""
    retrying = await client.list_tasks("failed", limit=RECENT_FAILURES)
    dead = await client.dlq_list(limit=RECENT_FAILURES)
    failures = [*retrying.tasks, *dead.tasks]
    failures.sort(key=lambda task: task.updated_ms, reverse=True)
    return failures[:RECENT_FAILURES]


# The terminal


@contextmanager
def _keys_from_terminal() -> Iterator[int | None]:
    """Stdin's descriptor in cbreak mode (keys arrive unbuffered), or None.

    The terminal's settings are restored on exit. Without a terminal on stdin
    there are no keys to read, and Ctrl-C is the way out.
    """
    if not sys.stdin.isatty():
        yield None
        return
    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    tty.setcbreak(fd)
    try:
        yield fd
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


async def _read_keys(
    fd: int,
    dashboard: Dashboard,
    quit_scope: trio.CancelScope,
    send: trio.MemorySendChannel[None],
) -> None:
    while True:
        await trio.lowlevel.wait_readable(fd)
        data = os.read(fd, 64)
        if not data:
            return
        for key in data.decode(errors="ignore"):
            if not handle_key(dashboard, key):
                quit_scope.cancel()
                return
        _wake(send)


async def _repaint_on_resize(send: trio.MemorySendChannel[None]) -> None:
    with trio.open_signal_receiver(signal.SIGWINCH) as resizes:
        async for _ in resizes:
            _wake(send)
