"""The auth matrix of the TCP protocol: every op, sent before the hello, after a
hello without the token or with a wrong one, and after the right one.

Nothing but the hello is answered before the token is accepted: a refused
connection gets one ``UNAUTHORIZED`` answer, is closed, and changed nothing.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from processes import BrokerProcess
from security_support import (
    FAST_CONFIG,
    OPS,
    TOKEN,
    Wire,
    args_for,
    frame,
    hello,
    read_answers,
    result,
)

from tq import Client
from tq.errors import Unauthorized
from tq.protocol import Op

WRONG_TOKEN = "not-the-token"  # noqa: S105 (a test token, not a secret)
WRONG_TOKENS: dict[str, object] = {
    "no token": None,
    "an empty token": "",
    "a wrong token": WRONG_TOKEN,
    "the token with more after it": TOKEN + "x",
    "a prefix of the token": TOKEN[:-1],
    "a token that is not text": TOKEN.encode(),
}


class Shared:
    """A broker with a token and one pending task, for tests that change nothing."""

    def __init__(self, broker: BrokerProcess, client: Client, task_id: int) -> None:
        self.broker = broker
        self.client = client
        self.task_id = task_id

    def assert_unchanged(self) -> None:
        task = self.client.get_task(self.task_id)
        assert (task.state, task.attempts, task.result) == ("pending", 0, None)
        stats = self.client.stats()
        assert stats["totals"] == {"submitted": 1}
        assert stats["workers"] == 0


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shared]:
    root = tmp_path_factory.mktemp("tcp-auth")
    process = BrokerProcess(
        root / "data", root / "broker.log", {**FAST_CONFIG, "auth_token": TOKEN}
    )
    process.start()
    try:
        with Client.connect(process.address, token=TOKEN) as client:
            yield Shared(process, client, client.submit_task("echo", b"kept"))
    finally:
        process.kill()


def exchange(port: int, data: bytes) -> tuple[list[dict[str, Any]], bool]:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(data)
        answers = read_answers(sock)
    return answers.responses, answers.closed


def test_the_matrix_has_arguments_for_every_op_of_the_protocol() -> None:
    # A new op without an entry in args_for fails here with its name.
    assert all(isinstance(args_for(op, 1), dict) for op in OPS)


@pytest.mark.parametrize("op", OPS, ids=str)
def test_an_op_sent_before_the_hello_is_unauthorized_and_the_connection_closed(
    shared: Shared, op: Op
) -> None:
    request = frame({"id": 7, "op": op.value, "args": args_for(op, shared.task_id)})

    # Even a right hello after it is never read.
    responses, closed = exchange(shared.broker.port, request + hello(TOKEN))

    assert responses == [
        {
            "id": 7,
            "ok": False,
            "error": {
                "code": "UNAUTHORIZED",
                "message": f"expected a hello first, got op {op.value!r}",
            },
        }
    ]
    assert closed
    shared.assert_unchanged()


@pytest.mark.parametrize("token", WRONG_TOKENS.values(), ids=WRONG_TOKENS.keys())
@pytest.mark.parametrize("op", OPS, ids=str)
def test_an_op_after_a_hello_without_the_right_token_is_never_answered(
    shared: Shared, op: Op, token: object
) -> None:
    request = frame({"id": 7, "op": op.value, "args": args_for(op, shared.task_id)})

    responses, closed = exchange(
        shared.broker.port, hello(token, worker_id="intruder") + request
    )

    assert responses == [
        {
            "id": 0,
            "ok": False,
            "error": {"code": "UNAUTHORIZED", "message": "token: missing or wrong"},
        }
    ]
    assert closed
    # The refused hello named a worker: it never joined.
    shared.assert_unchanged()


def test_a_client_with_a_wrong_token_raises_unauthorized_at_once(
    shared: Shared,
) -> None:
    with pytest.raises(Unauthorized, match="token: missing or wrong"):
        Client.connect(shared.broker.address, token=WRONG_TOKEN)
    shared.assert_unchanged()


@pytest.fixture
def worker_wire(
    start_broker: Callable[..., BrokerProcess],
) -> Iterator[tuple[Wire, Client]]:
    broker = start_broker(auth_token=TOKEN)
    wire = Wire(broker.port)
    try:
        with Client.connect(broker.address, token=TOKEN) as client:
            yield wire, client
    finally:
        wire.close()


def test_with_the_right_token_every_op_is_served(
    worker_wire: tuple[Wire, Client],
) -> None:
    wire, client = worker_wire
    served: list[str] = []

    def call(op: Op, args: dict[str, Any]) -> Any:
        served.append(op.value)
        return result(wire.request(op.value, args))

    assert result(wire.say_hello(TOKEN, worker_id="w-1"))["version"] == 1
    first = call(Op.SUBMIT, {"task_type": "echo", "payload": b"a"})["task_id"]
    second, third = call(
        Op.SUBMIT_MANY,
        {"tasks": [{"task_type": "echo", "payload": p} for p in (b"b", b"c")]},
    )["task_ids"]
    assert call(Op.GET, {"task_id": first})["state"] == "pending"
    assert len(call(Op.LIST, {"state": "pending"})["tasks"]) == 3
    assert call(Op.STATS, {})["by_state"]["pending"] == 3
    assert [w["worker_id"] for w in call(Op.WORKERS, {})] == ["w-1"]
    leases = {
        task["task_id"]: task["lease_id"]
        for task in call(Op.CLAIM, {"max_tasks": 3, "wait_ms": 5000})["tasks"]
    }
    assert set(leases) == {first, second, third}
    assert call(Op.HEARTBEAT, {"task_ids": list(leases)})["cancel"] == []
    call(Op.ACK, {"task_id": first, "lease_id": leases[first], "result": b"A"})
    acks = [{"task_id": second, "lease_id": leases[second], "result": b"B"}]
    assert call(Op.ACK_MANY, {"acks": acks})["errors"] == [None]
    failed = {
        "task_id": third,
        "lease_id": leases[third],
        "error": "no",
        "reject": True,
    }
    assert call(Op.FAIL, failed)["state"] == "dead_letter"
    assert [t["task_id"] for t in call(Op.DLQ_LIST, {})["tasks"]] == [third]
    assert call(Op.DLQ_REQUEUE, {"task_id": third})["requeued"] == 1
    assert call(Op.WAIT, {"task_id": first, "timeout_ms": 5000})["result"] == b"A"
    assert call(Op.CANCEL, {"task_id": third})["state"] == "cancelled"
    assert call(Op.DLQ_PURGE, {})["purged"] == 0

    assert sorted(served) == sorted(op.value for op in OPS)
    assert client.get_task(second).result == b"B"
