"""Prometheus metrics after real tasks ran: every metric SPEC §3.5 names, with
its labels, and counts equal to what the tasks did."""

from __future__ import annotations

from collections.abc import Callable

import httpx
from processes import BrokerProcess, WorkerProcess, wait_until
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from rest_support import submit, wait_for_state

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(broker: BrokerProcess) -> dict[str, Metric]:
    response = httpx.get(broker.metrics_url, timeout=30)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        family.name: family for family in text_string_to_metric_families(response.text)
    }


def samples(families: dict[str, Metric]) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in families.values()
        for sample in family.samples
    }


def value(found: Samples, name: str, **labels: str) -> float:
    return found.get((name, frozenset(labels.items())), 0.0)


def test_a_scrape_after_tasks_ran_counts_them_by_status_and_type(
    broker: BrokerProcess,
    api: httpx.Client,
    spawn_worker: Callable[..., WorkerProcess],
) -> None:
    spawn_worker(concurrency=2)
    running = submit(api, "block", b"30")
    wait_for_state(api, running, "in_progress")
    echoes = [submit(api, "echo", str(n).encode()) for n in range(3)]
    failing = submit(api, "always_fails", b"x", max_retries=1)
    for priority in (250, 250, 150, 10):
        submit(api, "waits", priority=priority)
    api.delete(f"/api/v1/tasks/{submit(api, 'waits')}")
    for task_id in echoes:
        wait_for_state(api, task_id, "completed")
    wait_for_state(api, failing, "dead_letter")

    # The counters follow events published just after each commit; the task
    # states above may be visible a moment before their events are counted.
    def dead_letter_counted() -> bool:
        found = samples(scrape(broker))
        return value(found, "tq_task_dead_letters_total", type="always_fails") == 1

    wait_until(dead_letter_counted, 10, "the dead letter to be counted")
    families = scrape(broker)
    found = samples(families)

    assert families["tq_tasks"].type == "counter"
    for status, task_type, count in [
        ("submitted", "block", 1),
        ("submitted", "echo", 3),
        ("submitted", "always_fails", 1),
        ("submitted", "waits", 5),
        ("completed", "echo", 3),
        ("failed", "always_fails", 2),
        ("retried", "always_fails", 1),
        ("dead_lettered", "always_fails", 1),
        ("cancelled", "waits", 1),
    ]:
        assert value(found, "tq_tasks_total", status=status, type=task_type) == count
    assert sum(v for (name, _), v in found.items() if name == "tq_tasks_total") == 18
    assert value(found, "tq_task_retries_total", type="always_fails") == 1
    assert value(found, "tq_task_dead_letters_total", type="always_fails") == 1

    assert families["tq_tasks_pending"].type == "gauge"
    assert value(found, "tq_tasks_pending") == 4
    assert value(found, "tq_tasks_in_progress") == 1
    assert value(found, "tq_workers_connected") == 1
    assert {
        tier: value(found, "tq_broker_queue_depth", priority=tier)
        for tier in ("low", "normal", "high")
    } == {"low": 1, "normal": 1, "high": 2}


def test_run_times_and_submit_to_ack_latency_are_histograms_of_finished_attempts(
    broker: BrokerProcess,
    api: httpx.Client,
    spawn_worker: Callable[..., WorkerProcess],
) -> None:
    spawn_worker()
    done = [submit(api, "block", b"0.2"), submit(api, "echo")]
    failing = submit(api, "always_fails", b"x", max_retries=0)
    for task_id in done:
        wait_for_state(api, task_id, "completed")
    wait_for_state(api, failing, "dead_letter")

    def all_counted() -> bool:
        found = samples(scrape(broker))
        return value(found, "tq_task_processing_duration_seconds_count") == 3

    wait_until(all_counted, 10, "three finished attempts to be counted")
    families = scrape(broker)
    found = samples(families)

    # Every attempt that ended, completed or failed, has its run time.
    processing = families["tq_task_processing_duration_seconds"]
    assert processing.type == "histogram"
    buckets = [s for s in processing.samples if s.name.endswith("_bucket")]
    counts = [s.value for s in buckets]
    assert counts == sorted(counts)
    assert buckets[-1].labels == {"le": "+Inf"}
    assert counts[-1] == 3
    # The blocking task alone ran for 0.2 s.
    assert value(found, "tq_task_processing_duration_seconds_sum") >= 0.2
    assert value(found, "tq_task_processing_duration_seconds_bucket", le="0.1") == 2

    # Submit-to-ack latency: only the two completed tasks, each at least its run.
    assert families["tq_task_latency_seconds"].type == "histogram"
    assert value(found, "tq_task_latency_seconds_count") == 2
    assert value(found, "tq_task_latency_seconds_sum") >= 0.2


def test_a_scrape_of_an_idle_broker_shows_every_gauge_at_zero(
    broker: BrokerProcess,
) -> None:
    found = samples(scrape(broker))

    for name in ("tq_tasks_pending", "tq_tasks_in_progress", "tq_workers_connected"):
        assert value(found, name) == 0
    for tier in ("low", "normal", "high"):
        assert value(found, "tq_broker_queue_depth", priority=tier) == 0
    assert value(found, "tq_task_processing_duration_seconds_count") == 0
