"""What the client hands back: priorities, tasks, pages."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

__all__ = ["Attempt", "Priority", "TaskInfo", "TaskPage", "seconds"]


class Priority(int):
    """A task priority, 0-255, higher first; a plain int works as well.

    Tiers for display and metrics: low 0-99, normal 100-199, high 200-255.
    """

    def __new__(cls, value: int) -> Priority:
        """Check the range and build the priority."""
        if not 0 <= int(value) <= 255:
            raise ValueError(f"priority: expected 0 to 255, got {value}")
        return super().__new__(cls, value)

    @classmethod
    def low(cls) -> Priority:
        """Priority 50."""
        return cls(50)

    @classmethod
    def normal(cls) -> Priority:
        """Priority 150."""
        return cls(150)

    @classmethod
    def high(cls) -> Priority:
        """Priority 250."""
        return cls(250)

    @property
    def tier(self) -> str:
        """``low``, ``normal`` or ``high``."""
        return tier_of(self)


def tier_of(priority: int) -> str:
    """The display tier of a priority."""
    if priority < 100:
        return "low"
    return "normal" if priority < 200 else "high"


def seconds(value: float | timedelta, name: str) -> float:
    """A duration given as seconds or a `timedelta`, in seconds.

    Raises:
        ValueError: A negative duration, naming the argument.
    """
    result = value.total_seconds() if isinstance(value, timedelta) else float(value)
    if result < 0:
        raise ValueError(f"{name}: expected a non-negative duration, got {value!r}")
    return result


@dataclass(frozen=True)
class Attempt:
    """One attempt in a task's history."""

    attempt: int
    worker_id: str
    started_ms: int
    ended_ms: int | None
    outcome: str
    error: str | None


@dataclass(frozen=True)
class TaskInfo:
    """A task as the broker reports it."""

    task_id: int
    task_type: str
    state: str
    priority: int
    payload: bytes
    result: bytes | None
    last_error: str | None
    attempts: int
    max_retries: int
    timeout_ms: int
    run_at_ms: int
    created_ms: int
    updated_ms: int
    finished_ms: int | None
    idempotency_key: str | None
    worker_id: str | None
    lease_deadline_ms: int | None
    cancel_requested: bool
    history: tuple[Attempt, ...]

    @classmethod
    def from_map(cls, raw: dict[str, Any]) -> TaskInfo:
        """Build from the wire map of a task."""
        fields: dict[str, Any] = {
            name: raw.get(name) for name in cls.__dataclass_fields__
        }
        fields["history"] = tuple(Attempt(**item) for item in raw.get("history", ()))
        return cls(**fields)

    def to_map(self) -> dict[str, Any]:
        """A plain map, payload and result as bytes."""
        out = {name: getattr(self, name) for name in self.__dataclass_fields__}
        out["history"] = [vars(a) for a in self.history]
        return out


@dataclass(frozen=True)
class TaskPage:
    """One page of a listing; pass ``next_cursor`` back for the next one."""

    tasks: tuple[TaskInfo, ...]
    next_cursor: bytes | None
