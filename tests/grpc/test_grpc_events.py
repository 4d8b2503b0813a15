"""The gRPC event stream: the broker's events, filtered as the hub filters
them, in order, and ended cleanly."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest
from grpc_support import CALL_TIMEOUT_S
from processes import BrokerProcess, WorkerProcess, wait_until

from tq import Client
from tq.v1 import tq_pb2, tq_pb2_grpc

MAX_EVENT_STREAMS = 8  # the broker's limit, tq.broker.grpc_server.MAX_EVENT_STREAMS


def _subscribe(
    stub: tq_pb2_grpc.TqStub, kinds: list[str] = (), task_types: list[str] = ()
) -> grpc.Call:
    stream = stub.StreamEvents(
        tq_pb2.StreamEventsRequest(kinds=kinds, task_types=task_types),
        timeout=CALL_TIMEOUT_S,
    )
    # The headers come once the broker has subscribed: no later event is lost.
    stream.initial_metadata()
    return stream


def test_a_task_run_by_a_worker_streams_its_events_in_order(
    stub: tq_pb2_grpc.TqStub,
    client: Client,
    spawn_worker: Callable[..., WorkerProcess],
    tmp_path: Path,
) -> None:
    stream = _subscribe(
        stub, ["task.submitted", "task.started", "task.completed"], ["record"]
    )
    client.submit_task("other", b"filtered out by type")
    task_id = stub.Submit(
        tq_pb2.SubmitRequest(task_type="record", payload=b"hello", priority=200),
        timeout=CALL_TIMEOUT_S,
    ).task_id
    spawn_worker(TQ_TEST_RECORD=str(tmp_path / "record.txt"))

    events = [next(stream) for _ in range(3)]
    stream.cancel()

    assert [event.kind for event in events] == [
        "task.submitted",
        "task.started",
        "task.completed",
    ]
    assert {event.task_id for event in events} == {task_id}
    assert {event.task_type for event in events} == {"record"}
    submitted, started, completed = events
    assert submitted.priority == 200
    task = client.get_task(task_id)
    assert task.state == "completed"
    assert started.worker_id == completed.worker_id == task.history[-1].worker_id
    assert started.attempt == completed.attempt == 1
    assert completed.HasField("run_s")
    assert submitted.at_ms <= started.at_ms <= completed.at_ms
    assert all(not event.extra for event in events)


def test_worker_events_pass_a_task_type_filter(
    stub: tq_pb2_grpc.TqStub, spawn_worker: Callable[..., WorkerProcess]
) -> None:
    stream = _subscribe(stub, ["worker.joined"], ["record"])

    spawn_worker()
    joined = next(stream)
    stream.cancel()

    assert joined.kind == "worker.joined"
    assert joined.HasField("worker_id")
    assert joined.HasField("host")


def test_an_unknown_event_kind_is_an_invalid_argument(
    stub: tq_pb2_grpc.TqStub,
) -> None:
    stream = stub.StreamEvents(
        tq_pb2.StreamEventsRequest(kinds=["task.exploded"]), timeout=CALL_TIMEOUT_S
    )

    with pytest.raises(grpc.RpcError) as caught:
        next(stream)

    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "got 'task.exploded'" in caught.value.details()


def _open_streams(stub: tq_pb2_grpc.TqStub, count: int) -> Iterator[grpc.Call]:
    for _ in range(count):
        yield _subscribe(stub)


def test_streams_past_the_limit_are_refused_until_one_closes(
    stub: tq_pb2_grpc.TqStub,
) -> None:
    streams = list(_open_streams(stub, MAX_EVENT_STREAMS))

    with pytest.raises(grpc.RpcError) as caught:
        next(_subscribe(stub))
    streams[0].cancel()

    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    reopened: list[grpc.Call] = []

    def one_more_opens() -> bool:
        stream = _subscribe(stub)
        if stream.is_active():
            reopened.append(stream)
            return True
        return False

    wait_until(one_more_opens, 10, "a stream slot to be freed by the cancel")
    for stream in [*streams, *reopened]:
        stream.cancel()


def test_broker_shutdown_ends_open_streams_as_unavailable(
    stub: tq_pb2_grpc.TqStub, broker: BrokerProcess
) -> None:
    stream = _subscribe(stub)

    code = broker.stop()

    with pytest.raises(grpc.RpcError) as caught:
        next(stream)
    assert code == 0
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "shutting down" in caught.value.details()
    log = broker.log_text()
    assert log.index("grpc stopped") < log.index("store closed")


@pytest.mark.parametrize("broker_config", [{"fsync": False}])
def test_a_stream_that_is_not_read_is_dropped_as_resource_exhausted(
    stub: tq_pb2_grpc.TqStub, client: Client, broker: BrokerProcess
) -> None:
    stream = _subscribe(stub, ["task.submitted"])

    # Far more events than the stream's buffer and the transport's windows hold.
    for _ in range(50):
        client.submit_many([("flood", b"", 100)] * 1000)
    received: list[tq_pb2.Event] = []
    with pytest.raises(grpc.RpcError) as caught:
        received.extend(stream)

    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "events behind" in caught.value.details()
    assert len(received) < 50_000
    assert "grpc event stream dropped" in broker.log_text()
