"""``tq submit``: one task, or one task per line of a file.

The payload of one task comes from ``--payload`` (text, sent as UTF-8), from
``--payload-file`` (bytes as they are; ``-`` for stdin), or else from stdin
when stdin is a pipe or a file. With ``--lines`` every line of a file is the
payload of one task, submitted with ``submit_many`` in batches (one commit
each) behind a progress bar.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, BinaryIO

import typer

from tq.cli.base import stop
from tq.cli.exits import CliError, ExitCode, exit_code_for
from tq.cli.options import (
    DEFAULT_BROKER,
    BrokerOption,
    JsonOption,
    TlsCaOption,
    TlsOption,
    TokenOption,
    connect,
    parse_duration,
    parse_priority,
)
from tq.cli.output import print_json, progress_bar, task_json
from tq.client import Client
from tq.errors import TaskFailed, Timeout, TqError

__all__ = ["submit"]

WAIT_STEP_S = 30.0
"""How long one wait request to the broker lasts; waits longer are repeated."""


@dataclass(frozen=True)
class TaskOptions:
    """What every task of one ``tq submit`` shares."""

    task_type: str
    priority: int
    delay_s: float | None
    max_retries: int | None
    timeout_s: float | None

    def fields(self, payload: bytes) -> dict[str, Any]:
        """The ``submit_many`` map of one task with this payload."""
        return {
            "task_type": self.task_type,
            "payload": payload,
            "priority": self.priority,
            "delay": self.delay_s,
            "max_retries": self.max_retries,
            "timeout_seconds": self.timeout_s,
        }


def submit(
    task_type: Annotated[str, typer.Option("--type", "-t", help="The task type.")],
    payload: Annotated[
        str | None, typer.Option("--payload", help="The payload, as text (UTF-8).")
    ] = None,
    payload_file: Annotated[
        str | None,
        typer.Option(
            "--payload-file", "-f", help="Read the payload from a file; - for stdin."
        ),
    ] = None,
    lines: Annotated[
        str | None,
        typer.Option(
            "--lines",
            help="Submit one task per line of this file (- for stdin); blank lines "
            "are skipped.",
        ),
    ] = None,
    priority: Annotated[
        str, typer.Option("--priority", "-p", help="0 to 255, or low, normal, high.")
    ] = "normal",
    delay: Annotated[
        str | None, typer.Option(help="Run no earlier than this from now: 30s, 5m, 1h.")
    ] = None,
    max_retries: Annotated[
        int | None,
        typer.Option(min=0, help="Retries after a failure (default: the broker's)."),
    ] = None,
    timeout: Annotated[
        str | None,
        typer.Option(
            help="How long one attempt may run: 300, 5m (default: the broker's)."
        ),
    ] = None,
    idempotency_key: Annotated[
        str | None,
        typer.Option(help="Submitting again with the same key returns the same task."),
    ] = None,
    wait: Annotated[
        bool,
        typer.Option(
            "--wait", help="Wait for the task and print its result; exit 1 if it fails."
        ),
    ] = False,
    wait_timeout: Annotated[
        str | None,
        typer.Option(help="With --wait, give up after this long (exit 124)."),
    ] = None,
    batch_size: Annotated[
        int, typer.Option(min=1, max=10_000, help="With --lines, tasks per commit.")
    ] = 1000,
    broker: BrokerOption = DEFAULT_BROKER,
    token: TokenOption = None,
    tls: TlsOption = False,
    tls_ca: TlsCaOption = None,
    as_json: JsonOption = False,
) -> None:
    """Submit a task, or one task per line of a file with --lines."""
    options = TaskOptions(
        task_type=task_type,
        priority=parse_priority(priority),
        delay_s=None if delay is None else parse_duration(delay, "--delay"),
        max_retries=max_retries,
        timeout_s=None if timeout is None else parse_duration(timeout, "--timeout"),
    )
    wait_limit_s = (
        None if wait_timeout is None else parse_duration(wait_timeout, "--wait-timeout")
    )
    if lines is not None:
        _check_bulk_options(payload, payload_file, idempotency_key, wait)
        _submit_lines(
            broker, token, lines, options, batch_size, as_json, tls=tls, tls_ca=tls_ca
        )
        return
    data = _read_payload(payload, payload_file)
    with connect(broker, token, tls, tls_ca) as client:
        task_id = client.submit_task(
            options.task_type,
            data,
            options.priority,
            delay=options.delay_s,
            max_retries=options.max_retries,
            timeout_seconds=options.timeout_s,
            idempotency_key=idempotency_key,
        )
        if wait:
            _wait_and_print(client, task_id, wait_limit_s, as_json)
        elif as_json:
            print_json({"task_id": task_id})
        else:
            typer.echo(f"submitted task {task_id}")


# Payloads


def _read_payload(payload: str | None, payload_file: str | None) -> bytes:
    if payload is not None and payload_file is not None:
        stop("--payload and --payload-file: expected one of them, got both")
    if payload is not None:
        return payload.encode()
    if payload_file is not None:
        return _read_input(payload_file, "--payload-file")
    stdin = typer.get_binary_stream("stdin")
    return b"" if stdin.isatty() else stdin.read()


def _read_input(path: str, option: str) -> bytes:
    if path == "-":
        return typer.get_binary_stream("stdin").read()
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        stop(f"{option}: cannot read {path}: {exc.strerror or exc}")


# Waiting for the result


def _wait_and_print(
    client: Client, task_id: int, limit_s: float | None, as_json: bool
) -> None:
    if not as_json and sys.stderr.isatty():
        typer.echo(f"submitted task {task_id}, waiting for it to finish", err=True)
    try:
        result = _wait(client, task_id, limit_s)
    except TaskFailed as exc:
        if as_json:
            print_json(task_json(client.get_task(task_id)))
        raise CliError(exc.message, ExitCode.TASK_FAILED) from exc
    if as_json:
        print_json(task_json(client.get_task(task_id)))
        return
    out = typer.get_binary_stream("stdout")
    out.write(result)
    if out.isatty() and not result.endswith(b"\n"):
        out.write(b"\n")
    out.flush()


def _wait(client: Client, task_id: int, limit_s: float | None) -> bytes:
    """The task's result, waiting in steps so any length of wait works."""
    deadline = None if limit_s is None else time.monotonic() + limit_s
    while True:
        left_s = WAIT_STEP_S if deadline is None else deadline - time.monotonic()
        try:
            return client.wait_for_result(task_id, max(min(left_s, WAIT_STEP_S), 0.0))
        except Timeout:
            if deadline is not None and time.monotonic() >= deadline:
                state = client.get_task(task_id).state
                stop(
                    f"task {task_id} is still {state} after {limit_s:g}s",
                    ExitCode.TIMED_OUT,
                )


# Many tasks from the lines of a file


def _check_bulk_options(
    payload: str | None, payload_file: str | None, key: str | None, wait: bool
) -> None:
    clashes = {
        "--payload": payload is not None,
        "--payload-file": payload_file is not None,
        "--idempotency-key": key is not None,
        "--wait": wait,
    }
    for option, given in clashes.items():
        if given:
            stop(f"--lines: each line is one task's payload; {option} does not apply")


def _submit_lines(
    broker: str,
    token: str | None,
    source: str,
    options: TaskOptions,
    batch_size: int,
    as_json: bool,
    *,
    tls: bool,
    tls_ca: str | None,
) -> None:
    with (
        _open_lines(source) as (stream, total),
        connect(broker, token, tls, tls_ca) as client,
    ):
        ids = _submit_batches(client, stream, total, options, batch_size)
    if as_json:
        print_json({"count": len(ids), "task_ids": ids})
    elif ids:
        typer.echo(f"submitted {len(ids)} tasks, ids {ids[0]} to {ids[-1]}")
    else:
        typer.echo(f"submitted no tasks: {source} has no lines")


@contextmanager
def _open_lines(source: str) -> Iterator[tuple[BinaryIO, int | None]]:
    """The stream of lines and how many tasks it holds (None when unknown)."""
    if source == "-":
        yield typer.get_binary_stream("stdin"), None
        return
    try:
        with open(source, "rb") as counting:
            total = sum(1 for line in counting if line.rstrip(b"\r\n"))
        stream = open(source, "rb")  # noqa: SIM115 - closed below, after the batches
    except OSError as exc:
        stop(f"--lines: cannot read {source}: {exc.strerror or exc}")
    with stream:
        yield stream, total


def _batches(stream: BinaryIO, size: int) -> Iterator[list[bytes]]:
    batch: list[bytes] = []
    for line in stream:
        payload = line.rstrip(b"\r\n")
        if not payload:
            continue
        batch.append(payload)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _submit_batches(
    client: Client,
    stream: BinaryIO,
    total: int | None,
    options: TaskOptions,
    batch_size: int,
) -> list[int]:
    ids: list[int] = []
    with progress_bar("tasks") as progress:
        bar = progress.add_task("submitting", total=total)
        for batch in _batches(stream, batch_size):
            try:
                ids += client.submit_many([options.fields(p) for p in batch])
            except TqError as exc:
                # The batches before this one are stored; say how far it got.
                raise CliError(
                    f"submitted {len(ids)} of {total or 'the'} tasks, then: "
                    f"{exc.message}",
                    exit_code_for(exc),
                ) from exc
            progress.advance(bar, len(batch))
    return ids
