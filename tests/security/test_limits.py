"""The limits of the TCP protocol, each from the config: a request past one gets
an error naming the field and the limit, stores nothing, and the connection
(and everyone else's) goes on.

The REST and gRPC front ends share these limits; tests/http/test_rest_errors.py
and tests/grpc/test_grpc_tasks.py test them there.
"""

from __future__ import annotations

import itertools
import socket
from collections.abc import Callable, Iterator

import pytest
from processes import BrokerProcess, wait_until
from security_support import (
    FAST_CONFIG,
    CertFiles,
    frame,
    hello,
    read_answers,
)

from tq import AsyncClient, Client
from tq.client import WorkerHello, calls
from tq.errors import BadRequest, ConnectionLost, TooManyConnections

LIMITS: dict[str, object] = {
    "max_batch": 3,
    "max_page": 5,
    "max_payload_bytes": 1024,
    "max_frame_bytes": 4096,
}
_types = itertools.count(1)


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    """A broker with small limits; each test works on a task type of its own."""
    root = tmp_path_factory.mktemp("limits")
    process = BrokerProcess(
        root / "data", root / "broker.log", {**FAST_CONFIG, **LIMITS}
    )
    process.start()
    yield process
    process.kill()


@pytest.fixture
def client(broker: BrokerProcess) -> Iterator[Client]:
    with Client.connect(broker.address) as connected:
        yield connected


@pytest.fixture
def task_type() -> str:
    return f"limits-{next(_types)}"


def stored(client: Client, task_type: str) -> int:
    return sum(client.stats()["by_type"].get(task_type, {}).values())


def test_the_hello_tells_the_client_the_limits(client: Client) -> None:
    assert client.server_info["max_batch"] == 3
    assert client.server_info["max_payload_bytes"] == 1024
    assert client.server_info["max_frame_bytes"] == 4096
    assert client.server_info["max_page"] == 5


# max_batch


def test_a_submit_many_past_max_batch_is_refused_and_stores_nothing(
    client: Client, task_type: str
) -> None:
    with pytest.raises(BadRequest, match="tasks: expected at most 3 items, got"):
        client.submit_many([(task_type, b"", 100)] * 4)

    assert stored(client, task_type) == 0
    assert len(client.submit_many([(task_type, b"", 100)] * 3)) == 3


async def test_an_ack_many_or_claim_past_max_batch_is_refused_and_changes_nothing(
    broker: BrokerProcess, task_type: str
) -> None:
    worker = AsyncClient(
        broker.address, worker=WorkerHello("w-batch", task_types=(task_type,))
    )
    async with worker, AsyncClient.connect(broker.address) as client:
        ids = await client.submit_many([(task_type, b"", 100)] * 3)
        with pytest.raises(
            BadRequest, match="max_tasks: expected an integer from 1 to 3"
        ):
            await worker.call(calls.claim(4, [task_type], 0))
        claimed = await worker.call(calls.claim(3, [task_type], 5.0))
        acks = [(t["task_id"], t["lease_id"], b"done") for t in claimed]

        with pytest.raises(BadRequest, match="acks: expected at most 3 items, got"):
            await worker.call(calls.ack_many([*acks, acks[0]]))

        states = [(await client.get_task(task_id)).state for task_id in ids]
        assert states == ["in_progress"] * 3
        assert await worker.call(calls.ack_many(acks)) == [None] * 3


# max_page


@pytest.mark.parametrize("listing", ["tasks", "dead letters"])
def test_a_page_past_max_page_is_refused_naming_the_limit(
    client: Client, listing: str
) -> None:
    list_page = client.list_tasks if listing == "tasks" else client.dlq_list

    with pytest.raises(BadRequest) as refused:
        list_page(limit=6)

    assert str(refused.value) == "limit: expected an integer from 1 to 5, got 6"
    assert list_page(limit=5).tasks is not None


# max_payload_bytes


def test_a_payload_past_max_payload_bytes_is_refused_alone_or_in_a_batch(
    client: Client, task_type: str
) -> None:
    with pytest.raises(BadRequest, match="payload: expected at most 1024 bytes"):
        client.submit_task(task_type, b"x" * 1025)
    with pytest.raises(BadRequest, match="payload: expected at most 1024 bytes"):
        client.submit_many([(task_type, b"x", 100), (task_type, b"x" * 1025, 100)])

    assert stored(client, task_type) == 0
    task_id = client.submit_task(task_type, b"x" * 1024)
    assert client.get_task(task_id).payload == b"x" * 1024


async def test_a_result_past_max_payload_bytes_is_refused_and_the_lease_kept(
    broker: BrokerProcess, task_type: str
) -> None:
    worker = AsyncClient(
        broker.address, worker=WorkerHello("w-result", task_types=(task_type,))
    )
    async with worker, AsyncClient.connect(broker.address) as client:
        task_id = await client.submit_task(task_type, b"")
        (claimed,) = await worker.call(calls.claim(1, [task_type], 5.0))

        with pytest.raises(BadRequest, match="result: expected at most 1024 bytes"):
            await worker.call(calls.ack(task_id, claimed["lease_id"], b"r" * 1025))

        assert (await client.get_task(task_id)).state == "in_progress"
        await worker.call(calls.ack(task_id, claimed["lease_id"], b"r" * 1024))
        assert await client.wait_for_result(task_id, 5) == b"r" * 1024


# max_frame_bytes


def test_a_frame_past_max_frame_bytes_is_refused_before_its_body_is_read(
    broker: BrokerProcess, client: Client
) -> None:
    oversized = frame({"id": 1, "op": "stats", "args": {"pad": b"x" * 5000}})
    with socket.create_connection(("127.0.0.1", broker.port), timeout=30) as sock:
        # The header alone: the broker must answer without waiting for a body.
        sock.sendall(hello() + oversized[:4])
        answers = read_answers(sock)

    assert answers.closed
    (welcome, refusal) = answers.responses
    assert welcome["ok"] is True
    assert refusal["id"] is None
    assert refusal["error"]["code"] == "FRAME_TOO_LARGE"
    assert refusal["error"]["message"].startswith(
        "frame: expected a body of at most 4096 bytes, got a length of "
    )
    # Only that connection ended.
    assert client.stats()["max_pending"] == 100_000


# max_connections


@pytest.fixture
def small_broker(start_broker: Callable[..., BrokerProcess]) -> BrokerProcess:
    return start_broker(max_connections=3)


def test_a_connection_past_max_connections_is_refused_at_once_and_others_go_on(
    small_broker: BrokerProcess,
) -> None:
    address = small_broker.address
    clients = [Client.connect(address) for _ in range(3)]
    try:
        with pytest.raises(TooManyConnections) as refused:
            Client.connect(address, reconnect_timeout=30)
        with socket.create_connection(("127.0.0.1", small_broker.port)) as sock:
            answers = read_answers(sock)

        assert str(refused.value) == (
            f"the broker at {address} refused the connection: the broker is at "
            "max_connections (3); close another connection or raise max_connections"
        )
        assert isinstance(refused.value, ConnectionLost)
        assert answers.closed
        assert [r["error"]["code"] for r in answers.responses] == [
            "TOO_MANY_CONNECTIONS"
        ]
        for client in clients:
            assert client.stats()["workers"] == 0
        assert "at max_connections=3" in small_broker.log_text()
    finally:
        clients.pop().close()

    # The slot is free once the broker has seen the close.
    wait_until(lambda: _connects(address), 10, "a slot to come free")
    for client in clients:
        client.close()


def _connects(address: str) -> bool:
    try:
        Client.connect(address).close()
    except TooManyConnections:
        return False
    return True


def test_a_connection_past_max_connections_of_a_tls_port_is_closed(
    start_broker: Callable[..., BrokerProcess], cert: CertFiles
) -> None:
    broker = start_broker(
        max_connections=1, tls_cert=str(cert.cert), tls_key=str(cert.key)
    )
    with Client.connect(broker.address, tls_ca=cert.cert) as first:
        # Told nothing: saying why would take the handshake the limit spares.
        with pytest.raises(ConnectionLost, match="cannot reach the broker"):
            Client.connect(broker.address, tls_ca=cert.cert, reconnect_timeout=0.5)

        assert first.stats()["workers"] == 0
