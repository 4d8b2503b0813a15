"""Running counts and timings of task outcomes, kept as plain numbers.

The broker counts every submit, completion, failure, retry, dead letter and
cancel here, by task type, and records run times and submit-to-ack latencies
in fixed buckets. Counting is a dictionary increment and a bisection, cheap
enough to do for every task on the hot path; `tq.broker.metrics` turns these
numbers into Prometheus metrics only when it is scraped.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter
from collections.abc import Sequence

__all__ = [
    "DURATION_BUCKETS",
    "LATENCY_BUCKETS",
    "MAX_TYPE_LABELS",
    "STATUSES",
    "BucketCounts",
    "TaskMeter",
]

MAX_TYPE_LABELS = 1000
"""Distinct task types counted under their own name; later ones count as
``other``, so that a flood of made-up types cannot grow memory without end."""

STATUSES = (
    "submitted",
    "completed",
    "failed",
    "retried",
    "dead_lettered",
    "cancelled",
)
"""What happened to a task, as counted."""

DURATION_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
    300.0, 900.0, 3600.0,
)  # fmt: skip
"""Run time buckets, seconds: from quick handlers to hour-long jobs."""

LATENCY_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
    10.0, 30.0, 60.0, 300.0, 3600.0,
)  # fmt: skip
"""Submit-to-ack buckets, seconds, fine at the low end where tq aims."""


class BucketCounts:
    """A histogram: how many observations fell at or under each bound.

    Attributes:
        bounds: The upper bounds, ascending; one more bucket holds the rest.
        counts: Observations per bucket (not cumulative), the last past every
            bound.
        total: The sum of every observed value.
    """

    def __init__(self, bounds: Sequence[float]) -> None:
        """Create an empty histogram with these upper bounds."""
        self.bounds = tuple(bounds)
        self.counts = [0] * (len(self.bounds) + 1)
        self.total = 0.0

    def observe(self, value: float) -> None:
        """Record one value (negative ones count as 0)."""
        value = max(value, 0.0)
        self.counts[bisect_left(self.bounds, value)] += 1
        self.total += value

    def cumulative(self) -> list[tuple[float, int]]:
        """``(bound, observations at or under it)`` per bound, then ``inf``."""
        out: list[tuple[float, int]] = []
        running = 0
        for bound, count in zip((*self.bounds, float("inf")), self.counts, strict=True):
            running += count
            out.append((bound, running))
        return out


class TaskMeter:
    """Task outcomes by status and type, with run and latency histograms.

    Attributes:
        by_status_type: ``(status, type)`` to how many times it happened.
        run_s: Run times of finished attempts, completed or failed.
        latency_s: Submit-to-ack times of completed tasks.
    """

    def __init__(self) -> None:
        """Create a meter with every count at zero."""
        self.by_status_type: Counter[tuple[str, str]] = Counter()
        self.run_s = BucketCounts(DURATION_BUCKETS)
        self.latency_s = BucketCounts(LATENCY_BUCKETS)
        self._types: set[str] = set()

    def count(self, status: str, task_type: str | None, times: int = 1) -> None:
        """Count ``times`` tasks of ``task_type`` reaching ``status``."""
        self.by_status_type[status, self._label(task_type)] += times

    def attempt_ended(self, run_s: float) -> None:
        """Record how long a completed or failed attempt ran."""
        self.run_s.observe(run_s)

    def acked(self, since_submit_s: float) -> None:
        """Record how long a completed task took from submit to ack."""
        self.latency_s.observe(since_submit_s)

    def _label(self, task_type: str | None) -> str:
        if task_type is None:
            return "unknown"
        if task_type in self._types:
            return task_type
        if len(self._types) >= MAX_TYPE_LABELS:
            return "other"
        self._types.add(task_type)
        return task_type
