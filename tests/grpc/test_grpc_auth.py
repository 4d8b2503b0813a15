"""Token authentication on the gRPC API: ``authorization: Bearer <token>``."""

from __future__ import annotations

import grpc
import pytest
from grpc_support import CALL_TIMEOUT_S

from tq import Client
from tq.v1 import tq_pb2, tq_pb2_grpc

pytestmark = pytest.mark.parametrize("broker_config", [{"auth_token": "s3cret"}])


def _stats_error(
    stub: tq_pb2_grpc.TqStub, metadata: tuple[tuple[str, str], ...]
) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        stub.GetStats(
            tq_pb2.GetStatsRequest(), metadata=metadata, timeout=CALL_TIMEOUT_S
        )
    return caught.value


def test_a_call_without_a_token_is_unauthenticated(stub: tq_pb2_grpc.TqStub) -> None:
    error = _stats_error(stub, ())

    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "authorization: Bearer <token>" in error.details()
    assert dict(error.trailing_metadata())["tq-error-code"] == "UNAUTHORIZED"


@pytest.mark.parametrize(
    "value", ["Bearer wrong", "Bearer s3cret-and-more", "Basic s3cret", "s3cret"]
)
def test_a_call_with_a_wrong_token_is_unauthenticated(
    stub: tq_pb2_grpc.TqStub, value: str
) -> None:
    error = _stats_error(stub, (("authorization", value),))

    assert error.code() == grpc.StatusCode.UNAUTHENTICATED


def test_a_refused_submit_stores_nothing(
    stub: tq_pb2_grpc.TqStub, client: Client
) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        stub.Submit(
            tq_pb2.SubmitRequest(task_type="t"),
            metadata=(("authorization", "Bearer wrong"),),
            timeout=CALL_TIMEOUT_S,
        )

    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert client.stats()["totals"].get("submitted", 0) == 0


def test_a_call_with_the_right_token_is_served(
    stub: tq_pb2_grpc.TqStub, client: Client
) -> None:
    submitted = stub.Submit(
        tq_pb2.SubmitRequest(task_type="t"),
        metadata=(("authorization", "Bearer s3cret"),),
        timeout=CALL_TIMEOUT_S,
    )

    assert client.get_task(submitted.task_id).task_type == "t"


def test_an_event_stream_without_a_token_is_unauthenticated(
    stub: tq_pb2_grpc.TqStub,
) -> None:
    stream = stub.StreamEvents(tq_pb2.StreamEventsRequest(), timeout=CALL_TIMEOUT_S)

    with pytest.raises(grpc.RpcError) as caught:
        next(stream)

    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_an_event_stream_with_the_right_token_opens(
    stub: tq_pb2_grpc.TqStub,
) -> None:
    stream = stub.StreamEvents(
        tq_pb2.StreamEventsRequest(),
        metadata=(("authorization", "Bearer s3cret"),),
        timeout=CALL_TIMEOUT_S,
    )

    stream.initial_metadata()
    assert stream.is_active()
    stream.cancel()
