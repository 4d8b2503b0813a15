"""RQ's benchmark tasks: plain functions that ``rq worker`` imports by name."""

from __future__ import annotations

from qbench.apps.peer_tasks import noop_body, stamp_body


def noop(pad: str) -> None:
    """See `peer_tasks.noop_body`."""
    noop_body(pad)


def stamp(send_ns: int, pad: str) -> int:
    """See `peer_tasks.stamp_body`."""
    return stamp_body(send_ns, pad)
