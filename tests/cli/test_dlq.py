"""``tq dlq list|show|requeue|purge`` against a real broker.

No worker runs here: each test makes its dead letters by playing their worker
(`dead_letters`), so a requeued task stays pending for the test to see.
"""

from __future__ import annotations

import base64
import re
import time
from collections.abc import Callable, Iterator

import pytest
from cli_support import Cli, assert_one_line_error, dead_letters
from processes import BrokerProcess

from tq import Client
from tq.cli import ExitCode
from tq.errors import TaskNotFound

UNKNOWN_ID = "987654321"


@pytest.fixture(scope="module")
def client(broker: BrokerProcess) -> Iterator[Client]:
    with Client.connect(broker.address) as connected:
        yield connected


MakeDead = Callable[..., list[int]]


@pytest.fixture
def make_dead(broker: BrokerProcess, task_type: str) -> MakeDead:
    """Make dead letters of the test's type (or another), with one error."""

    def make(
        count: int, task_type: str = task_type, error: str = "card declined"
    ) -> list[int]:
        payloads = [f"{task_type} {n}".encode() for n in range(count)]
        return dead_letters(broker.address, task_type, payloads, error)

    return make


def dead_count(client: Client, task_type: str | None = None) -> int:
    stats = client.stats()
    if task_type is None:
        return int(stats["by_state"].get("dead_letter", 0))
    return int(stats["by_type"].get(task_type, {}).get("dead_letter", 0))


# tq dlq list


def test_dlq_list_shows_dead_letters_with_their_last_error(
    cli: Cli, make_dead: MakeDead, task_type: str
) -> None:
    ids = make_dead(2)
    run = cli("dlq", "list", "--type", task_type, COLUMNS="120")
    assert run.code == 0, str(run)
    assert run.stdout.startswith("dead letters")
    rows = re.findall(
        rf"│ +(\d+) │ {task_type} +│ dead_letter .*│ card declined +│", run.stdout
    )
    assert [int(i) for i in rows] == ids


def test_dlq_list_json_pages_with_limit_and_cursor(
    cli: Cli, make_dead: MakeDead, task_type: str
) -> None:
    ids = make_dead(3)
    first = cli("dlq", "list", "-t", task_type, "--limit", "2", "--json").json()
    assert [t["task_id"] for t in first["tasks"]] == ids[:2]
    assert {t["state"] for t in first["tasks"]} == {"dead_letter"}
    cursor = first["next_cursor"]
    rest = cli("dlq", "list", "-t", task_type, "--cursor", cursor, "--json").json()
    assert [t["task_id"] for t in rest["tasks"]] == ids[2:]


def test_dlq_list_prints_the_command_for_the_next_page(
    cli: Cli, make_dead: MakeDead, task_type: str
) -> None:
    make_dead(2)
    run = cli("dlq", "list", "--type", task_type, "-n", "1")
    assert re.search(
        rf"^more: tq dlq list --type {task_type} --cursor \S+$", run.stdout, re.M
    ), str(run)


# tq dlq show


def test_dlq_show_prints_the_dead_letter_and_its_attempts(
    cli: Cli, make_dead: MakeDead, task_type: str
) -> None:
    (task_id,) = make_dead(1, error="card declined twice")
    run = cli("dlq", "show", str(task_id), COLUMNS="120")
    assert run.code == 0, str(run)
    assert re.search(r"^state +dead_letter", run.stdout, re.M), str(run)
    assert re.search(r"^last error +card declined twice", run.stdout, re.M), str(run)
    assert re.search(r"│ 1 +│ cli-tests-.*│ card declined twice", run.stdout), str(run)


def test_dlq_show_json_is_the_task_the_broker_holds(
    cli: Cli, client: Client, make_dead: MakeDead, task_type: str
) -> None:
    (task_id,) = make_dead(1)
    printed = cli("dlq", "show", str(task_id), "--json").json()
    held = client.get_task(task_id)
    assert printed["task_id"] == held.task_id
    assert printed["state"] == held.state == "dead_letter"
    assert base64.b64decode(printed["payload"]) == held.payload
    assert printed["history"] == [vars(a) for a in held.history]


def test_dlq_show_of_a_live_task_says_it_is_no_dead_letter(
    cli: Cli, client: Client, task_type: str
) -> None:
    task_id = client.submit_task(task_type, b"")
    run = cli("dlq", "show", str(task_id), process=True)
    assert_one_line_error(
        run, ExitCode.NOT_FOUND, f"task {task_id} is not a dead letter: it is pending"
    )


@pytest.mark.parametrize(
    ("given", "code"), [(UNKNOWN_ID, ExitCode.NOT_FOUND), ("-", ExitCode.USAGE)]
)
def test_dlq_show_of_a_bad_or_unknown_id_fails_in_one_line(
    cli: Cli, given: str, code: ExitCode
) -> None:
    assert_one_line_error(cli("dlq", "show", given), code, given)


# tq dlq requeue


def test_dlq_requeue_of_one_id_makes_it_pending_with_fresh_retries(
    cli: Cli, client: Client, make_dead
) -> None:
    first, second = make_dead(2)
    run = cli("dlq", "requeue", str(first))
    assert (run.code, run.stdout) == (0, "requeued 1 dead letter\n"), str(run)
    assert cli("dlq", "requeue", str(second), "--json").json() == {"requeued": 1}
    for task_id in (first, second):
        task = client.get_task(task_id)
        assert task.state == "pending"
        assert task.attempts < task.max_retries + 1


def test_dlq_requeue_all_of_one_type_leaves_other_types(
    cli: Cli, client: Client, make_dead: MakeDead, task_type: str
) -> None:
    mine = make_dead(3)
    other = make_dead(2, task_type=f"{task_type}-other")
    printed = cli("dlq", "requeue", "--all", "--type", task_type, "--json").json()
    assert printed == {"requeued": 3}
    assert {client.get_task(i).state for i in mine} == {"pending"}
    assert {client.get_task(i).state for i in other} == {"dead_letter"}


def test_dlq_requeue_all_requeues_every_dead_letter(
    cli: Cli, client: Client, make_dead: MakeDead, task_type: str
) -> None:
    make_dead(2)
    make_dead(1, task_type=f"{task_type}-b")
    expected = dead_count(client)
    run = cli("dlq", "requeue", "--all")
    assert run.stdout == f"requeued {expected} dead letters\n", str(run)
    assert dead_count(client) == 0


def test_dlq_requeue_of_a_live_task_fails_with_invalid_state(
    cli: Cli, client: Client, task_type: str
) -> None:
    task_id = client.submit_task(task_type, b"")
    run = cli("dlq", "requeue", str(task_id), process=True)
    assert_one_line_error(run, ExitCode.INVALID_STATE, "pending", "dead_letter")


@pytest.mark.parametrize(
    ("args", "code", "fragment"),
    [
        ([UNKNOWN_ID], ExitCode.NOT_FOUND, f"task {UNKNOWN_ID} not found"),
        (["abc"], ExitCode.USAGE, "'abc'"),
        ([], ExitCode.USAGE, "expected a TASK_ID or --all, got neither"),
        (["5", "--all"], ExitCode.USAGE, "expected a TASK_ID or --all, got both"),
        (["5", "--type", "x"], ExitCode.USAGE, "--type selects dead letters for --all"),
    ],
)
def test_dlq_requeue_of_a_bad_request_fails_in_one_line(
    cli: Cli, args: list[str], code: ExitCode, fragment: str
) -> None:
    assert_one_line_error(cli("dlq", "requeue", *args), code, fragment)


# tq dlq purge


def test_dlq_purge_of_one_type_deletes_only_its_dead_letters(
    cli: Cli, client: Client, make_dead: MakeDead, task_type: str
) -> None:
    mine = make_dead(2)
    (other,) = make_dead(1, task_type=f"{task_type}-keep")
    run = cli("dlq", "purge", "--type", task_type)
    assert run.stdout == "purged 2 dead letters\n", str(run)
    for task_id in mine:
        with pytest.raises(TaskNotFound):
            client.get_task(task_id)
    assert client.get_task(other).state == "dead_letter"


def test_dlq_purge_older_than_keeps_younger_dead_letters(
    cli: Cli, client: Client, make_dead: MakeDead, task_type: str
) -> None:
    cli("dlq", "purge")  # what earlier tests left
    old = make_dead(2)
    # Age is measured on the broker's clock; there is no event to wait for.
    time.sleep(2.5)
    young = make_dead(1)
    printed = cli("dlq", "purge", "--older-than", "2s", "--json").json()
    assert printed == {"purged": 2}
    for task_id in old:
        with pytest.raises(TaskNotFound):
            client.get_task(task_id)
    assert client.get_task(young[0]).state == "dead_letter"


def test_dlq_purge_without_options_deletes_every_dead_letter(
    cli: Cli, client: Client, make_dead
) -> None:
    make_dead(3)
    expected = dead_count(client)
    assert cli("dlq", "purge", "--json").json() == {"purged": expected}
    assert dead_count(client) == 0


@pytest.mark.parametrize("given", ["soon", "7 days", "-1d"])
def test_dlq_purge_with_a_bad_age_fails_in_one_line(cli: Cli, given: str) -> None:
    run = cli("dlq", "purge", "--older-than", given)
    assert_one_line_error(run, ExitCode.USAGE, "--older-than", "expected a duration")


def test_dlq_without_a_subcommand_shows_its_help(cli: Cli) -> None:
    run = cli("dlq", process=True)
    assert run.code == ExitCode.USAGE, str(run)
    for name in ("list", "show", "requeue", "purge"):
        assert name in run.stdout
