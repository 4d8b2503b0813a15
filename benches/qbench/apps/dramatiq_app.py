"""Dramatiq's benchmark actors on its RedisBroker, with its Results middleware.

``stamp`` stores its result in the Redis results backend, where
``message.get_result(block=True)`` waits for it with a blocking pop.
"""

from __future__ import annotations

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.results import Results
from dramatiq.results.backends import RedisBackend

from qbench.apps.peer_tasks import QUEUE, noop_body, redis_url, stamp_body

broker = RedisBroker(url=redis_url())
broker.add_middleware(Results(backend=RedisBackend(url=redis_url())))
dramatiq.set_broker(broker)


@dramatiq.actor(actor_name="noop", queue_name=QUEUE)
def noop(pad: str) -> None:
    """See `peer_tasks.noop_body`."""
    noop_body(pad)


@dramatiq.actor(actor_name="stamp", queue_name=QUEUE, store_results=True)
def stamp(send_ns: int, pad: str) -> int:
    """See `peer_tasks.stamp_body`."""
    return stamp_body(send_ns, pad)
