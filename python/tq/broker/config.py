"""The broker's configuration: one YAML file, overridden by command-line flags.

Every key, its default and what it allows are listed in ``config.example.yaml``
at the repository root. A bad value stops start-up with a `ConfigError` naming
the key, the value and what is allowed.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tq.broker.tls import TlsFileError, check_files

__all__ = ["BrokerConfig", "ConfigError", "RaftConfig", "load_config", "parse_duration"]


class ConfigError(ValueError):
    """A configuration key has a value tq cannot use."""


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def parse_duration(key: str, value: object) -> float:
    """Read a duration in seconds from a number or a string such as ``"7d"``.

    Raises:
        ConfigError: The value is neither a non-negative number nor a number
            followed by one of ms, s, m, h, d.
    """
    if isinstance(value, bool):
        raise _error(key, value, "a duration such as 30, 30s, 500ms, 15m, 1h or 7d")
    if isinstance(value, int | float):
        if value < 0:
            raise _error(key, value, "a non-negative duration")
        return float(value)
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            number, unit = match.groups()
            return float(number) * _UNIT_SECONDS[unit]
    raise _error(key, value, "a duration such as 30, 30s, 500ms, 15m, 1h or 7d")


def _error(key: str, value: object, allowed: str) -> ConfigError:
    return ConfigError(f"config key {key!r}: got {value!r}, expected {allowed}")


@dataclass(frozen=True)
class RaftConfig:
    """Replication settings, kept for the Raft mode to come.

    The broker runs as a single node today and refuses ``enabled: true``.
    """

    enabled: bool = False
    node_id: int = 1
    peers: tuple[str, ...] = ()
    election_timeout_ms: int = 1000
    heartbeat_interval_ms: int = 300


@dataclass(frozen=True)
class BrokerConfig:
    """Every setting of a broker, with the defaults of ``config.example.yaml``.

    Durations are seconds (``_s``); sizes are bytes.
    """

    host: str = "127.0.0.1"
    port: int = 6379
    rest_port: int = 8080
    metrics_port: int = 9091
    # None turns the gRPC API off (it also stays off without grpcio installed).
    grpc_port: int | None = 50051
    data_dir: str = "./data"
    fsync: bool = True
    max_pending: int = 100_000
    heartbeat_interval_s: float = 15.0
    worker_timeout_s: float = 45.0
    task_timeout_s: float = 300.0
    max_retries: int = 3
    backoff_base_s: float = 1.0
    backoff_max_s: float = 3600.0
    backoff_jitter: float = 0.5
    completed_retention_s: float = 7 * 86400.0
    dead_letter_retention_s: float = 30 * 86400.0
    retention_sweep_interval_s: float = 60.0
    max_payload_bytes: int = 10 * 1024 * 1024
    max_frame_bytes: int = 16 * 1024 * 1024
    max_connections: int = 1024
    max_batch: int = 1000
    max_page: int = 1000
    auth_token: str | None = None
    allow_remote_without_token: bool = False
    # PEM files; both set turns TLS on for every port.
    tls_cert: str | None = None
    tls_key: str | None = None
    log_level: str = "info"
    raft: RaftConfig = field(default_factory=RaftConfig)

    def validated(self) -> BrokerConfig:
        """Check every value and return self.

        Raises:
            ConfigError: Naming the first key out of bounds.
        """
        for key in ("port", "rest_port", "metrics_port"):
            _check_range(key, getattr(self, key), 0, 65535)
        if self.grpc_port is not None:
            _check_range("grpc_port", self.grpc_port, 0, 65535)
        _check_range("max_pending", self.max_pending, 1, 10**9)
        _check_range("max_retries", self.max_retries, 0, 1000)
        _check_range("max_payload_bytes", self.max_payload_bytes, 1, 512 * 2**20)
        _check_range(
            "max_frame_bytes", self.max_frame_bytes, self.max_payload_bytes, 2**30
        )
        _check_range("max_connections", self.max_connections, 1, 1_000_000)
        _check_range("max_batch", self.max_batch, 1, 10_000)
        _check_range("max_page", self.max_page, 1, 1000)
        for key in ("heartbeat_interval_s", "task_timeout_s", "backoff_base_s"):
            _check_positive(key, getattr(self, key))
        if self.worker_timeout_s <= self.heartbeat_interval_s:
            raise _error(
                "worker_timeout",
                self.worker_timeout_s,
                f"more than heartbeat_interval ({self.heartbeat_interval_s}s)",
            )
        if self.backoff_max_s < self.backoff_base_s:
            raise _error("backoff_max", self.backoff_max_s, "at least backoff_base")
        if not 0.0 <= self.backoff_jitter <= 1.0:
            raise _error("backoff_jitter", self.backoff_jitter, "a number from 0 to 1")
        if self.log_level not in ("debug", "info", "warning", "error"):
            raise _error("log_level", self.log_level, "debug, info, warning or error")
        if self.raft.enabled:
            raise _error("raft.enabled", True, "false: this broker runs as one node")
        self._check_exposure()
        self._check_tls()
        return self

    @property
    def tls(self) -> bool:
        """Whether the broker's ports serve TLS (``tls_cert`` and ``tls_key`` set)."""
        return self.tls_cert is not None and self.tls_key is not None

    def _check_exposure(self) -> None:
        if self.auth_token is not None and not self.auth_token:
            raise _error("auth_token", "", "a non-empty token, or null for none")
        if self.auth_token or self.allow_remote_without_token:
            return
        if not _is_loopback(self.host):
            raise ConfigError(
                f"config key 'host': got {self.host!r}, a non-loopback address, "
                "but no auth_token is set; set auth_token, or set "
                "allow_remote_without_token: true to accept anyone who can "
                "reach the port"
            )

    def _check_tls(self) -> None:
        if self.tls_cert is None and self.tls_key is None:
            return
        for key, other in (("tls_cert", "tls_key"), ("tls_key", "tls_cert")):
            if getattr(self, key) is None:
                raise _error(
                    key,
                    None,
                    f"a path to a PEM file, as {other} is set: tls_cert and "
                    "tls_key turn TLS on together",
                )
        assert self.tls_cert is not None
        assert self.tls_key is not None
        try:
            check_files(self.tls_cert, self.tls_key)
        except TlsFileError as exc:
            raise _error(
                exc.key, getattr(self, exc.key), f"{exc.expected} ({exc.reason})"
            ) from exc

    def with_overrides(self, **overrides: Any) -> BrokerConfig:
        """A copy with the non-None overrides applied (from command-line flags)."""
        given = {key: value for key, value in overrides.items() if value is not None}
        return dataclasses.replace(self, **given)


def _check_range(key: str, value: object, low: int, high: int) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or not low <= value <= high
    ):
        raise _error(key, value, f"an integer from {low} to {high}")


def _check_positive(key: str, value: float) -> None:
    if value <= 0:
        raise _error(key.removesuffix("_s"), value, "a positive duration")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


_DURATION_KEYS = {
    "heartbeat_interval": "heartbeat_interval_s",
    "worker_timeout": "worker_timeout_s",
    "task_timeout": "task_timeout_s",
    "backoff_base": "backoff_base_s",
    "backoff_max": "backoff_max_s",
    "completed_retention": "completed_retention_s",
    "dead_letter_retention": "dead_letter_retention_s",
    "retention_sweep_interval": "retention_sweep_interval_s",
}
_INT_KEYS = {
    "port",
    "rest_port",
    "metrics_port",
    "max_pending",
    "max_retries",
    "max_payload_bytes",
    "max_frame_bytes",
    "max_connections",
    "max_batch",
    "max_page",
}
_BOOL_KEYS = {"fsync", "allow_remote_without_token"}
_STR_KEYS = {"host", "data_dir", "log_level"}


def load_config(path: str | Path | None) -> BrokerConfig:
    """Read a YAML config file (or none, for the defaults) and validate it.

    Raises:
        ConfigError: The file is missing, is not YAML, has an unknown key, or a
            value is out of bounds.
    """
    if path is None:
        return BrokerConfig().validated()
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise ConfigError(f"config file {str(path)!r}: cannot read it ({exc})") from exc
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {str(path)!r}: not valid YAML ({exc})") from exc
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"config file {str(path)!r}: expected a map of keys at top")
    return config_from_mapping(raw).validated()


def config_from_mapping(raw: dict[str, Any]) -> BrokerConfig:
    """Build a config from a parsed YAML map, checking each key's type."""
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key in _DURATION_KEYS:
            values[_DURATION_KEYS[key]] = parse_duration(key, value)
        elif key in _INT_KEYS:
            values[key] = _typed(key, value, int, "an integer")
        elif key in _BOOL_KEYS:
            values[key] = _typed(key, value, bool, "true or false")
        elif key in _STR_KEYS:
            values[key] = _typed(key, value, str, "a string")
        elif key == "backoff_jitter":
            values[key] = float(_typed(key, value, int | float, "a number from 0 to 1"))
        elif key == "auth_token":
            values[key] = None if value is None else _typed(key, value, str, "a string")
        elif key in ("tls_cert", "tls_key"):
            values[key] = (
                None
                if value is None
                else _typed(key, value, str, "a path to a PEM file, or null")
            )
        elif key == "grpc_port":
            values[key] = (
                None if value is None else _typed(key, value, int, "an integer or null")
            )
        elif key == "raft":
            values[key] = _raft_from_mapping(value)
        else:
            raise ConfigError(
                f"config key {key!r} is unknown; config.example.yaml lists every key"
            )
    return BrokerConfig(**values)


def _typed(key: str, value: object, kind: Any, allowed: str) -> Any:
    if kind is not bool and isinstance(value, bool):
        raise _error(key, value, allowed)
    if not isinstance(value, kind):
        raise _error(key, value, allowed)
    return value


def _raft_from_mapping(raw: object) -> RaftConfig:
    if not isinstance(raw, dict):
        raise _error("raft", raw, "a map")
    known = {f.name for f in dataclasses.fields(RaftConfig)}
    for key in raw:
        if key not in known:
            raise ConfigError(f"config key 'raft.{key}' is unknown")
    peers = raw.get("peers", [])
    if not isinstance(peers, list) or not all(isinstance(p, str) for p in peers):
        raise _error("raft.peers", peers, "a list of host:port strings")
    return RaftConfig(
        enabled=_typed(
            "raft.enabled", raw.get("enabled", False), bool, "true or false"
        ),
        node_id=_typed("raft.node_id", raw.get("node_id", 1), int, "an integer"),
        peers=tuple(peers),
        election_timeout_ms=_typed(
            "raft.election_timeout_ms",
            raw.get("election_timeout_ms", 1000),
            int,
            "an integer",
        ),
        heartbeat_interval_ms=_typed(
            "raft.heartbeat_interval_ms",
            raw.get("heartbeat_interval_ms", 300),
            int,
            "an integer",
        ),
    )
