"""tq's benchmark handlers, loaded by ``tq worker --handlers qbench.apps.tq_handlers``.

Both are ``async def``: tq runs those on the worker's event loop, its usual
path for work that does not block. The ``stamp`` payload starts with the
client's send time as 8 bytes big-endian (0 for warm-up tasks, not recorded).
"""

from __future__ import annotations

import time

from qbench import stamps
from tq.worker import registry


@registry.handler("noop")
async def noop(payload: bytes) -> bytes:
    """Record when it ran; nothing else."""
    stamps.record(time.time_ns())
    return b""


@registry.handler("stamp")
async def stamp(payload: bytes) -> bytes:
    """Record submit-to-start (start minus the send time in the payload)."""
    start_ns = time.time_ns()
    send_ns = int.from_bytes(payload[:8], "big")
    if send_ns:
        stamps.record(start_ns - send_ns)
    return start_ns.to_bytes(8, "big")
