"""Statistics, workers and dead letters over gRPC, checked against the same
operations over the TCP client."""

from __future__ import annotations

from collections.abc import Callable

import grpc
import pytest
from grpc_support import CALL_TIMEOUT_S, task_fields
from processes import WorkerProcess, wait_until

from tq import Client
from tq.errors import InvalidState
from tq.v1 import tq_pb2, tq_pb2_grpc


def test_get_stats_reports_the_counts_the_tcp_client_sees(
    stub: tq_pb2_grpc.TqStub, client: Client
) -> None:
    client.submit_many([("a", b"", 50), ("a", b"", 150), ("b", b"", 250)])
    client.submit_task("later", b"", delay=3600)

    stats = stub.GetStats(tq_pb2.GetStatsRequest(), timeout=CALL_TIMEOUT_S)

    expected = client.stats()
    assert dict(stats.by_state) == expected["by_state"]
    assert dict(stats.pending_by_tier) == expected["pending_by_tier"]
    assert {
        task_type: dict(counts.by_state) for task_type, counts in stats.by_type.items()
    } == expected["by_type"]
    assert (stats.queue_depth, stats.max_pending) == (4, expected["max_pending"])
    assert stats.totals["submitted"] == expected["totals"]["submitted"] == 4
    assert not stats.HasField("storage_error")


def test_list_workers_shows_the_live_worker_the_tcp_client_sees(
    stub: tq_pb2_grpc.TqStub,
    client: Client,
    spawn_worker: Callable[..., WorkerProcess],
) -> None:
    spawn_worker(concurrency=3)
    wait_until(client.workers, 30, "the worker to join")

    response = stub.ListWorkers(tq_pb2.ListWorkersRequest(), timeout=CALL_TIMEOUT_S)

    [over_tcp] = client.workers()
    [worker] = response.workers
    assert worker.worker_id == over_tcp["worker_id"]
    assert (worker.hostname, worker.pid) == (over_tcp["hostname"], over_tcp["pid"])
    assert worker.concurrency == 3
    assert list(worker.task_types) == over_tcp["task_types"]
    assert worker.joined_ms == over_tcp["joined_ms"]


def _dead_letters(
    client: Client, spawn_worker: Callable[..., WorkerProcess], count: int
) -> list[int]:
    """Tasks that a worker rejected into the dead letter queue; the worker is
    gone afterwards, so requeued tasks stay pending."""
    worker = spawn_worker()
    ids = client.submit_many([("reject", str(n).encode(), 100) for n in range(count)])
    wait_until(
        lambda: all(client.get_task(i).state == "dead_letter" for i in ids),
        30,
        "the worker to reject every task",
    )
    worker.kill()
    return ids


def test_list_dead_letters_pages_through_the_tcp_clients_dead_letters(
    stub: tq_pb2_grpc.TqStub,
    client: Client,
    spawn_worker: Callable[..., WorkerProcess],
) -> None:
    ids = _dead_letters(client, spawn_worker, 3)

    first = stub.ListDeadLetters(
        tq_pb2.ListDeadLettersRequest(task_type="reject", limit=2),
        timeout=CALL_TIMEOUT_S,
    )
    second = stub.ListDeadLetters(
        tq_pb2.ListDeadLettersRequest(limit=2, cursor=first.next_cursor),
        timeout=CALL_TIMEOUT_S,
    )

    listed = [*first.tasks, *second.tasks]
    assert sorted(task.task_id for task in listed) == ids
    assert not second.HasField("next_cursor")
    tcp_page = client.dlq_list(limit=10)
    assert [task_fields(task) for task in listed] == [
        task.to_map() for task in tcp_page.tasks
    ]


def test_requeue_dead_letter_makes_the_task_pending_again(
    stub: tq_pb2_grpc.TqStub,
    client: Client,
    spawn_worker: Callable[..., WorkerProcess],
) -> None:
    [task_id] = _dead_letters(client, spawn_worker, 1)

    response = stub.RequeueDeadLetter(
        tq_pb2.RequeueDeadLetterRequest(task_id=task_id), timeout=CALL_TIMEOUT_S
    )

    assert response.requeued == 1
    assert client.get_task(task_id).state == "pending"


def test_requeue_dead_letters_requeues_up_to_the_limit(
    stub: tq_pb2_grpc.TqStub,
    client: Client,
    spawn_worker: Callable[..., WorkerProcess],
) -> None:
    _dead_letters(client, spawn_worker, 3)

    response = stub.RequeueDeadLetters(
        tq_pb2.RequeueDeadLettersRequest(task_type="reject", limit=2),
        timeout=CALL_TIMEOUT_S,
    )

    assert response.requeued == 2
    by_state = client.stats()["by_state"]
    assert (by_state["pending"], by_state["dead_letter"]) == (2, 1)


def test_purge_dead_letters_deletes_them(
    stub: tq_pb2_grpc.TqStub,
    client: Client,
    spawn_worker: Callable[..., WorkerProcess],
) -> None:
    ids = _dead_letters(client, spawn_worker, 2)

    kept = stub.PurgeDeadLetters(
        tq_pb2.PurgeDeadLettersRequest(older_than_ms=3_600_000),
        timeout=CALL_TIMEOUT_S,
    )
    purged = stub.PurgeDeadLetters(
        tq_pb2.PurgeDeadLettersRequest(task_type="reject"), timeout=CALL_TIMEOUT_S
    )

    assert (kept.purged, purged.purged) == (0, 2)
    assert client.dlq_list().tasks == ()
    with pytest.raises(grpc.RpcError) as caught:
        stub.GetTask(tq_pb2.GetTaskRequest(task_id=ids[0]), timeout=CALL_TIMEOUT_S)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


def test_requeueing_a_task_that_is_no_dead_letter_is_refused(
    stub: tq_pb2_grpc.TqStub, client: Client
) -> None:
    task_id = client.submit_task("t", b"")

    with pytest.raises(grpc.RpcError) as caught:
        stub.RequeueDeadLetter(
            tq_pb2.RequeueDeadLetterRequest(task_id=task_id), timeout=CALL_TIMEOUT_S
        )

    with pytest.raises(InvalidState) as over_tcp:
        client.dlq_requeue(task_id)
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert caught.value.details() == over_tcp.value.message
    assert dict(caught.value.trailing_metadata())["tq-error-code"] == "INVALID_STATE"
