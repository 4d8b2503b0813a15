"""Printing: the machine, and one Markdown table per workload.

Every table has tq first, then the peers, then a row with tq's ratio to the
best peer in each numeric column (best: the highest rate, the lowest time or
size), so "2.0x" always reads "tq is twice as good as the best peer".
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

PEER_PACKAGES = ("celery", "kombu", "rq", "dramatiq", "huey", "redis")


@dataclass(frozen=True)
class Column:
    """A numeric column: its title, how to print a value, and which way is better."""

    title: str
    fmt: Callable[[float], str]
    higher_is_better: bool


def rate(value: float) -> str:
    """Tasks/s with thousands separators."""
    return f"{value:,.0f}"


def ms(value: float) -> str:
    """Milliseconds, 3 significant digits or so."""
    return f"{value:.2f}" if value < 100 else f"{value:,.0f}"


def seconds(value: float) -> str:
    """Seconds with 2 decimals."""
    return f"{value:.2f}"


def megabytes(value: float) -> str:
    """Bytes as MB (10^6)."""
    return f"{value / 1e6:,.0f}"


def table(
    columns: Sequence[Column],
    rows: dict[str, Sequence[float | None]],
    durability: dict[str, str],
    marks: dict[str, str] | None = None,
) -> str:
    """A Markdown table: a row per system, a ratio row, and the durability column.

    ``marks`` are appended to a system's name (for footnotes).
    """
    marks = marks or {}
    head = ["system", *(c.title for c in columns), "durability"]
    body = [
        [
            name + marks.get(name, ""),
            *(_cell(c, v) for c, v in zip(columns, values, strict=True)),
            durability[name],
        ]
        for name, values in rows.items()
    ]
    if "tq" in rows and len(rows) > 1:
        body.append(["tq ÷ best peer", *_ratios(columns, rows), ""])
    return markdown(head, body)


def legend(systems: Sequence[tuple[str, str, str, str, str]]) -> str:
    """The systems as they run: workers, batch API, result API, persistence."""
    head = ["system", "workers", "batch submit", "waiting for a result", "persistence"]
    return markdown(head, [list(row) for row in systems], numeric=False)


def _cell(column: Column, value: float | None) -> str:
    return "n/a" if value is None else column.fmt(value)


def _ratios(
    columns: Sequence[Column], rows: dict[str, Sequence[float | None]]
) -> list[str]:
    cells = []
    for i, column in enumerate(columns):
        tq = rows["tq"][i]
        peers = [v[i] for name, v in rows.items() if name != "tq" and v[i] is not None]
        if tq is None or not peers or tq == 0:
            cells.append("")
            continue
        best = max(peers) if column.higher_is_better else min(peers)
        ratio = tq / best if column.higher_is_better else best / tq
        cells.append(f"{ratio:.2f}x")
    return cells


def markdown(head: list[str], body: list[list[str]], *, numeric: bool = True) -> str:
    """Aligned Markdown; with ``numeric``, the middle columns align right."""
    widths = [max(len(row[i]) for row in [head, *body]) for i in range(len(head))]

    def right(i: int) -> bool:
        return numeric and 0 < i < len(widths) - 1

    def line(cells: list[str]) -> str:
        padded = (
            cell.rjust(w) if right(i) else cell.ljust(w)
            for i, (cell, w) in enumerate(zip(cells, widths, strict=True))
        )
        return "| " + " | ".join(padded) + " |"

    rule = (
        "|"
        + "|".join(
            "-" * (w + 1) + ":" if right(i) else "-" * (w + 2)
            for i, w in enumerate(widths)
        )
        + "|"
    )
    return "\n".join([line(head), rule, *(line(row) for row in body)])


def machine(tq_python: str) -> list[str]:
    """Lines describing the machine and the software measured."""
    return [
        f"- date: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}",
        f"- command: {_command()}",
        f"- CPU: {_cpu_model()}, {os.cpu_count()} cores; "
        f"memory {_mem_total_gb():.0f} GB; load average at start "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}",
        f"- kernel: {platform.system()} {platform.release()}; "
        f"Python {platform.python_version()}",
        f"- tq {_tq_version(tq_python)} ({tq_python})",
        f"- {_redis_version()}; "
        + ", ".join(f"{p} {_version(p)}" for p in PEER_PACKAGES),
    ]


def _command() -> str:
    own = " ".join(["benches/queues.py", *sys.argv[1:]])
    given = os.environ.get("TQ_BENCH_COMMAND")
    return f"`{given}` (which ran `{own}`)" if given else f"`{own}`"


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def _mem_total_gb() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) / 1024**2
    return 0.0


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def _tq_version(tq_python: str) -> str:
    out = subprocess.run(  # noqa: S603 - our own interpreter and code
        [tq_python, "-c", "import tq; print(tq.__version__)"],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


def _redis_version() -> str:
    out = subprocess.run(
        ["redis-server", "--version"],  # noqa: S607 - found on PATH by design
        capture_output=True,
        text=True,
        check=True,
    )
    words = dict(w.split("=", 1) for w in out.stdout.split() if "=" in w)
    return f"redis-server {words.get('v', out.stdout.strip())}"
