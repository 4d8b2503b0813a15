"""``tq stats``, ``tq workers`` and ``tq queue-depth``: the broker at a glance."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import typer
from rich.console import Group
from rich.table import Table

from tq.cli.options import (
    DEFAULT_BROKER,
    BrokerOption,
    JsonOption,
    TlsCaOption,
    TlsOption,
    TokenOption,
    connect,
)
from tq.cli.output import console, duration, print_json

__all__ = [
    "TIERS",
    "by_type_table",
    "queue_depth",
    "stats",
    "stats_tables",
    "workers",
    "workers_table",
]

TIERS = ("high", "normal", "low")
"""Priority tiers, the order they are claimed in."""


def _pairs_table(title: str, rows: Mapping[str, object]) -> Table:
    table = Table()
    table.add_column(title, style="bold")
    table.add_column("", justify="right")
    for name, value in rows.items():
        table.add_row(name.replace("_", " "), str(value))
    return table


def by_type_table(by_type: Mapping[str, Mapping[str, int]]) -> Table:
    """Task counts per type (rows) and state (columns)."""
    states = sorted({state for counts in by_type.values() for state in counts})
    table = Table(title="tasks by type", title_justify="left")
    table.add_column("type", overflow="fold")
    for state in states:
        table.add_column(state.replace("_", " "), justify="right")
    for task_type in sorted(by_type):
        counts = by_type[task_type]
        table.add_row(task_type, *(str(counts.get(state, 0)) for state in states))
    return table


def stats_tables(stats: Mapping[str, Any]) -> Group:
    """The broker's figures as tables: states, tiers, totals, broker, types."""
    commits = int(stats.get("commits", 0))
    ops = int(stats.get("committed_ops", 0))
    broker_rows = {
        "queue_depth": f"{stats['queue_depth']} of {stats['max_pending']}",
        "workers": stats["workers"],
        "commits": commits,
        "operations per commit": f"{ops / commits:.1f}" if commits else "-",
        "uptime": duration(float(stats["uptime_s"])),
        "storage": stats.get("storage_error") or "ok",
    }
    tiers = stats["pending_by_tier"]
    return Group(
        _pairs_table("tasks by state", stats["by_state"]),
        _pairs_table("pending by tier", {tier: tiers.get(tier, 0) for tier in TIERS}),
        _pairs_table("since the broker started", stats.get("totals") or {"-": 0}),
        _pairs_table("broker", broker_rows),
        by_type_table(stats.get("by_type", {})),
    )


def workers_table(rows: list[dict[str, Any]]) -> Table:
    """Live workers: id, host, load, heartbeat age and the tasks they hold."""
    table = Table(title=f"{len(rows)} workers", title_justify="left")
    table.add_column("worker", overflow="fold")
    table.add_column("host / pid", overflow="fold")
    table.add_column("busy", justify="right", no_wrap=True)
    table.add_column("heartbeat", justify="right", no_wrap=True)
    table.add_column("tasks", overflow="fold")
    for row in rows:
        held = row["tasks"]
        table.add_row(
            row["worker_id"],
            f"{row['hostname']} / {row['pid']}",
            f"{len(held)}/{row['concurrency']}",
            f"{duration(float(row['heartbeat_age_s']))} ago",
            ", ".join(f"{t['task_id']} {t['task_type']}" for t in held) or "-",
        )
    return table


def stats(
    broker: BrokerOption = DEFAULT_BROKER,
    token: TokenOption = None,
    tls: TlsOption = False,
    tls_ca: TlsCaOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show counts by state, tier and type, and the broker's own figures."""
    with connect(broker, token, tls, tls_ca) as client:
        figures = client.stats()
    if as_json:
        print_json(figures)
    else:
        console().print(stats_tables(figures))


def workers(
    broker: BrokerOption = DEFAULT_BROKER,
    token: TokenOption = None,
    tls: TlsOption = False,
    tls_ca: TlsCaOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show live workers with their current tasks and heartbeat age."""
    with connect(broker, token, tls, tls_ca) as client:
        rows = client.workers()
    if as_json:
        print_json(rows)
    else:
        console().print(workers_table(rows))


def queue_depth(
    broker: BrokerOption = DEFAULT_BROKER,
    token: TokenOption = None,
    tls: TlsOption = False,
    tls_ca: TlsCaOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show how many tasks wait to run, by priority tier, and the threshold."""
    with connect(broker, token, tls, tls_ca) as client:
        figures = client.stats()
    tiers = {tier: int(figures["pending_by_tier"].get(tier, 0)) for tier in TIERS}
    if as_json:
        print_json(
            {
                "queue_depth": figures["queue_depth"],
                "max_pending": figures["max_pending"],
                "pending_by_tier": tiers,
            }
        )
        return
    by_tier = ", ".join(f"{tier} {count}" for tier, count in tiers.items())
    typer.echo(
        f"queue depth {figures['queue_depth']} of at most {figures['max_pending']} "
        f"(pending by tier: {by_tier})"
    )
