"""Starting and stopping brokers and workers: config errors, signals, drains."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import trio
from processes import BrokerProcess, WorkerProcess, wait_until

from tq import AsyncClient, Client
from tq.testing import broker_thread, open_broker


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (
            "port: 70000\n",
            "config key 'port': got 70000, expected an integer from 0 to 65535",
        ),
        ("fsync: maybe\n", "config key 'fsync': got 'maybe', expected true or false"),
        ("worker_timeout: soon\n", "config key 'worker_timeout': got 'soon'"),
        ("colour: blue\n", "config key 'colour' is unknown"),
        ("host: 0.0.0.0\n", "no auth_token is set"),
        ("- just\n- a list\n", "expected a map of keys at top"),
    ],
)
def test_bad_config_stops_startup_naming_key_value_and_allowed(
    tmp_path: Path, config: str, message: str
) -> None:
    path = tmp_path / "broker.yaml"
    path.write_text(config)
    done = subprocess.run(
        [sys.executable, "-m", "tq", "broker", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert message in done.stderr
    assert "Traceback" not in done.stderr


def test_broker_stops_cleanly_on_sigterm_and_keeps_its_tasks(tmp_path: Path) -> None:
    broker = BrokerProcess(tmp_path / "data", tmp_path / "broker.log")
    broker.start()
    with Client.connect(broker.address) as client:
        task_id = client.submit_task("echo", b"kept")
    assert broker.stop() == 0
    assert "store closed" in broker.log_text()
    broker.start()
    try:
        with Client.connect(broker.address) as client:
            assert client.get_task(task_id).state == "pending"
    finally:
        broker.kill()


def test_stopped_worker_drains_then_hands_back_what_is_left(
    broker: BrokerProcess, spawn_worker: Callable[..., WorkerProcess]
) -> None:
    worker = spawn_worker(concurrency=2)
    with Client.connect(broker.address) as client:
        quick = client.submit_task("block", b"0.5")
        slow = client.submit_task("block", b"30")
        wait_until(
            lambda: client.stats()["by_state"]["in_progress"] == 2, 10, "both to start"
        )
        started = time.monotonic()
        assert worker.stop() == 0
        stopped_after = time.monotonic() - started
        assert client.get_task(quick).state == "completed"
        left = client.get_task(slow)
    # The drain grace is 2 s: the quick task finished, the slow one was failed
    # back for a retry elsewhere.
    assert stopped_after < 2 + 3
    assert left.state in ("failed", "pending")
    assert left.history[0].error == "worker stopped first"


def test_testing_broker_thread_serves_a_real_client() -> None:
    with broker_thread(fsync=False) as broker, Client.connect(broker.address) as client:
        task_id = client.submit_task("echo", b"in a thread")
        assert client.get_task(task_id).payload == b"in a thread"


async def test_an_async_client_in_a_cancelled_task_closes_cleanly(
    tmp_path: Path,
) -> None:
    async def hold(
        address: str, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        async with AsyncClient.connect(address) as client:
            await client.stats()
            task_status.started()
            await trio.sleep_forever()

    async with open_broker(str(tmp_path / "data"), fsync=False) as broker:
        async with trio.open_nursery() as nursery:
            await nursery.start(hold, broker.address)
            nursery.cancel_scope.cancel()
        async with AsyncClient.connect(broker.address) as client:
            assert (await client.stats())["workers"] == 0
