"""The broker's REST front end and WebSocket event stream, on Starlette.

Each endpoint reads its JSON body or query, calls one `Broker` operation and
answers with JSON; payloads and results travel as base64 text. Errors are
``{"error": {"code", "message"}}`` with the HTTP status of their code. The
OpenAPI document of `tq.broker.openapi` describes every endpoint and is served
at ``/api/v1/openapi.json``.

Hypercorn's trio worker serves the app inside the broker's own nursery, so the
REST front end shares the event loop, the commit loop and the event hub with
the TCP front end. With ``tls_cert`` and ``tls_key`` in the config, hypercorn
serves https and wss with them.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import logging
import math
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from functools import partial
from typing import Any

import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio import serve
from starlette.applications import Starlette
from starlette.datastructures import Headers, QueryParams
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect

from tq import __version__, _core
from tq.broker.config import BrokerConfig
from tq.broker.events import EVENT_KINDS, Subscription
from tq.broker.openapi import (
    API_PREFIX,
    MAX_BULK,
    MAX_SECONDS,
    OPEN_PATHS,
    openapi_document,
)
from tq.broker.service import Broker, TaskSpec, now_ms
from tq.broker.views import task_view, worker_view
from tq.errors import BadRequest, TqError, Unauthorized
from tq.protocol import Args

__all__ = [
    "RequestTooLarge",
    "RestApi",
    "create_app",
    "serve_asgi",
    "serve_rest",
    "status_for",
]

log = logging.getLogger("tq.broker.http")

BODY_SLACK_BYTES = 64 * 1024
"""Room in a request body for the fields around the base64 payload."""

RETRY_AFTER_S = 1
"""What ``Retry-After`` tells a client refused with ``QUEUE_FULL``."""

MAX_FILTER_ITEMS = 100
"""Most event kinds or task types one event stream may filter on."""

WS_MAX_MESSAGE_BYTES = 64 * 1024
"""Largest message a client may send on the event stream; it needs none."""

READ_TIMEOUT_S = 60
"""Silence after which a connection is closed (event streams answer pings)."""

WS_PING_INTERVAL_S = 15.0
"""How often event stream clients are pinged, keeping quiet streams alive."""

TLS_HANDSHAKE_TIMEOUT_S = 10.0
"""How long a connection to a TLS port has to finish its handshake."""

SLOW_CONSUMER_CLOSE = 1013
"""WebSocket close code for a dropped slow consumer ("try again later")."""

_STATUS_BY_CODE = {
    "BAD_REQUEST": 400,
    "UNAUTHORIZED": 401,
    "NOT_FOUND": 404,
    "INVALID_STATE": 409,
    "STALE_LEASE": 409,
    "TOO_LARGE": 413,
    "QUEUE_FULL": 429,
    "STORAGE": 503,
    "STORE_LOCKED": 503,
    "CLOSED": 503,
    "TIMEOUT": 504,
}
_CODE_BY_HTTP_STATUS = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}
_MAX_ID = 2**63 - 1
_URLSAFE = re.compile(r"[A-Za-z0-9_-]+")


class RequestTooLarge(TqError):
    """A request body or payload is over the broker's limit (HTTP 413)."""

    code = "TOO_LARGE"


# Errors as responses


def status_for(error: TqError) -> int:
    """The HTTP status an error code travels under; 500 for unknown codes."""
    return _STATUS_BY_CODE.get(error.code, 500)


def error_response(error: TqError) -> JSONResponse:
    """An error as ``{"error": {"code", "message"}}`` with its status."""
    headers: dict[str, str] = {}
    if error.code == "QUEUE_FULL":
        headers["Retry-After"] = str(RETRY_AFTER_S)
    if error.code == "UNAUTHORIZED":
        headers["WWW-Authenticate"] = 'Bearer realm="tq"'
    return JSONResponse(
        {"error": {"code": error.code, "message": error.message}},
        status_code=status_for(error),
        headers=headers,
    )


async def _on_tq_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, TqError)
    return error_response(exc)


async def _on_http_error(request: Request, exc: Exception) -> Response:
    # The router's own answers (no such path, wrong method) in tq's shape.
    assert isinstance(exc, HTTPException)
    code = _CODE_BY_HTTP_STATUS.get(exc.status_code, "BAD_REQUEST")
    if exc.status_code == 404:
        message = f"path: expected an endpoint of the tq API, got {request.url.path}"
    else:
        message = f"method: {request.url.path} does not take {request.method}"
    return JSONResponse(
        {"error": {"code": code, "message": message}},
        status_code=exc.status_code,
        headers=exc.headers,
    )


async def _on_internal_error(request: Request, exc: Exception) -> Response:
    # Hypercorn logs the exception with its traceback once this has answered.
    return JSONResponse(
        {"error": {"code": "INTERNAL", "message": "internal error; see the log"}},
        status_code=500,
    )


# Reading requests


def body_limit(max_payload_bytes: int) -> int:
    """Largest request body accepted: a base64 payload at the limit, plus slack."""
    return _base64_len(max_payload_bytes) + BODY_SLACK_BYTES


def _base64_len(raw_len: int) -> int:
    return 4 * math.ceil(raw_len / 3)


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused before it is read in full when over ``limit``.

    Raises:
        RequestTooLarge: ``Content-Length`` or the bytes that came pass ``limit``.
    """
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise RequestTooLarge(
            f"body: expected at most {limit} bytes, got a Content-Length of {declared}"
        )
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise RequestTooLarge(f"body: expected at most {limit} bytes, got more")
    return bytes(body)


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number")


def parse_object(body: bytes, *, optional: bool) -> dict[str, Any]:
    """Decode a JSON object body; an absent (empty) optional body is ``{}``.

    A body of only whitespace is not absent: it is invalid JSON, as the API
    document says.

    Raises:
        BadRequest: The body is not JSON, or not an object.
    """
    if not body and optional:
        return {}
    try:
        value = json.loads(body, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise BadRequest(
            f"body: expected a JSON object, got invalid JSON ({exc})"
        ) from exc
    if not isinstance(value, dict):
        raise BadRequest(
            f"body: expected a JSON object, got a JSON {type(value).__name__}"
        )
    return value


class JsonFields:
    """Typed, bounded access to the fields of a JSON body.

    Like `tq.protocol.Args`, but for JSON: integers may come as integral
    numbers (``3.0``), durations are seconds, byte strings are base64 text,
    and null stands for an absent optional field.
    """

    def __init__(self, raw: dict[str, Any], allowed: Iterable[str]) -> None:
        """Wrap a decoded body; any field outside ``allowed`` is refused.

        Raises:
            BadRequest: An unknown field is present.
        """
        known = set(allowed)
        unknown = sorted(set(raw) - known)
        if unknown:
            raise BadRequest(
                f"body: expected only the fields {', '.join(sorted(known))}, "
                f"got {', '.join(map(repr, unknown))}"
            )
        self._raw = raw
        self.args = Args(
            {key: _integral(value) for key, value in raw.items()},
        )

    def has(self, field: str) -> bool:
        """Whether the field is present and not null."""
        return self._raw.get(field) is not None

    def seconds(self, field: str, *, low: float) -> float | None:
        """A number of seconds from ``low`` to `MAX_SECONDS`, or None if absent."""
        value = self._raw.get(field)
        if value is None:
            return None
        expected = f"a number of seconds from {low:g} to {MAX_SECONDS}"
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise BadRequest(f"{field}: expected {expected}, got {value!r}")
        if not low <= value <= MAX_SECONDS:
            raise BadRequest(f"{field}: expected {expected}, got {value!r}")
        return float(value)

    def base64(self, field: str, *, max_len: int) -> bytes:
        """Bytes sent as standard base64 text, at most ``max_len`` once decoded.

        Raises:
            BadRequest: Missing, not a string, or not base64.
            RequestTooLarge: Over ``max_len`` bytes.
        """
        value = self._raw.get(field)
        if not isinstance(value, str):
            raise BadRequest(f"{field}: expected base64 text, got {value!r:.80}")
        if len(value) > _base64_len(max_len):
            raise RequestTooLarge(
                f"{field}: expected at most {max_len} bytes, "
                f"got about {len(value) * 3 // 4}"
            )
        return _decode_base64(field, value, max_len)


def _integral(value: object) -> object:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _decode_base64(field: str, text: str, max_len: int) -> bytes:
    try:
        data = base64.b64decode(text.encode("ascii", errors="replace"), validate=True)
    except binascii.Error as exc:
        raise BadRequest(f"{field}: expected standard base64 text ({exc})") from exc
    if len(data) > max_len:
        raise RequestTooLarge(
            f"{field}: expected at most {max_len} bytes, got {len(data)}"
        )
    return data


class QueryFields:
    """Typed, bounded access to a query string."""

    def __init__(self, params: QueryParams) -> None:
        """Wrap a request's query parameters."""
        self._params = params

    def choice(self, field: str, choices: Iterable[str], *, default: str) -> str:
        """One of ``choices``; ``default`` when absent."""
        value = self._params.get(field)
        if value is None:
            return default
        allowed = list(choices)
        if value not in allowed:
            raise BadRequest(
                f"{field}: expected one of {', '.join(allowed)}, got {value!r:.80}"
            )
        return value

    def name(self, field: str) -> str | None:
        """A non-empty string of at most 255 UTF-8 bytes, or None if absent."""
        value = self._params.get(field)
        if value is None:
            return None
        return Args({field: value}).name(field)

    def integer(self, field: str, *, low: int, high: int, default: int) -> int:
        """A decimal integer from ``low`` to ``high``; ``default`` when absent."""
        value = self._params.get(field)
        if value is None:
            return default
        return _parse_int(field, value, low, high)

    def cursor(self, field: str) -> bytes | None:
        """An opaque cursor from an earlier page, or None if absent."""
        value = self._params.get(field)
        if value is None:
            return None
        return decode_cursor(field, value)


def _parse_int(field: str, text: str, low: int, high: int) -> int:
    expected = f"an integer from {low} to {high}"
    if not text.isascii() or not text.isdigit() or len(text) > 20:
        raise BadRequest(f"{field}: expected {expected}, got {text!r:.80}")
    value = int(text)
    if not low <= value <= high:
        raise BadRequest(f"{field}: expected {expected}, got {value}")
    return value


def encode_cursor(cursor: bytes | None) -> str | None:
    """An engine cursor as unpadded url-safe base64 text."""
    if cursor is None:
        return None
    return base64.urlsafe_b64encode(cursor).rstrip(b"=").decode("ascii")


def decode_cursor(field: str, text: str) -> bytes:
    """The engine cursor behind `encode_cursor` text.

    Raises:
        BadRequest: The text is not unpadded url-safe base64 of at most 64 bytes.
    """
    if len(text) > 86 or len(text) % 4 == 1 or not _URLSAFE.fullmatch(text):
        raise BadRequest(
            f"{field}: expected a cursor from an earlier page, got {text!r:.80}"
        )
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def task_id_of(request: Request) -> int:
    """The ``{task_id}`` of the request's path, checked."""
    return _parse_int("task_id", request.path_params["task_id"], 1, _MAX_ID)


# Views


def task_json(task: _core.Task) -> dict[str, Any]:
    """A task for JSON: payload and result as base64 text."""
    view = task_view(task)
    view["payload"] = _b64(view["payload"])
    view["result"] = None if view["result"] is None else _b64(view["result"])
    return view


def page_json(page: _core.Page) -> dict[str, Any]:
    """A page of tasks with the cursor of the next one."""
    return {
        "tasks": [task_json(task) for task in page.tasks],
        "next_cursor": encode_cursor(page.next_cursor),
    }


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


# Authentication


def _bearer_token(headers: Mapping[str, str]) -> str | None:
    scheme, _, token = headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        return None
    return token.strip()


def token_matches(given: str | None, expected: str) -> bool:
    """Compare tokens in constant time; a missing token never matches."""
    if given is None:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())


class TokenAuth:
    """ASGI middleware: every request but `OPEN_PATHS` must carry the token.

    HTTP requests send ``Authorization: Bearer <token>``; WebSocket clients
    may send the same header or, where their library cannot set headers, a
    ``token`` query parameter.
    """

    def __init__(self, app: ASGIApp, token: str | None) -> None:
        """Wrap ``app``; with no token every request passes."""
        self.app = app
        self.token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer 401 to a request without the token, else pass it on."""
        if self._allowed(scope):
            await self.app(scope, receive, send)
            return
        refusal = error_response(
            Unauthorized(
                "Authorization: expected 'Bearer <token>', got none or a wrong one"
            )
        )
        if scope["type"] == "websocket":
            await WebSocket(scope, receive, send).send_denial_response(refusal)
        else:
            await refusal(scope, receive, send)

    def _allowed(self, scope: Scope) -> bool:
        if self.token is None or scope["type"] not in ("http", "websocket"):
            return True
        if scope["path"] in OPEN_PATHS:
            return True
        given = _bearer_token(Headers(scope=scope))
        if given is None and scope["type"] == "websocket":
            given = QueryParams(scope["query_string"]).get("token")
        return token_matches(given, self.token)


# Endpoints

SUBMIT_FIELDS = (
    "task_type",
    "payload",
    "priority",
    "timeout_seconds",
    "max_retries",
    "delay_seconds",
    "idempotency_key",
)
"""Every field a submit body may carry."""

Endpoint = Callable[[Request], Awaitable[Response]]


class RestApi:
    """The REST endpoints of one `Broker`, each a thin layer over one operation."""

    def __init__(self, broker: Broker) -> None:
        """Create the endpoints; `routes` lists them for Starlette."""
        self.broker = broker
        self.config = broker.config
        self.body_limit = body_limit(broker.config.max_payload_bytes)
        self.document = openapi_document(broker.config)
        self.default_limit = min(100, broker.config.max_page)

    def routes(self) -> list[BaseRoute]:
        """Every route of the API, one per path."""
        api = API_PREFIX
        return [
            _route("/health", GET=self.health),
            _route(f"{api}/openapi.json", GET=self.openapi),
            _route(f"{api}/tasks", GET=self.list_tasks, POST=self.submit),
            _route(f"{api}/tasks/{{task_id}}", GET=self.get_task, DELETE=self.cancel),
            _route(f"{api}/stats", GET=self.stats),
            _route(f"{api}/workers", GET=self.workers),
            _route(f"{api}/dlq", GET=self.dlq_list),
            _route(f"{api}/dlq/requeue", POST=self.dlq_requeue_all),
            _route(f"{api}/dlq/purge", POST=self.dlq_purge),
            _route(f"{api}/dlq/{{task_id}}/requeue", POST=self.dlq_requeue),
            WebSocketRoute(f"{api}/events", self.events),
        ]

    async def _object(self, request: Request, *, optional: bool) -> dict[str, Any]:
        return parse_object(
            await read_body(request, self.body_limit), optional=optional
        )

    # Tasks

    async def submit(self, request: Request) -> Response:
        """``POST /tasks``: store a task; 201 when new, 200 for a known key."""
        fields = JsonFields(await self._object(request, optional=False), SUBMIT_FIELDS)
        submitted = await self.broker.submit(self._spec(fields))
        body = {"task_id": submitted.task_id, "created": submitted.created}
        if not submitted.created:
            return JSONResponse(body)
        location = f"{API_PREFIX}/tasks/{submitted.task_id}"
        return JSONResponse(body, status_code=201, headers={"Location": location})

    def _spec(self, fields: JsonFields) -> TaskSpec:
        args = fields.args
        return TaskSpec(
            task_type=args.name("task_type"),
            payload=fields.base64("payload", max_len=self.config.max_payload_bytes),
            priority=args.integer("priority", low=0, high=255, default=100),
            delay_s=fields.seconds("delay_seconds", low=0.0) or 0.0,
            timeout_s=fields.seconds("timeout_seconds", low=0.001),
            max_retries=args.optional_integer("max_retries", low=0, high=1000),
            idempotency_key=args.optional_name("idempotency_key"),
        )

    async def get_task(self, request: Request) -> Response:
        """``GET /tasks/{task_id}``: one task with its state, result or error."""
        return JSONResponse(task_json(await self.broker.get(task_id_of(request))))

    async def list_tasks(self, request: Request) -> Response:
        """``GET /tasks``: a page of tasks in one state (pending by default)."""
        query = QueryFields(request.query_params)
        state = query.choice("status", _core.STATES, default="pending")
        return await self._page(state, query)

    async def _page(self, state: str, query: QueryFields) -> Response:
        page = await self.broker.list_tasks(
            state,
            query.name("type"),
            query.integer(
                "limit", low=1, high=self.config.max_page, default=self.default_limit
            ),
            query.cursor("cursor"),
        )
        return JSONResponse(page_json(page))

    async def cancel(self, request: Request) -> Response:
        """``DELETE /tasks/{task_id}``: cancel; 202 when its worker must stop it."""
        task_id = task_id_of(request)
        state = await self.broker.cancel(task_id)
        requested = state == "in_progress"
        return JSONResponse(
            {"task_id": task_id, "state": state, "cancel_requested": requested},
            status_code=202 if requested else 200,
        )

    # The system

    async def stats(self, request: Request) -> Response:
        """``GET /stats``: counts by state, type and tier, and broker figures."""
        return JSONResponse(await self.broker.stats())

    async def workers(self, request: Request) -> Response:
        """``GET /workers``: live workers with their leases and heartbeat age."""
        now = trio.current_time()
        views = []
        for info in self.broker.workers.all():
            leases = await self.broker.worker_leases(info.worker_id)
            views.append(worker_view(info, leases, now))
        return JSONResponse({"workers": views})

    async def health(self, request: Request) -> Response:
        """``GET /health``: 200 while storage works, 503 after a storage error."""
        error = self.broker.storage_error
        body = {
            "status": "ok" if error is None else "unhealthy",
            "version": __version__,
            "uptime_s": (now_ms() - self.broker.started_ms) / 1000,
            "workers": len(self.broker.workers),
            "storage_error": error,
        }
        return JSONResponse(body, status_code=200 if error is None else 503)

    async def openapi(self, request: Request) -> Response:
        """``GET /openapi.json``: the OpenAPI document of this API."""
        return JSONResponse(self.document)

    # Dead letters

    async def dlq_list(self, request: Request) -> Response:
        """``GET /dlq``: a page of dead letters."""
        return await self._page("dead_letter", QueryFields(request.query_params))

    async def dlq_requeue(self, request: Request) -> Response:
        """``POST /dlq/{task_id}/requeue``: one dead letter back to pending."""
        await self.broker.dlq_requeue(task_id_of(request))
        return JSONResponse({"requeued": 1})

    async def dlq_requeue_all(self, request: Request) -> Response:
        """``POST /dlq/requeue``: requeue up to ``limit`` dead letters."""
        body = await self._object(request, optional=True)
        args = JsonFields(body, ("task_type", "limit")).args
        count = await self.broker.dlq_requeue_all(
            args.optional_name("task_type"),
            args.integer("limit", low=1, high=MAX_BULK, default=1000),
        )
        return JSONResponse({"requeued": count})

    async def dlq_purge(self, request: Request) -> Response:
        """``POST /dlq/purge``: delete dead letters, optionally only old ones."""
        body = await self._object(request, optional=True)
        fields = JsonFields(body, ("older_than_seconds", "task_type", "limit"))
        count = await self.broker.dlq_purge(
            fields.seconds("older_than_seconds", low=0.0),
            fields.args.optional_name("task_type"),
            fields.args.integer("limit", low=1, high=MAX_BULK, default=1000),
        )
        return JSONResponse({"purged": count})

    # Events

    async def events(self, websocket: WebSocket) -> None:
        """``WS /events``: events as JSON text messages, in order, until closed.

        A client that falls more than the hub's buffer behind is closed with
        code 1013 and a reason; it may reconnect, having missed events.
        """
        try:
            kinds, task_types = event_filters(websocket.query_params)
        except BadRequest as exc:
            await websocket.send_denial_response(error_response(exc))
            return
        # Subscribe before accepting, so that a client that has its handshake
        # answered sees every event published after that.
        async with self.broker.events.subscribe(kinds, task_types) as subscription:
            await websocket.accept()
            log.debug("event stream open events=%s types=%s", kinds, task_types)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_watch_for_close, websocket, nursery.cancel_scope)
                await _forward(websocket, subscription)
                nursery.cancel_scope.cancel()


def _route(path: str, **by_method: Endpoint) -> Route:
    """One route per path, so a wrong method gets 405 with every allowed one."""

    async def dispatch(request: Request) -> Response:
        method = "GET" if request.method == "HEAD" else request.method
        return await by_method[method](request)

    return Route(path, dispatch, methods=list(by_method))


def event_filters(params: QueryParams) -> tuple[list[str] | None, list[str] | None]:
    """The ``events`` and ``types`` filters of an event stream; None for all.

    Raises:
        BadRequest: Too many items, an empty list, or an unknown event kind.
    """
    kinds = _comma_list(params, "events")
    for kind in kinds or ():
        if kind not in EVENT_KINDS:
            raise BadRequest(
                f"events: expected kinds among {', '.join(EVENT_KINDS)}, "
                f"got {kind!r:.80}"
            )
    return kinds, _comma_list(params, "types")


def _comma_list(params: QueryParams, field: str) -> list[str] | None:
    value = params.get(field)
    if value is None:
        return None
    items = [item.strip() for item in value.split(",") if item.strip()]
    if not items:
        raise BadRequest(f"{field}: expected a comma-separated list, got {value!r:.80}")
    return Args({field: items}).names(field, max_len=MAX_FILTER_ITEMS)


async def _forward(websocket: WebSocket, subscription: Subscription) -> None:
    """Send events until the hub drops the subscriber, then close saying why."""
    try:
        async for event in subscription.receive:
            if subscription.dropped:
                # What is still buffered is stale; the client must catch up
                # from the API after it reconnects.
                break
            await websocket.send_text(json.dumps(event.to_map(), separators=(",", ":")))
    except WebSocketDisconnect:
        return
    if subscription.dropped:
        log.info("event stream closed: slow consumer, more than the buffer behind")
        await websocket.close(SLOW_CONSUMER_CLOSE, SLOW_CONSUMER_REASON)


SLOW_CONSUMER_REASON = "slow consumer: fell too far behind the broker; reconnect"
"""The close reason a dropped slow consumer reads (at most 123 bytes)."""


async def _watch_for_close(websocket: WebSocket, scope: trio.CancelScope) -> None:
    """Read (and ignore) what the client sends; stop the stream when it leaves."""
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            scope.cancel()
            return


# The app and its server


def create_app(broker: Broker) -> Starlette:
    """The REST API and event stream of ``broker`` as an ASGI app.

    Args:
        broker: The broker whose operations the endpoints call.

    Returns:
        A Starlette app; token authentication applies when the broker's
        config has an ``auth_token``.
    """
    return Starlette(
        routes=RestApi(broker).routes(),
        middleware=[Middleware(TokenAuth, token=broker.config.auth_token)],
        exception_handlers={
            TqError: _on_tq_error,
            HTTPException: _on_http_error,
            Exception: _on_internal_error,
        },
    )


class _QuietStartup(logging.Filter):
    """Drop hypercorn's own "Running on" lines: tq logs the bound port itself."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Running on")


_server_log = logging.getLogger("tq.broker.http.server")
_server_log.addFilter(_QuietStartup())


def hypercorn_config(
    host: str,
    port: int,
    *,
    certfile: str | None = None,
    keyfile: str | None = None,
) -> HypercornConfig:
    """Hypercorn settings for one of the broker's HTTP listeners.

    With ``certfile`` and ``keyfile`` (PEM files) the listener serves TLS only.
    """
    config = HypercornConfig()
    if certfile is not None and keyfile is not None:
        config.certfile = certfile
        config.keyfile = keyfile
        config.ssl_handshake_timeout = TLS_HANDSHAKE_TIMEOUT_S
    config.bind = [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"]
    config.accesslog = None
    config.errorlog = _server_log
    config.include_server_header = False
    config.read_timeout = READ_TIMEOUT_S
    config.websocket_max_message_size = WS_MAX_MESSAGE_BYTES
    config.websocket_ping_interval = WS_PING_INTERVAL_S
    return config


async def serve_asgi(
    app: ASGIApp,
    config: BrokerConfig,
    port: int,
    name: str,
    logger: logging.Logger,
    *,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve an ASGI app with hypercorn on the broker's host until cancelled.

    TLS is on when the config has a certificate. Once bound, logs
    ``<name> listening host=... port=... tls=...`` on ``logger``.

    Args:
        app: What to serve.
        config: The broker's config: host, certificate and key.
        port: Port to listen on; 0 for an ephemeral one.
        name: What the port serves, for the log line.
        logger: Where the log line goes.
        task_status: Started with the bound port.
    """
    hypercorn = hypercorn_config(
        config.host, port, certfile=config.tls_cert, keyfile=config.tls_key
    )
    run = partial(
        serve,
        app,  # type: ignore[arg-type]  # Starlette types ASGI more loosely
        hypercorn,
        shutdown_trigger=trio.sleep_forever,
    )
    async with trio.open_nursery() as nursery:
        binds: list[str] = await nursery.start(run)
        bound = int(binds[0].rsplit(":", 1)[1])
        logger.info(
            "%s listening host=%s port=%d tls=%s",
            name,
            config.host,
            bound,
            "on" if config.tls else "off",
        )
        task_status.started(bound)


async def serve_rest(
    broker: Broker, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED
) -> None:
    """Serve the REST API and event stream on the configured ``rest_port``.

    Args:
        broker: The broker to serve.
        task_status: Started with the bound port.
    """
    config = broker.config
    await serve_asgi(
        create_app(broker),
        config,
        config.rest_port,
        "rest",
        log,
        task_status=task_status,
    )
