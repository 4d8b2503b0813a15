"""Prometheus metrics of a broker, served at ``/metrics`` on the metrics port.

Two sources feed them. Counters and histograms follow the event hub through a
tap, so they see every task event in the broker's own thread and never block.
Gauges (pending, in progress, queue depth by tier, workers) are read from the
engine's in-memory counts when Prometheus scrapes, so they are never stale.

The endpoint takes no token: scrapers rarely can send one. It listens on the
broker's ``host`` like every other port; keep that address private or put a
proxy that authenticates in front of it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import trio
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tq.broker.events import Event
from tq.broker.http import serve_asgi
from tq.broker.service import Broker
from tq.errors import TqError

__all__ = ["BrokerMetrics", "metrics_app", "serve_metrics"]

log = logging.getLogger("tq.broker.metrics")

MAX_TYPE_LABELS = 1000
"""Distinct task types given their own label value; later ones count as
``other``, so that a flood of made-up types cannot grow memory without end."""

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

_STATUS_BY_KIND = {
    "task.submitted": "submitted",
    "task.completed": "completed",
    "task.failed": "failed",
    "task.retrying": "retried",
    "task.dead_lettered": "dead_lettered",
    "task.cancelled": "cancelled",
}
_TIERS = ("low", "normal", "high")


class _TypeLabels:
    """Task type label values, bounded to `MAX_TYPE_LABELS` distinct ones."""

    def __init__(self) -> None:
        self._seen: set[str] = set()

    def label(self, event: Event) -> str:
        task_type = event.data.get("task_type")
        if not isinstance(task_type, str):
            return "unknown"
        if task_type in self._seen:
            return task_type
        if len(self._seen) >= MAX_TYPE_LABELS:
            return "other"
        self._seen.add(task_type)
        return task_type


class _LiveGauges(Collector):
    """Gauges read from the broker at scrape time."""

    def __init__(self, broker: Broker) -> None:
        self._broker = broker

    def describe(self) -> Iterable[Metric]:
        # Registration must not touch the engine: describe without samples.
        return list(self._families())

    def collect(self) -> Iterable[Metric]:
        pending, in_progress, tiers, workers = self._families()
        try:
            counts = self._broker.engine.counts()
        except TqError as exc:
            log.warning("queue gauges left out of this scrape: %s", exc)
        else:
            pending.add_metric([], counts.by_state.get("pending", 0))
            in_progress.add_metric([], counts.by_state.get("in_progress", 0))
            for tier in _TIERS:
                tiers.add_metric([tier], counts.pending_by_tier.get(tier, 0))
            yield from (pending, in_progress, tiers)
        workers.add_metric([], len(self._broker.workers))
        yield workers

    @staticmethod
    def _families() -> tuple[GaugeMetricFamily, ...]:
        return (
            GaugeMetricFamily("tq_tasks_pending", "Tasks ready to be claimed."),
            GaugeMetricFamily(
                "tq_tasks_in_progress", "Tasks leased to a worker and running."
            ),
            GaugeMetricFamily(
                "tq_broker_queue_depth",
                "Pending tasks by priority tier (low 0-99, normal 100-199, "
                "high 200-255).",
                labels=["priority"],
            ),
            GaugeMetricFamily("tq_workers_connected", "Live workers."),
        )


class BrokerMetrics:
    """The metrics of one broker, in a registry of their own.

    Attributes:
        registry: Holds every tq metric and nothing else.
    """

    def __init__(self, broker: Broker) -> None:
        """Create the metrics and start following ``broker``'s events."""
        self.registry = CollectorRegistry()
        self._types = _TypeLabels()
        self.tasks = Counter(
            "tq_tasks",
            "Task events by status: submitted, completed, failed, retried, "
            "dead_lettered, cancelled.",
            ["status", "type"],
            registry=self.registry,
        )
        self.retries = Counter(
            "tq_task_retries",
            "Failed attempts scheduled to run again.",
            ["type"],
            registry=self.registry,
        )
        self.dead_letters = Counter(
            "tq_task_dead_letters",
            "Tasks moved to the dead letter queue.",
            ["type"],
            registry=self.registry,
        )
        self.processing = Histogram(
            "tq_task_processing_duration_seconds",
            "Run time of finished attempts, completed or failed.",
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        self.latency = Histogram(
            "tq_task_latency_seconds",
            "Time from submit to ack of completed tasks.",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(_LiveGauges(broker))
        broker.events.tap(self.observe)

    def observe(self, event: Event) -> None:
        """Count one event; called inline by the event hub for every event."""
        status = _STATUS_BY_KIND.get(event.kind)
        if status is None:
            return
        task_type = self._types.label(event)
        self.tasks.labels(status, task_type).inc()
        if status == "retried":
            self.retries.labels(task_type).inc()
        elif status == "dead_lettered":
            self.dead_letters.labels(task_type).inc()
        elif status in ("completed", "failed"):
            self._observe_times(event, completed=status == "completed")

    def _observe_times(self, event: Event, *, completed: bool) -> None:
        run_s = event.data.get("run_s")
        if isinstance(run_s, int | float):
            self.processing.observe(max(run_s, 0.0))
        since_submit_s = event.data.get("since_submit_s")
        if completed and isinstance(since_submit_s, int | float):
            self.latency.observe(max(since_submit_s, 0.0))

    def exposition(self) -> bytes:
        """Every metric in the Prometheus text format."""
        return generate_latest(self.registry)


def metrics_app(metrics: BrokerMetrics) -> Starlette:
    """A small ASGI app answering ``GET /metrics``."""

    async def scrape(request: Request) -> Response:
        return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    return Starlette(routes=[Route("/metrics", scrape, methods=["GET"])])


async def serve_metrics(
    broker: Broker, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED
) -> None:
    """Follow ``broker``'s events and serve ``/metrics`` on ``metrics_port``.

    Args:
        broker: The broker to measure.
        task_status: Started with the bound port.
    """
    app = metrics_app(BrokerMetrics(broker))
    host = broker.config.host
    async with trio.open_nursery() as nursery:
        port = await nursery.start(serve_asgi, app, host, broker.config.metrics_port)
        log.info("metrics listening host=%s port=%d", host, port)
        task_status.started(port)
