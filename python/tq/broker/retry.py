"""The retry policy: when a failed attempt runs again, or goes to the dead letters.

Backoff is exponential with jitter: attempt ``n`` waits
``min(backoff_max, backoff_base * 2^(n-1))``, shortened by a random fraction of
up to ``jitter`` so that tasks failing together do not retry together. A task
gets ``max_retries`` retries, that is ``max_retries + 1`` attempts, unless a
handler rejects it first.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

__all__ = ["RetryDecision", "RetryPolicy"]


@dataclass(frozen=True)
class RetryDecision:
    """What happens to a failed attempt.

    Attributes:
        retry_at_ms: When the task runs again, or None to dead-letter it.
        reason: Why it is dead-lettered, for logs and the task's history.
    """

    retry_at_ms: int | None
    reason: str = ""

    @property
    def dead_letter(self) -> bool:
        """Whether the task goes to the dead letters."""
        return self.retry_at_ms is None


@dataclass
class RetryPolicy:
    """Exponential backoff with jitter, bounded by each task's retry limit.

    Attributes:
        base_s: The first retry's delay before jitter.
        max_s: The cap on any delay.
        jitter: The largest fraction a delay is shortened by, 0 to 1.
        rng: The random source; inject a seeded one for repeatable tests.
    """

    base_s: float = 1.0
    max_s: float = 3600.0
    jitter: float = 0.5
    rng: random.Random = field(default_factory=random.Random)

    def backoff_s(self, attempt: int) -> float:
        """The delay after failed attempt ``attempt`` (1 for the first).

        Always within ``[(1 - jitter) * d, d]`` where ``d`` is the un-jittered
        delay ``min(max_s, base_s * 2^(attempt-1))``.
        """
        exponent = min(max(attempt - 1, 0), 64)
        delay = min(self.max_s, self.base_s * 2.0**exponent)
        return delay * (1.0 - self.jitter * self.rng.random())

    def decide(
        self,
        *,
        attempt: int,
        max_retries: int,
        now_ms: int,
        retry_delay_s: float | None = None,
        reject: bool = False,
    ) -> RetryDecision:
        """Decide the fate of a failed attempt.

        Args:
            attempt: The attempt that failed, 1 for the first.
            max_retries: The task's retry limit.
            now_ms: The current time.
            retry_delay_s: A delay asked for by the handler (``tq.Retry``),
                used instead of the backoff.
            reject: The handler rejected the task (``tq.Reject``).

        Returns:
            When to retry, or a dead-letter decision with its reason.
        """
        if reject:
            return RetryDecision(None, "rejected by the handler")
        if attempt > max_retries:
            return RetryDecision(
                None,
                f"out of retries after {attempt} attempts (max_retries={max_retries})",
            )
        delay_s = self.backoff_s(attempt) if retry_delay_s is None else retry_delay_s
        return RetryDecision(now_ms + round(max(delay_s, 0.0) * 1000))
