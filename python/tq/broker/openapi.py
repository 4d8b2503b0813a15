"""The OpenAPI 3.1 document of tq's REST API, as data.

`tq.broker.http` serves it at ``/api/v1/openapi.json`` and the test suite
checks the running API against it with generated requests, so it must change
together with the endpoints. Limits that come from the broker's configuration
(payload size, page size) and whether a token is required are filled in by
`openapi_document`.
"""

from __future__ import annotations

import copy
import math
from typing import Any

from tq import __version__
from tq._core import STATES
from tq.broker.config import BrokerConfig
from tq.broker.events import EVENT_KINDS

__all__ = ["API_PREFIX", "MAX_BULK", "MAX_SECONDS", "OPEN_PATHS", "openapi_document"]

API_PREFIX = "/api/v1"
"""Where every endpoint but ``/health`` lives."""

OPEN_PATHS = frozenset({"/health", f"{API_PREFIX}/openapi.json"})
"""Paths answered without a token: liveness probes and the API's own document."""

MAX_ID = 2**63 - 1
MAX_SECONDS = 10 * 365 * 86400
"""Longest delay or timeout a request may ask for: ten years."""

MAX_BULK = 100_000
"""Most dead letters one requeue-all or purge request may touch."""

BASE64_PATTERN = r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$"
CURSOR_PATTERN = r"^(?:[A-Za-z0-9_-]{4})*(?:[A-Za-z0-9_-]{2,3})?$"

Schema = dict[str, Any]


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _object(properties: dict[str, Schema], *optional: str) -> Schema:
    """A closed object whose properties are all required but ``optional``."""
    return {
        "type": "object",
        "additionalProperties": False,
        "required": [name for name in properties if name not in optional],
        "properties": properties,
    }


def _nullable(schema: Schema) -> Schema:
    return {**schema, "type": [schema["type"], "null"]}


_INT: Schema = {"type": "integer", "minimum": 0}
_ID: Schema = {"type": "integer", "minimum": 1, "maximum": MAX_ID}
_MS: Schema = {"type": "integer", "minimum": 0, "description": "Unix time, ms."}
_NAME: Schema = {
    "type": "string",
    "minLength": 1,
    "maxLength": 255,
    "description": "Non-empty, at most 255 UTF-8 bytes.",
}
_STATE: Schema = {"type": "string", "enum": list(STATES)}
_COUNTS: Schema = {"type": "object", "additionalProperties": _INT}

_ATTEMPT = _object(
    {
        "attempt": {"type": "integer", "minimum": 1},
        "worker_id": {"type": "string"},
        "started_ms": _MS,
        "ended_ms": _nullable(_MS),
        "outcome": {
            "type": "string",
            "enum": ["running", "completed", "failed", "lease_lost", "cancelled"],
        },
        "error": {"type": ["string", "null"]},
    }
)

_TASK = _object(
    {
        "task_id": _ID,
        "task_type": {"type": "string"},
        "state": _STATE,
        "priority": {"type": "integer", "minimum": 0, "maximum": 255},
        "payload": {"type": "string", "contentEncoding": "base64"},
        "result": {
            "type": ["string", "null"],
            "contentEncoding": "base64",
            "description": "The handler's result once completed, else null.",
        },
        "last_error": {"type": ["string", "null"]},
        "attempts": _INT,
        "max_retries": _INT,
        "timeout_ms": _INT,
        "run_at_ms": _MS,
        "created_ms": _MS,
        "updated_ms": _MS,
        "finished_ms": _nullable(_MS),
        "idempotency_key": {"type": ["string", "null"]},
        "worker_id": {"type": ["string", "null"]},
        "lease_deadline_ms": _nullable(_MS),
        "cancel_requested": {"type": "boolean"},
        "history": {
            "type": "array",
            "items": _ref("Attempt"),
            "description": "The latest attempts, oldest first.",
        },
    }
)

_TASK_PAGE = _object(
    {
        "tasks": {"type": "array", "items": _ref("Task")},
        "next_cursor": {
            "type": ["string", "null"],
            "description": "Pass as `cursor` for the next page; null on the last.",
        },
    }
)

_SUBMITTED = _object({"task_id": _ID, "created": {"type": "boolean"}})

_CANCELLED = _object(
    {
        "task_id": _ID,
        "state": {"type": "string", "enum": ["cancelled", "in_progress"]},
        "cancel_requested": {
            "type": "boolean",
            "description": "True when the task runs and its worker was told to stop.",
        },
    }
)

_STATS = _object(
    {
        "by_state": _COUNTS,
        "by_type": {"type": "object", "additionalProperties": _COUNTS},
        "pending_by_tier": _object({"low": _INT, "normal": _INT, "high": _INT}),
        "queue_depth": _INT,
        "max_pending": _INT,
        "workers": _INT,
        "totals": _COUNTS,
        "commits": _INT,
        "committed_ops": _INT,
        "uptime_s": {"type": "number", "minimum": 0},
        "storage_error": {"type": ["string", "null"]},
    }
)

_LEASE = _object(
    {
        "task_id": _ID,
        "task_type": {"type": "string"},
        "lease_id": _ID,
        "attempt": {"type": "integer", "minimum": 1},
        "deadline_ms": _MS,
    }
)

_WORKER = _object(
    {
        "worker_id": {"type": "string"},
        "hostname": {"type": "string"},
        "pid": _INT,
        "concurrency": {"type": "integer", "minimum": 1},
        "task_types": {"type": "array", "items": {"type": "string"}},
        "joined_ms": _MS,
        "heartbeat_age_s": {"type": "number", "minimum": 0},
        "tasks": {"type": "array", "items": _ref("Lease")},
    }
)

_HEALTH = _object(
    {
        "status": {"type": "string", "enum": ["ok", "unhealthy"]},
        "version": {"type": "string"},
        "uptime_s": {"type": "number", "minimum": 0},
        "workers": _INT,
        "storage_error": {
            "type": ["string", "null"],
            "description": "The last storage failure; null while storage works.",
        },
    }
)

_ERROR = _object(
    {
        "error": _object(
            {
                "code": {
                    "type": "string",
                    "description": "Stable code: BAD_REQUEST, UNAUTHORIZED, "
                    "NOT_FOUND, METHOD_NOT_ALLOWED, INVALID_STATE, TOO_LARGE, "
                    "QUEUE_FULL, STORAGE, CLOSED...",
                },
                "message": {
                    "type": "string",
                    "description": "Names the field, what was expected and what came.",
                },
            }
        )
    }
)

_EVENT: Schema = {
    "type": "object",
    "required": ["event", "at_ms"],
    "properties": {
        "event": {"type": "string", "enum": list(EVENT_KINDS)},
        "at_ms": _MS,
        "task_id": _ID,
        "task_type": {"type": "string"},
        "priority": {"type": "integer"},
        "attempt": {"type": "integer"},
        "worker_id": {"type": "string"},
        "host": {"type": "string"},
        "run_s": {"type": "number"},
        "since_submit_s": {"type": "number"},
        "retry_in_s": {"type": "number"},
        "error": {"type": "string"},
    },
    "description": "One event; fields beyond `event` and `at_ms` depend on its kind.",
}

_SCHEMAS: dict[str, Schema] = {
    "Error": _ERROR,
    "Task": _TASK,
    "Attempt": _ATTEMPT,
    "TaskPage": _TASK_PAGE,
    "Submitted": _SUBMITTED,
    "Cancelled": _CANCELLED,
    "Stats": _STATS,
    "Worker": _WORKER,
    "Lease": _LEASE,
    "Workers": _object({"workers": {"type": "array", "items": _ref("Worker")}}),
    "Requeued": _object({"requeued": _INT}),
    "Purged": _object({"purged": _INT}),
    "Health": _HEALTH,
    "Event": _EVENT,
}


def _error(description: str, **headers: Schema) -> Schema:
    response: Schema = {
        "description": description,
        "content": {"application/json": {"schema": _ref("Error")}},
    }
    if headers:
        response["headers"] = {
            name.replace("_", "-"): {"required": True, "schema": schema}
            for name, schema in headers.items()
        }
    return response


_RESPONSES: dict[str, Schema] = {
    "BadRequest": _error("A parameter or body field is missing or out of bounds."),
    "Unauthorized": _error(
        "The bearer token is missing or wrong.", WWW_Authenticate={"type": "string"}
    ),
    "NotFound": _error("No task with this id (never submitted, or purged)."),
    "Conflict": _error("The task is not in a state that allows this (INVALID_STATE)."),
    "TooLarge": _error("The body or the payload is over the broker's limit."),
    "QueueFull": _error(
        "The queue is at its depth threshold; submit again after Retry-After.",
        Retry_After={"type": "string", "pattern": "^[0-9]+$"},
    ),
    "Unavailable": _error("Storage failed (STORAGE) or the broker is stopping."),
}


def _ok(schema: str, description: str) -> Schema:
    return {
        "description": description,
        "content": {"application/json": {"schema": _ref(schema)}},
    }


def _errors(*names: str) -> dict[str, Schema]:
    status = {
        "BadRequest": "400",
        "Unauthorized": "401",
        "NotFound": "404",
        "Conflict": "409",
        "TooLarge": "413",
        "QueueFull": "429",
        "Unavailable": "503",
    }
    return {status[name]: {"$ref": f"#/components/responses/{name}"} for name in names}


def _query(name: str, schema: Schema, description: str) -> Schema:
    return {"name": name, "in": "query", "schema": schema, "description": description}


_TASK_ID_PARAM: Schema = {
    "name": "task_id",
    "in": "path",
    "required": True,
    "schema": _ID,
}


def _page_params(max_page: int, *, with_status: bool) -> list[Schema]:
    params = [
        _query("type", _NAME, "Only tasks of this type."),
        _query(
            "limit",
            {"type": "integer", "minimum": 1, "maximum": max_page},
            f"Tasks per page, at most {max_page}; {min(100, max_page)} by default.",
        ),
        _query(
            "cursor",
            {
                "type": "string",
                "minLength": 2,
                "maxLength": 86,
                "pattern": CURSOR_PATTERN,
            },
            "The `next_cursor` of the previous page.",
        ),
    ]
    if with_status:
        status = {**_STATE, "default": "pending"}
        params.insert(0, _query("status", status, "Tasks in this state."))
    return params


def _body(schema: Schema, *, required: bool) -> Schema:
    return {
        "required": required,
        "content": {"application/json": {"schema": schema}},
    }


def _submit_schema(max_payload_bytes: int) -> Schema:
    seconds = {"type": ["number", "null"], "maximum": MAX_SECONDS}
    return _object(
        {
            "task_type": _NAME,
            "payload": {
                "type": "string",
                "contentEncoding": "base64",
                "pattern": BASE64_PATTERN,
                "maxLength": 4 * math.ceil(max_payload_bytes / 3),
                "description": f"Standard base64; at most {max_payload_bytes} "
                "bytes once decoded (else 413).",
            },
            "priority": {
                "type": ["integer", "null"],
                "minimum": 0,
                "maximum": 255,
                "description": "0-255, higher first; 100 by default.",
            },
            "timeout_seconds": {
                **seconds,
                "minimum": 0.001,
                "description": "Run time limit of one attempt; the broker's "
                "task_timeout by default.",
            },
            "max_retries": {
                "type": ["integer", "null"],
                "minimum": 0,
                "maximum": 1000,
                "description": "Retries after a failed attempt; the broker's "
                "max_retries by default.",
            },
            "delay_seconds": {
                **seconds,
                "minimum": 0,
                "description": "Run no sooner than this from now.",
            },
            "idempotency_key": {
                **_nullable(_NAME),
                "description": "A submit with a key the broker already holds "
                "returns that task (200, created false).",
            },
        },
        "priority",
        "timeout_seconds",
        "max_retries",
        "delay_seconds",
        "idempotency_key",
    )


def _bulk_schema(*, purge: bool) -> Schema:
    fields: dict[str, Schema] = {
        "task_type": _nullable(_NAME),
        "limit": {
            "type": ["integer", "null"],
            "minimum": 1,
            "maximum": MAX_BULK,
            "description": "Most dead letters touched; 1000 by default.",
        },
    }
    if purge:
        fields["older_than_seconds"] = {
            "type": ["number", "null"],
            "minimum": 0,
            "maximum": MAX_SECONDS,
            "description": "Only dead letters dead-lettered longer ago than this.",
        }
    return _object(fields, *fields)


def _operation(
    operation_id: str,
    summary: str,
    tag: str,
    responses: dict[str, Schema],
    **extra: Any,
) -> Schema:
    return {
        "operationId": operation_id,
        "summary": summary,
        "tags": [tag],
        "responses": responses,
        **extra,
    }


def _paths(config: BrokerConfig, auth: tuple[str, ...]) -> dict[str, Schema]:
    max_page = config.max_page
    tasks = f"{API_PREFIX}/tasks"
    dlq = f"{API_PREFIX}/dlq"
    return {
        tasks: {
            "post": _operation(
                "submitTask",
                "Submit a task",
                "tasks",
                {
                    "201": {
                        **_ok("Submitted", "Stored; the task is new."),
                        "headers": {
                            "Location": {"required": True, "schema": {"type": "string"}}
                        },
                    },
                    "200": _ok("Submitted", "The idempotency key names a known task."),
                    **_errors(
                        "BadRequest", *auth, "TooLarge", "QueueFull", "Unavailable"
                    ),
                },
                requestBody=_body(
                    _submit_schema(config.max_payload_bytes), required=True
                ),
            ),
            "get": _operation(
                "listTasks",
                "List tasks in one state, a page at a time",
                "tasks",
                {
                    "200": _ok("TaskPage", "A page of tasks, oldest first."),
                    **_errors("BadRequest", *auth, "Unavailable"),
                },
                parameters=_page_params(max_page, with_status=True),
            ),
        },
        f"{tasks}/{{task_id}}": {
            "parameters": [_TASK_ID_PARAM],
            "get": _operation(
                "getTask",
                "Get one task with its state, attempts, result or error",
                "tasks",
                {
                    "200": _ok("Task", "The task."),
                    **_errors("BadRequest", *auth, "NotFound", "Unavailable"),
                },
            ),
            "delete": _operation(
                "cancelTask",
                "Cancel a task",
                "tasks",
                {
                    "200": _ok("Cancelled", "Cancelled before it ran."),
                    "202": _ok("Cancelled", "It runs; its worker was told to stop."),
                    **_errors(
                        "BadRequest", *auth, "NotFound", "Conflict", "Unavailable"
                    ),
                },
            ),
        },
        f"{API_PREFIX}/stats": {
            "get": _operation(
                "getStats",
                "Task counts by state, type and priority tier",
                "system",
                {"200": _ok("Stats", "Statistics."), **_errors(*auth, "Unavailable")},
            )
        },
        f"{API_PREFIX}/workers": {
            "get": _operation(
                "listWorkers",
                "Live workers with their current tasks and heartbeat age",
                "system",
                {
                    "200": _ok("Workers", "The workers."),
                    **_errors(*auth, "Unavailable"),
                },
            )
        },
        dlq: {
            "get": _operation(
                "listDeadLetters",
                "List dead letters, a page at a time",
                "dead letters",
                {
                    "200": _ok("TaskPage", "A page of dead letters."),
                    **_errors("BadRequest", *auth, "Unavailable"),
                },
                parameters=_page_params(max_page, with_status=False),
            )
        },
        f"{dlq}/{{task_id}}/requeue": {
            "parameters": [_TASK_ID_PARAM],
            "post": _operation(
                "requeueDeadLetter",
                "Requeue one dead letter with fresh retries",
                "dead letters",
                {
                    "200": _ok("Requeued", "Pending again."),
                    **_errors(
                        "BadRequest", *auth, "NotFound", "Conflict", "Unavailable"
                    ),
                },
            ),
        },
        f"{dlq}/requeue": {
            "post": _operation(
                "requeueDeadLetters",
                "Requeue dead letters, of one type or all",
                "dead letters",
                {
                    "200": _ok("Requeued", "How many are pending again."),
                    **_errors("BadRequest", *auth, "TooLarge", "Unavailable"),
                },
                requestBody=_body(_bulk_schema(purge=False), required=False),
            )
        },
        f"{dlq}/purge": {
            "post": _operation(
                "purgeDeadLetters",
                "Delete dead letters, optionally only old ones",
                "dead letters",
                {
                    "200": _ok("Purged", "How many were deleted."),
                    **_errors("BadRequest", *auth, "TooLarge", "Unavailable"),
                },
                requestBody=_body(_bulk_schema(purge=True), required=False),
            )
        },
        "/health": {
            "get": _operation(
                "health",
                "Liveness and storage health (open without a token)",
                "system",
                {
                    "200": _ok("Health", "Serving, storage works."),
                    "503": _ok("Health", "Storage failed; see storage_error."),
                },
                security=[],
            )
        },
        f"{API_PREFIX}/openapi.json": {
            "get": _operation(
                "openapi",
                "This document (open without a token)",
                "system",
                {
                    "200": {
                        "description": "The OpenAPI document.",
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    }
                },
                security=[],
            )
        },
        f"{API_PREFIX}/events": _events_path(),
    }


def _events_path() -> Schema:
    """The WebSocket stream, which OpenAPI cannot describe as an operation."""
    return {
        "summary": "WebSocket: live task and worker events",
        "description": (
            "Open with a WebSocket handshake (GET with `Upgrade: websocket`). "
            "Each text message is one JSON `Event`, in the order they happened. "
            "Query: `events` (comma-separated kinds), `types` (comma-separated "
            "task types; events without a type always pass), and `token` where "
            "the client cannot send an Authorization header. Bad filters are "
            "refused with 400 before the upgrade, a missing token with 401. A "
            "client that falls too far behind is closed with code 1013 and a "
            "reason; it may reconnect, having missed events."
        ),
        "x-websocket": {
            "query": {
                "events": {"type": "string", "items": list(EVENT_KINDS)},
                "types": {"type": "string"},
                "token": {"type": "string"},
            },
            "message": _ref("Event"),
            "slow_consumer_close_code": 1013,
        },
    }


def openapi_document(config: BrokerConfig) -> dict[str, Any]:
    """The OpenAPI 3.1 document of a broker's REST API.

    Args:
        config: The broker's configuration: its limits appear in the schemas,
            and its ``auth_token`` decides whether bearer auth is declared.

    Returns:
        A fresh JSON-ready document.
    """
    auth = ("Unauthorized",) if config.auth_token is not None else ()
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "tq broker REST API",
            "version": __version__,
            "description": (
                "Submit, inspect and cancel tasks, read statistics and "
                "workers, and manage dead letters of a tq broker. Payloads and "
                "results are base64. Errors are `{error: {code, message}}`. "
                "Prometheus metrics are served separately at `/metrics` on "
                "the broker's metrics port."
            ),
        },
        "paths": _paths(config, auth),
        "components": {
            "schemas": copy.deepcopy(_SCHEMAS),
            "responses": copy.deepcopy(_RESPONSES),
        },
    }
    if config.auth_token is not None:
        document["components"]["securitySchemes"] = {
            "bearer": {
                "type": "http",
                "scheme": "bearer",
                "description": "The broker's auth_token.",
            }
        }
        document["security"] = [{"bearer": []}]
    return document
