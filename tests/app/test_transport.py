"""An answer's head waits for its body, on real sockets (fewsmap/app/transport.py).

Whether bytes were sent is seen at the other end of a socket pair: a non-blocking read there
finds them at once once they are sent, within the same loop turn.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable

from fewsmap.app.transport import COALESCE_BYTES, HOLD_BYTES, HeldWrites

HEAD = b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\n"
Test = Callable[[HeldWrites, socket.socket], Awaitable[None]]


def run(test: Test) -> None:
    """Run ``test`` with a held-writes transport over one end of a socket pair and the
    other end (non-blocking) to read what was sent."""
    async def main() -> None:
        ours, theirs = socket.socketpair()
        theirs.setblocking(False)
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_connection(asyncio.Protocol, sock=ours)
        try:
            await test(HeldWrites(transport, loop), theirs)
        finally:
            transport.abort()
            theirs.close()
    asyncio.run(main())


def sent(peer: socket.socket) -> bytes:
    """Everything sent so far (the peer's non-blocking reads)."""
    found = b""
    while True:
        try:
            data = peer.recv(1 << 20)
        except BlockingIOError:
            return found
        if not data:
            return found + b"<EOF>"
        found += data


def test_a_head_goes_out_with_its_body_in_one_send() -> None:
    async def test(transport: HeldWrites, peer: socket.socket) -> None:
        transport.write(HEAD)
        assert sent(peer) == b"" and transport.get_write_buffer_size() == len(HEAD)
        transport.write(b"body")  # joined to the head and sent at once
        assert sent(peer) == HEAD + b"body"
        await asyncio.sleep(0)
        assert sent(peer) == b""  # nothing held back for the loop turn's end
    run(test)


def test_a_head_alone_goes_out_when_the_loop_turn_ends() -> None:
    """A streamed answer's body may come much later, a HEAD answer's never."""
    async def test(transport: HeldWrites, peer: socket.socket) -> None:
        transport.write(HEAD)
        await asyncio.sleep(0)
        assert sent(peer) == HEAD
        transport.write(b"late body" * 1000)  # larger than what is held: sent at once
        assert sent(peer) == b"late body" * 1000
    run(test)


def test_a_large_body_follows_its_head_without_being_joined() -> None:
    async def test(transport: HeldWrites, peer: socket.socket) -> None:
        big = bytes(range(256)) * (COALESCE_BYTES // 256 + 1)
        transport.write(HEAD)
        transport.write(big)
        received = b""
        for _ in range(1000):  # the socket pair's buffer takes it in parts
            received += sent(peer)
            if len(received) >= len(HEAD) + len(big):
                break
            await asyncio.sleep(0.001)
        assert received == HEAD + big
    run(test)


def test_large_writes_are_never_held() -> None:
    async def test(transport: HeldWrites, peer: socket.socket) -> None:
        transport.write(bytes(HOLD_BYTES + 1))
        assert sent(peer) == bytes(HOLD_BYTES + 1)
    run(test)


def test_closing_sends_what_is_held_and_aborting_drops_it() -> None:
    async def close(transport: HeldWrites, peer: socket.socket) -> None:
        transport.write(HEAD)
        transport.close()
        await asyncio.sleep(0.01)
        assert sent(peer) == HEAD + b"<EOF>"

    async def abort(transport: HeldWrites, peer: socket.socket) -> None:
        transport.write(HEAD)
        transport.abort()
        await asyncio.sleep(0.01)
        assert sent(peer) == b"<EOF>"
    run(close)
    run(abort)
