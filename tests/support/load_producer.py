"""Submit tasks until SIGTERM, logging each attempt and each acknowledged submit.

Usage: python load_producer.py HOST:PORT LOGFILE

Log lines: ``try TOKEN`` before a submit is sent, ``ok TASK_ID TOKEN`` once the
broker acknowledged it. A submit cut off by a broker crash has a ``try`` line
and no ``ok`` line: it may or may not have been stored.
"""

from __future__ import annotations

import signal
import sys
import uuid

from tq import Client
from tq.errors import ConnectionLost, QueueFull

running = True


def stop(signum: int, frame: object) -> None:
    global running  # noqa: PLW0603 - a signal handler's only way out
    running = False


def main(address: str, log_path: str) -> None:
    signal.signal(signal.SIGTERM, stop)
    client = Client(address, reconnect_timeout=60)
    with open(log_path, "a", buffering=1) as log:
        batch = 0
        while running:
            batch += 1
            tokens = [uuid.uuid4().hex for _ in range(1 if batch % 3 else 20)]
            for token in tokens:
                log.write(f"try {token}\n")
            try:
                ids = client.submit_many([("record", t.encode(), 100) for t in tokens])
            except (ConnectionLost, QueueFull):
                continue
            for task_id, token in zip(ids, tokens, strict=True):
                log.write(f"ok {task_id} {token}\n")
    client.close()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
