"""A connection's reads and writes, with few trips through trio's scheduler.

`trio.SocketStream.receive_some` tries ``recv`` first, and on a connection
whose peer waits for its answer before sending again there is nothing there
yet: the try fails, the task waits for the socket, tries again, and ends the
read with a scheduling checkpoint. That is three trips through the scheduler
and a failed syscall for each request, a good part of what one request costs
a busy broker. `receiver` waits for the socket first and then reads once.

Frames go the other way by writing them to the socket at once, when nothing
else is on its way and the socket has room, which is nearly always: a client's
request is written by the task that makes it (`FrameSender`), and the broker's
answer by whoever has it ready, without waking the connection's writer task
(`Outbox`). Only what the socket cannot take yet waits for trio's ``send_all``.

TLS connections read and write through their `trio.SSLStream`, which has its
own buffering; only plain TCP connections take the short paths.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable

import trio

__all__ = ["FrameSender", "Outbox", "receiver"]


def receiver(
    stream: trio.abc.ReceiveStream, max_bytes: int
) -> Callable[[], Awaitable[bytes | bytearray]]:
    """A function reading up to ``max_bytes`` from ``stream``, like ``receive_some``.

    It returns ``b""`` at end of stream and raises `trio.BrokenResourceError`
    when the connection breaks, as ``receive_some`` does.
    """
    if not isinstance(stream, trio.SocketStream):
        return lambda: stream.receive_some(max_bytes)
    sock = stream.socket
    fd = sock.fileno()

    async def receive() -> bytes:
        while True:
            await trio.lowlevel.wait_readable(sock)
            try:
                return os.read(fd, max_bytes)
            except BlockingIOError:
                # Readable, then not (a spurious wakeup): wait again.
                continue
            except OSError as exc:
                raise trio.BrokenResourceError(
                    f"reading the connection failed: {exc}"
                ) from exc

    return receive


class FrameSender:
    """Sends frames on one stream for many tasks, each frame whole and in turn."""

    def __init__(self, stream: trio.abc.SendStream) -> None:
        """Create the sender of ``stream``."""
        self._stream = stream
        self._fd = _plain_fd(stream)
        self._lock = trio.Lock()
        self._closed = False

    def close(self) -> None:
        """Send no more; call it before the stream closes."""
        self._closed = True

    async def send(self, frame: bytes) -> None:
        """Send ``frame`` after the frames already on their way.

        A frame the socket takes at once is written without a checkpoint: the
        caller is about to wait for its answer anyway.

        Raises:
            trio.ClosedResourceError: `close` was called.
            trio.BrokenResourceError: The connection broke.
        """
        if self._closed:
            raise trio.ClosedResourceError("the connection is closed")
        if self._fd is None or self._lock.locked():
            async with self._lock:
                await self._stream.send_all(frame)
            return
        written = _write_some(self._fd, frame)
        if written == len(frame):
            return
        # Taken before the next checkpoint: no other frame can cut in.
        self._lock.acquire_nowait()
        try:
            await self._stream.send_all(memoryview(frame)[written:])
        finally:
            self._lock.release()


class Outbox:
    """The answers on their way to one peer, in the order they were put.

    `put` never waits. On a plain TCP connection with nothing queued it writes
    the frame to the socket at once, and what the socket does not take, with
    every frame put after it, waits for `run`, the connection's writer, which
    sends it all in one write when the socket has room. Each frame may carry
    a request token, given to ``on_written`` once the whole frame is written.
    """

    def __init__(
        self, stream: trio.abc.SendStream, on_written: Callable[[object], None]
    ) -> None:
        """Create the outbox of ``stream``; start `run` to drain it."""
        self._stream = stream
        self._fd = _plain_fd(stream)
        self._on_written = on_written
        self._frames: list[bytes] = []
        self._requests: list[object] = []
        self._queued = trio.Event()
        self._sending = False
        self._closed = False

    def put(self, frame: bytes, request: object = None) -> None:
        """Write ``frame`` now if the socket takes it, else queue it for `run`.

        After `close` it is dropped: nobody is left to read it.
        """
        if self._closed:
            return
        if self._fd is not None and not self._frames and not self._sending:
            written = self._write_now(frame)
            if written == len(frame):
                self._written(request)
                return
            frame = frame[written:]
        self._frames.append(frame)
        self._requests.append(request)
        self._queued.set()

    def close(self) -> None:
        """Take no more frames; `run` returns once the queued ones are sent."""
        self._closed = True
        self._queued.set()

    async def run(self) -> None:
        """Send queued frames until `close`, then what is left, then return.

        Raises:
            trio.BrokenResourceError: The connection broke.
        """
        while True:
            if not self._frames:
                if self._closed:
                    return
                await self._queued.wait()
                self._queued = trio.Event()
                continue
            frames, requests = self._frames, self._requests
            self._frames, self._requests = [], []
            self._sending = True
            try:
                await self._stream.send_all(b"".join(frames))
            finally:
                self._sending = False
            for request in requests:
                self._written(request)

    def _write_now(self, frame: bytes) -> int:
        assert self._fd is not None
        try:
            return _write_some(self._fd, frame)
        except trio.BrokenResourceError:
            # The writer's send_all meets the same break and reports it.
            return 0

    def _written(self, request: object) -> None:
        if request is not None:
            self._on_written(request)


def _write_some(fd: int, frame: bytes) -> int:
    """Write what the socket takes now, without waiting: how many bytes.

    Raises:
        trio.BrokenResourceError: The connection broke.
    """
    try:
        return os.write(fd, frame)
    except BlockingIOError:
        return 0
    except OSError as exc:
        raise trio.BrokenResourceError(f"writing the connection failed: {exc}") from exc


def _plain_fd(stream: object) -> int | None:
    """The file descriptor of a plain TCP stream; None for any other stream."""
    if isinstance(stream, trio.SocketStream):
        return stream.socket.fileno()
    return None
