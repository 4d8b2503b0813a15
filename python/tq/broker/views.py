"""Plain maps of engine objects, shared by every front end.

Payloads and results stay bytes here; the JSON front end turns them into
base64 and the CBOR protocol sends them as they are.
"""

from __future__ import annotations

from typing import Any

from tq import _core
from tq.broker.workers import WorkerInfo

__all__ = ["claimed_view", "lease_view", "task_view", "worker_view"]


def task_view(task: _core.Task) -> dict[str, Any]:
    """Everything known about a task."""
    return {
        "task_id": task.task_id,
        "task_type": task.task_type,
        "state": task.state,
        "priority": task.priority,
        "payload": task.payload,
        "result": task.result,
        "last_error": task.last_error,
        "attempts": task.attempts,
        "max_retries": task.max_retries,
        "timeout_ms": task.timeout_ms,
        "run_at_ms": task.run_at_ms,
        "created_ms": task.created_ms,
        "updated_ms": task.updated_ms,
        "finished_ms": task.finished_ms,
        "idempotency_key": task.idempotency_key,
        "worker_id": task.worker_id,
        "lease_deadline_ms": task.lease_deadline_ms,
        "cancel_requested": task.cancel_requested,
        "history": [
            {
                "attempt": a.attempt,
                "worker_id": a.worker_id,
                "started_ms": a.started_ms,
                "ended_ms": a.ended_ms,
                "outcome": a.outcome,
                "error": a.error,
            }
            for a in task.history
        ],
    }


def claimed_view(task: _core.ClaimedTask) -> dict[str, Any]:
    """A task as handed to a worker."""
    return {
        "task_id": task.task_id,
        "task_type": task.task_type,
        "payload": task.payload,
        "priority": task.priority,
        "lease_id": task.lease_id,
        "deadline_ms": task.deadline_ms,
        "attempt": task.attempt,
        "max_retries": task.max_retries,
        "timeout_ms": task.timeout_ms,
        "submitted_ms": task.submitted_ms,
    }


def lease_view(lease: _core.Lease) -> dict[str, Any]:
    """A lease a worker holds."""
    return {
        "task_id": lease.task_id,
        "task_type": lease.task_type,
        "lease_id": lease.lease_id,
        "attempt": lease.attempt,
        "deadline_ms": lease.deadline_ms,
    }


def worker_view(
    info: WorkerInfo, leases: list[_core.Lease], now: float
) -> dict[str, Any]:
    """A live worker, with its current tasks and heartbeat age."""
    return {
        "worker_id": info.worker_id,
        "hostname": info.hostname,
        "pid": info.pid,
        "concurrency": info.concurrency,
        "task_types": list(info.task_types),
        "joined_ms": info.joined_ms,
        "heartbeat_age_s": round(max(now - info.last_seen, 0.0), 3),
        "tasks": [lease_view(lease) for lease in leases],
    }
