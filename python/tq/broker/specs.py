"""Task specs and ids read from a request's arguments, for TCP and gRPC alike.

Both front ends carry a submit as the same fields (``task_type``, ``payload``,
``priority``, ``delay_ms``, ``timeout_ms``, ``max_retries``,
``idempotency_key``), so both read them here, with the same bounds and the
same messages.
"""

from __future__ import annotations

from typing import Any

from tq.broker.service import TaskSpec
from tq.protocol import Args

__all__ = [
    "MAX_DELAY_MS",
    "MAX_ID",
    "spec_from_args",
    "specs_from_items",
    "task_id_from_args",
]

MAX_ID = 2**63 - 1
"""The largest task id, lease id or request id on the wire."""

MAX_DELAY_MS = 10 * 365 * 86400 * 1000
"""The longest delay, timeout or retry delay: ten years."""

_PLAIN_KEYS = frozenset({"task_type", "payload", "priority"})


def spec_from_args(args: Args, max_payload_bytes: int) -> TaskSpec:
    """The submit these arguments describe; unset limits are left to the broker.

    Raises:
        BadRequest: A field is missing, of the wrong type or out of bounds.
    """
    plain = _plain_spec(args.raw, max_payload_bytes)
    return plain if plain is not None else _checked_spec(args, max_payload_bytes)


def specs_from_items(items: list[Any], max_payload_bytes: int) -> list[TaskSpec]:
    """The submits of a batch's ``tasks`` list, each read as `spec_from_args` does.

    Raises:
        BadRequest: A task is not a map, or one of its fields is wrong.
    """
    specs = []
    for item in items:
        plain = _plain_spec(item, max_payload_bytes) if type(item) is dict else None
        specs.append(
            plain if plain is not None else _checked_spec(Args(item), max_payload_bytes)
        )
    return specs


def task_id_from_args(args: Args) -> int:
    """The ``task_id`` argument.

    Raises:
        BadRequest: It is missing or not a positive id.
    """
    return args.integer("task_id", low=1, high=MAX_ID)


def _checked_spec(args: Args, max_payload_bytes: int) -> TaskSpec:
    timeout_ms = args.optional_integer("timeout_ms", low=1, high=MAX_DELAY_MS)
    return TaskSpec(
        task_type=args.name("task_type"),
        payload=args.blob("payload", max_len=max_payload_bytes, default=b""),
        priority=args.integer("priority", low=0, high=255, default=100),
        delay_s=args.integer("delay_ms", low=0, high=MAX_DELAY_MS, default=0) / 1000,
        timeout_s=None if timeout_ms is None else timeout_ms / 1000,
        max_retries=args.optional_integer("max_retries", low=0, high=1000),
        idempotency_key=args.optional_name("idempotency_key"),
    )


def _plain_spec(raw: dict[Any, Any], max_payload_bytes: int) -> TaskSpec | None:
    """The spec of a submit with only a type, a payload and a priority, or None.

    Most submits are that plain, and a batch of a thousand of them is parsed
    at every submit; this checks the same bounds as `Args` with a fraction of
    the calls. Anything else (another field, a value out of bounds) returns
    None, and the full check then names what is wrong.
    """
    if not raw.keys() <= _PLAIN_KEYS:
        return None
    task_type = raw.get("task_type")
    payload = raw.get("payload", b"")
    priority = raw.get("priority", 100)
    if (
        type(task_type) is str
        and 0 < len(task_type.encode()) <= 255
        and type(payload) is bytes
        and len(payload) <= max_payload_bytes
        and type(priority) is int
        and 0 <= priority <= 255
    ):
        return TaskSpec(task_type, payload, priority)
    return None
