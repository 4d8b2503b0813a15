"""Handlers of the demo (scripts/demo), beside tq's built-in echo and sleep."""

from __future__ import annotations

from tq.worker import registry


@registry.handler("flaky")
def flaky(payload: bytes) -> bytes:
    """Fail every attempt, so the task is retried and then dead-lettered."""
    raise RuntimeError(f"flaky: {payload.decode(errors='replace')}")
