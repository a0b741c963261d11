"""Connections of one worker: bounded time to send a request head, to read an answer, and a
bounded number of open connections (issue #13 item 13).

uvicorn's ``timeout_keep_alive`` starts only after a first response: a connection that sends
nothing, or half a request head, was kept forever (watched 200 s), and 2,200 of them
exhausted a 1,024 file limit, stopping GetMap. `GuardedProtocol` adds to uvicorn's
httptools protocol (the C parser of uvicorn's "standard" set: a request's HTTP costs its
worker 0.10 ms of CPU where h11, in Python, took 0.24 ms; 8-13 % more tiles per second):

- a request head (request line and headers) must be complete within ``header_timeout_s`` of
  the connection opening, or of the first byte of a later request on a kept-alive
  connection (idle kept-alive connections keep uvicorn's keep-alive timeout), and within
  `MAX_HEAD_BYTES` (else 431 and the connection closes: the parser sets no limit);
- a connection whose client does not read for ``send_timeout_s`` (the server's buffer for it
  full all that time) is dropped with what it had buffered, which ends its answer and frees
  its share of the bytes in flight (fewsmap/app/streaming.py); so is a connection closed
  with bytes its client has not read for ``send_timeout_s`` (asyncio's ``close`` waits for
  them forever, holding the file descriptor);
- at most ``max_connections`` are open: a new connection beyond them closes the connection
  that has waited longest for a request head, or is answered 503 if every connection is
  busy. The default keeps a worker below its open-file limit, so accepting never fails for
  lack of file descriptors.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import resource
import time
from collections.abc import Callable
from typing import Any, ClassVar

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from fewsmap.app.limits import ignore_event
from fewsmap.app.transport import HeldWrites
from fewsmap.settings import Settings

log = logging.getLogger(__name__)
# File descriptors kept for everything but client connections (store files, libraries, the
# listening socket, logs), and for connections accepted but not yet checked against the cap:
# asyncio accepts up to a batch (uvicorn's backlog) at a time and makes a connection's
# protocol, checks it and frees a refused one's descriptor over the next loop turns, so up to
# ACCEPT_BATCHES batches are in flight. Measured with a 1,024 file limit and 2,200 idle
# sockets: with one batch of 512 reserved, accept() still ran out of descriptors.
RESERVED_FILES = 128
ACCEPT_BATCH = 128
ACCEPT_BATCHES = 4
MIN_CONNECTIONS = 16
# How often closed connections are checked for a client that never reads what is left.
SWEEP_EVERY_S = 1.0
SWEEPING = "fewsmap_sweeping"  # marks uvicorn's ServerState once its sweep runs
REFUSED = b"too many open connections to this worker (max_connections); retry"
REFUSAL = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"
           b"Content-Length: %d\r\nRetry-After: 1\r\nConnection: close\r\n\r\n%s"
           % (len(REFUSED), REFUSED))
# The longest request head (request line and headers) read: h11 allowed 16 KiB; GET URLs
# with an SLD_BODY run longer, and nginx's default buffers take 32 KiB.
MAX_HEAD_BYTES = 64 << 10
HEAD_TOO_LARGE = b"request head (request line and headers) longer than 64 KiB"
HEAD_REFUSAL = (b"HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Type: text/plain; "
                b"charset=utf-8\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s"
                % (len(HEAD_TOO_LARGE), HEAD_TOO_LARGE))


def connection_cap(settings: Settings) -> int:
    """The most connections a worker keeps open: ``max_connections``, or by default what
    the open-file limit allows after `RESERVED_FILES` and `ACCEPT_BATCHES` accept batches."""
    if settings.max_connections:
        return settings.max_connections
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return 1 << 16
    return max(MIN_CONNECTIONS, soft - RESERVED_FILES - ACCEPT_BATCHES * ACCEPT_BATCH)


def raise_file_limit() -> None:
    """Raise the soft open-file limit to the hard one, as Go's runtime does: the soft
    default (often 1,024) is a relic of select(); asyncio uses epoll."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        # An infinite hard limit may be refused (above fs.nr_open): keep the soft one then.
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def guarded_protocol(settings: Settings, on_refusal: Callable[[str], None] | None = None,
                     ) -> type[GuardedProtocol]:
    """The protocol class for uvicorn's ``http`` option with the settings' limits; a refused
    connection is told to ``on_refusal`` (reason ``connections``)."""
    return type("GuardedProtocol", (GuardedProtocol,), {
        "header_timeout_s": settings.header_timeout_s,
        "send_timeout_s": settings.send_timeout_s,
        "max_connections": connection_cap(settings),
        **({"on_refusal": staticmethod(on_refusal)} if on_refusal else {})})


class GuardedProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a head timeout and size, a send timeout and a
    connection cap."""

    header_timeout_s: ClassVar[float] = 10.0
    send_timeout_s: ClassVar[float] = 30.0
    max_connections: ClassVar[int] = 1 << 16
    on_refusal: ClassVar[staticmethod[[str], None]] = staticmethod(ignore_event)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Since when the connection waits for a request head (None while a request runs).
        self.awaiting_head_since: float | None = None
        # Since when it is closed with bytes left to send (None: not, or none left).
        self.closed_unsent_since: float | None = None
        self.head_timer: asyncio.TimerHandle | None = None
        self.stall_timer: asyncio.TimerHandle | None = None
        # Bytes of request heads received since the last head ended: counted outside
        # bodies, also while a request runs (httptools reads pipelined heads meanwhile).
        self.head_bytes = 0
        self.in_body = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(HeldWrites(transport, self.loop))  # head and body: one send
        if not getattr(self.server_state, SWEEPING, False):
            setattr(self.server_state, SWEEPING, True)
            self.loop.call_later(SWEEP_EVERY_S, _sweep, self.loop, self.connections)
        self.awaiting_head_since = time.monotonic()
        if len(self.connections) > self.max_connections and not self._make_room():
            self.awaiting_head_since = None
            log.warning("refused a connection: %d are open, all busy (max_connections)",
                        len(self.connections) - 1)
            self.on_refusal("connections")
            self.transport.write(REFUSAL)
            self.transport.close()
            return
        self._start_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self.awaiting_head_since = None
        self._cancel_timers()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        # The first byte of a request on a kept-alive connection starts its head's clock.
        if self.awaiting_head_since is not None and self.head_timer is None:
            self.awaiting_head_since = time.monotonic()
            self._start_head_timer()
        if not self.in_body:
            self.head_bytes += len(data)
            if self.head_bytes > MAX_HEAD_BYTES and not self._head_in(data):
                self._refuse_head()
                return
        super().data_received(data)

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        # A request head arrived: its request runs now (or waits behind a pipelined one).
        self.awaiting_head_since = None
        self.head_bytes = 0
        self.in_body = True
        if self.head_timer is not None:
            self.head_timer.cancel()
            self.head_timer = None

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self.in_body = False

    def _head_in(self, data: bytes) -> bool:
        """Whether the head ends within its allowance in ``data``, the last bytes read."""
        end = data.find(b"\r\n\r\n")
        return end >= 0 and self.head_bytes - len(data) + end + 4 <= MAX_HEAD_BYTES

    def _refuse_head(self) -> None:
        log.info("refused a request head longer than %d bytes", MAX_HEAD_BYTES)
        self.awaiting_head_since = None
        self._cancel_timers()
        if not self.transport.is_closing():
            if self.cycle is None or self.cycle.response_complete:  # not amid an answer
                self.transport.write(HEAD_REFUSAL)
            self.transport.close()

    def on_response_complete(self) -> None:
        if not self.transport.is_closing():  # kept alive: idle until the next request
            self.awaiting_head_since = time.monotonic()
        super().on_response_complete()

    def pause_writing(self) -> None:
        super().pause_writing()
        if self.stall_timer is None:
            self.stall_timer = self.loop.call_later(self.send_timeout_s, self._stalled)

    def resume_writing(self) -> None:
        super().resume_writing()
        if self.stall_timer is not None:
            self.stall_timer.cancel()
            self.stall_timer = None

    def _start_head_timer(self) -> None:
        self.head_timer = self.loop.call_later(self.header_timeout_s, self._head_timed_out)

    def _head_timed_out(self) -> None:
        self.head_timer = None
        if self.awaiting_head_since is not None:
            log.info("closed a connection that sent no complete request head in %g s "
                     "(header_timeout_s)", self.header_timeout_s)
            self.close_idle()

    def _stalled(self) -> None:
        self.stall_timer = None
        log.warning("dropped a connection whose client read nothing for %g s "
                    "(send_timeout_s)", self.send_timeout_s)
        self.transport.abort()  # close() would wait for the buffer to be read: forever

    def abort_if_unread(self, now: float) -> None:
        """Drop the connection if it has been closed with bytes left to send, unread by the
        client, for ``send_timeout_s``."""
        if not (self.transport.is_closing() and self.transport.get_write_buffer_size()):
            self.closed_unsent_since = None
        elif self.closed_unsent_since is None:
            self.closed_unsent_since = now
        elif now - self.closed_unsent_since >= self.send_timeout_s:
            log.warning("dropped a closed connection whose client read nothing for %g s "
                        "(send_timeout_s)", self.send_timeout_s)
            self.transport.abort()

    def close_idle(self) -> None:
        """Close this connection, which waits for a request head (nothing is being sent)."""
        self.awaiting_head_since = None
        self._cancel_timers()
        if not self.transport.is_closing():
            self.transport.close()

    def _make_room(self) -> bool:
        """Close the connection that has waited longest for a request head; False if every
        other connection is busy with a request."""
        idle = {c: c.awaiting_head_since for c in self.connections
                if isinstance(c, GuardedProtocol) and c is not self
                and c.awaiting_head_since is not None}
        if not idle:
            return False
        min(idle, key=idle.__getitem__).close_idle()
        return True

    def _cancel_timers(self) -> None:
        for timer in (self.head_timer, self.stall_timer):
            if timer is not None:
                timer.cancel()
        self.head_timer = self.stall_timer = None


def _sweep(loop: asyncio.AbstractEventLoop, connections: set[Any]) -> None:
    """Check every connection for unread bytes after closing, and again in `SWEEP_EVERY_S`
    (a closed connection makes no more calls of its own)."""
    now = time.monotonic()
    for connection in list(connections):
        if isinstance(connection, GuardedProtocol):
            connection.abort_if_unread(now)
    loop.call_later(SWEEP_EVERY_S, _sweep, loop, connections)
