"""Requests, responses and their fields: the vocabulary of tq's wire protocol.

Every request is a map ``{"id": uint, "op": str, "args": map}``; every response
carries the same ``id`` and either ``{"ok": true, "result": ...}`` or
``{"ok": false, "error": {"code": str, "message": str}}``. ``docs/protocol.md``
describes each op's arguments and result.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, NoReturn

from tq.errors import BadRequest, TqError

__all__ = [
    "PROTOCOL_VERSION",
    "Args",
    "Op",
    "error_response",
    "ok_response",
    "request",
]

PROTOCOL_VERSION = 1
"""The protocol version this package speaks, exchanged in ``hello``."""

MAX_REQUEST_ID = 2**63 - 1


class Op(StrEnum):
    """Every op a broker answers."""

    HELLO = "hello"
    SUBMIT = "submit"
    SUBMIT_MANY = "submit_many"
    GET = "get"
    LIST = "list"
    CANCEL = "cancel"
    WAIT = "wait"
    STATS = "stats"
    WORKERS = "workers"
    DLQ_LIST = "dlq_list"
    DLQ_REQUEUE = "dlq_requeue"
    DLQ_PURGE = "dlq_purge"
    CLAIM = "claim"
    ACK = "ack"
    ACK_MANY = "ack_many"
    FAIL = "fail"
    HEARTBEAT = "heartbeat"


def request(request_id: int, op: Op, args: dict[str, Any]) -> dict[str, Any]:
    """Build a request map."""
    return {"id": request_id, "op": op.value, "args": args}


def ok_response(request_id: int, result: Any) -> dict[str, Any]:
    """Build a success response map."""
    return {"id": request_id, "ok": True, "result": result}


def error_response(request_id: int | None, error: TqError) -> dict[str, Any]:
    """Build an error response map from a tq error."""
    return {
        "id": request_id,
        "ok": False,
        "error": {"code": error.code, "message": error.message},
    }


def _bad(field: str, expected: str, got: object) -> NoReturn:
    shown = repr(got)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    raise BadRequest(f"{field}: expected {expected}, got {shown}")


class Args:
    """Typed, bounded access to a request's arguments.

    Each accessor names the field, the expectation and what came in the
    `BadRequest` it raises, so a client sees exactly what to fix.
    """

    def __init__(self, raw: object) -> None:
        """Wrap a request's ``args`` value, which must be a map."""
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            _bad("args", "a map", raw)
        self._raw: dict[Any, Any] = raw

    @property
    def raw(self) -> dict[Any, Any]:
        """The arguments as they came, unchecked."""
        return self._raw

    def has(self, field: str) -> bool:
        """Whether the field is present and not null."""
        return self._raw.get(field) is not None

    def integer(
        self, field: str, *, low: int, high: int, default: int | None = None
    ) -> int:
        """An integer in ``[low, high]``; ``default`` when absent."""
        value = self._raw.get(field)
        if value is None and default is not None:
            return default
        if not isinstance(value, int) or isinstance(value, bool):
            _bad(field, f"an integer from {low} to {high}", value)
        if not low <= value <= high:
            _bad(field, f"an integer from {low} to {high}", value)
        return value

    def optional_integer(self, field: str, *, low: int, high: int) -> int | None:
        """An integer like `integer`, or None when absent."""
        if not self.has(field):
            return None
        return self.integer(field, low=low, high=high)

    def name(
        self, field: str, *, max_len: int = 255, default: str | None = None
    ) -> str:
        """A non-empty string of at most ``max_len`` UTF-8 bytes."""
        value = self._raw.get(field)
        if value is None and default is not None:
            return default
        if not isinstance(value, str) or not value:
            _bad(field, "a non-empty string", value)
        if len(value.encode()) > max_len:
            _bad(field, f"at most {max_len} bytes", f"{len(value.encode())} bytes")
        return value

    def optional_name(self, field: str, *, max_len: int = 255) -> str | None:
        """A string like `name`, or None when absent."""
        if not self.has(field):
            return None
        return self.name(field, max_len=max_len)

    def text(self, field: str, *, max_len: int) -> str:
        """Any string (possibly empty) of at most ``max_len`` bytes."""
        value = self._raw.get(field, "")
        if not isinstance(value, str):
            _bad(field, "a string", value)
        return value.encode()[:max_len].decode(errors="ignore")

    def blob(self, field: str, *, max_len: int, default: bytes | None = None) -> bytes:
        """A byte string of at most ``max_len`` bytes."""
        value = self._raw.get(field)
        if value is None and default is not None:
            return default
        if not isinstance(value, bytes):
            _bad(field, "a byte string", value)
        if len(value) > max_len:
            _bad(field, f"at most {max_len} bytes", f"{len(value)} bytes")
        return value

    def optional_blob(self, field: str, *, max_len: int) -> bytes | None:
        """A byte string like `blob`, or None when absent."""
        if not self.has(field):
            return None
        return self.blob(field, max_len=max_len)

    def flag(self, field: str, *, default: bool) -> bool:
        """A boolean; ``default`` when absent."""
        value = self._raw.get(field)
        if value is None:
            return default
        if not isinstance(value, bool):
            _bad(field, "true or false", value)
        return value

    def items(self, field: str, *, max_len: int) -> list[Any]:
        """A list of at most ``max_len`` items."""
        value = self._raw.get(field)
        if not isinstance(value, list):
            _bad(field, "a list", value)
        if len(value) > max_len:
            _bad(field, f"at most {max_len} items", f"{len(value)} items")
        return value

    def names(
        self, field: str, *, max_len: int, item_max_len: int = 255
    ) -> list[str] | None:
        """A list of non-empty strings, or None when absent."""
        if not self.has(field):
            return None
        items = self.items(field, max_len=max_len)
        for item in items:
            if not isinstance(item, str) or not item:
                _bad(f"{field}[]", "a non-empty string", item)
            if len(item.encode()) > item_max_len:
                _bad(f"{field}[]", f"at most {item_max_len} bytes", item)
        return items
