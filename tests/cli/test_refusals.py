"""What a broker refuses, as the command line reports it: a missing or wrong
token (exit 77), a full queue (75) and a payload over the limit (2)."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_support import FAST_CONFIG, Cli, assert_last_line_error, assert_one_line_error
from processes import BrokerProcess

from tq import Client
from tq.cli import ExitCode

TOKEN = "s3cret"  # noqa: S105 - the test broker's token, not a secret
MAX_PENDING = 3


@pytest.fixture(scope="module")
def broker_config() -> dict[str, object]:
    return {
        **FAST_CONFIG,
        "auth_token": TOKEN,
        "max_pending": MAX_PENDING,
        "max_payload_bytes": 64,
    }


@pytest.mark.parametrize(
    "command",
    [
        ["status", "1"],
        ["submit", "-t", "echo", "--payload", "x"],
        ["dlq", "list"],
        ["top", "--once"],
    ],
    ids=" ".join,
)
def test_a_command_without_the_token_is_refused_with_exit_77(
    cli: Cli, command: list[str]
) -> None:
    run = cli(*command)
    assert_one_line_error(run, ExitCode.UNAUTHORIZED, "token: missing or wrong")


def test_a_wrong_token_option_is_refused_from_the_script(cli: Cli) -> None:
    run = cli("stats", "--token", "guess", process=True)
    assert_one_line_error(run, ExitCode.UNAUTHORIZED, "token")


def test_a_worker_with_a_wrong_token_stops_in_one_line(cli: Cli) -> None:
    run = cli("--token", "guess", script="tq-worker")
    assert_last_line_error(run, ExitCode.UNAUTHORIZED, "token: missing or wrong")


def test_the_token_from_the_environment_is_accepted(cli: Cli) -> None:
    assert cli("queue-depth", "--json", TQ_TOKEN=TOKEN).json()["max_pending"] == 3


def test_a_full_queue_refuses_submits_with_exit_75(
    cli: Cli, broker: BrokerProcess, tmp_path: Path
) -> None:
    with Client.connect(broker.address, token=TOKEN) as client:
        room = MAX_PENDING - client.stats()["queue_depth"]
        held = [client.submit_task("held", b"") for _ in range(room)]
        try:
            one = cli("submit", "-t", "held", process=True, TQ_TOKEN=TOKEN)
            lines = tmp_path / "lines.txt"
            lines.write_text("a\nb\n")
            bulk = cli("submit", "-t", "held", "--lines", str(lines), TQ_TOKEN=TOKEN)
        finally:
            for task_id in held:
                client.cancel(task_id)
    assert_one_line_error(
        one, ExitCode.QUEUE_FULL, "would pass the threshold of 3", "submit again later"
    )
    assert_one_line_error(bulk, ExitCode.QUEUE_FULL, "submitted 0 of 2 tasks, then:")


def test_a_payload_over_the_limit_is_refused_with_exit_2(
    cli: Cli, tmp_path: Path
) -> None:
    big = tmp_path / "big.bin"
    big.write_bytes(b"x" * 65)
    run = cli("submit", "-t", "echo", "-f", str(big), TQ_TOKEN=TOKEN)
    assert_one_line_error(run, ExitCode.USAGE, "payload", "at most 64 bytes", "65")
