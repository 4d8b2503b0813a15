"""Every task, system and dead-letter endpoint of the REST API, used as a
client would, against a real broker process and real workers."""

from __future__ import annotations

import base64
from collections.abc import Callable

import httpx
import pytest
from processes import BrokerProcess, WorkerProcess, wait_until
from rest_support import b64, submit, task_body, wait_for_state


def test_submitted_task_reads_back_with_its_fields_and_base64_payload(
    api: httpx.Client,
) -> None:
    body = task_body(
        "echo",
        b"\x00\xffbytes",
        priority=250,
        timeout_seconds=12.5,
        max_retries=7,
        idempotency_key="k-1",
    )
    response = api.post("/api/v1/tasks", json=body)
    assert response.status_code == 201
    created = response.json()
    assert created["created"] is True
    assert response.headers["location"] == f"/api/v1/tasks/{created['task_id']}"

    task = api.get(response.headers["location"]).json()
    assert task["task_id"] == created["task_id"]
    assert task["state"] == "pending"
    assert base64.b64decode(task["payload"]) == b"\x00\xffbytes"
    assert (task["priority"], task["max_retries"]) == (250, 7)
    assert task["timeout_ms"] == 12_500
    assert task["idempotency_key"] == "k-1"
    assert task["result"] is None
    assert task["history"] == []


def test_task_runs_and_its_result_comes_back_in_base64(
    api: httpx.Client, spawn_worker: Callable[..., WorkerProcess]
) -> None:
    spawn_worker()
    task_id = submit(api, "echo", b"round trip")
    task = wait_for_state(api, task_id, "completed")
    assert base64.b64decode(task["result"]) == b"round trip"
    assert task["attempts"] == 1
    assert [a["outcome"] for a in task["history"]] == ["completed"]


def test_resubmit_with_a_known_idempotency_key_returns_the_task_with_200(
    api: httpx.Client,
) -> None:
    first = api.post("/api/v1/tasks", json=task_body(idempotency_key="once"))
    again = api.post(
        "/api/v1/tasks", json=task_body(payload=b"other", idempotency_key="once")
    )
    assert first.status_code == 201
    assert again.status_code == 200
    assert again.json() == {"task_id": first.json()["task_id"], "created": False}


def test_spec_defaults_fill_in_what_a_submit_leaves_out(api: httpx.Client) -> None:
    task_id = submit(api, "echo", b"")
    task = api.get(f"/api/v1/tasks/{task_id}").json()
    assert task["priority"] == 100
    assert task["max_retries"] == 3
    assert task["timeout_ms"] == 300_000
    assert task["payload"] == ""


def test_delayed_task_waits_as_scheduled(api: httpx.Client) -> None:
    task_id = submit(api, delay_seconds=3600)
    task = api.get(f"/api/v1/tasks/{task_id}").json()
    assert task["state"] == "scheduled"
    assert task["run_at_ms"] - task["created_ms"] == 3_600_000


def test_listing_pages_through_tasks_with_an_opaque_cursor(api: httpx.Client) -> None:
    ids = [submit(api, payload=str(n).encode()) for n in range(7)]
    seen: list[int] = []
    cursor = None
    pages = 0
    while True:
        params = {"status": "pending", "limit": 3}
        if cursor is not None:
            params["cursor"] = cursor
        page = api.get("/api/v1/tasks", params=params).json()
        seen += [task["task_id"] for task in page["tasks"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
        assert not set(cursor) & set("=/+"), cursor
    assert seen == ids
    assert pages == 3


def test_listing_filters_by_status_and_type(api: httpx.Client) -> None:
    echo = submit(api, "echo")
    other = submit(api, "other")
    later = submit(api, "other", delay_seconds=600)

    def listed(**params: str) -> list[int]:
        page = api.get("/api/v1/tasks", params=params).json()
        return [task["task_id"] for task in page["tasks"]]

    assert listed() == [echo, other]
    assert listed(type="other") == [other]
    assert listed(status="scheduled") == [later]
    assert listed(status="completed") == []


def test_cancel_of_a_pending_task_cancels_it(api: httpx.Client) -> None:
    task_id = submit(api, "nobody_runs_this")
    response = api.delete(f"/api/v1/tasks/{task_id}")
    assert response.status_code == 200
    assert response.json() == {
        "task_id": task_id,
        "state": "cancelled",
        "cancel_requested": False,
    }
    assert api.get(f"/api/v1/tasks/{task_id}").json()["state"] == "cancelled"


def test_cancel_of_a_running_task_is_accepted_and_flagged_for_its_worker(
    api: httpx.Client, spawn_worker: Callable[..., WorkerProcess]
) -> None:
    spawn_worker()
    task_id = submit(api, "block", b"30")
    wait_for_state(api, task_id, "in_progress")
    response = api.delete(f"/api/v1/tasks/{task_id}")
    assert response.status_code == 202
    assert response.json()["cancel_requested"] is True
    assert api.get(f"/api/v1/tasks/{task_id}").json()["cancel_requested"] is True


def test_stats_count_tasks_by_state_type_and_priority_tier(api: httpx.Client) -> None:
    submit(api, "a", priority=10)
    submit(api, "a", priority=150)
    submit(api, "b", priority=220)
    cancelled = submit(api, "b")
    api.delete(f"/api/v1/tasks/{cancelled}")

    stats = api.get("/api/v1/stats").json()
    assert stats["by_state"]["pending"] == 3
    assert stats["by_state"]["cancelled"] == 1
    assert stats["by_type"] == {
        "a": {"pending": 2},
        "b": {"pending": 1, "cancelled": 1},
    }
    assert stats["pending_by_tier"] == {"low": 1, "normal": 1, "high": 1}
    assert stats["queue_depth"] == 3
    assert stats["totals"]["submitted"] == 4
    assert stats["storage_error"] is None


def test_workers_lists_a_live_worker_with_its_current_task(
    api: httpx.Client, spawn_worker: Callable[..., WorkerProcess]
) -> None:
    assert api.get("/api/v1/workers").json() == {"workers": []}
    spawn_worker(concurrency=2)
    task_id = submit(api, "block", b"30")
    wait_for_state(api, task_id, "in_progress")

    [worker] = api.get("/api/v1/workers").json()["workers"]
    assert worker["concurrency"] == 2
    assert worker["pid"] > 0
    assert worker["heartbeat_age_s"] < 5
    assert [(t["task_id"], t["task_type"]) for t in worker["tasks"]] == [
        (task_id, "block")
    ]


def test_dead_letters_are_listed_requeued_one_by_one_and_purged(
    api: httpx.Client, spawn_worker: Callable[..., WorkerProcess]
) -> None:
    spawn_worker()
    first = submit(api, "always_fails", b"one", max_retries=0)
    second = submit(api, "always_fails", b"two", max_retries=0)
    wait_for_state(api, first, "dead_letter")
    wait_for_state(api, second, "dead_letter")

    listed = api.get("/api/v1/dlq").json()
    assert [task["task_id"] for task in listed["tasks"]] == [first, second]
    assert "boom on one" in listed["tasks"][0]["last_error"]

    assert api.post(f"/api/v1/dlq/{first}/requeue").json() == {"requeued": 1}
    requeued = wait_for_state(api, first, "dead_letter")
    assert [a["outcome"] for a in requeued["history"]] == ["failed", "failed"]

    purged = api.post("/api/v1/dlq/purge", json={"older_than_seconds": 3600})
    assert purged.json() == {"purged": 0}
    assert api.post("/api/v1/dlq/purge").json() == {"purged": 2}
    assert api.get("/api/v1/dlq").json() == {"tasks": [], "next_cursor": None}


def test_requeue_all_takes_back_dead_letters_of_one_type(
    api: httpx.Client, broker: BrokerProcess, spawn_worker: Callable[..., WorkerProcess]
) -> None:
    worker = spawn_worker()
    rejected = [submit(api, "reject", max_retries=0) for _ in range(2)]
    failed = submit(api, "always_fails", b"x", max_retries=0)
    for task_id in [*rejected, failed]:
        wait_for_state(api, task_id, "dead_letter")
    worker.stop()

    response = api.post("/api/v1/dlq/requeue", json={"task_type": "reject"})
    assert response.json() == {"requeued": 2}
    pending = api.get("/api/v1/tasks", params={"type": "reject"}).json()
    assert sorted(task["task_id"] for task in pending["tasks"]) == rejected
    assert api.post("/api/v1/dlq/requeue", json={}).json() == {"requeued": 1}


def test_health_is_ok_while_storage_works(api: httpx.Client) -> None:
    response = api.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["storage_error"] is None
    assert body["version"]


@pytest.mark.parametrize("broker_config", [{"max_page": 2}], indirect=False)
def test_page_size_defaults_to_at_most_max_page(api: httpx.Client) -> None:
    for n in range(3):
        submit(api, payload=b64(str(n).encode()).encode())
    page = api.get("/api/v1/tasks").json()
    assert len(page["tasks"]) == 2
    assert page["next_cursor"] is not None


def test_broker_serves_rest_and_metrics_on_the_ports_it_logged(
    broker: BrokerProcess,
) -> None:
    log = broker.log_text()
    assert f"rest listening host=127.0.0.1 port={broker.rest_port}" in log
    assert f"metrics listening host=127.0.0.1 port={broker.metrics_port}" in log
    assert len({broker.port, broker.rest_port, broker.metrics_port}) == 3
    wait_until(lambda: httpx.get(broker.metrics_url).status_code == 200, 10, "metrics")
