"""What ``tq top`` shows, as pure functions of what the broker reported.

`Dashboard` holds the latest answers of ``stats()``, ``workers()`` and the
recent failures, with a `RateHistory` of the broker's counters; `render` turns
it into one screen. Nothing here talks to the broker or reads the clock: the
live loop in `tq.cli.top` passes the time in, so every function can be tested
with plain dicts.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rich.bar import Bar
from rich.console import Group, RenderableType
from rich.layout import Layout
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from tq.cli.output import DASH, age, duration
from tq.cli.stats import TIERS
from tq.client import TaskInfo

__all__ = [
    "COUNTERS",
    "KEYS_HELP",
    "VIEWS",
    "Dashboard",
    "RateHistory",
    "counts_panel",
    "failures_table",
    "format_rate",
    "handle_key",
    "header",
    "queue_panel",
    "rates_panel",
    "render",
    "render_sections",
    "sparkline",
    "worker_tasks_table",
    "workers_table",
]

COUNTERS = ("submitted", "completed", "failed")
"""The broker's ``totals`` that get a rate and a sparkline."""

VIEWS = ("overview", "workers", "failures")
"""The screens of ``tq top``, in the order tab cycles through them."""

KEYS_HELP = "q quit · tab next view · 1 overview · 2 workers · 3 failures"

BUCKET_S = 5.0
"""Seconds per sparkline character."""

SPARK_LEVELS = "▁▂▃▄▅▆▇█"


# Rates


@dataclass(frozen=True)
class _Sample:
    """How much each counter grew between two polls."""

    start_s: float
    end_s: float
    deltas: Mapping[str, int]


@dataclass
class RateHistory:
    """Per-second rates of the broker's counters, from successive totals.

    The broker's ``totals`` count from its start, so a counter that shrinks
    means the broker restarted: the new value is then what it counted since.

    Attributes:
        keep_s: How much history to keep, in seconds.
    """

    keep_s: float = 300.0
    _samples: deque[_Sample] = field(default_factory=deque)
    _last_at_s: float | None = None
    _last: dict[str, int] = field(default_factory=dict)

    def add(self, at_s: float, totals: Mapping[str, int]) -> None:
        """Record the counters as read at ``at_s`` (monotonic seconds)."""
        current = {name: int(totals.get(name, 0)) for name in COUNTERS}
        if self._last_at_s is not None:
            deltas = {
                name: value - self._last[name] if value >= self._last[name] else value
                for name, value in current.items()
            }
            self._samples.append(_Sample(self._last_at_s, at_s, deltas))
        self._last_at_s, self._last = at_s, current
        while self._samples and self._samples[0].end_s < at_s - self.keep_s:
            self._samples.popleft()

    def rate(self, counter: str, now_s: float, window_s: float = 3.0) -> float | None:
        """The counter's growth per second over the last ``window_s``.

        Returns:
            The rate, or None before two readings fall in the window.
        """
        recent = [s for s in self._samples if s.end_s > now_s - window_s]
        if not recent:
            return None
        span_s = recent[-1].end_s - recent[0].start_s
        total = sum(s.deltas.get(counter, 0) for s in recent)
        return total / span_s if span_s > 0 else None

    def series(self, counter: str, now_s: float, buckets: int) -> list[float]:
        """Per-second rates in ``buckets`` slots of `BUCKET_S`, oldest first."""
        start_s = now_s - buckets * BUCKET_S
        sums = [0.0] * buckets
        for sample in self._samples:
            slot = int((sample.end_s - start_s) // BUCKET_S)
            if 0 <= slot < buckets:
                sums[slot] += sample.deltas.get(counter, 0)
        return [value / BUCKET_S for value in sums]


def sparkline(values: Sequence[float]) -> str:
    """One block character per value, scaled to the largest one."""
    top = max(values, default=0.0)
    if top <= 0:
        return SPARK_LEVELS[0] * len(values)
    last = len(SPARK_LEVELS) - 1
    return "".join(SPARK_LEVELS[round(max(v, 0.0) / top * last)] for v in values)


def format_rate(rate: float | None) -> str:
    """A rate per second, short: ``-/s``, ``3.5/s``, ``120/s``, ``25.3k/s``."""
    if rate is None:
        return f"{DASH}/s"
    if rate >= 10_000:
        return f"{rate / 1000:.1f}k/s"
    return f"{rate:.1f}/s" if rate < 10 else f"{rate:.0f}/s"


# The dashboard's state


@dataclass
class Dashboard:
    """What ``tq top`` knows: the latest answers and whether the broker is there.

    Attributes:
        address: The broker's ``HOST:PORT``.
        view: One of `VIEWS`.
        stats: The latest ``stats()``, or None before the first.
        workers: The latest ``workers()``.
        failures: Recent failures, newest first.
        history: Rates of the counters.
        problem: Why the broker is not answering, or None while it is.
        updated_s: When ``stats`` was read (monotonic seconds).
    """

    address: str
    view: str = VIEWS[0]
    stats: dict[str, Any] | None = None
    workers: list[dict[str, Any]] = field(default_factory=list)
    failures: list[TaskInfo] = field(default_factory=list)
    history: RateHistory = field(default_factory=RateHistory)
    problem: str | None = None
    updated_s: float | None = None

    def record(
        self, at_s: float, stats: dict[str, Any], workers: list[dict[str, Any]]
    ) -> None:
        """Take a fresh answer of ``stats()`` and ``workers()``."""
        self.stats, self.workers, self.updated_s = stats, workers, at_s
        self.history.add(at_s, stats.get("totals", {}))
        self.problem = None

    def lost(self, reason: str) -> None:
        """Note that the broker stopped answering, and why."""
        self.problem = reason


def handle_key(dashboard: Dashboard, key: str) -> bool:
    """Act on one key press.

    Args:
        dashboard: The dashboard to switch views on.
        key: The character typed.

    Returns:
        False when the key asks to quit, True otherwise.
    """
    if key in ("q", "Q"):
        return False
    if key == "\t":
        dashboard.view = VIEWS[(VIEWS.index(dashboard.view) + 1) % len(VIEWS)]
    elif key.isdigit() and 1 <= int(key) <= len(VIEWS):
        dashboard.view = VIEWS[int(key) - 1]
    return True


# Pieces of the screen


def header(dashboard: Dashboard, now_s: float) -> Text:
    """The top line: broker, whether it answers, and the views."""
    line = Text("tq top ", style="bold")
    line.append(f"{dashboard.address}  ")
    if dashboard.problem is not None:
        # The reason comes last: on a narrow screen it is what gets cut.
        line.append("reconnecting", style="bold red")
        if dashboard.updated_s is not None:
            line.append(f" (data {duration(now_s - dashboard.updated_s)} old)")
        line.append(f": {dashboard.problem}", style="red")
    elif dashboard.stats is None:
        line.append("connecting", style="yellow")
    else:
        line.append("live", style="bold green")
        line.append(f"  up {duration(float(dashboard.stats.get('uptime_s', 0)))}")
    line.append("   ")
    for number, view in enumerate(VIEWS, start=1):
        style = "reverse" if view == dashboard.view else "dim"
        line.append(f" {number} {view} ", style=style)
    return line


def queue_panel(stats: Mapping[str, Any]) -> Panel:
    """Queue depth, its threshold, and pending tasks by priority tier, with bars.

    The names and counts never wrap or shrink; the bars take the width left.
    """
    tiers = {tier: int(stats["pending_by_tier"].get(tier, 0)) for tier in TIERS}
    widest = max(tiers.values(), default=0)
    table = Table.grid(padding=(0, 1))
    table.add_column(style="bold", no_wrap=True)
    table.add_column(justify="right", no_wrap=True)
    table.add_column()
    table.add_row("depth", str(stats["queue_depth"]), "")
    table.add_row("limit", str(stats["max_pending"]), "")
    for tier, count in tiers.items():
        bar = Bar(widest, 0, count, color="cyan") if count else ""
        table.add_row(tier, str(count), bar)
    return Panel(table, title="queue depth", title_align="left")


def rates_panel(history: RateHistory, now_s: float, width: int) -> Panel:
    """Submit, completion and failure rates, each with a sparkline."""
    buckets = max(8, min(60, width))
    table = Table.grid(padding=(0, 1))
    table.add_column(style="bold")
    table.add_column(justify="right", min_width=8)
    table.add_column(style="green", no_wrap=True, overflow="crop")
    for counter in COUNTERS:
        table.add_row(
            counter,
            format_rate(history.rate(counter, now_s)),
            sparkline(history.series(counter, now_s, buckets)),
        )
    title = f"rates (last {duration(buckets * BUCKET_S)})"
    return Panel(table, title=title, title_align="left")


def counts_panel(stats: Mapping[str, Any]) -> Panel:
    """Tasks in progress, waiting, retrying, dead-lettered; workers."""
    by_state = stats["by_state"]
    rows = {
        "in progress": by_state.get("in_progress", 0),
        "scheduled": by_state.get("scheduled", 0),
        "retrying": by_state.get("failed", 0),
        "dead letters": by_state.get("dead_letter", 0),
        "completed": by_state.get("completed", 0),
        "workers": stats.get("workers", 0),
    }
    table = Table.grid(padding=(0, 1))
    table.add_column(style="bold", no_wrap=True)
    table.add_column(justify="right", no_wrap=True)
    for name, value in rows.items():
        table.add_row(name, str(value))
    if stats.get("storage_error"):
        table.add_row(Text("storage", style="bold red"), str(stats["storage_error"]))
    return Panel(table, title="tasks", title_align="left")


def workers_table(workers: Sequence[Mapping[str, Any]]) -> Table:
    """One row per worker: load, heartbeat age and the tasks it holds."""
    table = Table(title=f"workers ({len(workers)})", title_justify="left", expand=True)
    table.add_column("worker", no_wrap=True)
    table.add_column("busy", justify="right", no_wrap=True)
    table.add_column("heartbeat", justify="right", no_wrap=True)
    table.add_column("current tasks", ratio=1, overflow="ellipsis", no_wrap=True)
    for worker in workers:
        held = worker["tasks"]
        table.add_row(
            worker["worker_id"],
            f"{len(held)}/{worker['concurrency']}",
            f"{duration(float(worker['heartbeat_age_s']))} ago",
            ", ".join(f"{t['task_id']} {t['task_type']}" for t in held) or "idle",
        )
    return table


def worker_tasks_table(workers: Sequence[Mapping[str, Any]], now_ms: int) -> Table:
    """One row per task held by a worker, with its attempt and lease time left."""
    table = Table(title="tasks held by workers", title_justify="left", expand=True)
    for column in ("worker", "host / pid", "heartbeat", "task", "type", "attempt"):
        table.add_column(column, no_wrap=True)
    table.add_column("lease ends", no_wrap=True)
    for worker in workers:
        ident = (
            worker["worker_id"],
            f"{worker['hostname']} / {worker['pid']}",
            f"{duration(float(worker['heartbeat_age_s']))} ago",
        )
        for task in worker["tasks"] or [None]:
            if task is None:
                table.add_row(*ident, "idle", DASH, DASH, DASH)
                continue
            table.add_row(
                *ident,
                str(task["task_id"]),
                task["task_type"],
                str(task["attempt"]),
                age(task["deadline_ms"], now_ms),
            )
    return table


def failures_table(failures: Sequence[TaskInfo], now_ms: int) -> Table:
    """Recent failures, newest first: retrying tasks and dead letters."""
    table = Table(title="recent failures", title_justify="left", expand=True)
    table.add_column("task", justify="right", no_wrap=True)
    table.add_column("type", no_wrap=True)
    table.add_column("state", no_wrap=True)
    table.add_column("attempts", justify="right", no_wrap=True)
    table.add_column("when", no_wrap=True)
    table.add_column("error", ratio=1, overflow="ellipsis", no_wrap=True)
    for task in failures:
        table.add_row(
            str(task.task_id),
            task.task_type,
            "retrying" if task.state == "failed" else task.state.replace("_", " "),
            str(task.attempts),
            age(task.updated_ms, now_ms),
            task.last_error or DASH,
        )
    return table


# The whole screen


def render_sections(
    dashboard: Dashboard, now_s: float, now_ms: int, width: int
) -> list[tuple[RenderableType, int | None]]:
    """The screen below the header, as sections with a fixed height or None.

    A section with None shares the height that is left with the others.
    """
    stats = dashboard.stats
    if stats is None:
        return [(Text("waiting for the first answer from the broker…"), None)]
    if dashboard.view == "workers":
        return [(worker_tasks_table(dashboard.workers, now_ms), None)]
    if dashboard.view == "failures":
        return [(failures_table(dashboard.failures, now_ms), None)]
    top = Table.grid(expand=True)
    top.add_column(ratio=1)
    top.add_column(ratio=2)
    top.add_column(ratio=1)
    spark_width = max(8, width // 2 - 26)
    top.add_row(
        queue_panel(stats),
        rates_panel(dashboard.history, now_s, spark_width),
        counts_panel(stats),
    )
    return [
        (top, 8),
        (workers_table(dashboard.workers), None),
        (failures_table(dashboard.failures[:8], now_ms), None),
    ]


def render(
    dashboard: Dashboard, now_s: float, now_ms: int, width: int, *, full_screen: bool
) -> RenderableType:
    """The whole screen of ``tq top``.

    Args:
        dashboard: What to show.
        now_s: The monotonic time, for rates and data age.
        now_ms: The wall-clock time, for lease and failure ages.
        width: The terminal's width in characters.
        full_screen: Lay the sections out to fill the terminal's height; else
            stack them at their natural height (for a one-off print).

    Returns:
        A rich renderable.
    """
    top = header(dashboard, now_s)
    keys = Text(KEYS_HELP, style="dim")
    sections = render_sections(dashboard, now_s, now_ms, width)
    if not full_screen:
        return Group(top, *(section for section, _ in sections))
    layout = Layout()
    parts = [Layout(top, size=1)]
    parts += [Layout(section, size=size) for section, size in sections]
    parts.append(Layout(keys, size=1))
    layout.split_column(*parts)
    return layout
