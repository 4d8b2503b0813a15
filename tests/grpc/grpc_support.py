"""Helpers of the gRPC API's tests: the broker's gRPC port, call deadlines, and
task messages in the TCP client's shape."""

from __future__ import annotations

import re
from typing import Any

from processes import BrokerProcess, wait_until

from tq.v1 import tq_pb2

GRPC_LISTENING = re.compile(r" grpc listening host=\S+ port=(\d+)")

# Short intervals so that workers join and leave in moments.
FAST_CONFIG: dict[str, object] = {
    "heartbeat_interval": "0.3s",
    "worker_timeout": "1.5s",
    "backoff_base": "0.2s",
    "backoff_max": "2s",
    "log_level": "info",
}

CALL_TIMEOUT_S = 30.0
"""Deadline of every call in these tests, so a broken broker fails a test
instead of hanging it."""


def grpc_port_of(broker: BrokerProcess) -> int:
    """The gRPC port the broker logged, waiting for the line if need be."""
    ports: list[int] = []

    def logged() -> bool:
        found = GRPC_LISTENING.findall(broker.log_text())
        ports[:] = [int(port) for port in found]
        return bool(ports)

    wait_until(logged, 30, "the broker to log its gRPC port")
    return ports[-1]


def task_fields(message: tq_pb2.Task) -> dict[str, Any]:
    """A task message as the TCP client's `TaskInfo.to_map` shows a task."""
    fields = {
        field.name: _value(message, field.name)
        for field in message.DESCRIPTOR.fields
        if field.name != "history"
    }
    fields["history"] = [
        {field.name: _value(attempt, field.name) for field in attempt.DESCRIPTOR.fields}
        for attempt in message.history
    ]
    return fields


def _value(message: Any, name: str) -> Any:
    field = message.DESCRIPTOR.fields_by_name[name]
    if field.has_presence and not message.HasField(name):
        return None
    return getattr(message, name)
