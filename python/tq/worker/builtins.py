"""Built-in handlers for demos and tests: ``echo`` and ``sleep``."""

from __future__ import annotations

import trio

from tq.worker.outcomes import Reject
from tq.worker.registry import HandlerRegistry

__all__ = ["register_builtins"]


async def echo(payload: bytes) -> bytes:
    """Return the payload as the result."""
    return payload


async def sleep(payload: bytes) -> bytes:
    """Sleep for the number of seconds in the payload (ASCII, e.g. ``b"0.5"``)."""
    try:
        seconds = float(payload.decode() or "0")
    except (UnicodeDecodeError, ValueError) as exc:
        raise Reject(
            f"sleep: expected a number of seconds, got {payload[:40]!r}"
        ) from exc
    await trio.sleep(max(seconds, 0.0))
    return b""


def register_builtins(target: HandlerRegistry) -> None:
    """Register ``echo`` and ``sleep`` unless the user registered their own."""
    for task_type, fn in (("echo", echo), ("sleep", sleep)):
        if task_type not in target:
            target.register(task_type, fn)
