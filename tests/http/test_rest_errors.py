"""Every error status of the REST API, each with the ``{error: {code,
message}}`` body and a message that names the field, what was expected and
what came."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from processes import BrokerProcess
from rest_support import error_of, submit, task_body

MAX_PAYLOAD = 1024
# The broker's body limit for MAX_PAYLOAD: a base64 payload at the limit
# (4 * ceil(1024 / 3) characters) plus 64 KiB for the other fields.
BODY_LIMIT = 1368 + 64 * 1024


@pytest.fixture
def broker_config() -> dict[str, object]:
    """Every broker of this module takes payloads of at most MAX_PAYLOAD."""
    return {"max_payload_bytes": MAX_PAYLOAD}


@pytest.fixture(scope="module")
def shared_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    """One broker for the tests of refused requests, which change nothing."""
    tmp_path = tmp_path_factory.mktemp("shared")
    process = BrokerProcess(
        tmp_path / "data",
        tmp_path / "broker.log",
        {"max_payload_bytes": MAX_PAYLOAD},
    )
    process.start()
    with httpx.Client(base_url=process.rest_url, timeout=30) as client:
        yield client
    process.kill()


def assert_error(
    response: httpx.Response, status: int, code: str, message: str
) -> dict[str, str]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    error = error_of(response)
    assert error["code"] == code
    assert message in error["message"], error["message"]
    return error


# 400: the request is wrong


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"{not json", "body: expected a JSON object, got invalid JSON"),
        (b"", "body: expected a JSON object, got invalid JSON"),
        (b'["echo"]', "body: expected a JSON object, got a JSON list"),
        (b'"echo"', "body: expected a JSON object, got a JSON str"),
        (
            b'{"task_type": "echo", "payload": "", "priority": NaN}',
            "NaN is not a JSON number",
        ),
        (b"\xff\xfe{}", "body: expected a JSON object, got invalid JSON"),
    ],
    ids=["broken", "empty", "list", "string", "nan", "not utf-8"],
)
def test_a_body_that_is_not_a_json_object_is_a_400(
    shared_api: httpx.Client, content: bytes, message: str
) -> None:
    response = shared_api.post(
        "/api/v1/tasks", content=content, headers={"content-type": "application/json"}
    )
    assert_error(response, 400, "BAD_REQUEST", message)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"task_type": 5}, "task_type: expected a non-empty string, got 5"),
        ({"task_type": ""}, "task_type: expected a non-empty string, got ''"),
        (
            {"task_type": "t" * 256},
            "task_type: expected at most 255 bytes, got '256 bytes'",
        ),
        ({"task_type": None}, "task_type: expected a non-empty string, got None"),
        ({"payload": 5}, "payload: expected base64 text, got 5"),
        ({"payload": "not base64!"}, "payload: expected standard base64 text"),
        (
            {"priority": "high"},
            "priority: expected an integer from 0 to 255, got 'high'",
        ),
        ({"priority": 256}, "priority: expected an integer from 0 to 255, got 256"),
        ({"priority": -1}, "priority: expected an integer from 0 to 255, got -1"),
        ({"priority": 1.5}, "priority: expected an integer from 0 to 255, got 1.5"),
        ({"priority": True}, "priority: expected an integer from 0 to 255, got True"),
        ({"max_retries": 1001}, "max_retries: expected an integer from 0 to 1000"),
        ({"max_retries": -1}, "max_retries: expected an integer from 0 to 1000"),
        ({"timeout_seconds": 0}, "timeout_seconds: expected a number of seconds"),
        ({"timeout_seconds": "60"}, "timeout_seconds: expected a number of seconds"),
        ({"delay_seconds": -1}, "delay_seconds: expected a number of seconds from 0"),
        ({"delay_seconds": 1e12}, "delay_seconds: expected a number of seconds"),
        ({"idempotency_key": ""}, "idempotency_key: expected a non-empty string"),
        ({"colour": "blue"}, "body: expected only the fields"),
    ],
    ids=lambda value: str(value)[:40] if isinstance(value, dict) else "",
)
def test_a_submit_field_of_the_wrong_type_or_out_of_range_is_a_400_naming_it(
    shared_api: httpx.Client, fields: dict[str, Any], message: str
) -> None:
    response = shared_api.post("/api/v1/tasks", json={**task_body(), **fields})

    assert_error(response, 400, "BAD_REQUEST", message)
    assert shared_api.get("/api/v1/stats").json()["totals"] == {}


def test_a_submit_without_a_payload_is_a_400(shared_api: httpx.Client) -> None:
    response = shared_api.post("/api/v1/tasks", json={"task_type": "echo"})
    assert_error(
        response, 400, "BAD_REQUEST", "payload: expected base64 text, got None"
    )


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"status": "lost"}, "status: expected one of scheduled, pending"),
        ({"limit": "0"}, "limit: expected an integer from 1 to 1000, got 0"),
        ({"limit": "1001"}, "limit: expected an integer from 1 to 1000, got 1001"),
        ({"limit": "ten"}, "limit: expected an integer from 1 to 1000, got 'ten'"),
        ({"cursor": "!!"}, "cursor: expected a cursor from an earlier page, got '!!'"),
        ({"type": ""}, "type: expected a non-empty string, got ''"),
    ],
    ids=lambda value: str(value) if isinstance(value, dict) else "",
)
def test_a_bad_list_query_is_a_400_naming_the_parameter(
    shared_api: httpx.Client, params: dict[str, str], message: str
) -> None:
    response = shared_api.get("/api/v1/tasks", params=params)
    assert_error(response, 400, "BAD_REQUEST", message)


@pytest.mark.parametrize("task_id", ["abc", "0", "-1", "1.0", str(2**63)])
def test_a_task_id_that_is_not_a_positive_integer_is_a_400(
    shared_api: httpx.Client, task_id: str
) -> None:
    for response in (
        shared_api.get(f"/api/v1/tasks/{task_id}"),
        shared_api.delete(f"/api/v1/tasks/{task_id}"),
        shared_api.post(f"/api/v1/dlq/{task_id}/requeue"),
    ):
        assert_error(response, 400, "BAD_REQUEST", "task_id: expected an integer")


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        ("purge", {"older_than_seconds": -1}, "older_than_seconds: expected"),
        ("purge", {"limit": 0}, "limit: expected an integer from 1 to 100000, got 0"),
        ("requeue", {"limit": 100_001}, "limit: expected an integer from 1 to 100000"),
        ("requeue", {"task_type": 7}, "task_type: expected a non-empty string, got 7"),
        ("requeue", {"everything": True}, "body: expected only the fields"),
    ],
)
def test_a_bad_dead_letter_request_is_a_400(
    shared_api: httpx.Client, path: str, body: dict[str, Any], message: str
) -> None:
    response = shared_api.post(f"/api/v1/dlq/{path}", json=body)
    assert_error(response, 400, "BAD_REQUEST", message)


@pytest.mark.parametrize("path", ["requeue", "purge"])
def test_a_dead_letter_body_of_only_whitespace_is_a_400_while_none_is_all(
    shared_api: httpx.Client, path: str
) -> None:
    json_type = {"content-type": "application/json"}
    response = shared_api.post(
        f"/api/v1/dlq/{path}", content=b"\r\n", headers=json_type
    )
    assert_error(response, 400, "BAD_REQUEST", "got invalid JSON")
    assert shared_api.post(f"/api/v1/dlq/{path}").status_code == 200


# 404, 405 and 409: no such thing, or not now


def test_an_unknown_task_is_a_404_for_every_task_endpoint(
    shared_api: httpx.Client,
) -> None:
    for response in (
        shared_api.get("/api/v1/tasks/999"),
        shared_api.delete("/api/v1/tasks/999"),
        shared_api.post("/api/v1/dlq/999/requeue"),
    ):
        assert_error(response, 404, "NOT_FOUND", "999")


@pytest.mark.parametrize("path", ["/", "/api/v2/tasks", "/api/v1/nothing", "/metrics"])
def test_an_unknown_path_is_a_404_in_the_error_shape(
    shared_api: httpx.Client, path: str
) -> None:
    response = shared_api.get(path)
    assert_error(response, 404, "NOT_FOUND", f"got {path}")


def test_a_wrong_method_is_a_405_listing_the_allowed_ones(
    shared_api: httpx.Client,
) -> None:
    response = shared_api.put("/api/v1/tasks", json=task_body())

    assert_error(response, 405, "METHOD_NOT_ALLOWED", "/api/v1/tasks does not take PUT")
    assert set(response.headers["allow"].split(", ")) == {"GET", "HEAD", "POST"}


def test_cancelling_a_cancelled_task_again_is_a_409(api: httpx.Client) -> None:
    task_id = submit(api, "waits")
    api.delete(f"/api/v1/tasks/{task_id}")

    response = api.delete(f"/api/v1/tasks/{task_id}")

    assert_error(response, 409, "INVALID_STATE", "cancelled")


# 413: too large


def test_a_payload_at_max_payload_bytes_is_stored(api: httpx.Client) -> None:
    task_id = submit(api, "echo", b"p" * MAX_PAYLOAD)
    task = api.get(f"/api/v1/tasks/{task_id}").json()
    assert len(base64.b64decode(task["payload"])) == MAX_PAYLOAD


def test_a_payload_over_max_payload_bytes_is_a_413(shared_api: httpx.Client) -> None:
    response = shared_api.post("/api/v1/tasks", json=task_body(payload=b"p" * 1025))

    assert_error(response, 413, "TOO_LARGE", "payload: expected at most 1024 bytes")
    assert shared_api.get("/api/v1/stats").json()["totals"] == {}


def test_a_body_over_the_limit_is_a_413_from_its_content_length(
    shared_api: httpx.Client,
) -> None:
    # Valid JSON, made too long by whitespace alone.
    content = json.dumps(task_body()).encode() + b" " * BODY_LIMIT

    response = shared_api.post(
        "/api/v1/tasks", content=content, headers={"content-type": "application/json"}
    )

    assert_error(
        response, 413, "TOO_LARGE", f"body: expected at most {BODY_LIMIT} bytes"
    )


def test_a_chunked_body_over_the_limit_is_a_413_once_it_passes_the_limit(
    shared_api: httpx.Client,
) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"task_type": "echo", "payload": "'
        for _ in range(BODY_LIMIT // 4096 + 2):
            yield b"AAAA" * 1024
        yield b'"}'

    response = shared_api.post("/api/v1/tasks", content=chunks())

    assert_error(response, 413, "TOO_LARGE", "body: expected at most")


# 429: the queue is full


@pytest.mark.parametrize("broker_config", [{"max_pending": 2}])
def test_a_submit_past_max_pending_is_a_429_with_retry_after(
    api: httpx.Client,
) -> None:
    first = submit(api)
    submit(api)

    refused = api.post("/api/v1/tasks", json=task_body())

    assert_error(refused, 429, "QUEUE_FULL", "threshold of 2")
    assert refused.headers["retry-after"] == "1"
    # Reads go on, and room made by a cancel takes submits again.
    assert api.get("/api/v1/stats").json()["by_state"]["pending"] == 2
    api.delete(f"/api/v1/tasks/{first}")
    assert api.post("/api/v1/tasks", json=task_body()).status_code == 201


# 503: storage failed


@pytest.fixture
def full_disk_broker(tmp_path: Path) -> Iterator[BrokerProcess]:
    """A broker whose files may not grow past 2 MB, as on a nearly full disk."""
    process = BrokerProcess(
        tmp_path / "data",
        tmp_path / "broker.log",
        {"max_payload_bytes": 2**20},
        file_size_limit=2_000_000,
    )
    process.start()
    yield process
    process.kill()


def test_a_write_that_fails_is_a_503_and_health_turns_unhealthy(
    full_disk_broker: BrokerProcess,
) -> None:
    big = task_body(payload=b"x" * 2**18)
    with httpx.Client(base_url=full_disk_broker.rest_url, timeout=30) as api:
        assert api.get("/health").status_code == 200
        stored: list[int] = []
        while (response := api.post("/api/v1/tasks", json=big)).status_code == 201:
            stored.append(response.json()["task_id"])
            assert len(stored) < 20, "the file size limit never stopped a write"

        assert_error(response, 503, "STORAGE", "File too large")
        health = api.get("/health")
        assert health.status_code == 503
        assert health.json()["status"] == "unhealthy"
        assert "File too large" in health.json()["storage_error"]
        # Nothing refused was stored; everything acknowledged reads back.
        assert api.get("/api/v1/stats").json()["by_state"]["pending"] == len(stored)
        for task_id in stored:
            assert api.get(f"/api/v1/tasks/{task_id}").json()["state"] == "pending"
