"""Huey's benchmark tasks on RedisHuey.

``notify_result=True`` makes a waiting ``result.get(blocking=True)`` block on
a Redis list instead of polling with backoff (Huey's own low-latency option).
``noop`` returns None, which Huey does not store.
"""

from __future__ import annotations

from huey import RedisHuey

from qbench.apps.peer_tasks import QUEUE, noop_body, redis_url, stamp_body

huey = RedisHuey(QUEUE, url=redis_url(), notify_result=True)


@huey.task(name="noop")
def noop(pad: str) -> None:
    """See `peer_tasks.noop_body`."""
    noop_body(pad)


@huey.task(name="stamp")
def stamp(send_ns: int, pad: str) -> int:
    """See `peer_tasks.stamp_body`."""
    return stamp_body(send_ns, pad)
