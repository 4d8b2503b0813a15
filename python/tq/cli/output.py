"""What commands print: rich tables for people, stable JSON for scripts.

JSON output keeps the field names of the client's models. Bytes (payloads,
results, list cursors) are base64 strings, as in the REST API, so every payload
survives the trip whatever it holds; ``base64 -d`` or ``jq -r '.result |
@base64d'`` gets the bytes back.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections.abc import Iterable, Mapping
from typing import Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from tq.cli.base import stop
from tq.client import TaskInfo, TaskPage
from tq.client.models import tier_of

__all__ = [
    "age",
    "console",
    "cursor_arg",
    "duration",
    "history_table",
    "jsonable",
    "page_json",
    "preview",
    "print_json",
    "progress_bar",
    "task_json",
    "task_table",
    "tasks_table",
    "timestamp",
]

DASH = "-"


def console(*, stderr: bool = False) -> Console:
    """A rich console on stdout (or stderr), without guessing highlights.

    Markup is off: task types, errors and payloads are shown as they are,
    where a ``[bold]`` in them would otherwise be taken for a style.
    """
    return Console(stderr=stderr, highlight=False, markup=False)


def jsonable(value: Any) -> Any:
    """``value`` with bytes as base64 strings and tuples as lists.

    Args:
        value: Maps, sequences and scalars, as the client returns them.

    Returns:
        A value `json.dumps` accepts.
    """
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, Mapping):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(item) for item in value]
    return value


def print_json(value: Any) -> None:
    """Print ``value`` as indented JSON on stdout."""
    typer.echo(json.dumps(jsonable(value), indent=2))


def task_json(task: TaskInfo) -> dict[str, Any]:
    """A task as a JSON-ready map (payload and result base64)."""
    result: dict[str, Any] = jsonable(task.to_map())
    return result


def page_json(page: TaskPage) -> dict[str, Any]:
    """A page of tasks as a JSON-ready map with its base64 ``next_cursor``."""
    return {
        "tasks": [task_json(task) for task in page.tasks],
        "next_cursor": jsonable(page.next_cursor),
    }


def cursor_arg(text: str | None) -> bytes | None:
    """The bytes of a ``--cursor`` value, as printed by a previous page.

    Raises:
        CliError: ``text`` is not base64.
    """
    if text is None:
        return None
    try:
        return base64.b64decode(text, validate=True)
    except binascii.Error:
        stop(f"--cursor: expected the base64 cursor of a previous page, got {text!r}")


def preview(data: bytes | None, limit: int = 60) -> str:
    """A short, printable view of a payload or result.

    Args:
        data: The bytes, or None when there are none.
        limit: How many characters of text to show.

    Returns:
        The text when the bytes are printable UTF-8 (cut at ``limit``), else
        their size.
    """
    if data is None:
        return DASH
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return f"<{len(data)} bytes>"
    if not text.isprintable():
        return f"<{len(data)} bytes>"
    return text if len(text) <= limit else text[: limit - 1] + "…"


def timestamp(ms: int | None) -> str:
    """A time in milliseconds since the epoch, as local ``YYYY-MM-DD HH:MM:SS``."""
    if ms is None:
        return DASH
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ms / 1000))


def duration(seconds: float) -> str:
    """A duration, short: ``850ms``, ``12s``, ``4m05s``, ``3h12m``, ``2d04h``."""
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.0f}s" if seconds >= 10 else f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h{minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours:02d}h"


def age(ms: int | None, now_ms: int | None = None) -> str:
    """How long ago (``12s ago``) or how soon (``in 5s``) a time is."""
    if ms is None:
        return DASH
    now = time.time() * 1000 if now_ms is None else now_ms
    delta_s = (now - ms) / 1000
    return f"{duration(delta_s)} ago" if delta_s >= 0 else f"in {duration(-delta_s)}"


def _priority(priority: int) -> str:
    return f"{priority} ({tier_of(priority)})"


def task_table(task: TaskInfo) -> Table:
    """One task's fields, one per row."""
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    rows: list[tuple[str, str]] = [
        ("id", str(task.task_id)),
        ("type", task.task_type),
        (
            "state",
            task.state + (" (cancel requested)" if task.cancel_requested else ""),
        ),
        ("priority", _priority(task.priority)),
        ("attempts", f"{task.attempts} of {task.max_retries + 1}"),
        ("timeout", duration(task.timeout_ms / 1000)),
        ("created", timestamp(task.created_ms)),
        ("run at", timestamp(task.run_at_ms)),
        ("updated", timestamp(task.updated_ms)),
        ("finished", timestamp(task.finished_ms)),
        ("worker", task.worker_id or DASH),
        ("lease deadline", timestamp(task.lease_deadline_ms)),
        ("idempotency key", task.idempotency_key or DASH),
        ("payload", preview(task.payload)),
        ("result", preview(task.result)),
        ("last error", task.last_error or DASH),
    ]
    for name, value in rows:
        table.add_row(name, value)
    return table


def history_table(task: TaskInfo) -> Table:
    """A task's attempts, oldest first."""
    table = Table(title=f"attempts of task {task.task_id}", title_justify="left")
    for column in ("#", "worker", "started", "ran for", "outcome"):
        table.add_column(column)
    table.add_column("error", overflow="fold")
    for attempt in task.history:
        ran = (
            duration((attempt.ended_ms - attempt.started_ms) / 1000)
            if attempt.ended_ms is not None
            else DASH
        )
        table.add_row(
            str(attempt.attempt),
            attempt.worker_id,
            timestamp(attempt.started_ms),
            ran,
            attempt.outcome,
            attempt.error or DASH,
        )
    return table


def tasks_table(tasks: Iterable[TaskInfo], title: str) -> Table:
    """Tasks, one per row: id, type, state, priority, attempts, age, last error."""
    table = Table(title=title, title_justify="left")
    table.add_column("id", justify="right", no_wrap=True)
    table.add_column("type", overflow="fold")
    table.add_column("state", no_wrap=True)
    table.add_column("priority", justify="right", no_wrap=True)
    table.add_column("attempts", justify="right", no_wrap=True)
    table.add_column("updated", no_wrap=True)
    table.add_column("last error", overflow="fold")
    now_ms = int(time.time() * 1000)
    for task in tasks:
        table.add_row(
            str(task.task_id),
            task.task_type,
            task.state,
            _priority(task.priority),
            str(task.attempts),
            age(task.updated_ms, now_ms),
            task.last_error or DASH,
        )
    return table


def progress_bar(unit: str) -> Progress:
    """A progress bar on stderr, counting ``unit``; silent when stderr is no terminal.

    Args:
        unit: What is counted, such as ``tasks``.

    Returns:
        The progress display, to use as a context manager.
    """
    err = console(stderr=True)
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn(unit),
        TimeElapsedColumn(),
        console=err,
        disable=not err.is_terminal,
    )
