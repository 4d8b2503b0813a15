"""Run a mixed load on an engine until killed, reporting each acknowledged operation.

Run as ``python engine_crash_load.py DATA_DIR SEED`` by ``test_engine_crash.py``,
which kills it with SIGKILL at a random point. The engine is opened with fsync
on. Before each operation one line says what is about to start, and once the
engine has returned one line says what it acknowledged; each line is written
and flushed on its own, so the parent knows what was acknowledged and which
single operation was in flight when the kill came:

    open                        the engine is open
    begin submit N              a submit of N tasks starts
    submit ID ...               those tasks are stored, ids in order
    begin claim                 a claim starts
    claim ID LEASE ...          those tasks were leased, as id and lease pairs
    begin ack ID ...            an ack of those tasks starts
    ack ID ...                  those tasks are completed

On start it first acks every task left in progress by an earlier run, with the
lease id stored for it, as a worker that lived through a broker crash would.
"""

from __future__ import annotations

import random
import sys

from tq._core import Ack, Engine, NewTask

WORKER = "crash-worker"


def say(*words: object) -> None:
    """Write one line in a single write and flush it before going on."""
    sys.stdout.write(" ".join(str(w) for w in words) + "\n")
    sys.stdout.flush()


def ack_all(engine: Engine, leases: dict[int, int]) -> None:
    """Ack every task in ``leases`` with one commit, failing loudly on any error."""
    ids = sorted(leases)
    say("begin ack", *ids)
    results = engine.commit([Ack(i, leases[i], b"done") for i in ids])
    errors = [r for r in results if r is not None]
    if errors:
        message = f"ack of {ids} failed: {errors}"
        raise RuntimeError(message)
    say("ack", *ids)


def recover(engine: Engine) -> None:
    """Ack the tasks an earlier run left in progress, using their stored leases."""
    leases: dict[int, int] = {}
    cursor: bytes | None = None
    while True:
        page = engine.list_tasks("in_progress", limit=200, cursor=cursor)
        for task in page.tasks:
            if task.lease_id is None:
                message = f"in-progress task {task.task_id} has no lease"
                raise RuntimeError(message)
            leases[task.task_id] = task.lease_id
        cursor = page.next_cursor
        if cursor is None:
            break
    if leases:
        ack_all(engine, leases)


def new_task(rng: random.Random) -> NewTask:
    return NewTask(
        rng.choice(["mail", "sms", "resize"]),
        rng.randbytes(rng.randint(16, 256)),
        priority=rng.randint(0, 255),
    )


def run(path: str, seed: int) -> None:
    """Submit, claim and ack at random until killed."""
    rng = random.Random(seed)
    held: dict[int, int] = {}
    with Engine(path, fsync=True) as engine:
        say("open")
        recover(engine)
        while True:
            roll = rng.random()
            if roll < 0.3:
                say("begin submit", 1)
                say("submit", engine.submit(new_task(rng)).task_id)
            elif roll < 0.45:
                batch = [new_task(rng) for _ in range(rng.randint(2, 50))]
                say("begin submit", len(batch))
                results = engine.submit_many(batch)
                say("submit", *(r.task_id for r in results))
            elif roll < 0.7:
                say("begin claim")
                claimed = engine.claim(WORKER, rng.randint(1, 8))
                held.update((c.task_id, c.lease_id) for c in claimed)
                say("claim", *(f"{c.task_id} {c.lease_id}" for c in claimed))
            elif held and roll < 0.85:
                task_id = rng.choice(sorted(held))
                say("begin ack", task_id)
                engine.ack(task_id, held.pop(task_id), b"done")
                say("ack", task_id)
            elif held:
                chosen = rng.sample(sorted(held), k=min(len(held), rng.randint(1, 6)))
                ack_all(engine, {i: held.pop(i) for i in chosen})


if __name__ == "__main__":
    run(sys.argv[1], int(sys.argv[2]))
