"""Handlers of the crash harness, loaded by `tq worker --handlers crash_handlers`.

Each run appends one line to the file named by ``TQ_CRASH_DELIVERIES`` before
the handler acts: ``run TOKEN TASK_ID LEASE_ID ATTEMPT``. The payload is the
token the producer logged.

- ``steady`` succeeds.
- ``flaky`` fails its first attempt and succeeds on a retry.
- ``doomed`` always fails, so it ends in the dead letter queue.
"""

from __future__ import annotations

import os

from tq.worker import current_task, registry


def _log_delivery(payload: bytes) -> None:
    task = current_task()
    line = f"run {payload.decode()} {task.task_id} {task.lease_id} {task.attempt}\n"
    # One write(2) on an O_APPEND file: lines of concurrent workers never mix.
    fd = os.open(os.environ["TQ_CRASH_DELIVERIES"], os.O_WRONLY | os.O_APPEND)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


@registry.handler("steady")
def steady(payload: bytes) -> bytes:
    _log_delivery(payload)
    return payload


@registry.handler("flaky")
def flaky(payload: bytes) -> bytes:
    _log_delivery(payload)
    if current_task().attempt == 1:
        raise RuntimeError("flaky: the first attempt fails")
    return payload


@registry.handler("doomed")
def doomed(payload: bytes) -> bytes:
    _log_delivery(payload)
    raise RuntimeError("doomed: every attempt fails")
