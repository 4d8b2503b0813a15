"""``tq status``, ``tq list`` and ``tq cancel``: reading and cancelling tasks."""

from __future__ import annotations

from typing import Annotated

import typer

from tq.cli.options import (
    DEFAULT_BROKER,
    BrokerOption,
    JsonOption,
    TlsCaOption,
    TlsOption,
    TokenOption,
    connect,
    parse_task_id,
)
from tq.cli.output import (
    console,
    cursor_arg,
    history_table,
    jsonable,
    page_json,
    print_json,
    task_json,
    task_table,
    tasks_table,
)
from tq.client import TaskInfo, TaskPage

__all__ = [
    "TaskIdArgument",
    "cancel",
    "list_tasks",
    "print_page",
    "print_task",
    "status",
]

TaskIdArgument = Annotated[str, typer.Argument(metavar="TASK_ID", help="The task id.")]

LimitOption = Annotated[
    int, typer.Option("--limit", "-n", min=1, max=10_000, help="At most this many.")
]
CursorOption = Annotated[
    str | None,
    typer.Option(help="Go on from a previous page: the cursor it printed."),
]


def print_task(task: TaskInfo, as_json: bool) -> None:
    """Print one task: its fields and attempts, or its JSON map."""
    if as_json:
        print_json(task_json(task))
        return
    out = console()
    out.print(task_table(task))
    if task.history:
        out.print()
        out.print(history_table(task))


def print_page(page: TaskPage, title: str, again: str, as_json: bool) -> None:
    """Print a page of tasks, and how to get the next one.

    Args:
        page: The tasks.
        title: The table's title.
        again: The command that listed them, to repeat with ``--cursor``.
        as_json: Print JSON instead of a table.
    """
    if as_json:
        print_json(page_json(page))
        return
    console().print(tasks_table(page.tasks, title))
    if page.next_cursor is not None:
        # Plain, never wrapped: it is a command to copy.
        typer.echo(f"more: {again} --cursor {jsonable(page.next_cursor)}")


def status(
    task_id: TaskIdArgument,
    broker: BrokerOption = DEFAULT_BROKER,
    token: TokenOption = None,
    tls: TlsOption = False,
    tls_ca: TlsCaOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show one task: state, priority, attempts, payload, result and errors."""
    wanted = parse_task_id(task_id)
    with connect(broker, token, tls, tls_ca) as client:
        print_task(client.get_task(wanted), as_json)


def list_tasks(
    status: Annotated[
        str,
        typer.Option(
            "--status",
            "-s",
            help="scheduled, pending, in_progress, failed, completed, dead_letter or "
            "cancelled.",
        ),
    ] = "pending",
    task_type: Annotated[
        str | None, typer.Option("--type", "-t", help="Only tasks of this type.")
    ] = None,
    limit: LimitOption = 50,
    cursor: CursorOption = None,
    broker: BrokerOption = DEFAULT_BROKER,
    token: TokenOption = None,
    tls: TlsOption = False,
    tls_ca: TlsCaOption = None,
    as_json: JsonOption = False,
) -> None:
    """List tasks in one state."""
    start = cursor_arg(cursor)
    with connect(broker, token, tls, tls_ca) as client:
        page = client.list_tasks(status, task_type=task_type, limit=limit, cursor=start)
    again = f"tq list --status {status}" + (f" --type {task_type}" if task_type else "")
    print_page(page, f"{status} tasks", again, as_json)


def cancel(
    task_id: TaskIdArgument,
    broker: BrokerOption = DEFAULT_BROKER,
    token: TokenOption = None,
    tls: TlsOption = False,
    tls_ca: TlsCaOption = None,
    as_json: JsonOption = False,
) -> None:
    """Cancel a task; a running one is stopped by its worker."""
    wanted = parse_task_id(task_id)
    with connect(broker, token, tls, tls_ca) as client:
        state = client.cancel(wanted)
    if as_json:
        print_json({"task_id": wanted, "state": state})
    elif state == "cancelled":
        typer.echo(f"task {wanted} cancelled")
    else:
        typer.echo(f"task {wanted} is {state}; its worker was told to cancel it")
