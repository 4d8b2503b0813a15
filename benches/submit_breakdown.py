"""Where the time of one ``submit_many`` of 1,000 tasks goes, stage by stage.

The end-to-end batch figure (``./scripts/bench``) is one client sending
batches of 1,000 no-op tasks one after another, so its rate is 1,000 over the
time one batch takes from the client's call to its return. This script runs
each stage of that path in process, with the code tq runs, and prints its
median time per batch: the client building and encoding the request, the
broker decoding it, reading each task's fields, building the engine ops, the
engine's commit (fsync on, in a fresh data dir), the broker's accounting, and
both ends of the reply. The network and the event loop's scheduling are not
in it; the sum is the floor that this code sets under one batch.

Run from the repository with the extension installed::

    .venv/bin/python benches/submit_breakdown.py [--batches 200]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager

from tq._core import Engine
from tq.broker.config import BrokerConfig
from tq.broker.service import Broker
from tq.broker.specs import specs_from_items
from tq.client import calls
from tq.protocol import Args, Op, decode_body, encode_frame, ok_response, request

BATCH = 1_000
TASKS = [("noop", b"0123456789abcdef", 100)] * BATCH


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tq-breakdown-") as data_dir:
        engine = Engine(data_dir, fsync=True)
        # Room for every batch: the depth check still runs, as it does for real.
        config = BrokerConfig(data_dir=data_dir, max_pending=10**9).validated()
        broker = Broker(engine, config)
        times = _measure(broker, engine, args.batches)
        engine.close()
    _print(times)


def _measure(broker: Broker, engine: Engine, batches: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {}

    @contextmanager
    def stage(name: str) -> Iterator[None]:
        started = time.perf_counter()
        yield
        times.setdefault(name, []).append(time.perf_counter() - started)

    max_payload = broker.config.max_payload_bytes
    for _ in range(batches):
        with stage("client: build the request"):
            call = calls.submit_many(TASKS)
        with stage("client: encode the frame"):
            frame = encode_frame(request(1, Op.SUBMIT_MANY, call.args))
        with stage("broker: decode the frame"):
            message = decode_body(frame[4:])
        with stage("broker: read each task's fields"):
            items = Args(message["args"]).items("tasks", max_len=BATCH)
            specs = specs_from_items(items, max_payload)
        with stage("broker: build the engine ops"):
            ops = broker.submit_ops(specs)
        with stage("engine: commit (fsync on)"):
            outcomes = engine.commit(ops)
        with stage("broker: account for the tasks"):
            submitted = broker.submitted(specs, outcomes)
        with stage("broker: encode the reply"):
            result = {
                "task_ids": [s.task_id for s in submitted],
                "created": [s.created for s in submitted],
            }
            reply = encode_frame(ok_response(1, result))
        with stage("client: decode the reply"):
            call.decode(decode_body(reply[4:])["result"])
    return times


def _print(times: dict[str, list[float]]) -> None:
    medians = {stage: statistics.median(runs) for stage, runs in times.items()}
    total = sum(medians.values())
    width = max(len(stage) for stage in medians)
    batches = len(next(iter(times.values())))
    print(f"one submit_many of {BATCH:,} tasks, median of {batches} batches")
    print(f"{'stage':<{width}}  {'µs/batch':>9}  {'µs/task':>8}  {'share':>6}")
    for stage, median in medians.items():
        print(
            f"{stage:<{width}}  {median * 1e6:>9,.0f}  {median * 1e6 / BATCH:>8.2f}"
            f"  {median / total:>6.1%}"
        )
    print(f"{'sum':<{width}}  {total * 1e6:>9,.0f}  {total * 1e6 / BATCH:>8.2f}")
    print(f"ceiling this sets on one client's batches: {BATCH / total:,.0f} tasks/s")


if __name__ == "__main__":
    main()
