"""The curl commands of the seed, run as written by the real curl binary
against a real broker and worker."""

from __future__ import annotations

import base64
import json
import shlex
import shutil
import subprocess
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from processes import BrokerProcess, WorkerProcess
from rest_support import wait_for_state

CURL = shutil.which("curl")

pytestmark = pytest.mark.skipif(
    CURL is None, reason="the curl binary is not installed (apt-get install curl)"
)

SUBMIT = (
    "curl -X POST http://HOST:PORT/api/v1/tasks -H 'Content-Type: application/json' "
    """-d '{"task_type": "echo", "payload": "<base64>", "priority": 150, """
    """"timeout_seconds": 60, "max_retries": 3}'"""
)
GET_TASK = "curl http://HOST:PORT/api/v1/tasks/ID"
STATS = "curl http://HOST:PORT/api/v1/stats"
WORKERS = "curl http://HOST:PORT/api/v1/workers"
HEALTH = "curl http://HOST:PORT/health"


def curl(broker: BrokerProcess, command: str, **placeholders: str) -> Any:
    """Run a command line of the seed with its placeholders filled in; its JSON."""
    filled = command.replace("HOST:PORT", f"127.0.0.1:{broker.rest_port}")
    for name, value in placeholders.items():
        filled = filled.replace(name, value)
    args = shlex.split(filled)
    assert args[0] == "curl"
    done = subprocess.run(
        [str(CURL), *args[1:]], capture_output=True, check=True, timeout=30
    )
    return json.loads(done.stdout)


def test_the_seeds_curl_examples_submit_read_and_inspect_a_task(
    broker: BrokerProcess,
    api: httpx.Client,
    spawn_worker: Callable[..., WorkerProcess],
) -> None:
    payload = base64.b64encode(b"hello from curl").decode()

    submitted = curl(broker, SUBMIT, **{"<base64>": payload})
    assert submitted["created"] is True
    task_id = str(submitted["task_id"])

    task = curl(broker, GET_TASK, ID=task_id)
    assert task["state"] == "pending"
    assert (task["task_type"], task["payload"]) == ("echo", payload)
    assert (task["priority"], task["timeout_ms"], task["max_retries"]) == (
        150,
        60_000,
        3,
    )
    stats = curl(broker, STATS)
    assert stats["by_state"]["pending"] == 1
    assert stats["pending_by_tier"]["normal"] == 1

    spawn_worker()
    wait_for_state(api, int(task_id), "completed")

    task = curl(broker, GET_TASK, ID=task_id)
    assert base64.b64decode(task["result"]) == b"hello from curl"
    assert curl(broker, STATS)["by_state"]["completed"] == 1
    [worker] = curl(broker, WORKERS)["workers"]
    assert worker["worker_id"] == task["history"][0]["worker_id"]
    health = curl(broker, HEALTH)
    assert health["status"] == "ok"
    assert health["workers"] == 1
