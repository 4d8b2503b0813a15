"""tq's client driver, run with the dev .venv's interpreter (the installed tq).

    python -m qbench.drivers.tq_driver OP --address HOST:PORT [options]

OP is one of ``fill`` (submit_many of ``--n`` noop tasks in batches of
1,000), ``submit`` (``--mode seq``: one blocking `Client`, one task per
request; ``concurrent``: ``--clients`` `AsyncClient` instances, each its own
connection, each one task per request; ``batch``: one `Client` calling
``submit_many`` with 1,000 tasks), ``latency`` (open loop, see `latency`) and
``probe`` (after go, retry until a ``get`` succeeds).
"""

from __future__ import annotations

import argparse
import contextlib
import time
from typing import Any

import trio

from qbench.drivers import common
from tq import AsyncClient, Client
from tq.errors import ConnectionLost

BATCH = 1_000
WAIT_TIMEOUT_S = 60.0
PROBE_INTERVAL_S = 0.005


def _tasks(n: int, task_type: str = "noop") -> list[tuple[str, bytes, int]]:
    return [(task_type, common.PAYLOAD, 100)] * n


def fill(args: argparse.Namespace) -> dict[str, Any]:
    """Submit ``--n`` noop tasks with submit_many, 1,000 per call."""
    with Client.connect(args.address) as client:
        common.ready_then_wait()
        start = time.monotonic()
        last_id = 0
        for done in range(0, args.n, BATCH):
            last_id = client.submit_many(_tasks(min(BATCH, args.n - done)))[-1]
        return {"n": args.n, "seconds": time.monotonic() - start, "last_id": last_id}


def submit(args: argparse.Namespace) -> dict[str, Any]:
    """Submit noop tasks for ``--duration`` seconds; count them."""
    if args.mode == "concurrent":
        return trio.run(_submit_concurrent, args)
    with Client.connect(args.address) as client:
        batch = _tasks(BATCH)

        def one() -> int:
            client.submit_task("noop", common.PAYLOAD)
            return 1

        def many() -> int:
            client.submit_many(batch)
            return BATCH

        common.ready_then_wait()
        return common.timed_loop(args.duration, many if args.mode == "batch" else one)


async def _submit_concurrent(args: argparse.Namespace) -> dict[str, Any]:
    counter = common.Counter()
    # One connection per client, all open before the clock starts and all
    # closed after it stops.
    async with contextlib.AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(AsyncClient.connect(args.address))
            for _ in range(args.clients)
        ]
        await trio.to_thread.run_sync(common.ready_then_wait)
        start = time.monotonic()
        end = start + args.duration
        async with trio.open_nursery() as loops:
            for client in clients:
                loops.start_soon(_submit_until, client, end, counter)
        seconds = time.monotonic() - start
    return {"count": counter.count, "seconds": seconds}


async def _submit_until(
    client: AsyncClient, end: float, counter: common.Counter
) -> None:
    while time.monotonic() < end:
        await client.submit_task("noop", common.PAYLOAD)
        counter.count += 1


def latency(args: argparse.Namespace) -> dict[str, Any]:
    """Open loop: ``--rate`` submits/s for ``--duration`` s, ``--clients`` senders.

    One `AsyncClient` (one connection, requests pipelined) per driver. Each
    sender takes the next due slot, sleeps until it is due, submits a
    ``stamp`` task carrying its send time (the submit's answer, sent once the
    task is on disk, is its ack), then waits for its result with
    ``wait_for_result``; at most ``--clients`` tasks are in flight.
    """
    return trio.run(_latency, args)


async def _latency(args: argparse.Namespace) -> dict[str, Any]:
    schedule = common.Schedule(args.rate, args.duration)
    log = common.LatencyLog()
    async with AsyncClient.connect(args.address) as client:
        for _ in range(args.warmup):
            await _submit_and_wait(client, 0)
        await trio.to_thread.run_sync(common.ready_then_wait)
        schedule.begin()
        async with trio.open_nursery() as nursery:
            for _ in range(args.clients):
                nursery.start_soon(_sender, client, schedule, log)
    return log.summary(schedule.slots)


async def _submit_and_wait(client: AsyncClient, send_ns: int) -> int:
    """Submit a stamp task and wait for its result; when the submit was answered."""
    payload = send_ns.to_bytes(common.SEND_NS_BYTES, "big") + common.PAYLOAD[8:]
    task_id = await client.submit_task("stamp", payload)
    acked_ns = time.time_ns()
    await client.wait_for_result(task_id, WAIT_TIMEOUT_S)
    return acked_ns


async def _sender(
    client: AsyncClient, schedule: common.Schedule, log: common.LatencyLog
) -> None:
    while (due := schedule.take()) is not None:
        await trio.sleep(max(due - time.monotonic(), 0.0))
        send_ns = time.time_ns()
        try:
            acked_ns = await _submit_and_wait(client, send_ns)
        except Exception:  # counted and reported as errors
            log.failed()
            continue
        log.add(send_ns, acked_ns, time.time_ns())


def probe(args: argparse.Namespace) -> dict[str, Any]:
    """After go, retry until ``get`` of task ``--n`` succeeds; when (monotonic)."""
    common.ready_then_wait()
    attempts = 0
    while True:
        attempts += 1
        try:
            with Client.connect(args.address, reconnect_timeout=0.001) as client:
                client.get_task(args.n)
                ok_ns = time.monotonic_ns()
                depth = int(client.stats()["queue_depth"])
                return {"ok_ns": ok_ns, "attempts": attempts, "pending": depth}
        except (ConnectionLost, OSError):
            time.sleep(PROBE_INTERVAL_S)


OPS = {"fill": fill, "submit": submit, "latency": latency, "probe": probe}


def main() -> None:
    """Parse the command line and run one op."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("op", choices=sorted(OPS))
    parser.add_argument("--address", required=True)
    common.add_common_options(parser)
    args = parser.parse_args()
    common.main_guard(OPS[args.op])(args)


if __name__ == "__main__":
    main()
