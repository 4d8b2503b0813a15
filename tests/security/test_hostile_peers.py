"""Peers that misbehave in time rather than in content, against a real broker.

Slow senders, peers that send and never read, peers that stay silent before
their hello, and half-open connections: each is held to its own connection,
the broker's memory stays bounded, and everyone else is served as before.
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import cbor2
import pytest
from processes import BrokerProcess
from security_support import FAST_CONFIG, frame, hello, read_answers, rss_mb

from tq import Client
from tq.broker.server import HELLO_TIMEOUT_S, KEEPALIVE_IDLE_S

BIG_PAYLOAD = b"b" * 65_536
REQUESTS = 1_000_000


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    root = tmp_path_factory.mktemp("hostile-peers")
    process = BrokerProcess(root / "data", root / "broker.log", dict(FAST_CONFIG))
    process.start()
    yield process
    process.kill()


def _time_reads(client: Client, task_id: int, count: int) -> float:
    started = time.perf_counter()
    for _ in range(count):
        client.get_task(task_id)
    return time.perf_counter() - started


def test_slow_senders_are_served_in_the_end_and_slow_no_one_else(
    broker: BrokerProcess,
) -> None:
    request = hello() + frame({"id": 1, "op": "stats", "args": {}})
    answers: list[int] = []

    def dribble() -> None:
        with socket.create_connection(("127.0.0.1", broker.port), timeout=30) as sock:
            for byte in request:
                sock.sendall(bytes([byte]))
                time.sleep(0.02)
            answers.append(len(read_answers(sock, timeout_s=5).responses))

    with Client.connect(broker.address) as bystander:
        task_id = bystander.submit_task("echo", b"read me")
        alone = _time_reads(bystander, task_id, 300)
        senders = [threading.Thread(target=dribble) for _ in range(50)]
        for sender in senders:
            sender.start()
        with_senders = _time_reads(bystander, task_id, 300)
        for sender in senders:
            sender.join()
    # Each slow sender got its hello and its stats answered.
    assert answers == [2] * 50
    # Generous, as the machine is shared: an event loop blocked by a slow
    # sender would take each sender's whole dribble, seconds, per read.
    assert with_senders < 5 * alone + 1.0, (alone, with_senders)


def test_a_peer_that_sends_and_never_reads_holds_bounded_memory(
    broker: BrokerProcess,
) -> None:
    assert broker.proc is not None
    with Client.connect(broker.address) as bystander:
        task_id = bystander.submit_task("echo", BIG_PAYLOAD)
        before = rss_mb(broker.proc.pid)
        get = frame({"id": 2, "op": "get", "args": {"task_id": task_id}})
        with socket.create_connection(("127.0.0.1", broker.port)) as sock:
            sock.sendall(hello())
            sock.settimeout(3)
            sent = 0
            # Socket buffers hold a few MB of requests; answered as they came,
            # the rest would need 1,000,000 x 64 KiB = 64 GB of answers.
            try:
                while sent < REQUESTS:
                    sock.sendall(get * 1000)
                    sent += 1000
            except TimeoutError:
                pass  # the broker stopped reading: that is the point
            grown = rss_mb(broker.proc.pid) - before
            assert bystander.get_task(task_id).payload == BIG_PAYLOAD
    assert sent < REQUESTS, "the broker read every request of a peer that reads nothing"
    # At most MAX_IN_FLIGHT (1,024) answers of 64 KiB wait for the peer.
    assert grown < 200, f"RSS grew by {grown:.0f} MB"


def test_a_connection_silent_before_its_hello_is_closed_after_the_hello_timeout(
    broker: BrokerProcess,
) -> None:
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", broker.port)) as sock:
        sock.settimeout(HELLO_TIMEOUT_S + 10)
        assert sock.recv(1) == b""
    waited = time.monotonic() - started
    assert HELLO_TIMEOUT_S - 1 < waited < HELLO_TIMEOUT_S + 10


def test_every_connection_has_tcp_keepalive_so_half_open_ones_close(
    broker: BrokerProcess,
) -> None:
    # /proc/net/tcp shows each socket's running timer: 2 is keepalive. The
    # broker's end of an idle connection must have it armed, or a peer that
    # vanished without a FIN would keep its connection forever.
    with socket.create_connection(("127.0.0.1", broker.port)) as sock:
        sock.sendall(hello())
        assert read_answers(sock, timeout_s=1).responses[0]["ok"] is True
        client_port = sock.getsockname()[1]
        timer, expires_s = _timer_of(broker.port, client_port)
    assert timer == 2, f"expected the keepalive timer (2), got {timer}"
    assert 0 < expires_s <= KEEPALIVE_IDLE_S


def _timer_of(local_port: int, remote_port: int) -> tuple[int, float]:
    """The timer kind and seconds left of a socket in /proc/net/tcp."""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote = fields[1], fields[2]
        if (int(local.split(":")[1], 16), int(remote.split(":")[1], 16)) == (
            local_port,
            remote_port,
        ):
            kind, jiffies = fields[5].split(":")
            return int(kind, 16), int(jiffies, 16) / 100
    raise AssertionError(f"no socket {local_port} -> {remote_port} in /proc/net/tcp")


def test_a_frame_cut_off_by_a_vanishing_peer_changes_nothing(
    broker: BrokerProcess,
) -> None:
    body = cbor2.dumps(
        {"id": 1, "op": "submit", "args": {"task_type": "cut", "payload": b"x" * 1000}}
    )
    with Client.connect(broker.address) as bystander:
        before = bystander.stats()["by_type"].get("cut")
        with socket.create_connection(("127.0.0.1", broker.port)) as sock:
            sock.sendall(hello() + struct.pack(">I", len(body)) + body[:500])
        assert bystander.stats()["by_type"].get("cut") == before
