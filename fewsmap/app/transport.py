"""One send for an answer's head and body: a transport that holds a small write briefly.

uvicorn writes an answer's status line and headers as soon as the app starts the answer,
and its body when the app sends it: two ``send`` calls and two TCP segments, each waking the
client, for every tile and time series (on loopback the first costs about as much as the
second; ``transport.write`` was 9-17 % of a worker's CPU under py-spy). `HeldWrites` keeps
a small write until the next one (the body, a moment later in the same loop turn) and sends
both as one at once (not at the turn's end: the answer leaves before the worker's
bookkeeping after it, which then overlaps the client's reading); what is held goes out at
the end of the loop turn regardless, and before the transport closes, so a head whose body
comes later (a streamed answer) or never (HEAD, 304) is not delayed beyond that turn.
"""

from __future__ import annotations

import asyncio
from typing import Any

# Writes up to this size are held (an answer's head: 150-600 bytes); a following write of
# up to COALESCE_BYTES is joined to them, a larger one sent after them without a copy.
HOLD_BYTES = 4096
COALESCE_BYTES = 256 << 10


class HeldWrites(asyncio.Transport):
    """``transport`` with a small write held until the next write or the loop turn's end."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self._transport = transport
        self._loop = loop
        self._held = b""

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not self._held:
            if len(data) > HOLD_BYTES:
                self._transport.write(data)
                return
            self._held = bytes(data)
            self._loop.call_soon(self.flush)
        elif len(data) <= COALESCE_BYTES:  # the body: both go out now, in one send
            held, self._held = self._held, b""
            self._transport.write(held + data)
        else:
            self.flush()
            self._transport.write(data)

    def flush(self) -> None:
        """Send what is held."""
        if self._held:
            held, self._held = self._held, b""
            if not self._transport.is_closing():
                self._transport.write(held)

    def writelines(self, list_of_data: Any) -> None:
        self.write(b"".join(list_of_data))

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def abort(self) -> None:
        self._held = b""
        self._transport.abort()

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def can_write_eof(self) -> bool:
        return self._transport.can_write_eof()

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + len(self._held)

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._transport.get_write_buffer_limits()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._transport.set_write_buffer_limits(high, low)

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._transport.get_extra_info(name, default)

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._transport.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._transport.get_protocol()

    def pause_reading(self) -> None:
        self._transport.pause_reading()

    def resume_reading(self) -> None:
        self._transport.resume_reading()

    def is_reading(self) -> bool:
        return self._transport.is_reading()
