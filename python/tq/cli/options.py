"""Options every client command shares, and the parsers of their values.

Values that need more than a type (durations, priorities, task ids) are parsed
here rather than by typer, so a bad one stops the command with a single line
that names the option, what it expects and what it got.
"""

from __future__ import annotations

import re
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer

from tq.cli.base import stop
from tq.client import Client, Priority
from tq.client.connection import tls_context

__all__ = [
    "CONNECT_TIMEOUT_S",
    "BrokerOption",
    "JsonOption",
    "TlsCaOption",
    "TlsOption",
    "TokenOption",
    "connect",
    "parse_duration",
    "parse_priority",
    "parse_task_id",
    "tls_setting",
]

CONNECT_TIMEOUT_S = 3.0
"""How long a command tries to reach the broker before giving up.

Short on purpose: a person at a terminal wants to hear quickly that the broker
is down, where a long-running program would rather wait for it.
"""

BrokerOption = Annotated[
    str,
    typer.Option("--broker", "-b", envvar="TQ_BROKER", help="The broker's HOST:PORT."),
]
TokenOption = Annotated[
    str | None,
    typer.Option(
        "--token",
        envvar="TQ_TOKEN",
        help="The broker's auth token.",
        show_default=False,
    ),
]
TlsOption = Annotated[
    bool,
    typer.Option(
        "--tls",
        envvar="TQ_TLS",
        help="Speak TLS to the broker, trusting the system's CA certificates.",
    ),
]
TlsCaOption = Annotated[
    str | None,
    typer.Option(
        "--tls-ca",
        envvar="TQ_TLS_CA",
        metavar="FILE",
        help="Trust the CA certificates of this PEM file instead (for a "
        "self-signed broker certificate, the certificate itself); implies --tls.",
        show_default=False,
    ),
]
JsonOption = Annotated[
    bool,
    typer.Option(
        "--json",
        help="Print JSON for scripts; payloads and results are base64, as in the "
        "REST API.",
    ),
]

DEFAULT_BROKER = "127.0.0.1:6379"

_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_TIERS = {"low": Priority.low(), "normal": Priority.normal(), "high": Priority.high()}


def parse_duration(text: str, option: str) -> float:
    """Seconds in a duration such as ``30s``, ``5m``, ``1h30m``, ``7d`` or ``250ms``.

    A plain number is seconds.

    Args:
        text: The value as typed.
        option: The option it came from, for the error message.

    Returns:
        The duration in seconds.

    Raises:
        CliError: ``text`` is not a duration.
    """
    value = text.strip().lower()
    if _NUMBER.fullmatch(value):
        return float(value)
    parts = _DURATION_PART.findall(value)
    if not value or "".join(n + u for n, u in parts) != value:
        stop(
            f"{option}: expected a duration such as 30s, 5m, 1h30m or 7d, got {text!r}"
        )
    return sum(float(number) * _UNIT_S[unit] for number, unit in parts)


def parse_priority(text: str) -> int:
    """A priority given as a number from 0 to 255 or as ``low``, ``normal``, ``high``.

    Args:
        text: The value as typed.

    Returns:
        The priority (50, 150 and 250 for the named tiers).

    Raises:
        CliError: ``text`` is neither.
    """
    value = text.strip().lower()
    if value in _TIERS:
        return _TIERS[value]
    if value.isdigit() and 0 <= int(value) <= 255:
        return int(value)
    stop(f"--priority: expected 0 to 255, or low, normal or high; got {text!r}")


def parse_task_id(text: str) -> int:
    """A task id: a positive integer.

    Args:
        text: The value as typed.

    Returns:
        The id.

    Raises:
        CliError: ``text`` is not a positive integer.
    """
    value = text.strip()
    if not value.isdigit() or int(value) == 0:
        stop(f"task id: expected a positive integer, got {text!r}")
    return int(value)


def tls_setting(tls: bool, tls_ca: str | None) -> ssl.SSLContext | None:
    """The TLS context that ``--tls`` and ``--tls-ca`` ask for.

    Args:
        tls: Whether ``--tls`` was given.
        tls_ca: The ``--tls-ca`` file, if one was given.

    Returns:
        The context, or None for plain TCP.

    Raises:
        CliError: The CA file cannot be read as PEM certificates.
    """
    try:
        return tls_context(tls, tls_ca)
    except ValueError as exc:
        stop("--tls-ca" + str(exc).removeprefix("tls_ca"))


@contextmanager
def connect(
    address: str, token: str | None, tls: bool = False, tls_ca: str | None = None
) -> Iterator[Client]:
    """A client connected to the broker, closed on exit.

    Args:
        address: The broker's ``HOST:PORT``.
        token: Its auth token, if it has one.
        tls: Whether to speak TLS (``--tls``).
        tls_ca: The CA file to trust (``--tls-ca``); implies TLS.

    Yields:
        The connected client.

    Raises:
        CliError: The address is malformed, or the CA file cannot be read.
        ConnectionLost: The broker was not reachable within `CONNECT_TIMEOUT_S`,
            or TLS could not be set up with it (`TlsError`).
        Unauthorized: The broker refused the token.
    """
    context = tls_setting(tls, tls_ca)
    try:
        client = Client.connect(
            address,
            token=token,
            tls=context or False,
            reconnect_timeout=CONNECT_TIMEOUT_S,
        )
    except ValueError as exc:
        stop(str(exc))
    with client:
        yield client
