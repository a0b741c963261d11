"""A synchronous client for the app in process (Starlette's TestClient wants ``httpx2``).

The app's lifespan runs as a server runs it: started once, before the first request, in an
event loop of its own thread; its state goes into every request's scope (as uvicorn copies
it), and the client waits until ``/health`` says the app is ready, as tests/live_server.py
does. So handlers get their state in tests exactly the one way they get it in production.
"""

from __future__ import annotations

import asyncio
import threading
import time
import weakref
from collections.abc import Mapping
from typing import Any

import httpx
from starlette.types import ASGIApp, Receive, Scope, Send

READY_TIMEOUT_S = 120.0
# Header fields as a mapping, or as pairs where a field repeats.
Headers = Mapping[str, str] | list[tuple[str, str]]


class AppClient:
    """``get`` requests answered by ``app`` itself, through httpx's ASGI transport."""

    def __init__(self, app: ASGIApp, *, wait_until_ready: bool = True) -> None:
        self.app = app
        self.wait_until_ready = wait_until_ready  # False: see /health say "warming up"
        self._lifespan: Lifespan | None = None

    def get(self, path: str, params: Mapping[str, str] | None = None,
            headers: Headers | None = None) -> httpx.Response:
        return self.request("GET", path, params, headers)

    def request(self, method: str, path: str, params: Mapping[str, str] | None = None,
                headers: Headers | None = None,
                content: bytes | None = None) -> httpx.Response:
        self.transport()  # started
        return self._send(method, path, params, headers, content)

    def state(self) -> dict[str, Any]:
        """The app's lifespan state, its lifespan started and the app ready."""
        self.transport()
        assert self._lifespan is not None
        return self._lifespan.state

    def transport(self) -> httpx.ASGITransport:
        """A transport to the app, its lifespan started and the app ready (for async tests)."""
        if self._lifespan is None:
            self._lifespan = Lifespan(self.app)
            weakref.finalize(self, self._lifespan.close)
            if self.wait_until_ready:
                self._wait_until_ready()
        return self._transport()

    def _transport(self) -> httpx.ASGITransport:
        assert self._lifespan is not None
        state = self._lifespan.state

        async def with_state(scope: Scope, receive: Receive, send: Send) -> None:
            await self.app({**scope, "state": dict(state)}, receive, send)

        return httpx.ASGITransport(app=with_state)

    def _send(self, method: str, path: str, params: Mapping[str, str] | None,
              headers: Headers | None, content: bytes | None) -> httpx.Response:
        async def call() -> httpx.Response:
            async with httpx.AsyncClient(transport=self._transport(),
                                         base_url="http://fewsmap.test",
                                         timeout=60) as client:
                return await client.request(method, path, params=params, headers=headers,
                                            content=content)

        return asyncio.run(call())

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while self._send("GET", "/health", None, None, None).status_code == 503:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the app did not warm up in {READY_TIMEOUT_S:g} s")
            time.sleep(0.02)


class Lifespan:
    """An app's ASGI lifespan, started now in a thread's event loop and ended by `close`."""

    def __init__(self, app: ASGIApp) -> None:
        self.state: dict[str, Any] = {}
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, daemon=True, name="lifespan")
        self._thread.start()
        self._messages: asyncio.Queue[dict[str, Any]] | None = None
        self._answers: asyncio.Queue[dict[str, Any]] | None = None
        self._task: asyncio.Task[None] | None = None
        self._call(self._startup(app))

    def _run(self) -> None:
        try:
            self._loop.run_forever()
        finally:
            self._loop.close()

    def _call(self, work: Any) -> None:
        asyncio.run_coroutine_threadsafe(work, self._loop).result(READY_TIMEOUT_S)

    async def _startup(self, app: ASGIApp) -> None:
        self._messages, self._answers = asyncio.Queue(), asyncio.Queue()
        scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"},
                 "state": self.state}
        self._task = asyncio.ensure_future(app(scope, self._messages.get, self._answers.put))
        await self._exchange("lifespan.startup")

    async def _exchange(self, message: str) -> None:
        assert self._messages is not None and self._answers is not None
        await self._messages.put({"type": message})
        answer = await self._answers.get()
        if answer["type"] != f"{message}.complete":
            raise RuntimeError(f"{message} failed: {answer.get('message', answer)}")

    def close(self) -> None:
        """End the lifespan (the app's shutdown) and its thread."""
        if not self._loop.is_running():
            return
        try:
            self._call(self._exchange("lifespan.shutdown"))
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)
