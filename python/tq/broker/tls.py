"""TLS for the broker's ports, from the certificate and key of its config.

With ``tls_cert`` and ``tls_key`` set, every port serves TLS: the TCP protocol
port (`tq.broker.server`), the REST and WebSocket port and the metrics port
(hypercorn, `tq.broker.http`) and the gRPC port (`tq.broker.grpc_server`).
The files are read and checked once at start-up by `check_files`, so a bad
path or a key that does not fit the certificate stops the broker before it
listens; each front end then loads them again in the form its library takes.

Clients are not asked for certificates: they prove who they are with the
token, inside the encrypted connection.
"""

from __future__ import annotations

import re
import ssl
from pathlib import Path

__all__ = ["TlsFileError", "check_files", "server_context"]


class TlsFileError(ValueError):
    """A TLS file of the config cannot be used.

    Attributes:
        key: The config key naming the file (``tls_cert`` or ``tls_key``).
        expected: What the file must be.
        reason: What is wrong with it.
    """

    def __init__(self, key: str, expected: str, reason: str) -> None:
        """Describe what is wrong with the file of ``key``."""
        super().__init__(f"{key}: expected {expected} ({reason})")
        self.key = key
        self.expected = expected
        self.reason = reason


_CERT_EXPECTED = "a readable PEM certificate file"
_KEY_EXPECTED = "a readable, unencrypted PEM private key of the tls_cert certificate"


def _no_password() -> str:
    # Without a callback, OpenSSL would prompt on the terminal for the
    # passphrase of an encrypted key and block start-up.
    raise TlsFileError("tls_key", _KEY_EXPECTED, "the key is encrypted")


def server_context(cert_path: str, key_path: str) -> ssl.SSLContext:
    """A server-side TLS context holding the broker's certificate and key.

    TLS 1.2 is the oldest version accepted; clients need not present a
    certificate.

    Args:
        cert_path: PEM file of the certificate (and any intermediates).
        key_path: PEM file of its private key, unencrypted.

    Returns:
        The context, for `trio.SSLStream`.

    Raises:
        TlsFileError: A file is missing, unreadable or not what it should be.
    """
    check_files(cert_path, key_path)
    return _load(cert_path, key_path)


def check_files(cert_path: str, key_path: str) -> None:
    """Check that the certificate and key can serve TLS together.

    Raises:
        TlsFileError: Naming the key of the first file that cannot be used.
    """
    _readable("tls_cert", cert_path, _CERT_EXPECTED)
    _readable("tls_key", key_path, _KEY_EXPECTED)
    # The certificate alone first, so that a bad one is not blamed on the key.
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_verify_locations(cert_path)
    except ssl.SSLError as exc:
        raise TlsFileError("tls_cert", _CERT_EXPECTED, _reason(exc)) from exc
    try:
        _load(cert_path, key_path)
    except ssl.SSLError as exc:
        raise TlsFileError("tls_key", _KEY_EXPECTED, _reason(exc)) from exc


def _load(cert_path: str, key_path: str) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert_path, key_path, password=_no_password)
    return context


def _readable(key: str, path: str, expected: str) -> None:
    try:
        Path(path).read_bytes()
    except OSError as exc:
        raise TlsFileError(
            key, expected, f"cannot read it: {exc.strerror or exc}"
        ) from exc


_OPENSSL_SUFFIX = re.compile(r"\s*\(_ssl\.c:\d+\)$")
# OpenSSL's words for the common mistakes, and tq's. "PEM lib" comes without
# a reason code when a file holds no PEM block of the kind asked for.
_READABLE_REASONS = {
    "PEM lib": "no PEM block of the right kind in the file",
    "KEY_VALUES_MISMATCH": "the key does not belong to the certificate",
    "NO_CERTIFICATE_OR_CRL_FOUND": "no certificate in the file",
}


def _reason(exc: ssl.SSLError) -> str:
    text = str(exc)
    for known, readable in _READABLE_REASONS.items():
        if known == exc.reason or known in text:
            return readable
    return _OPENSSL_SUFFIX.sub("", text) or type(exc).__name__
