"""The WebSocket event stream: a task's life and the workers' comings and
goings in order, filters by kind and task type, refused bad filters, and a
consumer that stops reading dropped without holding anyone else up."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from processes import BrokerProcess, WorkerProcess, wait_until
from rest_support import Closed, Rejected, WsClient, submit

from tq import Client
from tq.broker.http import SLOW_CONSUMER_CLOSE, SLOW_CONSUMER_REASON

EVENTS = "/api/v1/events"


@contextmanager
def open_events(
    broker: BrokerProcess, query: str = "", **options: Any
) -> Iterator[WsClient]:
    """An event stream; the broker has subscribed it once this yields."""
    client = WsClient(broker.rest_port, f"{EVENTS}{query}", **options)
    try:
        yield client
    finally:
        client.close()


def read_until_closed(client: WsClient) -> tuple[int, Closed]:
    """How many messages came before the server closed, and the close."""
    received = 0
    while True:
        try:
            client.receive()
        except Closed as closed:
            return received, closed
        received += 1


def kinds_of(events: list[dict[str, Any]]) -> list[str]:
    return [event["event"] for event in events]


def of_task(events: list[dict[str, Any]], task_id: int) -> list[dict[str, Any]]:
    return [event for event in events if event.get("task_id") == task_id]


def test_a_completed_task_streams_submitted_started_completed_in_order(
    broker: BrokerProcess,
    api: httpx.Client,
    spawn_worker: Callable[..., WorkerProcess],
) -> None:
    with open_events(broker) as events:
        task_id = submit(api, "echo", b"hi", priority=200)
        spawn_worker()
        received = events.receive_until(
            lambda event: (
                event["event"] == "task.completed" and event["task_id"] == task_id
            )
        )

    submitted, started, completed = of_task(received, task_id)
    assert kinds_of([submitted, started, completed]) == [
        "task.submitted",
        "task.started",
        "task.completed",
    ]
    assert kinds_of(received).index("worker.joined") < received.index(started)
    assert {e["task_type"] for e in (submitted, started, completed)} == {"echo"}
    assert submitted["priority"] == 200
    assert started["attempt"] == completed["attempt"] == 1
    task = api.get(f"/api/v1/tasks/{task_id}").json()
    assert (
        started["worker_id"]
        == completed["worker_id"]
        == task["history"][0]["worker_id"]
    )
    assert 0 <= completed["run_s"] <= completed["since_submit_s"]
    assert submitted["at_ms"] <= started["at_ms"] <= completed["at_ms"]


def test_a_failing_task_streams_each_failure_its_retry_and_its_dead_letter(
    broker: BrokerProcess,
    api: httpx.Client,
    spawn_worker: Callable[..., WorkerProcess],
) -> None:
    with open_events(broker, "?types=always_fails") as events:
        task_id = submit(api, "always_fails", b"x", max_retries=1)
        spawn_worker()
        received = events.receive_until(
            lambda event: event["event"] == "task.dead_lettered"
        )

    task_events = of_task(received, task_id)
    assert kinds_of(task_events) == [
        "task.submitted",
        "task.started",
        "task.failed",
        "task.retrying",
        "task.started",
        "task.failed",
        "task.dead_lettered",
    ]
    assert [e.get("attempt") for e in task_events] == [None, 1, 1, 1, 2, 2, 2]
    failures = [e for e in task_events if e["event"] == "task.failed"]
    assert all("boom on x" in failure["error"] for failure in failures)
    [retrying] = [e for e in task_events if e["event"] == "task.retrying"]
    assert 0 <= retrying["retry_in_s"] <= 0.5
    assert api.get(f"/api/v1/tasks/{task_id}").json()["state"] == "dead_letter"


def test_a_cancelled_waiting_task_streams_its_cancel_with_its_type(
    broker: BrokerProcess, api: httpx.Client
) -> None:
    with open_events(broker, "?types=waits") as events:
        task_id = submit(api, "waits")
        api.delete(f"/api/v1/tasks/{task_id}")
        received = [events.receive(), events.receive()]

    assert kinds_of(received) == ["task.submitted", "task.cancelled"]
    assert {(e["task_id"], e["task_type"]) for e in received} == {(task_id, "waits")}


def test_a_running_task_cancelled_by_its_worker_streams_started_then_cancelled(
    broker: BrokerProcess,
    api: httpx.Client,
    spawn_worker: Callable[..., WorkerProcess],
) -> None:
    spawn_worker()
    with open_events(broker, "?types=block") as events:
        task_id = submit(api, "block", b"30")
        events.receive_until(lambda event: event["event"] == "task.started")
        assert api.delete(f"/api/v1/tasks/{task_id}").status_code == 202
        received = events.receive_until(
            lambda event: event["event"] == "task.cancelled"
        )

    assert kinds_of(received) == ["task.cancelled"]
    assert received[0]["task_id"] == task_id
    assert received[0]["task_type"] == "block"
    assert api.get(f"/api/v1/tasks/{task_id}").json()["state"] == "cancelled"


def test_a_worker_joining_and_then_lost_streams_both_events(
    broker: BrokerProcess, spawn_worker: Callable[..., WorkerProcess]
) -> None:
    with open_events(broker, "?events=worker.joined,worker.lost") as events:
        worker = spawn_worker()
        joined = events.receive()
        worker.kill()
        lost = events.receive()

    assert kinds_of([joined, lost]) == ["worker.joined", "worker.lost"]
    assert joined["worker_id"] == lost["worker_id"]
    assert joined["host"]
    # Lost only once the worker timeout (1.5 s here) has passed in silence.
    assert lost["at_ms"] - joined["at_ms"] >= 1500


def test_kind_and_type_filters_pass_only_matching_events(
    broker: BrokerProcess, api: httpx.Client
) -> None:
    query = "?events=task.submitted,task.cancelled&types=wanted,also"
    with open_events(broker, query) as events:
        submit(api, "unwanted")
        unwanted = submit(api, "unwanted")
        api.delete(f"/api/v1/tasks/{unwanted}")
        wanted = submit(api, "wanted")
        api.post(f"/api/v1/tasks/{wanted}")  # 405: nothing happens
        last = submit(api, "also")
        api.delete(f"/api/v1/tasks/{last}")
        received = events.receive_until(
            lambda event: event["event"] == "task.cancelled"
        )

    assert [(e["event"], e["task_id"]) for e in received] == [
        ("task.submitted", wanted),
        ("task.submitted", last),
        ("task.cancelled", last),
    ]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("?events=task.exploded", "events: expected kinds among task.submitted"),
        ("?events=task.started,nope", "got 'nope'"),
        ("?events=,", "events: expected a comma-separated list, got ','"),
        ("?types=", "types: expected a comma-separated list, got ''"),
        (f"?types={','.join(f't{n}' for n in range(101))}", "types: expected at most"),
    ],
)
def test_a_bad_filter_is_refused_with_400_before_the_upgrade(
    broker: BrokerProcess, query: str, message: str
) -> None:
    with pytest.raises(Rejected) as refused:
        WsClient(broker.rest_port, f"{EVENTS}{query}")

    assert refused.value.status == 400
    error = httpx.Response(400, content=refused.value.body).json()["error"]
    assert error["code"] == "BAD_REQUEST"
    assert message in error["message"]


@pytest.mark.parametrize("broker_config", [{"fsync": False}])
def test_a_consumer_that_stops_reading_is_dropped_and_the_others_are_served(
    broker: BrokerProcess, api: httpx.Client
) -> None:
    slow = WsClient(
        broker.rest_port, f"{EVENTS}?events=task.submitted", receive_buffer=4096
    )
    with (
        open_events(broker, "?types=sentinel") as bystander,
        Client.connect(broker.address) as client,
    ):
        # Far more events than the stream's buffer (1000) and the sockets hold.
        flooded = 0

        def slow_consumer_dropped() -> bool:
            nonlocal flooded
            client.submit_many([("flood", b"", 100)] * 1000)
            flooded += 1000
            return "event subscriber dropped" in broker.log_text()

        wait_until(slow_consumer_dropped, 60, "the slow consumer to be dropped")

        sentinel = submit(api, "sentinel")
        assert bystander.receive()["task_id"] == sentinel
        assert api.get("/health").status_code == 200

    # Reading again, the slow consumer gets what was already on its way, then
    # the close with its reason.
    received, closed = read_until_closed(slow)
    slow.close()
    assert closed.code == SLOW_CONSUMER_CLOSE
    assert closed.reason == SLOW_CONSUMER_REASON
    assert received < flooded
    wait_until(
        lambda: "event stream closed: slow consumer" in broker.log_text(),
        10,
        "the broker to log the slow consumer's close",
    )
