"""TLS on every port of a broker with ``tls_cert`` and ``tls_key``: clients that
trust the certificate are served end to end; plaintext clients, clients that
do not trust it, and peers that stall their handshake get a clear error or a
close, and the broker goes on serving everyone else."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import httpx
import pytest
import typer
from processes import BrokerProcess, WorkerProcess
from security_support import (
    FAST_CONFIG,
    TOKEN,
    CertFiles,
    grpc_port_of,
    hello,
    make_certificate,
    next_text,
    open_event_stream,
    read_answers,
    trusting,
)

from tq import AsyncClient, Client
from tq.cli.app import app
from tq.errors import ConnectionLost, TlsError, TlsRequired
from tq.v1 import tq_pb2, tq_pb2_grpc

StartBroker = Callable[..., BrokerProcess]


def tls_config(cert: CertFiles) -> dict[str, object]:
    return {"tls_cert": str(cert.cert), "tls_key": str(cert.key)}


@pytest.fixture(scope="module")
def broker(
    tmp_path_factory: pytest.TempPathFactory, cert: CertFiles
) -> Iterator[BrokerProcess]:
    """A broker serving TLS on every port, with a token, shared by the module:
    no test here depends on what the others stored."""
    root = tmp_path_factory.mktemp("tls")
    process = BrokerProcess(
        root / "data",
        root / "broker.log",
        {**FAST_CONFIG, **tls_config(cert), "auth_token": TOKEN},
    )
    process.start()
    yield process
    process.kill()


def assert_still_serves(broker: BrokerProcess, cert: CertFiles) -> None:
    with Client.connect(broker.address, token=TOKEN, tls_ca=cert.cert) as client:
        task_id = client.submit_task("echo", b"still here")
        assert client.get_task(task_id).state == "pending"


# Served end to end


def test_a_client_that_trusts_the_certificate_gets_its_result_from_a_tls_worker(
    broker: BrokerProcess,
    cert: CertFiles,
    spawn_worker: Callable[..., WorkerProcess],
) -> None:
    spawn_worker(broker.address, TQ_TLS_CA=str(cert.cert), TQ_TOKEN=TOKEN)

    with Client.connect(broker.address, token=TOKEN, tls_ca=cert.cert) as client:
        task_id = client.submit_task("echo", b"over tls")
        assert client.wait_for_result(task_id, timeout=30) == b"over tls"
        (attempt,) = client.get_task(task_id).history
        assert attempt.worker_id is not None
        assert client.server_info["version"] == 1


async def test_an_async_client_with_an_ssl_context_of_its_own_is_served(
    broker: BrokerProcess, cert: CertFiles
) -> None:
    async with AsyncClient.connect(
        broker.address, token=TOKEN, tls=trusting(cert)
    ) as client:
        task_id = await client.submit_task("echo", b"async over tls")
        assert (await client.get_task(task_id)).payload == b"async over tls"


def test_rest_over_https_and_metrics_over_https_are_served(
    broker: BrokerProcess, cert: CertFiles
) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    base = f"https://127.0.0.1:{broker.rest_port}"
    with httpx.Client(base_url=base, verify=trusting(cert), headers=headers) as api:
        submitted = api.post(
            "/api/v1/tasks", json={"task_type": "echo", "payload": "aHR0cHM="}
        )
        assert submitted.status_code == 201, submitted.text
        task = api.get(f"/api/v1/tasks/{submitted.json()['task_id']}").json()
        assert task["payload"] == "aHR0cHM="

    metrics = httpx.get(
        f"https://127.0.0.1:{broker.metrics_port}/metrics", verify=trusting(cert)
    )
    assert metrics.status_code == 200
    assert "tq_tasks_pending " in metrics.text


def test_plain_http_to_the_tls_rest_port_gets_no_answer(
    broker: BrokerProcess,
) -> None:
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{broker.rest_port}/health", timeout=30)


def test_an_event_stream_over_wss_streams_events(
    broker: BrokerProcess, cert: CertFiles
) -> None:
    sock, ws = open_event_stream(
        broker.rest_port, f"/api/v1/events?token={TOKEN}", trusting(cert)
    )
    try:
        with Client.connect(broker.address, token=TOKEN, tls_ca=cert.cert) as client:
            task_id = client.submit_task("echo", b"seen")
        message = next_text(sock, ws)
    finally:
        sock.close()

    assert '"event":"task.submitted"' in message
    assert f'"task_id":{task_id}' in message


def test_grpc_with_tls_channel_credentials_is_served_and_plaintext_is_not(
    broker: BrokerProcess, cert: CertFiles
) -> None:
    target = f"127.0.0.1:{grpc_port_of(broker)}"
    token = (("authorization", f"Bearer {TOKEN}"),)
    credentials = grpc.ssl_channel_credentials(root_certificates=cert.cert.read_bytes())
    with grpc.secure_channel(target, credentials) as channel:
        stats = tq_pb2_grpc.TqStub(channel).GetStats(
            tq_pb2.GetStatsRequest(), metadata=token, timeout=30
        )
        assert stats.max_pending == 100_000

    with grpc.insecure_channel(target) as channel, pytest.raises(grpc.RpcError) as e:
        tq_pb2_grpc.TqStub(channel).GetStats(
            tq_pb2.GetStatsRequest(), metadata=token, timeout=30
        )
    assert e.value.code() == grpc.StatusCode.UNAVAILABLE


# Refused, clearly


def test_a_plaintext_client_on_the_tls_port_is_told_to_use_tls_at_once(
    broker: BrokerProcess, cert: CertFiles
) -> None:
    started = time.monotonic()
    with pytest.raises(TlsRequired) as refused:
        Client.connect(broker.address, token=TOKEN, reconnect_timeout=30)

    assert time.monotonic() - started < 10, "it retried instead of failing at once"
    assert isinstance(refused.value, ConnectionLost)
    assert str(refused.value) == (
        f"the broker at {broker.address} refused the connection: this port serves "
        "TLS: connect with TLS (tls=True or tls_ca=... in the Python client, "
        "--tls or --tls-ca on the command line)"
    )
    assert_still_serves(broker, cert)


async def test_a_plaintext_async_client_on_the_tls_port_is_told_to_use_tls(
    broker: BrokerProcess,
) -> None:
    # trio hands over what fails inside the client's nursery in a group.
    with pytest.RaisesGroup(
        pytest.RaisesExc(TlsRequired, match="this port serves TLS"),
        flatten_subgroups=True,
    ):
        async with AsyncClient.connect(
            broker.address, token=TOKEN, reconnect_timeout=30
        ):
            pass


def test_plain_frames_on_the_tls_port_get_one_plain_error_and_a_close(
    broker: BrokerProcess,
) -> None:
    with socket.create_connection(("127.0.0.1", broker.port), timeout=30) as sock:
        sock.sendall(hello(TOKEN))
        answers = read_answers(sock)

    assert answers.closed
    assert [r["error"]["code"] for r in answers.responses] == ["TLS_REQUIRED"]
    assert answers.responses[0]["id"] is None


@pytest.mark.parametrize(
    "trust", ["the system's CAs", "another CA"], ids=["system", "stranger"]
)
def test_a_client_that_does_not_trust_the_certificate_gets_a_tls_error_at_once(
    broker: BrokerProcess, cert: CertFiles, stranger: CertFiles, trust: str
) -> None:
    settings = (
        {"tls": True} if trust == "the system's CAs" else {"tls_ca": stranger.cert}
    )
    started = time.monotonic()

    with pytest.raises(TlsError) as refused:
        Client.connect(broker.address, token=TOKEN, reconnect_timeout=30, **settings)

    assert time.monotonic() - started < 10, "it retried instead of failing at once"
    message = str(refused.value)
    assert f"the broker at {broker.address} presented a certificate" in message
    assert "self-signed certificate" in message
    assert "pass the CA certificate that signed it as tls_ca (--tls-ca" in message
    assert_still_serves(broker, cert)


async def test_an_async_client_that_does_not_trust_the_certificate_gets_a_tls_error(
    broker: BrokerProcess, stranger: CertFiles
) -> None:
    with pytest.RaisesGroup(
        pytest.RaisesExc(TlsError, match="does not trust"), flatten_subgroups=True
    ):
        async with AsyncClient.connect(
            broker.address, token=TOKEN, tls_ca=stranger.cert, reconnect_timeout=30
        ):
            pass


def test_a_certificate_for_another_host_name_is_refused_by_the_client(
    start_broker: StartBroker, certs_dir: Path
) -> None:
    elsewhere = make_certificate(certs_dir, "elsewhere", "elsewhere.example")
    broker = start_broker(**tls_config(elsewhere))

    with pytest.raises(TlsError) as refused:
        Client.connect(broker.address, tls_ca=elsewhere.cert)

    assert str(refused.value) == (
        f"the broker at {broker.address} presented a certificate for another name "
        "(IP address mismatch, certificate is not valid for '127.0.0.1'); connect "
        "by a name the certificate holds, or give the broker a certificate for "
        "this one"
    )


def test_a_tls_client_on_a_plaintext_port_gets_a_tls_error(
    start_broker: StartBroker, cert: CertFiles
) -> None:
    broker = start_broker()

    with pytest.raises(TlsError, match="check that the broker serves TLS"):
        Client.connect(broker.address, tls_ca=cert.cert, reconnect_timeout=30)


def test_peers_that_stall_their_handshake_hold_up_no_one_else(
    broker: BrokerProcess, cert: CertFiles
) -> None:
    silent = socket.create_connection(("127.0.0.1", broker.port))
    halfway = socket.create_connection(("127.0.0.1", broker.port))
    # The first bytes of a TLS record header, and then nothing.
    halfway.sendall(b"\x16\x03\x01")
    try:
        assert_still_serves(broker, cert)
    finally:
        silent.close()
        halfway.close()


# The command line


def tq(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tq", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, **env},
    )


def test_cli_commands_speak_tls_with_tls_ca_from_the_option_or_the_environment(
    broker: BrokerProcess, cert: CertFiles
) -> None:
    common = ("--broker", broker.address, "--token", TOKEN, "--json")

    by_option = tq("stats", *common, "--tls-ca", str(cert.cert))
    by_env = tq("queue-depth", *common, TQ_TLS_CA=str(cert.cert))

    assert by_option.returncode == 0, by_option.stderr
    assert '"max_pending": 100000' in by_option.stdout
    assert by_env.returncode == 0, by_env.stderr


def test_cli_commands_without_tls_or_with_a_bad_ca_file_say_why_in_one_line(
    broker: BrokerProcess, tmp_path: Path
) -> None:
    plain = tq("stats", "--broker", broker.address, "--token", TOKEN)
    missing = tmp_path / "missing.pem"
    bad_ca = tq("stats", "--broker", broker.address, "--tls-ca", str(missing))
    untrusted = tq("stats", "--broker", broker.address, "--tls", "--token", TOKEN)

    assert plain.returncode == 69
    assert plain.stderr.startswith("tq: the broker at ")
    assert "this port serves TLS" in plain.stderr
    assert bad_ca.returncode == 2
    assert bad_ca.stderr.startswith(
        f"tq: --tls-ca: expected a readable PEM file of CA certificates, got "
        f"'{missing}'"
    )
    assert untrusted.returncode == 69
    assert "does not trust" in untrusted.stderr
    for done in (plain, bad_ca, untrusted):
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr


def _commands(group: object, path: str = "tq") -> Iterator[tuple[str, object]]:
    for name, command in getattr(group, "commands", {}).items():
        if hasattr(command, "commands"):
            yield from _commands(command, f"{path} {name}")
        else:
            yield f"{path} {name}", command


def test_every_command_that_takes_broker_also_takes_tls_and_tls_ca() -> None:
    commands = dict(_commands(typer.main.get_command(app)))
    options = {
        path: {
            (tuple(param.opts), getattr(param, "envvar", None))
            for param in command.params  # type: ignore[attr-defined]
        }
        for path, command in commands.items()
    }
    talking = [
        path
        for path, found in options.items()
        if any("--broker" in o for o, _ in found)
    ]

    assert sorted(talking) == [
        "tq cancel",
        "tq dlq list",
        "tq dlq purge",
        "tq dlq requeue",
        "tq dlq show",
        "tq list",
        "tq queue-depth",
        "tq stats",
        "tq status",
        "tq submit",
        "tq top",
        "tq worker",
        "tq workers",
    ]
    for path in talking:
        assert (("--tls",), "TQ_TLS") in options[path], path
        assert (("--tls-ca",), "TQ_TLS_CA") in options[path], path
