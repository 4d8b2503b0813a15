"""The peers' client driver, run with the benchmark venv's interpreter.

    python -m qbench.drivers.peer_driver OP --peer NAME --redis-url URL [options]

The ops mirror `qbench.drivers.tq_driver`: ``fill`` (one message through the
peer's API, then copies of it, see `replicate`), ``submit`` (``seq``: one
thread; ``concurrent``: ``--clients`` threads, each with the peer's client;
``batch``: the peer's bulk API, 1,000 tasks a call), ``latency`` (open loop)
and ``probe`` (after go, retry until LLEN of the queue is ``--expect``).
"""

from __future__ import annotations

import argparse
import os
import threading
import time
from typing import Any

import redis

from qbench.apps.peer_tasks import REDIS_URL_ENV
from qbench.drivers import common, replicate
from qbench.drivers.peers import PEERS, Peer

BATCH = 1_000
PROBE_INTERVAL_S = 0.005


def fill(peer: Peer, args: argparse.Namespace) -> dict[str, Any]:
    """``--n`` noop messages: one from the API, the rest copied from it."""
    client = redis.Redis.from_url(args.redis_url)
    if client.dbsize():
        raise RuntimeError("fill needs an empty Redis database")
    common.ready_then_wait()
    start = time.monotonic()
    template = replicate.capture(client, peer.seeds(peer.enqueue()))
    replicate.replay(client, template, args.n - 1)
    seconds = time.monotonic() - start
    pending = peer.pending()
    if pending != args.n:
        raise RuntimeError(f"{peer.name} counts {pending} queued, expected {args.n}")
    return {"n": args.n, "seconds": seconds, "pending": pending}


def submit(peer: Peer, args: argparse.Namespace) -> dict[str, Any]:
    """Enqueue noop tasks for ``--duration`` seconds; count them."""
    if args.mode == "batch":
        step = _counted(lambda: peer.enqueue_batch(BATCH), BATCH)
        common.ready_then_wait()
        return common.timed_loop(args.duration, step)
    clients = args.clients if args.mode == "concurrent" else 1
    steps = [_counted(peer.for_thread().enqueue, 1) for _ in range(clients)]
    common.ready_then_wait()
    return common.run_threads(steps, args.duration)


def _counted(call: Any, n: int) -> Any:
    def step() -> int:
        call()
        return n

    return step


def latency(peer: Peer, args: argparse.Namespace) -> dict[str, Any]:
    """Open loop: ``--rate`` enqueues/s for ``--duration`` s, ``--clients`` threads.

    Each thread has its own client (`Peer.for_thread`); it takes the next due
    slot, sleeps until it is due, enqueues a ``stamp`` task carrying its send
    time (the enqueue call's return is its ack), and blocks on the peer's
    result API until the result is in.
    """
    for _ in range(args.warmup):
        peer.wait(peer.submit_stamp(0))
    schedule = common.Schedule(args.rate, args.duration)
    log = common.LatencyLog()
    senders = [peer.for_thread() for _ in range(args.clients)]
    common.ready_then_wait()
    schedule.begin()
    threads = [
        threading.Thread(target=_sender, args=(sender, schedule, log))
        for sender in senders
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return log.summary(schedule.slots)


def _sender(peer: Peer, schedule: common.Schedule, log: common.LatencyLog) -> None:
    while (due := schedule.take()) is not None:
        time.sleep(max(due - time.monotonic(), 0.0))
        send_ns = time.time_ns()
        try:
            handle = peer.submit_stamp(send_ns)
            acked_ns = time.time_ns()
            peer.wait(handle)
        except Exception:  # counted and reported as errors
            log.failed()
            continue
        log.add(send_ns, acked_ns, time.time_ns())


def probe(peer: Peer, args: argparse.Namespace) -> dict[str, Any]:
    """After go, retry until the queue's LLEN answers ``--expect``."""
    common.ready_then_wait()
    attempts = 0
    while True:
        attempts += 1
        try:
            client = redis.Redis.from_url(args.redis_url, socket_timeout=5)
            if client.llen(peer.queue_key) == args.expect:
                return {"ok_ns": time.monotonic_ns(), "attempts": attempts}
        except (redis.ConnectionError, redis.BusyLoadingError):
            pass
        time.sleep(PROBE_INTERVAL_S)


OPS = {"fill": fill, "submit": submit, "latency": latency, "probe": probe}


def main() -> None:
    """Parse the command line and run one op against one peer."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("op", choices=sorted(OPS))
    parser.add_argument("--peer", choices=sorted(PEERS), required=True)
    parser.add_argument("--redis-url", required=True)
    common.add_common_options(parser)
    args = parser.parse_args()
    op = OPS[args.op]
    # The app modules read the server's URL when they are imported.
    os.environ[REDIS_URL_ENV] = args.redis_url

    def run(parsed: argparse.Namespace) -> dict[str, Any]:
        peer = PEERS[parsed.peer](parsed.redis_url)
        return op(peer, parsed)

    common.main_guard(run)(args)


if __name__ == "__main__":
    main()
