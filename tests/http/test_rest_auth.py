"""Token authentication on the REST API and the event stream: no token and a
wrong token are refused with 401, the right one is served, and the liveness
probe, the API document and the metrics stay open."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from processes import BrokerProcess, WorkerProcess
from rest_support import Rejected, WsClient, error_of, task_body

TOKEN = "s3cret-token"  # noqa: S105 (a test token, not a secret)
RIGHT = {"Authorization": f"Bearer {TOKEN}"}
WRONG = {"Authorization": "Bearer not-the-token"}

REQUESTS = [
    ("POST", "/api/v1/tasks"),
    ("GET", "/api/v1/tasks"),
    ("GET", "/api/v1/tasks/1"),
    ("DELETE", "/api/v1/tasks/1"),
    ("GET", "/api/v1/stats"),
    ("GET", "/api/v1/workers"),
    ("GET", "/api/v1/dlq"),
    ("POST", "/api/v1/dlq/purge"),
]


@pytest.fixture
def broker_config() -> dict[str, object]:
    return {"auth_token": TOKEN, "heartbeat_interval": "0.3s", "worker_timeout": "1.5s"}


def call(
    api: httpx.Client, method: str, path: str, headers: dict[str, str]
) -> httpx.Response:
    body = task_body() if path == "/api/v1/tasks" and method == "POST" else None
    return api.request(method, path, json=body, headers=headers)


def assert_unauthorized(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    assert error_of(response)["code"] == "UNAUTHORIZED"
    assert response.headers["www-authenticate"] == 'Bearer realm="tq"'


@pytest.mark.parametrize(
    "headers",
    [
        {},
        WRONG,
        {"Authorization": TOKEN},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": f"Bearer {TOKEN}x"},
    ],
    ids=["none", "wrong", "no scheme", "basic", "longer"],
)
def test_a_request_without_the_right_token_is_a_401_and_changes_nothing(
    api: httpx.Client, headers: dict[str, str]
) -> None:
    for method, path in REQUESTS:
        assert_unauthorized(call(api, method, path, headers))

    stats = api.get("/api/v1/stats", headers=RIGHT).json()
    assert stats["totals"] == {}


def test_a_request_with_the_right_token_is_served(api: httpx.Client) -> None:
    submitted = api.post("/api/v1/tasks", json=task_body(), headers=RIGHT)
    assert submitted.status_code == 201
    task_id = submitted.json()["task_id"]

    assert api.get(f"/api/v1/tasks/{task_id}", headers=RIGHT).status_code == 200
    assert api.get("/api/v1/tasks/999", headers=RIGHT).status_code == 404
    for path in ("/api/v1/tasks", "/api/v1/stats", "/api/v1/workers", "/api/v1/dlq"):
        assert api.get(path, headers=RIGHT).status_code == 200
    lowercase = {"Authorization": f"bearer {TOKEN}"}
    assert api.delete(f"/api/v1/tasks/{task_id}", headers=lowercase).status_code == 200


def test_health_the_api_document_and_metrics_need_no_token(
    api: httpx.Client, broker: BrokerProcess
) -> None:
    assert api.get("/health").status_code == 200
    document = api.get("/api/v1/openapi.json")
    assert document.status_code == 200
    # The document declares the bearer scheme once the broker has a token.
    assert document.json()["security"] == [{"bearer": []}]
    assert httpx.get(broker.metrics_url).status_code == 200


@pytest.mark.parametrize(
    ("target", "headers"),
    [
        ("/api/v1/events", []),
        ("/api/v1/events", [("Authorization", "Bearer not-the-token")]),
        ("/api/v1/events?token=not-the-token", []),
    ],
    ids=["none", "wrong header", "wrong query"],
)
def test_an_event_stream_without_the_right_token_is_refused_with_401(
    broker: BrokerProcess, target: str, headers: list[tuple[str, str]]
) -> None:
    with pytest.raises(Rejected) as refused:
        WsClient(broker.rest_port, target, headers=headers)

    assert refused.value.status == 401
    body = httpx.Response(401, content=refused.value.body)
    assert error_of(body)["code"] == "UNAUTHORIZED"


@pytest.mark.parametrize(
    ("target", "headers"),
    [
        ("/api/v1/events", [("Authorization", f"Bearer {TOKEN}")]),
        (f"/api/v1/events?token={TOKEN}", []),
    ],
    ids=["header", "query"],
)
def test_an_event_stream_with_the_right_token_streams_events(
    broker: BrokerProcess,
    api: httpx.Client,
    spawn_worker: Callable[..., WorkerProcess],
    target: str,
    headers: list[tuple[str, str]],
) -> None:
    events = WsClient(broker.rest_port, target, headers=headers)
    try:
        submitted = api.post("/api/v1/tasks", json=task_body(), headers=RIGHT).json()
        spawn_worker(TQ_TOKEN=TOKEN)
        received = events.receive_until(
            lambda event: event["event"] == "task.completed"
        )
    finally:
        events.close()

    assert [event["event"] for event in received] == [
        "task.submitted",
        "worker.joined",
        "task.started",
        "task.completed",
    ]
    assert received[-1]["task_id"] == submitted["task_id"]
