"""tq's wire protocol: frames, messages and their fields.

The protocol knows `cbor2` and `tq.errors`, nothing of the broker or client;
`tq.protocol.streams`, which moves frames over trio streams, also knows trio.
"""

from tq.protocol.frames import (
    DEFAULT_MAX_FRAME_BYTES,
    HEADER_BYTES,
    FrameDecoder,
    decode_body,
    encode_frame,
)
from tq.protocol.messages import (
    PROTOCOL_VERSION,
    Args,
    Op,
    error_response,
    ok_response,
    request,
)

__all__ = [
    "DEFAULT_MAX_FRAME_BYTES",
    "HEADER_BYTES",
    "PROTOCOL_VERSION",
    "Args",
    "FrameDecoder",
    "Op",
    "decode_body",
    "encode_frame",
    "error_response",
    "ok_response",
    "request",
]
