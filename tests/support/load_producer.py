"""Submit tasks until SIGTERM, logging each attempt and each acknowledged submit.

Usage: python load_producer.py HOST:PORT LOGFILE

Tasks are the crash harness's mix (see `crash_handlers`): mostly ``steady``,
with some ``flaky`` and ``doomed`` ones, alone or in batches of 20. The token,
which is also the payload, starts with the task type.

Log lines: ``try TOKEN`` before a submit is sent, ``ok TASK_ID TOKEN`` once the
broker acknowledged it. A submit cut off by a broker crash has a ``try`` line
and no ``ok`` line: it may or may not have been stored.
"""

from __future__ import annotations

import random
import signal
import sys
import uuid

from tq import Client
from tq.errors import ConnectionLost, QueueFull

# Task type, share of the load, and max_retries: steady and flaky tasks have
# retries to spare for the attempts that crashes of brokers and workers cost.
MIX = [("steady", 0.8, 10), ("flaky", 0.1, 10), ("doomed", 0.1, 1)]

running = True


def stop(signum: int, frame: object) -> None:
    global running  # noqa: PLW0603 - a signal handler's only way out
    running = False


def _task(rng: random.Random) -> tuple[str, dict[str, object]]:
    """A token and the submit that carries it."""
    task_type, _, max_retries = rng.choices(MIX, weights=[w for _, w, _ in MIX])[0]
    token = f"{task_type}-{uuid.uuid4().hex}"
    task = {
        "task_type": task_type,
        "payload": token.encode(),
        "max_retries": max_retries,
    }
    return token, task


def main(address: str, log_path: str) -> None:
    signal.signal(signal.SIGTERM, stop)
    rng = random.Random()
    client = Client(address, reconnect_timeout=60)
    with open(log_path, "a", buffering=1) as log:
        batch = 0
        while running:
            batch += 1
            drawn = [_task(rng) for _ in range(1 if batch % 3 else 20)]
            tokens = [token for token, _ in drawn]
            for token in tokens:
                log.write(f"try {token}\n")
            try:
                ids = client.submit_many([task for _, task in drawn])
            except (ConnectionLost, QueueFull):
                continue
            for task_id, token in zip(ids, tokens, strict=True):
                log.write(f"ok {task_id} {token}\n")
    client.close()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
