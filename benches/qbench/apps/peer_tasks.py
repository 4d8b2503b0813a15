"""The task bodies every peer runs, as plain functions.

Peers pass arguments, not bytes: the payload is a 256-character ASCII string
(``pad``), and the ``stamp`` task takes the client's send time as an int (0
for warm-up tasks, not recorded).
"""

from __future__ import annotations

import os
import time

from qbench import stamps

REDIS_URL_ENV = "BENCH_REDIS_URL"
QUEUE = "bench"


def redis_url() -> str:
    """The private Redis server the orchestrator started."""
    return os.environ.get(REDIS_URL_ENV, "redis://127.0.0.1:6379/0")


def noop_body(pad: str) -> None:
    """Record when it ran; nothing else."""
    stamps.record(time.time_ns())


def stamp_body(send_ns: int, pad: str) -> int:
    """Record submit-to-start and return the start time."""
    start_ns = time.time_ns()
    if send_ns:
        stamps.record(start_ns - send_ns)
    return start_ns
