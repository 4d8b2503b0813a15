"""``tq status``, ``tq list`` and ``tq cancel`` against a real broker."""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from cli_support import Cli, assert_one_line_error
from processes import BrokerProcess, WorkerProcess, wait_until

from tq import Client
from tq.cli import ExitCode
from tq.client import TaskInfo

UNKNOWN_ID = "987654321"


@pytest.fixture(scope="module")
def client(broker: BrokerProcess) -> Iterator[Client]:
    with Client.connect(broker.address) as connected:
        yield connected


@pytest.fixture(scope="module", autouse=True)
def worker(spawn_worker: Callable[..., WorkerProcess]) -> WorkerProcess:
    return spawn_worker(concurrency=2)


def expected_json(task: TaskInfo) -> dict[str, Any]:
    """The task as ``--json`` should print it: every field, bytes as base64."""
    fields = task.to_map()
    for name in ("payload", "result"):
        if fields[name] is not None:
            fields[name] = base64.b64encode(fields[name]).decode()
    return fields


def submit(client: Client, task_type: str, count: int, **options: Any) -> list[int]:
    return [
        client.submit_task(task_type, f"payload {n}".encode(), **options)
        for n in range(count)
    ]


# tq status


def test_status_shows_the_fields_of_a_pending_task(
    cli: Cli, client: Client, task_type: str
) -> None:
    (task_id,) = submit(client, task_type, 1, priority=220, max_retries=2)
    run = cli("status", str(task_id))
    assert run.code == 0, str(run)
    rows = dict(re.findall(r"^(\w[\w ]*?) {2,}(.*?)\s*$", run.stdout, re.MULTILINE))
    assert rows["id"] == str(task_id)
    assert rows["type"] == task_type
    assert rows["state"] == "pending"
    assert rows["priority"] == "220 (high)"
    assert rows["attempts"] == "0 of 3"
    assert rows["payload"] == "payload 0"


def test_status_of_a_completed_task_lists_its_attempts(
    cli: Cli, client: Client
) -> None:
    task_id = client.submit_task("echo", b"done")
    client.wait_for_result(task_id, timeout=30)
    run = cli("status", str(task_id), process=True)
    assert run.code == 0, str(run)
    assert re.search(r"^state\s+completed", run.stdout, re.MULTILINE), str(run)
    assert re.search(r"^result\s+done", run.stdout, re.MULTILINE), str(run)
    assert f"attempts of task {task_id}" in run.stdout
    worker_id = client.get_task(task_id).history[0].worker_id
    assert re.search(rf"│ 1 +│ {re.escape(worker_id)} .*│ completed", run.stdout), str(
        run
    )


def test_status_json_is_the_task_the_broker_holds(
    cli: Cli, client: Client, task_type: str
) -> None:
    task_id = client.submit_task(
        task_type, b"\x00\xffbinary", 7, delay=60, idempotency_key="k-status"
    )
    printed = cli("status", str(task_id), "--json").json()
    assert printed == expected_json(client.get_task(task_id))
    assert base64.b64decode(printed["payload"]) == b"\x00\xffbinary"


@pytest.mark.parametrize(
    ("given", "code", "fragments"),
    [
        (UNKNOWN_ID, ExitCode.NOT_FOUND, [f"task {UNKNOWN_ID} not found"]),
        ("abc", ExitCode.USAGE, ["task id", "positive integer", "'abc'"]),
        ("0", ExitCode.USAGE, ["task id", "positive integer", "'0'"]),
        ("12.5", ExitCode.USAGE, ["task id", "'12.5'"]),
    ],
)
def test_status_of_a_bad_or_unknown_id_fails_in_one_line(
    cli: Cli, given: str, code: ExitCode, fragments: list[str]
) -> None:
    assert_one_line_error(cli("status", given), code, *fragments)


def test_status_of_an_unknown_id_fails_in_one_line_from_the_script(cli: Cli) -> None:
    run = cli("status", UNKNOWN_ID, "--json", process=True)
    assert_one_line_error(run, ExitCode.NOT_FOUND, "not found")


# tq list


def test_list_shows_the_tasks_of_one_type_in_a_state(
    cli: Cli, client: Client, task_type: str
) -> None:
    ids = submit(client, task_type, 3)
    # Wide enough that the type column is not folded.
    run = cli("list", "--status", "pending", "--type", task_type, COLUMNS="120")
    assert run.code == 0, str(run)
    assert run.stdout.startswith("pending tasks")
    listed = re.findall(rf"│ +(\d+) │ {re.escape(task_type)} +│ pending", run.stdout)
    assert [int(i) for i in listed] == ids
    assert "more:" not in run.stdout


def test_list_pages_with_limit_and_the_cursor_it_prints(
    cli: Cli, client: Client, task_type: str
) -> None:
    ids = submit(client, task_type, 5)
    first = cli("list", "--type", task_type, "--limit", "2")
    more = re.search(r"^more: (tq list .*) --cursor (\S+)$", first.stdout, re.MULTILINE)
    assert more is not None, str(first)
    assert more.group(1) == f"tq list --status pending --type {task_type}"
    page = cli("list", "-t", task_type, "-n", "10", "--cursor", more.group(2), "--json")
    assert [t["task_id"] for t in page.json()["tasks"]] == ids[2:]
    assert page.json()["next_cursor"] is None


def test_list_json_matches_the_broker_page_by_page(
    cli: Cli, client: Client, task_type: str
) -> None:
    submit(client, task_type, 3, delay=600)
    printed = cli("list", "--status", "scheduled", "-t", task_type, "-n", "2", "--json")
    page = client.list_tasks("scheduled", task_type=task_type, limit=2)
    assert printed.json() == {
        "tasks": [expected_json(task) for task in page.tasks],
        "next_cursor": base64.b64encode(page.next_cursor or b"").decode(),
    }


def test_list_without_a_status_lists_pending_tasks(
    cli: Cli, client: Client, task_type: str
) -> None:
    (pending,) = submit(client, task_type, 1)
    submit(client, task_type, 1, delay=600)
    out = cli("list", "--type", task_type, "--json").json()
    assert [t["task_id"] for t in out["tasks"]] == [pending]


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["--status", "bogus"], ["state", "expected one of", "pending", '"bogus"']),
        (["--limit", "0"], ["--limit", "got '0'"]),
        (["--limit", "lots"], ["--limit", "got 'lots'"]),
        (["--cursor", "@@@"], ["--cursor", "base64", "'@@@'"]),
    ],
)
def test_list_rejects_a_bad_option_in_one_line(
    cli: Cli, args: list[str], fragments: list[str]
) -> None:
    assert_one_line_error(cli("list", *args), ExitCode.USAGE, *fragments)


# tq cancel


def test_cancel_of_a_pending_task_cancels_it(
    cli: Cli, client: Client, task_type: str
) -> None:
    first, second = submit(client, task_type, 2)
    run = cli("cancel", str(first))
    assert (run.code, run.stdout) == (0, f"task {first} cancelled\n")
    printed = cli("cancel", str(second), "--json").json()
    assert printed == {"task_id": second, "state": "cancelled"}
    assert {client.get_task(i).state for i in (first, second)} == {"cancelled"}


def test_cancel_of_a_running_task_tells_its_worker(cli: Cli, client: Client) -> None:
    # The built-in sleep handler is async, so its worker stops it at once.
    first, second = (client.submit_task("sleep", b"30") for _ in range(2))
    wait_until(
        lambda: {client.get_task(i).state for i in (first, second)} == {"in_progress"},
        15,
        "both sleeps to start",
    )
    run = cli("cancel", str(first))
    assert run.stdout == (
        f"task {first} is in_progress; its worker was told to cancel it\n"
    ), str(run)
    printed = cli("cancel", str(second), "--json").json()
    assert printed == {"task_id": second, "state": "in_progress"}
    assert client.get_task(second).cancel_requested
    wait_until(
        lambda: {client.get_task(i).state for i in (first, second)} == {"cancelled"},
        15,
        "the worker to cancel both",
    )


def test_cancel_of_a_finished_task_fails_with_invalid_state(
    cli: Cli, client: Client, task_type: str
) -> None:
    (task_id,) = submit(client, task_type, 1)
    client.cancel(task_id)
    run = cli("cancel", str(task_id), process=True)
    assert_one_line_error(
        run, ExitCode.INVALID_STATE, f"task {task_id} is cancelled", "cancel needs"
    )


@pytest.mark.parametrize(
    ("given", "code"),
    [(UNKNOWN_ID, ExitCode.NOT_FOUND), ("x1", ExitCode.USAGE)],
)
def test_cancel_of_a_bad_or_unknown_id_fails_in_one_line(
    cli: Cli, given: str, code: ExitCode
) -> None:
    assert_one_line_error(cli("cancel", given), code, repr(given).strip("'"))
