"""Turning the gRPC API off, on purpose (grpc_port: null) or for want of
grpcio, leaves the rest of the broker serving."""

from __future__ import annotations

from pathlib import Path

import pytest
from grpc_support import FAST_CONFIG, grpc_port_of
from processes import BrokerProcess

from tq import Client
from tq.broker.config import ConfigError, config_from_mapping, load_config


def _start(tmp_path: Path, **config: object) -> BrokerProcess:
    broker = BrokerProcess(
        tmp_path / "data", tmp_path / "broker.log", {**FAST_CONFIG, **config}
    )
    broker.start()
    return broker


def test_grpc_port_null_turns_the_grpc_api_off(tmp_path: Path) -> None:
    broker = _start(tmp_path, grpc_port=None)
    try:
        with Client.connect(broker.address) as client:
            client.submit_task("t", b"")
        assert broker.stop() == 0
    finally:
        broker.kill()

    log = broker.log_text()
    assert "grpc off: grpc_port is null" in log
    assert "grpc listening" not in log


def test_without_grpcio_the_broker_warns_how_to_install_it_and_serves_tcp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A module named grpc that fails to import, as a missing one does.
    shadow = tmp_path / "no-grpc"
    shadow.mkdir()
    (shadow / "grpc.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'grpc'\", name='grpc')\n"
    )
    monkeypatch.setenv("PYTHONPATH", str(shadow))

    broker = _start(tmp_path, grpc_port=0)
    try:
        with Client.connect(broker.address) as client:
            task_id = client.submit_task("t", b"")
            assert client.get_task(task_id).state == "pending"
    finally:
        broker.kill()

    log = broker.log_text()
    assert "WARNING tq.broker grpc off: grpc_port is 0 but grpcio" in log
    assert "missing module grpc" in log
    assert "pip install 'tq[grpc]'" in log
    assert "grpc listening" not in log


def test_a_config_file_may_set_grpc_port_to_null(tmp_path: Path) -> None:
    path = tmp_path / "broker.yaml"
    path.write_text("grpc_port: null\n")

    assert load_config(path).grpc_port is None
    assert load_config(None).grpc_port == 50051


@pytest.mark.parametrize("value", ["50051", 70000, True])
def test_a_bad_grpc_port_stops_start_up_naming_the_key(value: object) -> None:
    with pytest.raises(ConfigError, match="grpc_port"):
        config_from_mapping({"grpc_port": value}).validated()


def test_a_taken_grpc_port_stops_start_up_naming_it(tmp_path: Path) -> None:
    (tmp_path / "first").mkdir()
    (tmp_path / "second").mkdir()
    first = _start(tmp_path / "first", grpc_port=0)
    try:
        taken = grpc_port_of(first)
        second = BrokerProcess(
            tmp_path / "second" / "data",
            tmp_path / "second" / "broker.log",
            {**FAST_CONFIG, "grpc_port": taken},
        )
        second.start()
        assert second.proc is not None
        code = second.proc.wait(timeout=30)
    finally:
        first.kill()

    assert code != 0
    assert f"cannot listen on 127.0.0.1:{taken} (grpc_port)" in second.log_text()
