"""Lost workers, stale leases and hostile bytes against a real broker."""

from __future__ import annotations

import os
import socket
import struct
import time
from collections.abc import Callable

import cbor2
import pytest
import trio
from processes import BrokerProcess, WorkerProcess, wait_until

from tq import AsyncClient, Client
from tq.client import WorkerHello, calls
from tq.errors import BadRequest, StaleLease


def test_task_of_a_killed_worker_completes_on_another_within_the_timeout(
    broker: BrokerProcess, spawn_worker: Callable[..., WorkerProcess]
) -> None:
    doomed = spawn_worker()
    with Client.connect(broker.address) as client:
        task_id = client.submit_task("block", b"1.0")
        wait_until(lambda: client.get_task(task_id).state == "in_progress", 10, "claim")
        doomed.kill()
        killed_at = time.monotonic()
        spawn_worker()
        assert client.wait_for_result(task_id, timeout=30) == b"unblocked"
        took_s = time.monotonic() - killed_at
        task = client.get_task(task_id)
    # Worker timeout 1.5 s, then at most one backoff (0.2 s) and the run (1 s).
    assert took_s < 1.5 + 0.2 + 1.0 + 1.0
    assert task.attempts == 2
    assert "lost" in (task.history[0].error or "")


async def test_ack_with_a_stale_lease_is_rejected_and_changes_nothing(
    broker: BrokerProcess,
) -> None:
    first = AsyncClient(broker.address, worker=WorkerHello("w-first"))
    second = AsyncClient(broker.address, worker=WorkerHello("w-second"))
    async with first, second, AsyncClient.connect(broker.address) as client:
        task_id = await client.submit_task("echo", b"x")
        (old,) = await first.call(calls.claim(1, None, 0))
        await first.aclose()  # silent from now on: lost after the worker timeout
        (new,) = await second.call(calls.claim(1, None, 5.0))
        assert new["task_id"] == task_id
        assert new["lease_id"] != old["lease_id"]
        with pytest.raises(StaleLease):
            await first.call(calls.ack(task_id, old["lease_id"], b"late"))
        task = await client.get_task(task_id)
        assert task.state == "in_progress"
        assert task.worker_id == "w-second"
        await second.call(calls.ack(task_id, new["lease_id"], b"on time"))
        assert await client.wait_for_result(task_id, 5) == b"on time"


async def test_ack_many_completes_each_task_and_refuses_only_the_stale_ack(
    broker: BrokerProcess,
) -> None:
    worker = AsyncClient(broker.address, worker=WorkerHello("w-batch"))
    async with worker, AsyncClient.connect(broker.address) as client:
        ids = await client.submit_many([("echo", b"x", 100)] * 3)
        claimed = await worker.call(calls.claim(3, None, 5.0))
        assert sorted(task["task_id"] for task in claimed) == ids
        acks = [(t["task_id"], t["lease_id"], b"done") for t in claimed]
        stale = (acks[1][0], acks[1][1] + 1000, b"stale")
        errors = await worker.call(calls.ack_many([acks[0], stale, acks[2]]))
        assert errors[0] is None
        assert isinstance(errors[1], StaleLease)
        assert errors[2] is None
        states = [(await client.get_task(task_id)).state for task_id, _, _ in acks]
        assert states == ["completed", "in_progress", "completed"]
        assert await worker.call(calls.ack_many([acks[1]])) == [None]
        assert await client.wait_for_result(acks[1][0], 5) == b"done"


async def test_ack_many_from_a_client_that_is_no_worker_is_refused(
    broker: BrokerProcess,
) -> None:
    async with AsyncClient.connect(broker.address) as client:
        with pytest.raises(BadRequest, match="only a worker"):
            await client.call(calls.ack_many([(1, 1, b"")]))


def _frame(message: object) -> bytes:
    body = cbor2.dumps(message)
    return struct.pack(">I", len(body)) + body


def _hello() -> bytes:
    return _frame({"id": 0, "op": "hello", "args": {"version": 1}})


def _answers(sock: socket.socket) -> list[dict[str, object]]:
    """Every response until the broker closes or goes quiet for a second."""
    sock.settimeout(1.0)
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except TimeoutError:
        pass
    out = []
    while len(data) >= 4:
        (length,) = struct.unpack(">I", data[:4])
        out.append(cbor2.loads(data[4 : 4 + length]))
        data = data[4 + length :]
    return out


# {"id": 1, "op": "stats", "args": ...}, its args' value to follow.
_STATS_ARGS = b"\xa3bid\x01bopestatsdargs"


def _raw_frame(body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + body


def _nested(depth: int) -> object:
    value: object = 0
    for _ in range(depth):
        value = [value]
    return value


HOSTILE_INPUTS: dict[str, bytes] = {
    "malformed cbor": _hello() + struct.pack(">I", 3) + b"\xff\xff\xff",
    "frame over the limit": _hello() + struct.pack(">I", 2**31),
    "truncated frame": _hello() + struct.pack(">I", 100) + b"\xa1",
    "unknown op": _hello() + _frame({"id": 1, "op": "explode", "args": {}}),
    "wrong argument types": _hello()
    + _frame({"id": 1, "op": "submit", "args": {"task_type": 5, "payload": "text"}}),
    "request before hello": _frame({"id": 1, "op": "stats", "args": {}}),
    "random bytes": os.urandom(4096),
    "nesting past tq's limit": _hello()
    + _frame({"id": 1, "op": "stats", "args": {"a": _nested(20)}}),
    "nesting 100,000 deep": _hello() + _raw_frame(_STATS_ARGS + b"\x81" * 100_000),
    "an array that claims 2**36 items": _hello()
    + _raw_frame(_STATS_ARGS + b"\x9b" + (2**36).to_bytes(8, "big")),
    "bytes that claim 2**36 of them": _hello()
    + _raw_frame(_STATS_ARGS + b"\x5b" + (2**36).to_bytes(8, "big")),
}


def test_a_connection_reset_with_answers_unread_ends_only_that_connection(
    broker: BrokerProcess,
) -> None:
    for _ in range(5):
        with socket.create_connection(("127.0.0.1", broker.port)) as sock:
            sock.sendall(_hello() + _frame({"id": 1, "op": "stats", "args": {}}))
            # Linger 0: close sends RST, with the answers still unread.
            sock.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
            )
    with Client.connect(broker.address) as client:
        assert client.stats()["workers"] == 0
    assert broker.proc is not None
    assert broker.proc.poll() is None


@pytest.mark.parametrize("name", sorted(HOSTILE_INPUTS))
def test_hostile_input_gets_an_error_or_a_close_and_others_keep_working(
    broker: BrokerProcess, name: str
) -> None:
    with Client.connect(broker.address) as bystander:
        with socket.create_connection(("127.0.0.1", broker.port)) as sock:
            sock.sendall(HOSTILE_INPUTS[name])
            if name == "truncated frame":
                sock.shutdown(socket.SHUT_WR)
            answers = _answers(sock)
        errors = [a for a in answers if a.get("ok") is False]
        if name not in ("truncated frame", "random bytes"):
            assert errors, f"{name}: expected an error response, got {answers}"
        task_id = bystander.submit_task("echo", b"still here")
        assert bystander.get_task(task_id).state == "pending"


def test_error_messages_name_the_field_and_what_came(broker: BrokerProcess) -> None:
    with socket.create_connection(("127.0.0.1", broker.port)) as sock:
        sock.sendall(HOSTILE_INPUTS["wrong argument types"])
        answers = _answers(sock)
    error = answers[-1]["error"]
    assert isinstance(error, dict)
    assert error["code"] == "BAD_REQUEST"
    assert error["message"] == "task_type: expected a non-empty string, got 5"


async def test_pipelined_requests_are_all_answered(broker: BrokerProcess) -> None:
    async with AsyncClient.connect(broker.address) as client:
        ids: list[int] = []

        async def submit(n: int) -> None:
            ids.append(await client.submit_task("echo", str(n).encode()))

        async with trio.open_nursery() as nursery:
            for n in range(200):
                nursery.start_soon(submit, n)
        assert len(set(ids)) == 200


def test_the_same_request_sent_many_times_at_once_is_answered_each_time(
    broker: BrokerProcess,
) -> None:
    stats = _frame({"id": 7, "op": "stats", "args": {}})
    with socket.create_connection(("127.0.0.1", broker.port)) as sock:
        sock.sendall(_hello() + stats * 50)
        answers = _answers(sock)
    assert len(answers) == 51
    assert all(answer["ok"] for answer in answers)
    assert [answer["id"] for answer in answers[1:]] == [7] * 50
