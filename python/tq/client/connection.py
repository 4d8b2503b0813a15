"""Addresses, TLS, the hello, and how both clients back off while reconnecting."""

from __future__ import annotations

import os
import re
import socket
import ssl
from dataclasses import dataclass, field
from typing import Any

from tq.errors import TlsError, TooManyConnections, TqError, error_for_code
from tq.protocol import PROTOCOL_VERSION

__all__ = [
    "REFUSALS",
    "Backoff",
    "TlsSetting",
    "WorkerHello",
    "hello_args",
    "hello_refusal",
    "parse_address",
    "tls_context",
    "tls_failure",
]

TlsSetting = bool | ssl.SSLContext
"""What a client's ``tls`` argument takes: off, on with default trust, or a
context of the caller's own."""

REFUSALS = (TlsError, TooManyConnections)
"""Errors that end connecting at once: trying again soon would meet them again."""

DEFAULT_PORT = 6379


def parse_address(address: str) -> tuple[str, int]:
    """Split ``HOST:PORT`` (or ``HOST``, for the default port 6379).

    Raises:
        ValueError: The port is not a number from 1 to 65535.
    """
    host, sep, port_text = address.rpartition(":")
    if not sep:
        return address, DEFAULT_PORT
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"broker address: expected HOST:PORT, got {address!r}")
    return host.strip("[]") or "127.0.0.1", int(port_text)


def tls_context(
    tls: TlsSetting, tls_ca: str | os.PathLike[str] | None
) -> ssl.SSLContext | None:
    """The client-side TLS context for a client's ``tls`` and ``tls_ca``.

    Args:
        tls: False for plain TCP (unless ``tls_ca`` is given), True for TLS
            that trusts the system's certificate authorities, or a context to
            use as it is.
        tls_ca: A PEM file of the certificate authorities to trust instead of
            the system's (a self-signed broker certificate is its own); implies
            TLS.

    Returns:
        The context, or None for plain TCP. It checks the broker's certificate
        and that it names the host of the broker's address.

    Raises:
        ValueError: ``tls_ca`` cannot be read as PEM certificates, or comes
            with a context of the caller's own.
    """
    if isinstance(tls, ssl.SSLContext):
        if tls_ca is not None:
            raise ValueError(
                "tls_ca: expected None with an ssl.SSLContext as tls (load the CA "
                f"into the context instead), got {os.fspath(tls_ca)!r}"
            )
        return tls
    if not tls and tls_ca is None:
        return None
    if tls_ca is None:
        return ssl.create_default_context()
    try:
        return ssl.create_default_context(cafile=os.fspath(tls_ca))
    except (OSError, ssl.SSLError) as exc:
        raise ValueError(
            f"tls_ca: expected a readable PEM file of CA certificates, got "
            f"{os.fspath(tls_ca)!r} ({_ssl_reason(exc)})"
        ) from exc


def tls_failure(error: BaseException, address: str) -> TlsError | None:
    """A clear `TlsError` for a failed TLS handshake, or None if it was not one.

    A connection that merely closed during the handshake is not a TLS failure:
    that may pass, and connecting is tried again.

    Args:
        error: What connecting raised: an ``ssl.SSLError`` from a socket, or
            the ``trio.BrokenResourceError`` that wraps one.
        address: The broker's address, for the message.

    Returns:
        The error to raise at once, naming what to change; or None.
    """
    cause = error if isinstance(error, ssl.SSLError) else error.__cause__
    if not isinstance(cause, ssl.SSLError) or isinstance(
        cause, ssl.SSLEOFError | ssl.SSLZeroReturnError
    ):
        return None
    if isinstance(cause, ssl.SSLCertVerificationError) and cause.verify_code in (
        _HOSTNAME_MISMATCH,
        _IP_ADDRESS_MISMATCH,
    ):
        return TlsError(
            f"the broker at {address} presented a certificate for another name "
            f"({cause.verify_message.rstrip('.')}); connect by a name the "
            "certificate holds, or give the broker a certificate for this one"
        )
    if isinstance(cause, ssl.SSLCertVerificationError):
        return TlsError(
            f"the broker at {address} presented a certificate this client does "
            f"not trust ({cause.verify_message}); pass the CA certificate that "
            "signed it as tls_ca (--tls-ca, TQ_TLS_CA)"
        )
    return TlsError(
        f"TLS handshake with the broker at {address} failed ({_ssl_reason(cause)}); "
        "check that the broker serves TLS (tls_cert and tls_key in its config)"
    )


def hello_refusal(response: dict[str, Any], address: str) -> TqError | None:
    """The error of a broker that refused the connection before the hello.

    A broker that will not serve a connection (one past its max_connections,
    or a plain one on its TLS port) says why in one frame without an id before
    it closes.

    Args:
        response: A response read while waiting for the hello's answer.
        address: The broker's address, for the message.

    Returns:
        The refusal as its class (`TooManyConnections`, `TlsRequired`), to
        raise at once; None for any other response.
    """
    if response.get("id") is not None or response.get("ok") is not False:
        return None
    error = response.get("error") or {}
    code, message = str(error.get("code", "")), str(error.get("message", ""))
    return error_for_code(
        code, f"the broker at {address} refused the connection: {message}"
    )


# OpenSSL's X509_V_ERR_HOSTNAME_MISMATCH and X509_V_ERR_IP_ADDRESS_MISMATCH.
_HOSTNAME_MISMATCH = 62
_IP_ADDRESS_MISMATCH = 64
_OPENSSL_SUFFIX = re.compile(r"\s*\(_ssl\.c:\d+\)$")


def _ssl_reason(error: OSError) -> str:
    if isinstance(error, ssl.SSLError) and error.reason:
        return str(error.reason).lower().replace("_", " ")
    return _OPENSSL_SUFFIX.sub("", error.strerror or str(error))


@dataclass(frozen=True)
class WorkerHello:
    """Who a worker is, said in its hello."""

    worker_id: str
    concurrency: int = 1
    task_types: tuple[str, ...] = ()
    hostname: str = field(default_factory=socket.gethostname)
    pid: int = field(default_factory=os.getpid)


def hello_args(token: str | None, worker: WorkerHello | None) -> dict[str, Any]:
    """The arguments of a hello."""
    args: dict[str, Any] = {"version": PROTOCOL_VERSION, "client": "tq-python"}
    if token is not None:
        args["token"] = token
    if worker is not None:
        args.update(
            worker_id=worker.worker_id,
            concurrency=worker.concurrency,
            hostname=worker.hostname,
            pid=worker.pid,
        )
        if worker.task_types:
            args["task_types"] = list(worker.task_types)
    return args


@dataclass
class Backoff:
    """Delays between reconnect attempts: doubling from ``first_s`` to ``max_s``."""

    first_s: float = 0.05
    max_s: float = 2.0
    _next_s: float = 0.0

    def next_delay(self) -> float:
        """The delay before the next attempt."""
        self._next_s = (
            self.first_s if self._next_s == 0 else min(self._next_s * 2, self.max_s)
        )
        return self._next_s

    def reset(self) -> None:
        """Start again from ``first_s`` after a success."""
        self._next_s = 0.0
