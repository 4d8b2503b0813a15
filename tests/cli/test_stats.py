"""``tq stats``, ``tq workers``, ``tq queue-depth`` and ``tq top --once``, and
the ``tq-admin`` alias, against a broker whose worker is busy.

The module's broker holds a fixed picture while its tests run: one worker
with both slots running ``block`` tasks, pending tasks of a type no worker
runs in each priority tier, and one dead letter.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from cli_support import Cli, assert_one_line_error, dead_letters
from processes import BrokerProcess, WorkerProcess, wait_until

from tq import Client
from tq.cli import ExitCode

WAITING = "waiting"
"""The type of the pending tasks: no worker runs it."""


@dataclass(frozen=True)
class Scene:
    worker_id: str
    running: tuple[int, ...]
    dead_letter: int


@pytest.fixture(scope="module")
def client(broker: BrokerProcess) -> Iterator[Client]:
    with Client.connect(broker.address) as connected:
        yield connected


@pytest.fixture(scope="module")
def scene(
    broker: BrokerProcess,
    client: Client,
    spawn_worker: Callable[..., WorkerProcess],
) -> Scene:
    worker = spawn_worker(concurrency=2)
    running = tuple(client.submit_task("block", b"60") for _ in range(2))
    for priority, count in ((250, 1), (150, 2), (20, 3)):
        for _ in range(count):
            client.submit_task(WAITING, b"", priority)
    (dead,) = dead_letters(broker.address, "doomed", [b"x"], "no such account")

    def settled() -> bool:
        rows = client.workers()
        return any(len(row["tasks"]) == 2 for row in rows)

    wait_until(settled, 15, "the worker to run both block tasks")
    assert worker.proc is not None
    (row,) = (r for r in client.workers() if r["pid"] == worker.proc.pid)
    return Scene(row["worker_id"], running, dead)


# tq stats


def test_stats_shows_counts_by_state_tier_and_type(cli: Cli, scene: Scene) -> None:
    run = cli("stats", COLUMNS="100")
    assert run.code == 0, str(run)
    for title in ("tasks by state", "pending by tier", "broker", "tasks by type"):
        assert title in run.stdout
    assert re.search(r"│ in progress +│ +2 │", run.stdout), str(run)
    assert re.search(r"│ dead letter +│ +1 │", run.stdout), str(run)
    assert re.search(r"│ high +│ +1 │", run.stdout), str(run)
    assert re.search(r"│ low +│ +3 │", run.stdout), str(run)
    assert re.search(r"│ workers +│ +\d+ │", run.stdout), str(run)
    assert re.search(rf"│ {WAITING} +│ .* 6 +│", run.stdout), str(run)


def test_stats_json_is_what_the_broker_reports(
    cli: Cli, client: Client, scene: Scene
) -> None:
    printed = cli("stats", "--json").json()
    held = client.stats()
    for key in ("by_state", "by_type", "pending_by_tier", "queue_depth"):
        assert printed[key] == held[key], key
    assert printed["max_pending"] == held["max_pending"] == 100_000
    assert printed["by_state"]["in_progress"] == 2


# tq workers


def test_workers_shows_each_worker_with_its_current_tasks(
    cli: Cli, scene: Scene
) -> None:
    run = cli("workers", COLUMNS="140")
    assert run.code == 0, str(run)
    (line,) = (row for row in run.stdout.splitlines() if scene.worker_id in row)
    assert "2/2" in line
    assert re.search(r"\d+ms ago|\d\.\ds ago", line), line
    for task_id in scene.running:
        assert f"{task_id} block" in line


def test_workers_json_lists_the_tasks_each_worker_holds(
    cli: Cli, client: Client, scene: Scene
) -> None:
    printed = cli("workers", "--json").json()
    (mine,) = (row for row in printed if row["worker_id"] == scene.worker_id)
    assert mine["concurrency"] == 2
    assert sorted(t["task_id"] for t in mine["tasks"]) == sorted(scene.running)
    assert {t["task_type"] for t in mine["tasks"]} == {"block"}
    assert {row["worker_id"] for row in printed} == {
        row["worker_id"] for row in client.workers()
    }


# tq queue-depth


def test_queue_depth_prints_the_depth_and_each_tier(cli: Cli, scene: Scene) -> None:
    run = cli("queue-depth")
    assert (run.code, run.stdout) == (
        0,
        "queue depth 6 of at most 100000 (pending by tier: high 1, normal 2, low 3)\n",
    ), str(run)


def test_queue_depth_json_matches_the_broker(
    cli: Cli, client: Client, scene: Scene
) -> None:
    printed = cli("queue-depth", "--json").json()
    held = client.stats()
    assert printed == {
        "queue_depth": held["queue_depth"],
        "max_pending": held["max_pending"],
        "pending_by_tier": {"high": 1, "normal": 2, "low": 3},
    }


# tq top --once


def test_top_once_prints_one_screen_of_the_dashboard(
    cli: Cli, broker: BrokerProcess, scene: Scene
) -> None:
    run = cli("top", "--once", "--refresh", "0.2", process=True, COLUMNS="120")
    assert run.code == 0, str(run)
    screen = run.stdout
    assert f"tq top {broker.address}  live" in screen
    assert re.search(r"│ depth +6 ", screen), screen
    assert re.search(r"│ high +1 ", screen), screen
    assert re.search(r"│ normal +2 ", screen), screen
    assert re.search(r"│ low +3 ", screen), screen
    assert re.search(r"│ in progress +2 ", screen), screen
    assert re.search(r"│ dead letters +1 ", screen), screen
    (row,) = (line for line in screen.splitlines() if scene.worker_id in line)
    assert "2/2" in row
    assert all(f"{task_id} block" in row for task_id in scene.running), row
    assert re.search(rf"│ +{scene.dead_letter} │ doomed .*no such account", screen)


# tq-admin


def test_tq_admin_runs_the_admin_commands(cli: Cli, scene: Scene) -> None:
    run = cli("queue-depth", "--json", script="tq-admin")
    assert run.json()["pending_by_tier"] == {"high": 1, "normal": 2, "low": 3}


def test_tq_admin_has_no_daemon_commands(cli: Cli) -> None:
    run = cli("broker", script="tq-admin")
    assert_one_line_error(run, ExitCode.USAGE, "No such command 'broker'")


# Errors every admin command shares


ADMIN_COMMANDS = [
    ["submit", "-t", "echo", "--payload", "x"],
    ["status", "1"],
    ["list"],
    ["cancel", "1"],
    ["stats"],
    ["workers"],
    ["queue-depth"],
    ["dlq", "list"],
    ["dlq", "show", "1"],
    ["dlq", "requeue", "1"],
    ["dlq", "purge"],
    ["top", "--once"],
]


@pytest.mark.parametrize("command", ADMIN_COMMANDS, ids=" ".join)
def test_a_malformed_broker_address_fails_in_one_line(command: list[str]) -> None:
    run = Cli("127.0.0.1:notaport")(*command)
    assert_one_line_error(run, ExitCode.USAGE, "expected HOST:PORT", "notaport")


def test_an_unreachable_broker_fails_every_command_in_one_line(
    unreachable: str,
) -> None:
    # Each waits out the connect timeout, so they run side by side.
    runs = Cli(unreachable).many([*ADMIN_COMMANDS, ["stats", "--json"]])
    for run in runs:
        assert_one_line_error(
            run, ExitCode.UNAVAILABLE, f"cannot reach the broker at {unreachable}"
        )
