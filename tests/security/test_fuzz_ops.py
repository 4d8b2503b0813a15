"""Every op of the TCP protocol with fuzzed arguments, against a real broker.

hypothesis sends requests made from each op's valid arguments with one of them
replaced by a value of any CBOR type (huge and negative integers, floats, bytes
for text, text for bytes, deep lists and maps), requests with arguments made of
field names and values at random, unknown ops, arguments that are not a map
and text that is not UTF-8. Each must get an answer with a known error code
(never ``INTERNAL``) or a success, on a connection that stays open; the broker
stays up, its memory stays bounded and a bystander keeps being served.
"""

from __future__ import annotations

import os
import socket
import struct
from collections.abc import Iterator
from typing import Any

import cbor2
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from processes import BrokerProcess
from security_support import (
    FAST_CONFIG,
    OPS,
    Wire,
    args_for,
    hello,
    result,
    rss_mb,
)

from tq import Client
from tq.errors import _BY_CODE
from tq.protocol import Op

EXAMPLES = 3000
KNOWN_CODES = set(_BY_CODE) - {"INTERNAL"}
# The arguments that make a claim or a wait hold its answer back.
WAITING_FIELDS = {"wait_ms", "timeout_ms"}
FIELD_NAMES = sorted(
    {name for op in OPS for name in args_for(op, 1)}
    | {"max_tasks", "task_types", "wait_ms", "delay_ms", "priority", "cursor"}
    | {"limit", "max_retries", "idempotency_key", "retry_delay_ms", "task_type"}
)

cbor_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True)
    | st.text(max_size=40)
    | st.binary(max_size=40)
    | st.sampled_from(["", "pending", "echo", "\x00", "🦀" * 100, "a" * 300]),
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=30,
)


@st.composite
def one_argument_replaced(draw: st.DrawFn) -> tuple[str, Any]:
    op = draw(st.sampled_from(OPS))
    args = args_for(op, draw(st.integers(min_value=1, max_value=5)))
    field = draw(st.sampled_from(sorted(args) or ["task_id"]))
    args[field] = draw(cbor_values)
    return op.value, args


@st.composite
def fields_at_random(draw: st.DrawFn) -> tuple[str, Any]:
    op = draw(st.sampled_from([op.value for op in OPS]))
    names = st.sampled_from(FIELD_NAMES) | st.text(max_size=12)
    args = draw(st.dictionaries(names, cbor_values, max_size=6))
    return op, args


@st.composite
def not_a_request(draw: st.DrawFn) -> tuple[str, Any]:
    op = draw(
        st.sampled_from(["", "HELLO", "submit ", "explode"]) | st.text(max_size=20)
    )
    assume(op not in {o.value for o in Op})
    return op, draw(cbor_values)


requests = one_argument_replaced() | fields_at_random() | not_a_request()


class FuzzedWorker:
    """A worker connection to ``broker`` that sends any request and reads its answer."""

    def __init__(self, broker: BrokerProcess) -> None:
        self.broker = broker
        self.wire = Wire(broker.port)
        result(self.wire.say_hello(None, worker_id="fuzzer"))
        self.ids = 0

    def send(self, op: Any, args: Any) -> dict[str, Any]:
        self.ids += 1
        return self.send_raw(cbor2.dumps({"id": self.ids, "op": op, "args": args}))

    def send_raw(self, body: bytes) -> dict[str, Any]:
        self.wire.sock.sendall(struct.pack(">I", len(body)) + body)
        return self.wire.receive()


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FuzzedWorker]:
    root = tmp_path_factory.mktemp("fuzz-ops")
    process = BrokerProcess(root / "data", root / "broker.log", dict(FAST_CONFIG))
    process.start()
    try:
        with Client.connect(process.address) as client:
            for _ in range(5):
                client.submit_task("echo", b"seed")
        yield FuzzedWorker(process)
    finally:
        process.kill()


def _assert_answered(response: dict[str, Any], request_id: int) -> None:
    assert response.get("id") == request_id, response
    if response.get("ok") is True:
        return
    assert response.get("ok") is False, response
    assert response["error"]["code"] in KNOWN_CODES, response
    assert response["error"]["message"], response


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(request=requests)
def test_every_fuzzed_request_gets_a_known_error_or_a_result(
    fuzzed: FuzzedWorker, request: tuple[str, Any]
) -> None:
    op, args = request
    if isinstance(args, dict):
        for name in WAITING_FIELDS & set(args):
            args[name] = 0
        if op == Op.WAIT.value:
            args.setdefault("timeout_ms", 0)
    _assert_answered(fuzzed.send(op, args), fuzzed.ids)


@pytest.mark.parametrize(
    "body",
    [
        # {"id": 1, "op": <text of invalid UTF-8>, "args": {}}
        b"\xa3bid\x01bop\x62\xff\xfedargs\xa0",
        # {"id": 1, "op": "submit", "args": {"task_type": <invalid UTF-8>, ...}}
        b"\xa3bid\x01bopfsubmitdargs\xa2itask_type\x62\xc3\x28gpayloadAx",
        # an id that is not an integer, and one past 64 bits
        cbor2.dumps({"id": "one", "op": "stats", "args": {}}),
        cbor2.dumps({"id": 2**70, "op": "stats", "args": {}}),
    ],
    ids=["op not utf-8", "task type not utf-8", "id not an integer", "id too big"],
)
def test_text_that_is_not_utf8_and_odd_ids_get_a_bad_request(
    fuzzed: FuzzedWorker, body: bytes
) -> None:
    response = fuzzed.send_raw(body)
    assert response["ok"] is False
    assert response["error"]["code"] == "BAD_REQUEST", response


def test_after_the_fuzzing_the_broker_serves_others_with_bounded_memory(
    fuzzed: FuzzedWorker,
) -> None:
    broker = fuzzed.broker
    assert broker.proc is not None
    assert broker.proc.poll() is None
    with Client.connect(broker.address) as bystander:
        task_id = bystander.submit_task("echo", b"still served")
        assert bystander.get_task(task_id).payload == b"still served"
    assert rss_mb(broker.proc.pid) < 400


def test_random_bytes_on_many_connections_leave_the_broker_serving(
    fuzzed: FuzzedWorker,
) -> None:
    broker = fuzzed.broker
    for seed in range(200):
        with socket.create_connection(("127.0.0.1", broker.port), timeout=10) as sock:
            sock.sendall(hello() + os.urandom(64 + seed * 7))
    assert broker.proc is not None
    assert broker.proc.poll() is None
    with Client.connect(broker.address) as bystander:
        task_id = bystander.submit_task("echo", b"after the random bytes")
        assert bystander.get_task(task_id).state == "pending"
