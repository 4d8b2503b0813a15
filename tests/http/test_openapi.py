"""The served OpenAPI document against the running API: schemathesis sends
requests generated from ``/api/v1/openapi.json``, valid and invalid, and checks
every answer against it: no server error, status codes, headers, content
types and bodies as documented, invalid data refused, valid data accepted.

Each operation gets schemathesis's coverage cases (boundaries, wrong types,
missing fields) plus `EXAMPLES_PER_OPERATION` fuzzed ones of each mode, which
keeps the whole run to some twenty seconds.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import hypothesis
import pytest
import schemathesis
from processes import BrokerProcess

from tq.broker.openapi import API_PREFIX

EXAMPLES_PER_OPERATION = 60
TOKEN = "s3cret-token"  # noqa: S105 (a test token, not a secret)

# Every operation of the document but the document itself, which schemathesis
# leaves out; `/api/v1/events` is a WebSocket and has no operation.
OPERATIONS = {
    "POST /api/v1/tasks",
    "GET /api/v1/tasks",
    "GET /api/v1/tasks/{task_id}",
    "DELETE /api/v1/tasks/{task_id}",
    "GET /api/v1/stats",
    "GET /api/v1/workers",
    "GET /api/v1/dlq",
    "POST /api/v1/dlq/{task_id}/requeue",
    "POST /api/v1/dlq/requeue",
    "POST /api/v1/dlq/purge",
    "GET /health",
}
# Operations on one task by id: a generated id rarely names a task.
ON_ONE_TASK = {
    "GET /api/v1/tasks/{task_id}",
    "DELETE /api/v1/tasks/{task_id}",
    "POST /api/v1/dlq/{task_id}/requeue",
}


def _config(**project: object) -> schemathesis.Config:
    return schemathesis.Config.from_dict(
        {
            "checks": {
                # schemathesis's own list plus 413: every operation that takes
                # a body documents 413 for one over the broker's limits, and
                # a payload longer than its schema allows is one.
                "negative_data_rejection": {
                    "expected-statuses": [
                        *("400", "401", "403", "404", "405", "406", "409"),
                        *("413", "415", "422", "428", "429", "5xx"),
                    ]
                }
            },
            **project,
        }
    )


SETTINGS = hypothesis.settings(
    max_examples=EXAMPLES_PER_OPERATION,
    # Each case is a real HTTP request to another process, on a shared
    # 2-core machine: time limits would only make the run flaky.
    deadline=None,
    suppress_health_check=list(hypothesis.HealthCheck),
)


@pytest.fixture
def answers() -> Iterator[Counter[tuple[str, int]]]:
    """The status of every answer by operation, checked once all are in."""
    counter: Counter[tuple[str, int]] = Counter()
    yield counter
    assert {label for label, _ in counter} == OPERATIONS
    # Valid requests were served, not all refused (for a missing token, say).
    served = {label for label, status in counter if 200 <= status < 300}
    assert served >= OPERATIONS - ON_ONE_TASK, OPERATIONS - ON_ONE_TASK - served


@pytest.fixture(autouse=True)
def _node_id_for_schemathesis(request: pytest.FixtureRequest) -> None:
    # schemathesis 4.32's lazy loader reads `Node._nodeid`, which pytest 9.2
    # no longer has (it names each operation's subtest with it). Giving the
    # node the attribute back lets `from_fixture` run; it changes nothing else.
    request.node._nodeid = request.node.nodeid


def _open_broker(tmp_path: Path, config: dict[str, object]) -> BrokerProcess:
    # A small payload limit, so that generated payloads reach it and the 413
    # answers are checked too.
    process = BrokerProcess(
        tmp_path / "data",
        tmp_path / "broker.log",
        {"max_payload_bytes": 1024, "max_page": 50, **config},
    )
    process.start()
    return process


@pytest.fixture
def open_api(tmp_path: Path) -> Iterator[schemathesis.BaseSchema]:
    process = _open_broker(tmp_path, {})
    yield schemathesis.openapi.from_url(
        f"{process.rest_url}{API_PREFIX}/openapi.json", config=_config()
    )
    process.kill()


@pytest.fixture
def guarded_api(tmp_path: Path) -> Iterator[schemathesis.BaseSchema]:
    process = _open_broker(tmp_path, {"auth_token": TOKEN})
    yield schemathesis.openapi.from_url(
        f"{process.rest_url}{API_PREFIX}/openapi.json",
        config=_config(headers={"Authorization": f"Bearer {TOKEN}"}),
    )
    process.kill()


open_schema = schemathesis.pytest.from_fixture("open_api")
guarded_schema = schemathesis.pytest.from_fixture("guarded_api")


@open_schema.parametrize()
@SETTINGS
def test_every_operation_answers_as_the_document_says(
    case: schemathesis.Case, answers: Counter[tuple[str, int]]
) -> None:
    response = case.call_and_validate()
    answers[case.operation.label, response.status_code] += 1


@guarded_schema.parametrize()
@hypothesis.settings(SETTINGS, max_examples=EXAMPLES_PER_OPERATION // 3)
def test_every_operation_behind_a_token_answers_as_the_document_says(
    case: schemathesis.Case, answers: Counter[tuple[str, int]]
) -> None:
    # Besides the checks above, the coverage phase sends each operation once
    # without the token and expects the documented 401.
    response = case.call_and_validate()
    answers[case.operation.label, response.status_code] += 1
