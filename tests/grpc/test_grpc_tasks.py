"""Submitting, reading, listing and cancelling tasks over gRPC, checked
against the same operations over the TCP client."""

from __future__ import annotations

import grpc
import pytest
from grpc_support import CALL_TIMEOUT_S, task_fields

from tq import Client
from tq.errors import BadRequest, InvalidState, QueueFull, TaskNotFound
from tq.v1 import tq_pb2, tq_pb2_grpc


def _error(call: object) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        call()  # type: ignore[operator]
    return caught.value


def _tq_code(error: grpc.RpcError) -> str:
    return dict(error.trailing_metadata())["tq-error-code"]


def test_submit_stores_the_task_the_tcp_client_then_reads(
    stub: tq_pb2_grpc.TqStub, client: Client
) -> None:
    submitted = stub.Submit(
        tq_pb2.SubmitRequest(
            task_type="email",
            payload=b"\x00hello",
            priority=250,
            delay_ms=3_600_000,
            timeout_ms=5000,
            max_retries=7,
            idempotency_key="k1",
        ),
        timeout=CALL_TIMEOUT_S,
    )

    assert submitted.created
    task = client.get_task(submitted.task_id)
    assert (task.task_type, task.payload, task.priority) == ("email", b"\x00hello", 250)
    assert (task.state, task.timeout_ms, task.max_retries) == ("scheduled", 5000, 7)
    assert task.idempotency_key == "k1"


def test_submit_leaves_unset_fields_to_the_broker_defaults_as_tcp_does(
    stub: tq_pb2_grpc.TqStub, client: Client
) -> None:
    over_grpc = stub.Submit(tq_pb2.SubmitRequest(task_type="t"), timeout=CALL_TIMEOUT_S)
    over_tcp = client.submit_task("t", b"", 100)

    request = tq_pb2.GetTaskRequest(task_id=over_grpc.task_id)
    grpc_task = task_fields(stub.GetTask(request, timeout=CALL_TIMEOUT_S))
    tcp_task = client.get_task(over_tcp).to_map()
    for name in ("priority", "payload", "timeout_ms", "max_retries", "state"):
        assert grpc_task[name] == tcp_task[name], name


def test_submit_with_a_held_idempotency_key_returns_the_existing_task(
    stub: tq_pb2_grpc.TqStub, client: Client
) -> None:
    first = client.submit_task("t", b"", idempotency_key="same")

    again = stub.Submit(
        tq_pb2.SubmitRequest(task_type="t", idempotency_key="same"),
        timeout=CALL_TIMEOUT_S,
    )

    assert (again.task_id, again.created) == (first, False)


def test_submit_many_stores_all_tasks_in_order(
    stub: tq_pb2_grpc.TqStub, client: Client
) -> None:
    response = stub.SubmitMany(
        tq_pb2.SubmitManyRequest(
            tasks=[
                tq_pb2.SubmitRequest(task_type="batch", payload=str(n).encode())
                for n in range(5)
            ]
        ),
        timeout=CALL_TIMEOUT_S,
    )

    assert list(response.created) == [True] * 5
    payloads = [client.get_task(task_id).payload for task_id in response.task_ids]
    assert payloads == [b"0", b"1", b"2", b"3", b"4"]


def test_get_task_returns_every_field_the_tcp_client_sees(
    stub: tq_pb2_grpc.TqStub, client: Client
) -> None:
    task_id = client.submit_task("t", b"payload", 7, idempotency_key="get-me")

    over_grpc = task_fields(
        stub.GetTask(tq_pb2.GetTaskRequest(task_id=task_id), timeout=CALL_TIMEOUT_S)
    )

    assert over_grpc == client.get_task(task_id).to_map()


def test_list_tasks_pages_through_the_same_tasks_as_tcp(
    stub: tq_pb2_grpc.TqStub, client: Client
) -> None:
    client.submit_many([("listed", str(n).encode(), 100) for n in range(5)])
    client.submit_task("other", b"")

    grpc_ids: list[int] = []
    cursor: bytes | None = None
    pages = 0
    while True:
        request = tq_pb2.ListTasksRequest(
            state="pending", task_type="listed", limit=2, cursor=cursor
        )
        page = stub.ListTasks(request, timeout=CALL_TIMEOUT_S)
        grpc_ids += [task.task_id for task in page.tasks]
        pages += 1
        if not page.HasField("next_cursor"):
            break
        cursor = page.next_cursor

    tcp_page = client.list_tasks("pending", task_type="listed", limit=100)
    assert grpc_ids == [task.task_id for task in tcp_page.tasks]
    assert len(grpc_ids) == 5
    assert pages == 3


def test_cancel_task_cancels_a_waiting_task(
    stub: tq_pb2_grpc.TqStub, client: Client
) -> None:
    task_id = client.submit_task("later", b"", delay=3600)

    response = stub.CancelTask(
        tq_pb2.CancelTaskRequest(task_id=task_id), timeout=CALL_TIMEOUT_S
    )

    assert response.state == "cancelled"
    assert client.get_task(task_id).state == "cancelled"


def test_an_unknown_task_is_not_found_with_the_tcp_message(
    stub: tq_pb2_grpc.TqStub, client: Client
) -> None:
    error = _error(lambda: stub.GetTask(tq_pb2.GetTaskRequest(task_id=424242)))

    with pytest.raises(TaskNotFound) as over_tcp:
        client.get_task(424242)
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert error.details() == over_tcp.value.message
    assert _tq_code(error) == "NOT_FOUND"


def test_cancelling_a_finished_task_fails_its_precondition(
    stub: tq_pb2_grpc.TqStub, client: Client
) -> None:
    task_id = client.submit_task("later", b"", delay=3600)
    client.cancel(task_id)

    error = _error(lambda: stub.CancelTask(tq_pb2.CancelTaskRequest(task_id=task_id)))

    with pytest.raises(InvalidState) as over_tcp:
        client.cancel(task_id)
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error.details() == over_tcp.value.message


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (tq_pb2.SubmitRequest(task_type="t", priority=256), "priority: expected"),
        (tq_pb2.SubmitRequest(task_type=""), "task_type: expected a non-empty"),
        (tq_pb2.SubmitRequest(task_type="x" * 256), "task_type: expected at most"),
        (tq_pb2.SubmitRequest(task_type="t", max_retries=1001), "max_retries:"),
        (tq_pb2.SubmitRequest(task_type="t", timeout_ms=0), "timeout_ms:"),
    ],
)
def test_a_submit_out_of_bounds_is_an_invalid_argument(
    stub: tq_pb2_grpc.TqStub, request_: tq_pb2.SubmitRequest, message: str
) -> None:
    error = _error(lambda: stub.Submit(request_, timeout=CALL_TIMEOUT_S))

    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details().startswith(message)
    assert _tq_code(error) == "BAD_REQUEST"


def test_a_bad_argument_gets_the_same_message_as_over_tcp(
    stub: tq_pb2_grpc.TqStub, client: Client
) -> None:
    error = _error(
        lambda: stub.ListTasks(tq_pb2.ListTasksRequest(state="pending", limit=5000))
    )

    with pytest.raises(BadRequest) as over_tcp:
        client.list_tasks("pending", limit=5000)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details() == over_tcp.value.message


@pytest.mark.parametrize(
    "broker_config",
    [{"max_payload_bytes": 1024, "max_frame_bytes": 4096, "max_batch": 3}],
)
class TestBounds:
    def test_a_payload_over_max_payload_bytes_is_an_invalid_argument(
        self, stub: tq_pb2_grpc.TqStub, client: Client
    ) -> None:
        request = tq_pb2.SubmitRequest(task_type="t", payload=b"x" * 1025)

        error = _error(lambda: stub.Submit(request, timeout=CALL_TIMEOUT_S))

        with pytest.raises(BadRequest) as over_tcp:
            client.submit_task("t", b"x" * 1025)
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert error.details() == over_tcp.value.message

    def test_a_request_over_max_frame_bytes_is_refused_before_it_is_read(
        self, stub: tq_pb2_grpc.TqStub, client: Client
    ) -> None:
        request = tq_pb2.SubmitRequest(task_type="t", payload=b"x" * 5000)

        error = _error(lambda: stub.Submit(request, timeout=CALL_TIMEOUT_S))

        assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert client.stats()["by_state"]["pending"] == 0

    def test_a_batch_over_max_batch_is_an_invalid_argument_and_stores_nothing(
        self, stub: tq_pb2_grpc.TqStub, client: Client
    ) -> None:
        request = tq_pb2.SubmitManyRequest(
            tasks=[tq_pb2.SubmitRequest(task_type="t") for _ in range(4)]
        )

        error = _error(lambda: stub.SubmitMany(request, timeout=CALL_TIMEOUT_S))

        with pytest.raises(BadRequest) as over_tcp:
            client.submit_many([("t", b"", 100)] * 4)
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert error.details() == over_tcp.value.message
        assert "at most 3 items" in error.details()
        assert client.stats()["by_state"]["pending"] == 0


@pytest.mark.parametrize("broker_config", [{"max_pending": 2}])
def test_a_submit_past_max_pending_is_resource_exhausted_like_tcp_queue_full(
    stub: tq_pb2_grpc.TqStub, client: Client
) -> None:
    for _ in range(2):
        stub.Submit(tq_pb2.SubmitRequest(task_type="t"), timeout=CALL_TIMEOUT_S)

    error = _error(
        lambda: stub.Submit(tq_pb2.SubmitRequest(task_type="t"), timeout=CALL_TIMEOUT_S)
    )

    with pytest.raises(QueueFull) as over_tcp:
        client.submit_task("t", b"")
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert _tq_code(error) == "QUEUE_FULL"
    assert error.details().startswith("queue depth 2 + 1 would pass the threshold")
    assert over_tcp.value.message.startswith("queue depth 2 + 1")
    assert client.stats()["by_state"]["pending"] == 2
