"""The security settings of the config: ``tls_cert`` and ``tls_key`` that cannot
serve TLS, and a non-loopback ``host`` without a token, stop start-up with a
message naming the key, the value and what is allowed."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from processes import BrokerProcess
from security_support import CertFiles

from tq import Client
from tq.broker.config import BrokerConfig, ConfigError, load_config

EVERY_ADDRESS = "0.0.0.0"  # noqa: S104 (the tests check that binding it is refused)
KEY_EXPECTED = "expected a readable, unencrypted PEM private key of the tls_cert"
CERT_EXPECTED = "expected a readable PEM certificate file"


def load(tmp_path: Path, text: str) -> BrokerConfig:
    path = tmp_path / "broker.yaml"
    path.write_text(text)
    return load_config(path)


def tls_yaml(cert: object, key: object) -> str:
    return f"tls_cert: {cert}\ntls_key: {key}\n"


@pytest.fixture
def junk(tmp_path: Path) -> Path:
    path = tmp_path / "junk.pem"
    path.write_text("-----BEGIN NOTHING-----\nbm90aGluZw==\n-----END NOTHING-----\n")
    return path


@pytest.fixture
def encrypted_key(tmp_path: Path, cert: CertFiles) -> Path:
    path = tmp_path / "encrypted-key.pem"
    subprocess.run(
        [
            str(shutil.which("openssl")),
            "pkey",
            "-in",
            str(cert.key),
            "-out",
            str(path),
            "-aes256",
            "-passout",
            "pass:secret",
        ],
        check=True,
        capture_output=True,
    )
    return path


def test_a_certificate_and_its_key_load_and_turn_tls_on(
    tmp_path: Path, cert: CertFiles
) -> None:
    config = load(tmp_path, tls_yaml(cert.cert, cert.key))

    assert config.tls
    assert (config.tls_cert, config.tls_key) == (str(cert.cert), str(cert.key))
    assert not load(tmp_path, "tls_cert: null\ntls_key: null\n").tls


@pytest.mark.parametrize(
    ("given", "missing"), [("tls_cert", "tls_key"), ("tls_key", "tls_cert")]
)
def test_one_of_tls_cert_and_tls_key_without_the_other_is_refused(
    tmp_path: Path, cert: CertFiles, given: str, missing: str
) -> None:
    path = cert.cert if given == "tls_cert" else cert.key

    with pytest.raises(ConfigError) as refused:
        load(tmp_path, f"{given}: {path}\n")

    assert str(refused.value) == (
        f"config key {missing!r}: got None, expected a path to a PEM file, as "
        f"{given} is set: tls_cert and tls_key turn TLS on together"
    )


def test_a_tls_file_that_does_not_exist_is_refused_naming_its_key(
    tmp_path: Path, cert: CertFiles
) -> None:
    missing = tmp_path / "missing.pem"

    with pytest.raises(ConfigError) as no_cert:
        load(tmp_path, tls_yaml(missing, cert.key))
    with pytest.raises(ConfigError) as no_key:
        load(tmp_path, tls_yaml(cert.cert, missing))

    assert str(no_cert.value) == (
        f"config key 'tls_cert': got '{missing}', {CERT_EXPECTED} "
        "(cannot read it: No such file or directory)"
    )
    assert str(no_key.value).startswith(f"config key 'tls_key': got '{missing}', ")
    assert "(cannot read it: No such file or directory)" in str(no_key.value)


def test_a_directory_as_a_tls_file_is_refused_as_unreadable(
    tmp_path: Path, cert: CertFiles
) -> None:
    with pytest.raises(ConfigError) as refused:
        load(tmp_path, tls_yaml(tmp_path, cert.key))

    assert str(refused.value) == (
        f"config key 'tls_cert': got '{tmp_path}', {CERT_EXPECTED} "
        "(cannot read it: Is a directory)"
    )


def test_a_certificate_file_without_a_certificate_is_refused(
    tmp_path: Path, cert: CertFiles, junk: Path
) -> None:
    for not_a_cert in (junk, cert.key):
        with pytest.raises(ConfigError) as refused:
            load(tmp_path, tls_yaml(not_a_cert, cert.key))

        assert str(refused.value) == (
            f"config key 'tls_cert': got '{not_a_cert}', {CERT_EXPECTED} "
            "(no certificate in the file)"
        )


@pytest.fixture
def bad_keys(
    stranger: CertFiles, junk: Path, encrypted_key: Path
) -> dict[str, tuple[Path, str]]:
    """Key files that cannot serve ``cert``, each with the reason given."""
    return {
        "not a key": (junk, "no PEM block of the right kind in the file"),
        "another certificate's key": (
            stranger.key,
            "the key does not belong to the certificate",
        ),
        "an encrypted key": (encrypted_key, "the key is encrypted"),
    }


@pytest.mark.parametrize(
    "case", ["not a key", "another certificate's key", "an encrypted key"]
)
def test_a_key_that_cannot_serve_the_certificate_is_refused_naming_tls_key(
    tmp_path: Path, cert: CertFiles, bad_keys: dict[str, tuple[Path, str]], case: str
) -> None:
    key, reason = bad_keys[case]

    with pytest.raises(ConfigError) as refused:
        load(tmp_path, tls_yaml(cert.cert, key))

    assert str(refused.value) == (
        f"config key 'tls_key': got '{key}', {KEY_EXPECTED} certificate ({reason})"
    )


def test_a_tls_file_that_is_not_a_path_is_refused(
    tmp_path: Path, cert: CertFiles
) -> None:
    with pytest.raises(ConfigError) as refused:
        load(tmp_path, tls_yaml(5, cert.key))

    assert str(refused.value) == (
        "config key 'tls_cert': got 5, expected a path to a PEM file, or null"
    )


# Binding beyond loopback


@pytest.mark.parametrize(
    "host", [EVERY_ADDRESS, "::", "192.0.2.10", "broker.example", ""]
)
def test_a_non_loopback_host_without_a_token_is_refused_naming_the_override(
    host: str,
) -> None:
    with pytest.raises(ConfigError) as refused:
        BrokerConfig(host=host).validated()

    assert str(refused.value) == (
        f"config key 'host': got {host!r}, a non-loopback address, but no "
        "auth_token is set; set auth_token, or set allow_remote_without_token: "
        "true to accept anyone who can reach the port"
    )


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "localhost"])
def test_a_loopback_host_needs_no_token(host: str) -> None:
    assert BrokerConfig(host=host).validated().host == host


def test_a_non_loopback_host_is_allowed_with_a_token_or_the_explicit_override() -> None:
    BrokerConfig(host=EVERY_ADDRESS, auth_token="t").validated()  # noqa: S106
    BrokerConfig(host=EVERY_ADDRESS, allow_remote_without_token=True).validated()


def test_the_override_lets_a_broker_listen_on_every_address_without_a_token(
    start_broker: Callable[..., BrokerProcess],
) -> None:
    broker = start_broker(host=EVERY_ADDRESS, allow_remote_without_token=True)

    with Client.connect(broker.address) as client:
        assert client.stats()["workers"] == 0
    assert "listening host=0.0.0.0" in broker.log_text()


# The command line stops


@pytest.fixture
def files(cert: CertFiles, stranger: CertFiles) -> dict[str, Path]:
    return {"cert": cert.cert, "stranger": stranger.key}


@pytest.mark.parametrize(
    ("config", "flags", "message"),
    [
        (
            "tls_cert: {cert}\n",
            [],
            "config key 'tls_key': got None, expected a path to a PEM file",
        ),
        (
            "tls_cert: {cert}\ntls_key: {stranger}\n",
            [],
            "config key 'tls_key': got '{stranger}', " + KEY_EXPECTED,
        ),
        ("", ["--host", EVERY_ADDRESS], "or set allow_remote_without_token: true"),
    ],
    ids=["half of tls", "wrong key", "remote host by flag"],
)
def test_tq_broker_stops_with_one_line_naming_the_key(
    tmp_path: Path,
    files: dict[str, Path],
    config: str,
    flags: list[str],
    message: str,
) -> None:
    path = tmp_path / "broker.yaml"
    path.write_text(config.format(**files) + f"data_dir: {tmp_path / 'data'}\n")

    done = subprocess.run(
        [sys.executable, "-m", "tq", "broker", "--config", str(path), *flags],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 2
    assert message.format(**files) in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert not (tmp_path / "data").exists()


# The example config


def test_the_example_config_documents_the_security_keys_with_their_defaults() -> None:
    example = Path(__file__).parents[2] / "config.example.yaml"
    text = example.read_text()

    assert load_config(example) == BrokerConfig()
    for key in (
        "host",
        "auth_token",
        "allow_remote_without_token",
        "tls_cert",
        "tls_key",
        "max_connections",
        "max_frame_bytes",
        "max_payload_bytes",
        "max_batch",
        "max_page",
    ):
        assert f"\n{key}: " in text, key
