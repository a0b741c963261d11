"""Large answers sent in chunks at the pace the client reads, within a per-worker budget.

Issue #13: an EDR CSV answer was built whole (about 136 bytes a value, 272 MB at
``max_edr_values``) and handed to the server at once, after its render slot was freed: ten
clients that never read pinned 2.6 GB. Now

- a large answer is a sequence of chunks (a generator for EDR, slices of the bytes for the
  rest), each produced when the previous one has been handed on: the ASGI ``send`` awaits
  while the connection's buffer is full (uvicorn's flow control), so an answer's memory is
  what it was computed from plus a chunk or two;
- every large answer holds its bytes in the worker's `SendBudget` until it is sent or given
  up; an answer that does not fit is refused with 503 and Retry-After before it is sent;
- a connection whose client does not read for ``send_timeout_s`` is dropped (the protocol
  in fewsmap/app/connections.py), which ends its answer and frees its share of the budget.
"""

from __future__ import annotations

import math
import threading
from collections.abc import AsyncIterator, Callable, Iterable, Mapping

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from fewsmap.app.files import RangeBytesResponse
from fewsmap.app.limits import ignore_event
from fewsmap.errors import ServiceUnavailable
from fewsmap.settings import Settings

# Bodies below this go whole: the budget is for answers worth streaming.
STREAMED_FROM_BYTES = 256 * 1024
# Slices of a body already in memory, handed to the server one by one.
SLICE_BYTES = 256 * 1024
MIB = 1 << 20


class Held:
    """Bytes one answer holds in a `SendBudget`, until `release` (called once or more)."""

    def __init__(self, budget: SendBudget, nbytes: int) -> None:
        self.budget = budget
        self.nbytes = nbytes
        self._released = False

    def release(self) -> None:
        """Give the bytes back (the first call only)."""
        with self.budget.lock:
            if self._released:
                return
            self._released = True
            self.budget.held_bytes -= self.nbytes
            self.budget.on_change(self.budget.held_bytes)


class SendBudget:
    """The bytes of answers a worker holds for clients at once: ``max_bytes`` in all.

    One answer always fits when no other is held, however large, so an answer within the
    other limits is never refused on an idle worker. Thread-safe: EDR answers take their
    share in the render thread that computed them.
    """

    def __init__(self, max_bytes: int, retry_after_s: int) -> None:
        self.max_bytes = max_bytes
        self.retry_after_s = retry_after_s
        self.lock = threading.Lock()
        self.held_bytes = 0
        # Told the bytes held after each change, and of each refusal (app/metrics.py).
        self.on_change: Callable[[int], None] = ignore_event
        self.on_refusal: Callable[[str], None] = ignore_event

    @classmethod
    def from_settings(cls, settings: Settings) -> SendBudget:
        """The budget the settings describe (``max_bytes_in_flight``); a refused client
        retries once a stalled answer has been given up (``send_timeout_s``)."""
        return cls(settings.max_bytes_in_flight, max(1, math.ceil(settings.send_timeout_s)))

    def hold(self, nbytes: int) -> Held:
        """Take ``nbytes`` for an answer about to be sent.

        Raises
        ------
        ServiceUnavailable
            If the worker already holds answers and this one would exceed ``max_bytes``.
        """
        with self.lock:
            if self.held_bytes and self.held_bytes + nbytes > self.max_bytes:
                self.on_refusal("bytes_in_flight")
                raise ServiceUnavailable(
                    f"the service is busy sending {self.held_bytes / MIB:.0f} MB of answers "
                    f"to clients (max_bytes_in_flight {self.max_bytes / MIB:.0f} MB) and this "
                    f"answer needs {nbytes / MIB:.1f} MB more; retry in "
                    f"{self.retry_after_s} s", self.retry_after_s)
            self.held_bytes += nbytes
            self.on_change(self.held_bytes)
        return Held(self, nbytes)


class StreamedResponse(StreamingResponse):
    """An answer sent chunk by chunk, holding its bytes in the budget until it ends.

    Chunks of an iterable are produced in a worker thread one at a time (Starlette), each
    when the previous one was accepted by the server; the answer ends early when the client
    disconnects or its connection is dropped for not reading.
    """

    def __init__(self, chunks: Iterable[bytes] | AsyncIterator[bytes], held: Held,
                 media_type: str, headers: Mapping[str, str] | None = None,
                 status_code: int = 200) -> None:
        super().__init__(chunks, status_code, dict(headers or {}), media_type)
        self.held = held

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            if scope.get("method") == "HEAD":  # the headers only: write no chunk
                await send({"type": "http.response.start", "status": self.status_code,
                            "headers": self.raw_headers})
                await send({"type": "http.response.body", "body": b""})
                return
            await super().__call__(scope, receive, send)
        finally:
            self.held.release()


def send_budget(request: Request) -> SendBudget:
    """The app's budget of bytes in flight."""
    budget: SendBudget = request.state.service.send_budget  # lifespan state
    return budget


class HeldBytesResponse(RangeBytesResponse):
    """Bytes in memory (whole or the ranges asked for) holding the budget until sent."""

    def __init__(self, content: bytes, held: Held, media_type: str,
                 headers: Mapping[str, str] | None = None) -> None:
        super().__init__(content, media_type, headers)
        self.held = held

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.held.release()


def body_response(request: Request, body: bytes, media_type: str,
                  headers: Mapping[str, str] | None = None) -> Response:
    """An answer of bytes already made, with byte ranges (issue #17: GDAL reads a COG
    export in place); a large one is sent in slices within the budget.

    Raises
    ------
    ServiceUnavailable
        If the worker's budget of bytes in flight cannot take the body.
    """
    if len(body) < STREAMED_FROM_BYTES:
        return RangeBytesResponse(body, media_type, headers)
    held = send_budget(request).hold(len(body))
    return HeldBytesResponse(body, held, media_type, headers)
