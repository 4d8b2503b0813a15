"""``tq broker`` and ``tq worker``, and their aliases ``tq-broker`` and
``tq-worker``, run as the installed console scripts."""

from __future__ import annotations

import signal
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from cli_support import (
    BIN,
    Run,
    assert_last_line_error,
    assert_one_line_error,
    clean_env,
    run_in_process,
    run_script,
)
from processes import HERE, LISTENING, BrokerProcess, wait_until

from tq import Client
from tq.cli import ExitCode

QUIET_PORTS = ["--rest-port", "0", "--metrics-port", "0"]


class Daemon:
    """A console script running in the background, its output in a log file."""

    def __init__(self, log: Path, script: str, *args: str, **env: str) -> None:
        self.log = log
        self.args = (script, *args)
        self.proc = subprocess.Popen(
            [str(BIN / script), *args],
            stdin=subprocess.DEVNULL,
            stdout=log.open("ab"),
            stderr=subprocess.STDOUT,
            env=clean_env(PYTHONPATH=str(HERE), **env),
        )

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for_log(self, text: str, timeout_s: float = 30) -> None:
        wait_until(lambda: text in self.text(), timeout_s, f"{text!r} in {self.log}")

    def port(self) -> int:
        wait_until(lambda: LISTENING.search(self.text()), 30, "the broker to listen")
        found = LISTENING.search(self.text())
        assert found is not None
        return int(found.group(1))

    def stop(self, timeout_s: float = 30) -> Run:
        """SIGTERM, and what the process did by the time it exited."""
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=timeout_s)
        return Run(self.args, code, b"", self.text())

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def daemons(tmp_path: Path) -> Iterator[list[Daemon]]:
    """Daemons a test starts; killed after it if still running."""
    started: list[Daemon] = []
    yield started
    for daemon in started:
        daemon.kill()


def start(
    daemons: list[Daemon], tmp_path: Path, script: str, *args: str, **env: str
) -> Daemon:
    daemon = Daemon(tmp_path / f"{script}-{len(daemons)}.log", script, *args, **env)
    daemons.append(daemon)
    return daemon


def write_config(path: Path, **settings: object) -> Path:
    path.write_text(yaml.safe_dump(settings))
    return path


# tq broker


def test_tq_broker_flags_override_its_config_file_and_sigterm_stops_it(
    daemons: list[Daemon], tmp_path: Path
) -> None:
    config = write_config(
        tmp_path / "broker.yaml",
        data_dir=str(tmp_path / "from-config"),
        port=1,
        grpc_port=None,
        log_level="warning",
    )
    data_dir = tmp_path / "from-flags"
    broker = start(
        daemons,
        tmp_path,
        "tq",
        "broker",
        "--config",
        str(config),
        "--data-dir",
        str(data_dir),
        "--port",
        "0",
        *QUIET_PORTS,
        "--no-fsync",
        "--log-level",
        "info",
    )
    port = broker.port()
    with Client.connect(f"127.0.0.1:{port}") as client:
        client.submit_task("echo", b"kept")
        assert client.stats()["queue_depth"] == 1
    assert f"store open data_dir={data_dir} fsync=False" in broker.text()
    assert not (tmp_path / "from-config").exists()
    stopped = broker.stop()
    assert stopped.code == 0, str(stopped)
    assert "shutting down on SIGTERM" in stopped.stderr
    assert f"store closed data_dir={data_dir}" in stopped.stderr


def test_tq_broker_alias_runs_the_broker(daemons: list[Daemon], tmp_path: Path) -> None:
    config = write_config(
        tmp_path / "broker.yaml",
        data_dir=str(tmp_path / "data"),
        port=0,
        rest_port=0,
        metrics_port=0,
        grpc_port=None,
    )
    broker = start(daemons, tmp_path, "tq-broker", "--config", str(config))
    address = f"127.0.0.1:{broker.port()}"
    status = run_script("tq", "queue-depth", "--json", env=clean_env(TQ_BROKER=address))
    assert status.json()["queue_depth"] == 0
    assert broker.stop().code == 0


@pytest.mark.parametrize(
    ("settings", "fragments"),
    [
        ({"port": "abc"}, ["config key 'port'", "'abc'", "expected an integer"]),
        ({"port": 70000}, ["config key 'port'", "70000", "0 to 65535"]),
        ({"bogus": 1}, ["config key 'bogus' is unknown"]),
        ({"log_level": "loud"}, ["config key 'log_level'", "'loud'", "debug, info"]),
    ],
)
def test_tq_broker_with_a_bad_config_value_fails_in_one_line(
    tmp_path: Path, settings: dict[str, object], fragments: list[str]
) -> None:
    config = write_config(tmp_path / "bad.yaml", data_dir=str(tmp_path), **settings)
    # In this process: the config is checked before anything starts.
    run = run_in_process("broker", "--config", str(config))
    assert_one_line_error(run, ExitCode.USAGE, *fragments)


def test_tq_broker_with_a_missing_config_file_fails_in_one_line(
    tmp_path: Path,
) -> None:
    missing = tmp_path / "missing.yaml"
    run = run_script("tq-broker", "--config", str(missing))
    assert_last_line_error(
        run, ExitCode.USAGE, f"config file '{missing}'", "cannot read"
    )


def test_tq_broker_on_a_taken_port_fails_with_unavailable(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        run = run_script(
            "tq",
            "broker",
            "--data-dir",
            str(tmp_path / "data"),
            "--port",
            str(port),
            *QUIET_PORTS,
            "--grpc-port",
            "0",
        )
    assert_last_line_error(
        run,
        ExitCode.UNAVAILABLE,
        "cannot listen on 127.0.0.1: Address already in use",
        f"tcp {port}",
    )


def test_tq_broker_on_a_data_dir_in_use_fails_with_broker_error(
    fresh_broker: BrokerProcess,
) -> None:
    run = run_script(
        "tq",
        "broker",
        "--data-dir",
        str(fresh_broker.data_dir),
        "--port",
        "0",
        *QUIET_PORTS,
    )
    assert_last_line_error(
        run, ExitCode.BROKER_ERROR, f"data dir {fresh_broker.data_dir} is already open"
    )


# tq worker


def test_tq_worker_runs_handlers_from_its_modules_and_drains_on_sigterm(
    daemons: list[Daemon], fresh_broker: BrokerProcess, tmp_path: Path
) -> None:
    worker = start(
        daemons,
        tmp_path,
        "tq",
        "worker",
        "--broker",
        fresh_broker.address,
        "--handlers",
        "e2e_handlers",
        "--concurrency",
        "1",
    )
    with Client.connect(fresh_broker.address) as client:
        task_id = client.submit_task("block", b"1.5")
        wait_until(
            lambda: client.get_task(task_id).state == "in_progress", 30, "block to run"
        )
        assert [row["concurrency"] for row in client.workers()] == [1]
        # The task it runs when told to stop is finished, not dropped.
        stopped = worker.stop()
        assert client.get_task(task_id).result == b"unblocked"
    assert stopped.code == 0, str(stopped)
    assert "stopping on SIGTERM" in stopped.stderr
    assert "completed=1" in stopped.stderr


def test_tq_worker_alias_takes_the_broker_from_the_environment(
    daemons: list[Daemon], fresh_broker: BrokerProcess, tmp_path: Path
) -> None:
    worker = start(daemons, tmp_path, "tq-worker", TQ_BROKER=fresh_broker.address)
    with Client.connect(fresh_broker.address) as client:
        task_id = client.submit_task("echo", b"via tq-worker")
        assert client.wait_for_result(task_id, timeout=30) == b"via tq-worker"
    # Stopping is the test above's; with a slot free it would first wait out
    # the claim in flight, up to CLAIM_WAIT_S (1 s).
    worker.kill()


def test_tq_worker_stops_at_once_on_sigterm_while_the_broker_is_unreachable(
    daemons: list[Daemon], tmp_path: Path, unreachable: str
) -> None:
    worker = start(
        daemons,
        tmp_path,
        "tq",
        "worker",
        "--broker",
        unreachable,
        "--log-level",
        "debug",
    )
    worker.wait_for_log(f"connect to {unreachable} failed")
    stopped = worker.stop(timeout_s=5)
    assert stopped.code == 0, str(stopped)
    assert "Traceback" not in stopped.stderr


def test_tq_worker_with_a_handler_module_that_does_not_import_fails_in_one_line() -> (
    None
):
    run = run_script("tq-worker", "--handlers", "no_such_module")
    assert_last_line_error(
        run, ExitCode.USAGE, "--handlers: cannot import 'no_such_module'"
    )


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["--concurrency", "0"], ["--concurrency", "got '0'"]),
        (["--broker", "localhost:port"], ["expected HOST:PORT", "'localhost:port'"]),
    ],
)
def test_tq_worker_with_a_bad_option_fails_in_one_line(
    args: list[str], fragments: list[str]
) -> None:
    # In this process: both are refused before the worker starts.
    run = run_in_process("worker", *args)
    assert_one_line_error(run, ExitCode.USAGE, *fragments)
