"""Handlers used by the end-to-end tests, loaded by `tq worker --handlers`.

``record`` appends each payload to the file named by
``TQ_TEST_RECORD`` so a test can see the order in which tasks ran.
"""

from __future__ import annotations

import os
import time

from tq import Reject, Retry
from tq.worker import registry


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
