"""Each client operation as a request and a decoder, shared by both clients.

`Client` and `AsyncClient` differ only in how they move frames; what they send
and how they read the answer is defined once, here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Generic, TypeVar

from tq.client.models import TaskInfo, TaskPage, seconds
from tq.errors import TaskFailed, TqError, error_for_code
from tq.protocol import Op

__all__ = ["Call", "TaskTuple"]

T = TypeVar("T")

TaskTuple = tuple[str, bytes, int]
"""A task for `submit_many`: ``(task_type, payload, priority)``."""


@dataclass(frozen=True)
class Call(Generic[T]):
    """One request and how to read its result."""

    op: Op
    args: dict[str, Any]
    decode: Callable[[Any], T]


def _ms(value: float | timedelta | None, name: str) -> int | None:
    return None if value is None else round(seconds(value, name) * 1000)


def task_args(
    task_type: str,
    payload: bytes,
    priority: int,
    *,
    delay: float | timedelta | None = None,
    max_retries: int | None = None,
    timeout_seconds: float | timedelta | None = None,
    idempotency_key: str | None = None,
) -> dict[str, Any]:
    """The wire arguments of one task; unset limits are left to the broker."""
    if type(payload) is not bytes:
        if not isinstance(payload, bytes | bytearray | memoryview):
            raise TypeError(f"payload: expected bytes, got {type(payload).__name__}")
        payload = bytes(payload)
    args: dict[str, Any] = {
        "task_type": task_type,
        "payload": payload,
        "priority": priority if type(priority) is int else int(priority),
    }
    # Most tasks set none of these: a batch of them should cost no more.
    if delay is not None:
        args["delay_ms"] = _ms(delay, "delay")
    if timeout_seconds is not None:
        args["timeout_ms"] = _ms(timeout_seconds, "timeout_seconds")
    if max_retries is not None:
        args["max_retries"] = max_retries
    if idempotency_key is not None:
        args["idempotency_key"] = idempotency_key
    return args


def submit(args: dict[str, Any]) -> Call[int]:
    """Submit one task; the result is its id."""
    return Call(Op.SUBMIT, args, lambda r: int(r["task_id"]))


def submit_many(tasks: Iterable[TaskTuple | Mapping[str, Any]]) -> Call[list[int]]:
    """Submit many tasks with one commit; the result is their ids in order."""
    items = [_many_item(task) for task in tasks]
    return Call(
        Op.SUBMIT_MANY, {"tasks": items}, lambda r: [int(i) for i in r["task_ids"]]
    )


def _many_item(task: TaskTuple | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(task, Mapping):
        fields = dict(task)
        return task_args(
            fields.pop("task_type"),
            fields.pop("payload", b""),
            fields.pop("priority", 100),
            **fields,
        )
    task_type, payload, priority = task
    return task_args(task_type, payload, priority)


def get_task(task_id: int) -> Call[TaskInfo]:
    """One task."""
    return Call(Op.GET, {"task_id": task_id}, TaskInfo.from_map)


def _page(result: dict[str, Any]) -> TaskPage:
    tasks = tuple(TaskInfo.from_map(item) for item in result["tasks"])
    return TaskPage(tasks, result.get("next_cursor"))


def list_tasks(
    status: str, task_type: str | None, limit: int, cursor: bytes | None
) -> Call[TaskPage]:
    """A page of tasks in one state."""
    args: dict[str, Any] = {"state": status, "limit": limit}
    if task_type is not None:
        args["task_type"] = task_type
    if cursor is not None:
        args["cursor"] = cursor
    return Call(Op.LIST, args, _page)


def cancel(task_id: int) -> Call[str]:
    """Cancel a task; the result is its new state."""
    return Call(Op.CANCEL, {"task_id": task_id}, lambda r: str(r["state"]))


def wait(task_id: int, timeout: float | timedelta) -> Call[TaskInfo]:
    """Wait until a task is finished; the result is the finished task."""
    timeout_ms = round(seconds(timeout, "timeout") * 1000)
    return Call(
        Op.WAIT, {"task_id": task_id, "timeout_ms": timeout_ms}, TaskInfo.from_map
    )


def wait_for_result(task_id: int, timeout: float | timedelta) -> Call[bytes]:
    """Wait until a task is finished; the result is its result bytes.

    Its decoder raises `TaskFailed` for a task that ended without a result.
    """
    base = wait(task_id, timeout)
    return Call(base.op, base.args, lambda r: _result_of(TaskInfo.from_map(r)))


def _result_of(task: TaskInfo) -> bytes:
    if task.state == "completed":
        return task.result or b""
    raise TaskFailed(
        f"task {task.task_id} ended {task.state}: "
        f"{task.last_error or 'no error recorded'}",
        task_id=task.task_id,
        state=task.state,
        last_error=task.last_error,
    )


def stats() -> Call[dict[str, Any]]:
    """Counts and broker figures."""
    return Call(Op.STATS, {}, dict)


def workers() -> Call[list[dict[str, Any]]]:
    """Live workers with their tasks."""
    return Call(Op.WORKERS, {}, list)


def dlq_list(task_type: str | None, limit: int, cursor: bytes | None) -> Call[TaskPage]:
    """A page of dead letters."""
    args: dict[str, Any] = {"limit": limit}
    if task_type is not None:
        args["task_type"] = task_type
    if cursor is not None:
        args["cursor"] = cursor
    return Call(Op.DLQ_LIST, args, _page)


def dlq_requeue(task_id: int) -> Call[int]:
    """Requeue one dead letter."""
    return Call(Op.DLQ_REQUEUE, {"task_id": task_id}, lambda r: int(r["requeued"]))


def dlq_requeue_all(task_type: str | None, limit: int) -> Call[int]:
    """Requeue dead letters of one type, or all."""
    args: dict[str, Any] = {"all": True, "limit": limit}
    if task_type is not None:
        args["task_type"] = task_type
    return Call(Op.DLQ_REQUEUE, args, lambda r: int(r["requeued"]))


def dlq_purge(
    older_than: float | timedelta | None, task_type: str | None, limit: int
) -> Call[int]:
    """Delete dead letters, optionally only older ones of one type."""
    args: dict[str, Any] = {"limit": limit}
    older_than_ms = _ms(older_than, "older_than")
    if older_than_ms is not None:
        args["older_than_ms"] = older_than_ms
    if task_type is not None:
        args["task_type"] = task_type
    return Call(Op.DLQ_PURGE, args, lambda r: int(r["purged"]))


def result_of(response: dict[str, Any]) -> Any:
    """The result of a response map, or its error raised as a `tq.errors` class."""
    if response.get("ok"):
        return response.get("result")
    error = response.get("error") or {}
    raise error_for_code(
        str(error.get("code", "INTERNAL")), str(error.get("message", ""))
    )


def claim(
    max_tasks: int, task_types: Iterable[str] | None, wait_s: float
) -> Call[list[dict[str, Any]]]:
    """Worker: lease up to ``max_tasks`` tasks, waiting up to ``wait_s`` for any."""
    args: dict[str, Any] = {"max_tasks": max_tasks, "wait_ms": round(wait_s * 1000)}
    if task_types:
        args["task_types"] = list(task_types)
    return Call(Op.CLAIM, args, lambda r: list(r["tasks"]))


def ack(task_id: int, lease_id: int, result: bytes) -> Call[None]:
    """Worker: complete a task under its lease."""
    args = {"task_id": task_id, "lease_id": lease_id, "result": result}
    return Call(Op.ACK, args, lambda r: None)


def ack_many(acks: Iterable[tuple[int, int, bytes]]) -> Call[list[TqError | None]]:
    """Worker: complete many tasks, each ``(task_id, lease_id, result)``.

    The result has one entry per ack, in order: None for a completed task, or
    the error that ack met (a `StaleLease`, say); the others still apply.
    """
    items = [
        {"task_id": task_id, "lease_id": lease_id, "result": result}
        for task_id, lease_id, result in acks
    ]
    return Call(Op.ACK_MANY, {"acks": items}, _item_errors)


def _item_errors(result: dict[str, Any]) -> list[TqError | None]:
    return [
        None
        if error is None
        else error_for_code(str(error.get("code")), str(error.get("message", "")))
        for error in result["errors"]
    ]


def fail(
    task_id: int,
    lease_id: int,
    error: str,
    *,
    retry_delay_s: float | None = None,
    reject: bool = False,
) -> Call[str]:
    """Worker: end an attempt with an error; the result is the task's new state."""
    args: dict[str, Any] = {"task_id": task_id, "lease_id": lease_id, "error": error}
    if retry_delay_s is not None:
        args["retry_delay_ms"] = round(max(retry_delay_s, 0.0) * 1000)
    if reject:
        args["reject"] = True
    return Call(Op.FAIL, args, lambda r: str(r["state"]))


def heartbeat(task_ids: Iterable[int]) -> Call[list[int]]:
    """Worker: a sign of life; the result lists tasks whose cancel was requested."""
    return Call(Op.HEARTBEAT, {"task_ids": list(task_ids)}, lambda r: list(r["cancel"]))
