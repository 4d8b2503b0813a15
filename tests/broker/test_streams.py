"""The connection reader, frame sender and outbox, on real TCP sockets.

Each test opens a real loopback TCP connection; the side under test is a
`trio.SocketStream`, so the short paths (reads and writes straight on the
socket's file descriptor) are the ones exercised, and a small send buffer
makes the socket full when a test needs it to be.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator

import pytest
import trio

from tq.protocol.streams import FrameSender, Outbox, receiver

SMALL_BUFFER = 4096
BIG_FRAME = b"x" * (4 * 1024 * 1024)


@pytest.fixture
async def pair() -> AsyncIterator[tuple[trio.SocketStream, trio.SocketStream]]:
    """A connected pair of TCP streams (the near one under test, the far one)."""
    listener = (await trio.open_tcp_listeners(0, host="127.0.0.1"))[0]
    port = listener.socket.getsockname()[1]
    near = await trio.open_tcp_stream("127.0.0.1", port)
    far = await listener.accept()
    near.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SMALL_BUFFER)
    try:
        yield near, far
    finally:
        for stream in (near, far):
            await trio.aclose_forcefully(stream)
        await listener.aclose()


async def read_exactly(stream: trio.SocketStream, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        chunk = await stream.receive_some(65536)
        assert chunk, f"end of stream after {len(data)} of {size} bytes"
        data += chunk
    return bytes(data)


async def reset_by_far_side(near: trio.SocketStream, far: trio.SocketStream) -> None:
    """Reset the connection from the far side, and let the reset arrive."""
    await near.send_all(b"unread")
    await trio.sleep(0.05)
    # Closing with bytes unread makes the kernel send a reset.
    far.socket.close()
    await trio.sleep(0.05)


async def test_receiver_reads_what_arrives_then_end_of_stream(
    pair: tuple[trio.SocketStream, trio.SocketStream],
) -> None:
    near, far = pair
    receive = receiver(near, 65536)
    await far.send_all(b"hello")
    assert await receive() == b"hello"
    await far.send_eof()
    assert await receive() == b""


async def test_receiver_raises_broken_resource_on_a_reset(
    pair: tuple[trio.SocketStream, trio.SocketStream],
) -> None:
    near, far = pair
    await reset_by_far_side(near, far)
    receive = receiver(near, 65536)

    async def read_to_the_end() -> None:
        while await receive():
            pass

    with pytest.raises(trio.BrokenResourceError, match="reading the connection"):
        await read_to_the_end()


async def test_receiver_is_cancellable_while_waiting(
    pair: tuple[trio.SocketStream, trio.SocketStream],
) -> None:
    near, _ = pair
    with trio.move_on_after(0.05) as scope:
        await receiver(near, 65536)()
    assert scope.cancelled_caught


async def test_sender_keeps_frames_whole_and_in_order_past_a_full_socket(
    pair: tuple[trio.SocketStream, trio.SocketStream],
) -> None:
    near, far = pair
    sender = FrameSender(near)
    frames = [BIG_FRAME, b"second", b"third" * 1000, b"fourth"]
    expected = b"".join(frames)
    async with trio.open_nursery() as nursery:
        # The big frame fills the socket and waits; the others must queue
        # behind it, not cut into it.
        for frame in frames:
            nursery.start_soon(sender.send, frame)
            await trio.testing.wait_all_tasks_blocked()
        assert await read_exactly(far, len(expected)) == expected


async def test_sender_refuses_after_close(
    pair: tuple[trio.SocketStream, trio.SocketStream],
) -> None:
    near, _ = pair
    sender = FrameSender(near)
    sender.close()
    with pytest.raises(trio.ClosedResourceError):
        await sender.send(b"late")


async def test_outbox_writes_at_once_and_queues_past_a_full_socket(
    pair: tuple[trio.SocketStream, trio.SocketStream],
) -> None:
    near, far = pair
    written: list[object] = []
    outbox = Outbox(near, written.append)
    # No writer running yet: a frame the socket takes is written by put.
    outbox.put(b"small", "first")
    assert written == ["first"]
    assert await read_exactly(far, 5) == b"small"
    # One the socket cannot take waits for the writer, and so does every
    # frame put after it, in order.
    outbox.put(BIG_FRAME, "big")
    outbox.put(b"after", "after")
    outbox.put(b"no request")
    assert written == ["first"]
    expected = BIG_FRAME + b"after" + b"no request"
    async with trio.open_nursery() as nursery:
        nursery.start_soon(outbox.run)
        assert await read_exactly(far, len(expected)) == expected
        outbox.close()
    assert written == ["first", "big", "after"]


async def test_outbox_drops_frames_after_close(
    pair: tuple[trio.SocketStream, trio.SocketStream],
) -> None:
    near, far = pair
    written: list[object] = []
    outbox = Outbox(near, written.append)
    outbox.close()
    outbox.put(b"late", "late")
    await outbox.run()
    await near.send_eof()
    assert await far.receive_some(65536) == b""
    assert written == []


async def test_outbox_writer_reports_a_broken_connection(
    pair: tuple[trio.SocketStream, trio.SocketStream],
) -> None:
    near, far = pair
    await reset_by_far_side(near, far)
    written: list[object] = []
    outbox = Outbox(near, written.append)
    # The write fails at once; the frame waits for the writer, which raises.
    outbox.put(b"answer", "request")
    with pytest.raises(trio.BrokenResourceError), trio.fail_after(5):
        await outbox.run()
    assert written == []
