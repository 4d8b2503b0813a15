"""Handlers used by the end-to-end tests, loaded by `tq worker --handlers`.

``record`` appends each payload to the file named by
``TQ_TEST_RECORD`` so a test can see the order in which tasks ran.
"""

from __future__ import annotations

import json
import os
import time

from tq import Reject, Retry
from tq.worker import current_task, registry


@registry.handler("record")
def record(payload: bytes) -> bytes:
    path = os.environ["TQ_TEST_RECORD"]
    with open(path, "ab") as out:
        out.write(payload + b"\n")
    return payload


@registry.handler("started_at")
def started_at(payload: bytes) -> bytes:
    return repr(time.time()).encode()


@registry.handler("always_fails")
def always_fails(payload: bytes) -> bytes:
    raise RuntimeError(f"boom on {payload.decode()}")


@registry.handler("retry_later")
def retry_later(payload: bytes) -> bytes:
    raise Retry(delay=float(payload.decode()), reason="asked to retry later")


@registry.handler("reject")
def reject(payload: bytes) -> bytes:
    raise Reject("payload refused")


@registry.handler("block")
def block(payload: bytes) -> bytes:
    time.sleep(float(payload.decode()))
    return b"unblocked"


def _describe_current_task() -> bytes:
    task = current_task()
    return json.dumps(
        {
            "task_id": task.task_id,
            "task_type": task.task_type,
            "attempt": task.attempt,
            "max_retries": task.max_retries,
            "lease_id": task.lease_id,
            "worker_id": task.worker_id,
            "is_last_attempt": task.is_last_attempt,
        }
    ).encode()


@registry.handler("whoami")
def whoami(payload: bytes) -> bytes:
    """Describe the task it runs; fails its first attempt when asked to."""
    if payload == b"fail first" and current_task().attempt == 1:
        raise RuntimeError("first attempt fails")
    return _describe_current_task()


@registry.handler("whoami_async")
async def whoami_async(payload: bytes) -> bytes:
    return _describe_current_task()
