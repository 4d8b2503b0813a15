"""``tq submit``: payloads from an option, a file or stdin, every task option,
``--wait``, and many tasks from the lines of a file."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cli_support import BIN, Cli, Terminal, assert_one_line_error
from processes import BrokerProcess, WorkerProcess

from tq import Client
from tq.cli import ExitCode


@pytest.fixture(scope="module")
def client(broker: BrokerProcess) -> Iterator[Client]:
    with Client.connect(broker.address) as connected:
        yield connected


@pytest.fixture(scope="module", autouse=True)
def worker(spawn_worker: Callable[..., WorkerProcess]) -> WorkerProcess:
    # Runs echo and the end-to-end handlers; tasks of a test's own type are
    # never claimed, so they stay pending for the test to look at.
    return spawn_worker(concurrency=2)


def test_submit_with_a_payload_prints_the_id_of_the_stored_task(
    cli: Cli, client: Client, task_type: str
) -> None:
    run = cli("submit", "--type", task_type, "--payload", "hello")
    assert run.code == 0, str(run)
    assert run.stdout.startswith("submitted task ")
    task = client.get_task(int(run.stdout.split()[-1]))
    assert (task.task_type, task.payload, task.state) == (
        task_type,
        b"hello",
        "pending",
    )
    assert task.priority == 150, "the default priority is normal"


def test_submit_json_prints_the_task_id_as_an_object(
    cli: Cli, client: Client, task_type: str
) -> None:
    out = cli("submit", "-t", task_type, "--payload", "x", "--json").json()
    assert list(out) == ["task_id"]
    assert client.get_task(out["task_id"]).task_type == task_type


def test_submit_sends_a_payload_file_byte_for_byte(
    cli: Cli, client: Client, task_type: str, tmp_path: Path
) -> None:
    data = bytes(range(256)) + b"\r\n\x00end"
    path = tmp_path / "payload.bin"
    path.write_bytes(data)
    task_id = cli("submit", "-t", task_type, "--payload-file", str(path), "--json")
    assert client.get_task(task_id.json()["task_id"]).payload == data


def test_submit_reads_the_payload_from_piped_stdin(
    cli: Cli, client: Client, task_type: str
) -> None:
    piped = cli(
        "submit", "-t", task_type, "--json", input=b"from\nstdin\x00", process=True
    )
    dash = cli("submit", "-t", task_type, "-f", "-", "--json", input=b"dash")
    assert client.get_task(piped.json()["task_id"]).payload == b"from\nstdin\x00"
    assert client.get_task(dash.json()["task_id"]).payload == b"dash"


@pytest.mark.parametrize(
    ("given", "stored"),
    [("0", 0), ("255", 255), ("low", 50), ("normal", 150), ("HIGH", 250)],
)
def test_submit_priority_takes_a_number_or_a_tier_name(
    cli: Cli, client: Client, task_type: str, given: str, stored: int
) -> None:
    out = cli("submit", "-t", task_type, "--priority", given, "--json").json()
    assert client.get_task(out["task_id"]).priority == stored


def test_submit_delay_schedules_the_task_that_far_ahead(
    cli: Cli, client: Client, task_type: str
) -> None:
    out = cli("submit", "-t", task_type, "--delay", "1h30m", "--json").json()
    task = client.get_task(out["task_id"])
    assert task.state == "scheduled"
    assert task.run_at_ms - task.created_ms == pytest.approx(5_400_000, abs=5_000)


def test_submit_stores_max_retries_timeout_and_plain_seconds(
    cli: Cli, client: Client, task_type: str
) -> None:
    minutes = cli(
        "submit", "-t", task_type, "--max-retries", "5", "--timeout", "2m", "--json"
    )
    seconds = cli("submit", "-t", task_type, "--timeout", "45", "--json")
    first = client.get_task(minutes.json()["task_id"])
    second = client.get_task(seconds.json()["task_id"])
    assert (first.max_retries, first.timeout_ms) == (5, 120_000)
    assert second.timeout_ms == 45_000


def test_submit_with_the_same_idempotency_key_returns_the_same_task(
    cli: Cli, client: Client, task_type: str
) -> None:
    args = ("submit", "-t", task_type, "--idempotency-key", "order-17", "--json")
    first = cli(*args, "--payload", "one").json()["task_id"]
    again = cli(*args, "--payload", "two").json()["task_id"]
    assert first == again
    assert client.get_task(first).idempotency_key == "order-17"
    assert [t.task_id for t in client.list_tasks(task_type=task_type).tasks] == [first]


def test_submit_wait_prints_the_result_bytes_as_they_are(cli: Cli) -> None:
    run = cli(
        "submit", "-t", "echo", "--payload", "echoed back", "--wait", process=True
    )
    assert run.code == 0, str(run)
    assert run.stdout_bytes == b"echoed back", "no newline added when piped"


def test_submit_wait_json_prints_the_completed_task(cli: Cli, client: Client) -> None:
    out = cli("submit", "-t", "echo", "--payload", "as json", "--wait", "--json").json()
    task = client.get_task(out["task_id"])
    assert (out["state"], task.state) == ("completed", "completed")
    assert base64.b64decode(out["result"]) == task.result == b"as json"


def test_submit_wait_exits_1_with_the_reason_when_the_task_dead_letters(
    cli: Cli, client: Client
) -> None:
    run = cli(
        "submit",
        "-t",
        "always_fails",
        "--payload",
        "p1",
        "--max-retries",
        "0",
        "--wait",
        process=True,
    )
    line = assert_one_line_error(
        run, ExitCode.TASK_FAILED, "ended dead_letter", "boom on p1"
    )
    ended = re.search(r"task (\d+) ended", line)
    assert ended is not None, line
    task_id = int(ended.group(1))
    assert client.get_task(task_id).state == "dead_letter"


def test_submit_wait_json_prints_the_dead_letter_and_exits_1(
    cli: Cli, client: Client
) -> None:
    run = cli("submit", "-t", "reject", "--wait", "--json")
    assert run.code == ExitCode.TASK_FAILED, str(run)
    printed = json.loads(run.stdout)
    assert printed["state"] == "dead_letter"
    assert printed["last_error"] == client.get_task(printed["task_id"]).last_error
    assert len(run.stderr.splitlines()) == 1, str(run)


def test_submit_wait_timeout_exits_124_while_the_task_waits(
    cli: Cli, client: Client, task_type: str
) -> None:
    run = cli("submit", "-t", task_type, "--wait", "--wait-timeout", "300ms")
    line = assert_one_line_error(run, ExitCode.TIMED_OUT, "still pending after 0.3s")
    (task,) = client.list_tasks(task_type=task_type).tasks
    assert f"task {task.task_id} " in line


def test_submit_lines_submits_one_task_per_line_in_batches(
    cli: Cli, client: Client, task_type: str, tmp_path: Path
) -> None:
    payloads = [f"line {n}" for n in range(25)]
    path = tmp_path / "lines.txt"
    path.write_text("\n".join(payloads[:10]) + "\n\n\r\n" + "\r\n".join(payloads[10:]))
    run = cli("submit", "-t", task_type, "--lines", str(path), "--batch-size", "10")
    assert run.code == 0, str(run)
    said = re.fullmatch(r"submitted 25 tasks, ids (\d+) to (\d+)\n", run.stdout)
    assert said is not None, str(run)
    stored = sorted(
        client.list_tasks(task_type=task_type).tasks, key=lambda t: t.task_id
    )
    assert [t.payload.decode() for t in stored] == payloads
    assert (stored[0].task_id, stored[-1].task_id) == tuple(map(int, said.groups()))


def test_submit_lines_from_stdin_prints_every_id_as_json(
    cli: Cli, client: Client, task_type: str
) -> None:
    out = cli(
        "submit",
        "-t",
        task_type,
        "-p",
        "low",
        "--lines",
        "-",
        "--json",
        input=b"a\nb\nc\n",
    )
    result = out.json()
    assert result["count"] == 3
    tasks = [client.get_task(i) for i in result["task_ids"]]
    assert [(t.payload, t.priority) for t in tasks] == [
        (b"a", 50),
        (b"b", 50),
        (b"c", 50),
    ]


def test_submit_lines_shows_a_progress_bar_in_a_terminal(
    broker: BrokerProcess, terminal: Terminal, task_type: str, tmp_path: Path
) -> None:
    path = tmp_path / "lines.txt"
    path.write_text("".join(f"{n}\n" for n in range(3000)))
    command = [str(BIN / "tq"), "submit", "-t", task_type, "--lines", str(path)]
    terminal.start([*command, "--broker", broker.address], 100, 8)
    assert terminal.exit_code() == 0
    shown = terminal.scrollback()
    assert re.search(r"submitting .*━+ 3000/3000 tasks", shown), shown
    assert re.search(r"^submitted 3000 tasks, ids \d+ to \d+$", shown, re.M), shown


def test_submit_lines_of_an_empty_file_submits_nothing(
    cli: Cli, task_type: str, tmp_path: Path
) -> None:
    path = tmp_path / "empty.txt"
    path.write_text("\n\n")
    run = cli("submit", "-t", task_type, "--lines", str(path))
    assert (run.code, run.stdout.strip()) == (
        0,
        f"submitted no tasks: {path} has no lines",
    )


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (
            ["--payload-file", "/no/such/file"],
            ["--payload-file", "/no/such/file", "No such file"],
        ),
        (["--lines", "/no/such/lines"], ["--lines", "/no/such/lines", "No such file"]),
        (["--payload", "a", "--payload-file", "b"], ["expected one of them, got both"]),
        (["--lines", "-", "--wait"], ["--wait does not apply"]),
        (["--priority", "300"], ["--priority", "0 to 255", "'300'"]),
        (["--priority", "urgent"], ["--priority", "low, normal or high", "'urgent'"]),
        (["--delay", "soon"], ["--delay", "expected a duration", "'soon'"]),
        (
            ["--timeout", "5 minutes"],
            ["--timeout", "expected a duration", "'5 minutes'"],
        ),
        (["--wait-timeout", "1y"], ["--wait-timeout", "'1y'"]),
        (
            ["--max-retries", "-1"],
            ["--max-retries", "greater than or equal to 0", "got '-1'"],
        ),
        (["--batch-size", "0"], ["--batch-size", "got '0'"]),
    ],
)
def test_submit_rejects_a_bad_option_in_one_line_with_exit_2(
    cli: Cli, task_type: str, args: list[str], fragments: list[str]
) -> None:
    run = cli("submit", "-t", task_type, *args)
    assert_one_line_error(run, ExitCode.USAGE, *fragments)


def test_submit_without_a_type_says_it_is_missing(cli: Cli) -> None:
    run = cli("submit", "--payload", "x", process=True)
    assert_one_line_error(run, ExitCode.USAGE, "Missing option", "--type")


def test_submit_reports_what_the_broker_refused_in_one_line(cli: Cli) -> None:
    run = cli("submit", "--type", "", "--payload", "x")
    assert_one_line_error(run, ExitCode.USAGE, "task_type", "non-empty", "''")
