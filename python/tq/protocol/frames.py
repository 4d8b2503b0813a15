"""Length-prefixed CBOR frames: the unit of tq's wire protocol.

A frame is a 4-byte big-endian unsigned length followed by that many bytes of
one CBOR-encoded map::

    +----------------+---------------------------+
    | length: u32 BE | body: CBOR map (length B) |
    +----------------+---------------------------+

The receiver checks the length against its limit before reading the body, so a
peer cannot make it buffer more than the limit.
"""

from __future__ import annotations

import struct
from typing import Any

import cbor2

from tq.errors import BadRequest, FrameTooLarge

__all__ = [
    "DEFAULT_MAX_FRAME_BYTES",
    "HEADER_BYTES",
    "FrameDecoder",
    "decode_body",
    "encode_frame",
]

_HEADER = struct.Struct(">I")
HEADER_BYTES = _HEADER.size
"""Size of the length prefix."""

DEFAULT_MAX_FRAME_BYTES = 16 * 1024 * 1024
"""Largest body accepted by default: a 10 MiB payload plus room for the rest."""

_MAX_NESTING = 16
_CONTAINERS = (dict, list)


def encode_frame(message: dict[str, Any]) -> bytes:
    """Encode one message as a frame.

    Args:
        message: A map of CBOR-encodable values.

    Returns:
        The length prefix followed by the CBOR body.
    """
    body = cbor2.dumps(message)
    return _HEADER.pack(len(body)) + body


def decode_body(body: bytes) -> dict[str, Any]:
    """Decode a frame body into a message map.

    Raises:
        BadRequest: The body is not well-formed CBOR, is not a map, or nests
            deeper than tq's messages ever do.
    """
    try:
        message = cbor2.loads(body)
    except (cbor2.CBORDecodeError, ValueError, TypeError, RecursionError) as exc:
        raise BadRequest(
            f"frame: expected one CBOR map, got undecodable bytes ({exc})"
        ) from exc
    if not isinstance(message, dict):
        raise BadRequest(f"frame: expected a CBOR map, got {type(message).__name__}")
    _check_depth(message)
    return message


def _check_depth(message: dict[str, Any]) -> None:
    """Refuse a message nesting deeper than `_MAX_NESTING` levels.

    Walks one level at a time and only into containers, so the scalars that
    make up nearly all of a message cost one type check each.
    """
    level: list[Any] = [message]
    for _ in range(_MAX_NESTING):
        inner: list[Any] = []
        for container in level:
            items = container.values() if type(container) is dict else container
            for item in items:
                if type(item) in _CONTAINERS:
                    inner.append(item)
        if not inner:
            return
        level = inner
    raise BadRequest(f"frame: expected at most {_MAX_NESTING} levels of nesting")


class FrameDecoder:
    """Split a byte stream into frame bodies, enforcing the size limit.

    Feed it bytes as they arrive; it hands back every complete body. A length
    over the limit raises at once, before any of the body is buffered.
    """

    def __init__(self, max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES) -> None:
        """Create a decoder.

        Args:
            max_frame_bytes: The largest body length accepted.
        """
        self.max_frame_bytes = max_frame_bytes
        self._buffer = bytearray()
        self._error: FrameTooLarge | None = None

    @property
    def buffered(self) -> int:
        """Bytes received but not yet part of a complete frame."""
        return len(self._buffer)

    @property
    def error(self) -> FrameTooLarge | None:
        """The oversized frame met after the bodies last returned, if any.

        Once set, the stream cannot be trusted any further: the caller should
        report it and close.
        """
        return self._error

    def feed(self, data: bytes | bytearray) -> list[bytes]:
        """Add received bytes and return the bodies completed by them.

        Raises:
            FrameTooLarge: A frame announced a body over the limit. Complete
                frames before it are returned first; the error comes on the
                call after.
        """
        if self._error is not None:
            raise self._error
        self._buffer += data
        bodies: list[bytes] = []
        while len(self._buffer) >= HEADER_BYTES:
            (length,) = _HEADER.unpack_from(self._buffer)
            if length > self.max_frame_bytes:
                self._error = FrameTooLarge(
                    f"frame: expected a body of at most {self.max_frame_bytes} "
                    f"bytes, got a length of {length}"
                )
                self._buffer.clear()
                if bodies:
                    return bodies
                raise self._error
            end = HEADER_BYTES + length
            if len(self._buffer) < end:
                break
            bodies.append(bytes(self._buffer[HEADER_BYTES:end]))
            del self._buffer[:end]
        return bodies
