"""Prometheus metrics of a broker, served at ``/metrics`` on the metrics port.

Everything is read when Prometheus scrapes. Counters and histograms come from
the broker's `TaskMeter`, which counts every task outcome as plain numbers on
the hot path; gauges (pending, in progress, queue depth by tier, workers) come
from the engine's in-memory counts, so they are never stale.

The endpoint takes no token: scrapers rarely can send one. It listens on the
broker's ``host`` like every other port; keep that address private or put a
proxy that authenticates in front of it. With ``tls_cert`` and ``tls_key`` in
the config it serves https, like the REST port.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Iterable

import trio
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tq.broker.http import serve_asgi
from tq.broker.meter import BucketCounts, TaskMeter
from tq.broker.service import Broker
from tq.errors import TqError

__all__ = ["BrokerMetrics", "metrics_app", "serve_metrics"]

log = logging.getLogger("tq.broker.metrics")

_TIERS = ("low", "normal", "high")


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


class _MeterCounts(Collector):
    """Counters and histograms read from the broker's `TaskMeter` at scrape time."""

    def __init__(self, meter: TaskMeter) -> None:
        self._meter = meter

    def describe(self) -> Iterable[Metric]:
        return list(self._families())

    def collect(self) -> Iterable[Metric]:
        tasks, retries, dead_letters, processing, latency = self._families()
        by_type: dict[str, Counter[str]] = {"retried": Counter(), "dead": Counter()}
        for (status, task_type), count in sorted(self._meter.by_status_type.items()):
            tasks.add_metric([status, task_type], count)
            if status == "retried":
                by_type["retried"][task_type] += count
            elif status == "dead_lettered":
                by_type["dead"][task_type] += count
        for task_type, count in sorted(by_type["retried"].items()):
            retries.add_metric([task_type], count)
        for task_type, count in sorted(by_type["dead"].items()):
            dead_letters.add_metric([task_type], count)
        _fill_histogram(processing, self._meter.run_s)
        _fill_histogram(latency, self._meter.latency_s)
        yield from (tasks, retries, dead_letters, processing, latency)

    @staticmethod
    def _families() -> tuple[
        CounterMetricFamily,
        CounterMetricFamily,
        CounterMetricFamily,
        HistogramMetricFamily,
        HistogramMetricFamily,
    ]:
        return (
            CounterMetricFamily(
                "tq_tasks",
                "Task events by status: submitted, completed, failed, retried, "
                "dead_lettered, cancelled.",
                labels=["status", "type"],
            ),
            CounterMetricFamily(
                "tq_task_retries",
                "Failed attempts scheduled to run again.",
                labels=["type"],
            ),
            CounterMetricFamily(
                "tq_task_dead_letters",
                "Tasks moved to the dead letter queue.",
                labels=["type"],
            ),
            HistogramMetricFamily(
                "tq_task_processing_duration_seconds",
                "Run time of finished attempts, completed or failed.",
            ),
            HistogramMetricFamily(
                "tq_task_latency_seconds", "Time from submit to ack of completed tasks."
            ),
        )


def _fill_histogram(family: HistogramMetricFamily, counts: BucketCounts) -> None:
    # Bounds as Prometheus writes them: 0.005, 1.0, +Inf.
    buckets = [
        ("+Inf" if bound == math.inf else repr(bound), running)
        for bound, running in counts.cumulative()
    ]
    family.add_metric([], buckets, counts.total)


class BrokerMetrics:
    """The metrics of one broker, in a registry of their own.

    Attributes:
        registry: Holds every tq metric and nothing else.
    """

    def __init__(self, broker: Broker) -> None:
        """Create the metrics of ``broker``, all read when scraped."""
        self.registry = CollectorRegistry()
        self.registry.register(_MeterCounts(broker.meter))
        self.registry.register(_LiveGauges(broker))

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
    config = broker.config
    await serve_asgi(
        metrics_app(BrokerMetrics(broker)),
        config,
        config.metrics_port,
        "metrics",
        log,
        task_status=task_status,
    )
