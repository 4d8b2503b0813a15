"""``tq dlq``: list, show, requeue and purge dead letters.

Requeueing or purging many dead letters goes in batches of `BATCH`, one
request each, behind a progress bar, so the broker never holds a long request
and the operator sees how far it got.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Annotated, Any

import typer

from tq.cli.base import stop
from tq.cli.exits import ExitCode
from tq.cli.options import (
    DEFAULT_BROKER,
    BrokerOption,
    JsonOption,
    TlsCaOption,
    TlsOption,
    TokenOption,
    connect,
    parse_duration,
    parse_task_id,
)
from tq.cli.output import cursor_arg, print_json, progress_bar
from tq.cli.tasks import CursorOption, LimitOption, print_page, print_task

__all__ = ["dlq_app"]

BATCH = 1000
"""Dead letters requeued or purged per request."""

dlq_app = typer.Typer(
    name="dlq",
    help="Dead letters: tasks whose retries ran out or that were rejected.",
    no_args_is_help=True,
)

TypeOption = Annotated[
    str | None, typer.Option("--type", "-t", help="Only dead letters of this type.")
]


@dlq_app.command("list")
def dlq_list(
    task_type: TypeOption = None,
    limit: LimitOption = 50,
    cursor: CursorOption = None,
    broker: BrokerOption = DEFAULT_BROKER,
    token: TokenOption = None,
    tls: TlsOption = False,
    tls_ca: TlsCaOption = None,
    as_json: JsonOption = False,
) -> None:
    """List dead letters with their last error."""
    start = cursor_arg(cursor)
    with connect(broker, token, tls, tls_ca) as client:
        page = client.dlq_list(task_type=task_type, limit=limit, cursor=start)
    again = "tq dlq list" + (f" --type {task_type}" if task_type else "")
    print_page(page, "dead letters", again, as_json)


@dlq_app.command("show")
def dlq_show(
    task_id: Annotated[str, typer.Argument(metavar="TASK_ID", help="The task id.")],
    broker: BrokerOption = DEFAULT_BROKER,
    token: TokenOption = None,
    tls: TlsOption = False,
    tls_ca: TlsCaOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show one dead letter: its payload, attempts and their errors."""
    wanted = parse_task_id(task_id)
    with connect(broker, token, tls, tls_ca) as client:
        task = client.get_task(wanted)
    if task.state != "dead_letter":
        stop(
            f"task {wanted} is not a dead letter: it is {task.state}",
            ExitCode.NOT_FOUND,
        )
    print_task(task, as_json)


@dlq_app.command("requeue")
def dlq_requeue(
    task_id: Annotated[
        str | None,
        typer.Argument(metavar="[TASK_ID]", help="The dead letter to requeue."),
    ] = None,
    requeue_all: Annotated[
        bool, typer.Option("--all", help="Requeue every dead letter (of --type).")
    ] = False,
    task_type: TypeOption = None,
    broker: BrokerOption = DEFAULT_BROKER,
    token: TokenOption = None,
    tls: TlsOption = False,
    tls_ca: TlsCaOption = None,
    as_json: JsonOption = False,
) -> None:
    """Requeue one dead letter, or all of them with --all, with fresh retries."""
    wanted = _requeue_target(task_id, requeue_all, task_type)
    with connect(broker, token, tls, tls_ca) as client:
        if wanted is not None:
            count = client.dlq_requeue(wanted)
        else:
            total = _dead_letters(client.stats(), task_type)
            count = _in_batches(
                lambda: client.dlq_requeue_all(task_type=task_type, limit=BATCH),
                total,
                "requeueing",
            )
    _report("requeued", count, as_json)


def _requeue_target(
    task_id: str | None, requeue_all: bool, task_type: str | None
) -> int | None:
    """The one task to requeue, or None for --all; rejects unclear requests."""
    if task_id is not None and requeue_all:
        stop("requeue: expected a TASK_ID or --all, got both")
    if task_id is None and not requeue_all:
        stop("requeue: expected a TASK_ID or --all, got neither")
    if task_type is not None and not requeue_all:
        stop("requeue: --type selects dead letters for --all; one TASK_ID needs none")
    return None if task_id is None else parse_task_id(task_id)


@dlq_app.command("purge")
def dlq_purge(
    older_than: Annotated[
        str | None,
        typer.Option(help="Only dead letters older than this: 7d, 12h (default: all)."),
    ] = None,
    task_type: TypeOption = None,
    broker: BrokerOption = DEFAULT_BROKER,
    token: TokenOption = None,
    tls: TlsOption = False,
    tls_ca: TlsCaOption = None,
    as_json: JsonOption = False,
) -> None:
    """Delete dead letters for good."""
    older_than_s = (
        None if older_than is None else parse_duration(older_than, "--older-than")
    )
    with connect(broker, token, tls, tls_ca) as client:
        total = (
            None
            if older_than_s is not None
            else _dead_letters(client.stats(), task_type)
        )
        count = _in_batches(
            lambda: client.dlq_purge(
                older_than=older_than_s, task_type=task_type, limit=BATCH
            ),
            total,
            "purging",
        )
    _report("purged", count, as_json)


def _dead_letters(stats: Mapping[str, Any], task_type: str | None) -> int:
    if task_type is None:
        return int(stats["by_state"].get("dead_letter", 0))
    return int(stats["by_type"].get(task_type, {}).get("dead_letter", 0))


def _in_batches(step: Callable[[], int], total: int | None, what: str) -> int:
    """Run ``step`` until a batch comes back short, or ``total`` is done.

    Stopping at ``total`` keeps a requeue from chasing tasks that fail again
    and return to the dead letter queue while it runs.
    """
    done = 0
    with progress_bar("dead letters") as progress:
        bar = progress.add_task(what, total=total)
        while total is None or done < total:
            count = step()
            done += count
            progress.advance(bar, count)
            if count < BATCH:
                break
    return done


def _report(verb: str, count: int, as_json: bool) -> None:
    if as_json:
        print_json({verb: count})
    else:
        typer.echo(f"{verb} {count} dead letter{'' if count == 1 else 's'}")
