"""kill -9 of the broker, again and again, under load: nothing acknowledged is lost."""

from __future__ import annotations

import random
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from processes import HERE, BrokerProcess, WorkerProcess, wait_until

from tq import Client, TaskInfo
from tq.errors import ConnectionLost

KILLS = 20


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.mark.slow
def test_broker_killed_20_times_under_load_loses_no_acknowledged_task(
    tmp_path: Path,
) -> None:
    rng = random.Random(20)
    config = {"fsync": True, "heartbeat_interval": "0.5s", "worker_timeout": "3s"}
    broker = BrokerProcess(tmp_path / "data", tmp_path / "broker.log", config)
    broker.port = _free_port()
    broker.start()
    record = tmp_path / "executions.txt"
    produced = tmp_path / "produced.txt"
    workers = [
        WorkerProcess(
            broker.address, tmp_path / f"w{n}.log", 4, {"TQ_TEST_RECORD": str(record)}
        )
        for n in range(2)
    ]
    producer = subprocess.Popen(
        [sys.executable, str(HERE / "load_producer.py"), broker.address, str(produced)]
    )
    try:
        for worker in workers:
            worker.start()
        for _ in range(KILLS):
            time.sleep(rng.uniform(0.3, 1.0))
            broker.kill()
            broker.start()
        time.sleep(1.0)
        producer.terminate()
        producer.wait(timeout=60)
        verdict = _drain_and_count(broker.address, produced, record)
    finally:
        producer.kill()
        for worker in workers:
            worker.kill()
        broker.kill()
    print(f"after {KILLS} kills: {verdict}")
    assert verdict["lost"] == 0
    assert verdict["unexpected"] == 0
    assert verdict["unfinished"] == 0
    assert verdict["duplicates_beyond_attempts"] == 0
    assert verdict["acknowledged"] > 100


def _drain_and_count(address: str, produced: Path, record: Path) -> dict[str, int]:
    tried, acked = _read_producer_log(produced)
    with Client.connect(address, reconnect_timeout=30) as client:
        try:
            wait_until(lambda: _unfinished(client) == 0, 120, "every task to finish")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; broker stats: {client.stats()}") from exc
        present = _all_tasks(client)
    executions = Counter(record.read_text().split())
    by_token = {task.payload.decode(): task for task in present.values()}
    return {
        "acknowledged": len(acked),
        "stored": len(present),
        "lost": sum(1 for task_id in acked if task_id not in present),
        "unexpected": sum(1 for token in by_token if token not in tried),
        "unfinished": sum(
            1 for t in present.values() if t.state not in ("completed", "dead_letter")
        ),
        "dead_lettered": sum(1 for t in present.values() if t.state == "dead_letter"),
        "ran_twice_or_more": sum(1 for n in executions.values() if n > 1),
        "duplicates_beyond_attempts": sum(
            1
            for token, count in executions.items()
            if token in by_token and count > by_token[token].attempts
        ),
    }


def _read_producer_log(path: Path) -> tuple[set[str], dict[int, str]]:
    tried: set[str] = set()
    acked: dict[int, str] = {}
    for line in path.read_text().splitlines():
        parts = line.split()
        if parts[:1] == ["try"] and len(parts) == 2:
            tried.add(parts[1])
        elif parts[:1] == ["ok"] and len(parts) == 3:
            acked[int(parts[1])] = parts[2]
    return tried, acked


def _unfinished(client: Client) -> int:
    try:
        by_state = client.stats()["by_state"]
    except ConnectionLost:
        return -1
    return sum(by_state[s] for s in ("scheduled", "pending", "in_progress", "failed"))


def _all_tasks(client: Client) -> dict[int, TaskInfo]:
    tasks: dict[int, TaskInfo] = {}
    for state in ("completed", "dead_letter", "cancelled"):
        cursor = None
        while True:
            page = client.list_tasks(state, limit=1000, cursor=cursor)
            tasks.update({task.task_id: task for task in page.tasks})
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
    return tasks
