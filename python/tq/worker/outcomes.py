"""What a handler raises to steer its task: `Retry` or `Reject`."""

from __future__ import annotations

from datetime import timedelta

__all__ = ["Reject", "Retry"]


class Retry(Exception):
    """Raised by a handler to have its task retried after ``delay``.

    The retry counts against the task's ``max_retries``; past it, the task is
    dead-lettered as for any failure.
    """

    def __init__(
        self, delay: float | timedelta = 0.0, reason: str = "retry requested"
    ) -> None:
        """Ask for a retry after ``delay`` seconds (or a `timedelta`)."""
        seconds = (
            delay.total_seconds() if isinstance(delay, timedelta) else float(delay)
        )
        if seconds < 0:
            raise ValueError(f"delay: expected a non-negative duration, got {delay!r}")
        super().__init__(reason)
        self.delay_s = seconds
        self.reason = reason


class Reject(Exception):
    """Raised by a handler to dead-letter its task at once, without retries."""

    def __init__(self, reason: str = "rejected") -> None:
        """Reject the task for ``reason``."""
        super().__init__(reason)
        self.reason = reason
