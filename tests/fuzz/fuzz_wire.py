"""Coverage-guided fuzzing (atheris) of what the broker does with received bytes.

Usage: python tests/fuzz/fuzz_wire.py -atheris_runs=1000000 [corpus dir]

Each input is cut into chunks fed one by one to a `FrameDecoder` with a small
frame limit; every body that comes out is decoded, its request id read, and
its arguments read the ways the broker's ops read them (task specs, task ids,
and each typed accessor on each field present). The only exceptions allowed
are tq's `BadRequest` and `FrameTooLarge`: anything else is a crash, and
atheris stops with the input that caused it.
"""

from __future__ import annotations

import contextlib
import sys
from typing import Any

import atheris

with atheris.instrument_imports():
    from tq.broker.specs import spec_from_args, task_id_from_args
    from tq.errors import BadRequest, FrameTooLarge
    from tq.protocol import Args
    from tq.protocol.frames import FrameDecoder, decode_body

MAX_FRAME_BYTES = 4096
ALLOWED = (BadRequest, FrameTooLarge)


def read_request(body: bytes) -> None:
    """Read a body the ways the broker reads a request."""
    message = decode_body(body)
    request_id = message.get("id")
    if not isinstance(request_id, int) or isinstance(request_id, bool):
        raise BadRequest("id: not an integer")
    args = Args(message.get("args"))
    spec_from_args(args, MAX_FRAME_BYTES)
    task_id_from_args(args)


def read_each_field(args: Args) -> None:
    """Every typed accessor on every field present, each on its own."""
    for field in [key for key in args.raw if isinstance(key, str)]:
        for read in _ACCESSORS:
            with contextlib.suppress(BadRequest):
                read(args, field)


_ACCESSORS: list[Any] = [
    lambda a, f: a.integer(f, low=0, high=2**63 - 1),
    lambda a, f: a.optional_integer(f, low=1, high=1000),
    lambda a, f: a.name(f),
    lambda a, f: a.optional_name(f),
    lambda a, f: a.text(f, max_len=64),
    lambda a, f: a.blob(f, max_len=64),
    lambda a, f: a.optional_blob(f, max_len=64),
    lambda a, f: a.flag(f, default=False),
    lambda a, f: a.items(f, max_len=8),
    lambda a, f: a.names(f, max_len=8),
]


def fuzz_one_input(data: bytes) -> None:
    provider = atheris.FuzzedDataProvider(data)
    decoder = FrameDecoder(MAX_FRAME_BYTES)
    while provider.remaining_bytes():
        chunk = provider.ConsumeBytes(provider.ConsumeIntInRange(1, 512))
        try:
            bodies = decoder.feed(chunk)
        except FrameTooLarge:
            return
        for body in bodies:
            with contextlib.suppress(*ALLOWED):
                read_request(body)
            with contextlib.suppress(*ALLOWED):
                read_each_field(Args(decode_body(body).get("args")))


def main() -> None:
    atheris.Setup(sys.argv, fuzz_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
