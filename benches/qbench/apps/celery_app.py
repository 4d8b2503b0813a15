"""Celery's benchmark app: Redis as broker and result backend, JSON messages.

``noop`` ignores its result (nothing is written back); ``stamp`` stores it, so
a client can wait for it with ``AsyncResult.get`` (the Redis backend tells the
waiting client through pub/sub).
"""

from __future__ import annotations

from celery import Celery

from qbench.apps.peer_tasks import QUEUE, noop_body, redis_url, stamp_body

app = Celery("bench", broker=redis_url(), backend=redis_url())
app.conf.update(
    task_default_queue=QUEUE,
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    broker_connection_retry_on_startup=True,
)


@app.task(name="noop", ignore_result=True)
def noop(pad: str) -> None:
    """See `peer_tasks.noop_body`."""
    noop_body(pad)


@app.task(name="stamp")
def stamp(send_ns: int, pad: str) -> int:
    """See `peer_tasks.stamp_body`."""
    return stamp_body(send_ns, pad)
