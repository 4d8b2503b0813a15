"""The auth matrix of the REST API and the gRPC API, over every endpoint and
every RPC: each one the API's own description lists, so that a new one is
covered the day it is added.

tests/http/test_rest_auth.py and tests/grpc/test_grpc_auth.py test the token's
forms and the event streams in depth, on a few calls; these go wide.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import grpc
import httpx
import pytest
from processes import BrokerProcess
from security_support import FAST_CONFIG, TOKEN, grpc_port_of

from tq.v1 import tq_pb2

WRONG = "not-the-token"
RIGHT = "the right token"
BEARERS: dict[str, dict[str, str]] = {
    "no token": {},
    "a wrong token": {"Authorization": f"Bearer {WRONG}"},
    RIGHT: {"Authorization": f"Bearer {TOKEN}"},
}


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    """A broker with a token, shared: no call here needs a state of its own."""
    root = tmp_path_factory.mktemp("api-auth")
    process = BrokerProcess(
        root / "data", root / "broker.log", {**FAST_CONFIG, "auth_token": TOKEN}
    )
    process.start()
    yield process
    process.kill()


# REST


def rest_operations() -> list[tuple[str, str, bool]]:
    """Every (method, path, open) the OpenAPI document of a token broker lists."""
    from tq.broker.config import BrokerConfig  # noqa: PLC0415
    from tq.broker.openapi import openapi_document  # noqa: PLC0415

    document = openapi_document(BrokerConfig(auth_token=TOKEN))
    return [
        (method.upper(), path, operation.get("security") == [])
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in ("get", "post", "put", "patch", "delete")
    ]


def _body(method: str, path: str) -> dict[str, Any] | None:
    if method == "POST" and path.endswith("/tasks"):
        return {"task_type": "echo", "payload": "eA=="}
    return {} if method == "POST" else None


@pytest.mark.parametrize("bearer", BEARERS, ids=str)
@pytest.mark.parametrize(
    ("method", "path", "is_open"),
    rest_operations(),
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_every_rest_endpoint_needs_the_token_unless_the_document_marks_it_open(
    broker: BrokerProcess, method: str, path: str, is_open: bool, bearer: str
) -> None:
    url = broker.rest_url + path.replace("{task_id}", "999999")

    response = httpx.request(
        method, url, json=_body(method, path), headers=BEARERS[bearer], timeout=30
    )

    if is_open or bearer == RIGHT:
        # Served: an unknown task is a 404 from the endpoint, not a refusal.
        assert response.status_code != 401, response.text
        assert response.status_code < 500, response.text
    else:
        assert response.status_code == 401, response.text
        assert response.json()["error"]["code"] == "UNAUTHORIZED"


# gRPC

SERVICE = tq_pb2.DESCRIPTOR.services_by_name["Tq"]
METADATA: dict[str, tuple[tuple[str, str], ...]] = {
    "no token": (),
    "a wrong token": (("authorization", f"Bearer {WRONG}"),),
    RIGHT: (("authorization", f"Bearer {TOKEN}"),),
}


def _call(channel: grpc.Channel, name: str) -> Callable[..., Any]:
    method = SERVICE.methods_by_name[name]
    request_class = getattr(tq_pb2, method.input_type.name)
    response_class = getattr(tq_pb2, method.output_type.name)
    make = channel.unary_stream if method.server_streaming else channel.unary_unary
    return make(
        f"/{SERVICE.full_name}/{name}",
        request_serializer=request_class.SerializeToString,
        response_deserializer=response_class.FromString,
    )


def _status_of(channel: grpc.Channel, name: str, metadata: Any) -> grpc.StatusCode:
    """The status a call with an empty request ends with (OK if it succeeds)."""
    method = SERVICE.methods_by_name[name]
    request = getattr(tq_pb2, method.input_type.name)()
    try:
        answer = _call(channel, name)(request, metadata=metadata, timeout=30)
        if method.server_streaming:
            # Headers come once the stream is open; then leave it.
            answer.initial_metadata()
            if answer.is_active():
                answer.cancel()
                return grpc.StatusCode.OK
            return answer.code()
    except grpc.RpcError as error:
        return error.code()
    return grpc.StatusCode.OK


@pytest.fixture(scope="module")
def channel(broker: BrokerProcess) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(f"127.0.0.1:{grpc_port_of(broker)}") as opened:
        yield opened


@pytest.mark.parametrize("case", METADATA, ids=str)
@pytest.mark.parametrize("rpc", list(SERVICE.methods_by_name), ids=str)
def test_every_rpc_is_unauthenticated_without_the_right_token_and_served_with_it(
    channel: grpc.Channel, rpc: str, case: str
) -> None:
    status = _status_of(channel, rpc, METADATA[case])

    if case == RIGHT:
        # Served: an empty request may be invalid or name no task, but it got
        # past the token.
        assert status in (
            grpc.StatusCode.OK,
            grpc.StatusCode.INVALID_ARGUMENT,
            grpc.StatusCode.NOT_FOUND,
        ), status
    else:
        assert status == grpc.StatusCode.UNAUTHENTICATED
