"""An in-process ASGI client that sends exactly the bytes a fuzzer chose.

HTTP clients normalise what they send (httpx re-quotes ``%ZZ``, drops invalid bytes); this
one builds the ASGI scope the way uvicorn does from a request line (``raw_path`` split at
``?``, the path percent-decoded with ``errors="replace"``), so the app sees what a real
server would hand it, at a few hundred microseconds per request.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from starlette.types import ASGIApp, Message


@dataclass(frozen=True)
class RawRequest:
    """One request as bytes: ``target`` is the request-target (path and query) as sent."""

    method: str
    target: bytes
    headers: tuple[tuple[bytes, bytes], ...] = ()
    body: bytes = b""

    @property
    def path(self) -> bytes:
        return self.target.partition(b"?")[0]

    @property
    def query(self) -> bytes:
        return self.target.partition(b"?")[2]


@dataclass
class RawResponse:
    """What the app sent."""

    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    @property
    def media_type(self) -> str:
        return self.headers.get("content-type", "").split(";")[0].strip().lower()


def scope_of(request: RawRequest) -> dict[str, Any]:
    """The ASGI HTTP scope uvicorn (h11) builds for ``request``."""
    raw_path = request.path
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": request.method,
        "scheme": "http",
        "path": unquote(raw_path.decode("ascii")),
        "raw_path": raw_path,
        "query_string": request.query,
        "root_path": "",
        "headers": [(b"host", b"fuzz.test"), *request.headers],
        "client": ("127.0.0.1", 50000),
        "server": ("fuzz.test", 80),
    }


async def send_request(app: ASGIApp, request: RawRequest,
                       state: dict[str, Any] | None = None) -> RawResponse:
    """Run one request through ``app`` and collect the answer; ``state`` is the app's
    lifespan state, which a server puts in every request's scope."""
    response = RawResponse()
    done = asyncio.Event()
    chunks: list[bytes] = []
    body_sent = False

    async def receive() -> Message:
        nonlocal body_sent
        if not body_sent:
            body_sent = True
            return {"type": "http.request", "body": request.body, "more_body": False}
        await done.wait()  # the client stays connected until the answer is complete
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            response.status = message["status"]
            response.headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                                for k, v in message.get("headers", [])}
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                done.set()

    await app({**scope_of(request), "state": dict(state or {})}, receive, send)
    done.set()
    response.body = b"".join(chunks)
    return response


def header_pairs(headers: Sequence[tuple[str, str]]) -> tuple[tuple[bytes, bytes], ...]:
    """Header names lower-cased, as ASGI wants them, values as latin-1 bytes."""
    return tuple((k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers)
