"""Render limits: a bounded number of renders at once, a bounded wait for a slot, a time limit.

Renders are CPU-bound and run in worker threads, which cannot be killed. A render that runs
past ``render_timeout_s`` is answered 503 at once, but its slot stays taken until its thread
really ends: the limit counts threads that are rendering, so abandoned renders cannot pile up
behind the clients' backs.

Waiting for a slot is first come, first served. A slot is freed by the worker thread itself
(which may outlive the request that started it), so it is handed to the next waiter through
that waiter's event loop (``call_soon_threadsafe``) rather than an asyncio primitive bound to
one loop.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import math
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import ParamSpec, TypeVar

from starlette.requests import Request

from fewsmap.errors import ServiceUnavailable
from fewsmap.settings import Settings

P = ParamSpec("P")
T = TypeVar("T")


class RenderLimiter:
    """Run renders in at most ``max_concurrent`` threads; refuse with 503 beyond that.

    A request waits at most ``queue_timeout_s`` for a slot, and its render at most
    ``timeout_s`` (0: no limit); either refusal is a `ServiceUnavailable` with Retry-After.
    """

    def __init__(self, max_concurrent: int, queue_timeout_s: float, timeout_s: float) -> None:
        if max_concurrent < 1:
            raise ValueError(f"max_concurrent must be at least 1, not {max_concurrent}")
        self.max_concurrent = max_concurrent
        self.queue_timeout_s = queue_timeout_s
        self.timeout_s = timeout_s
        self.retry_after_s = max(1, math.ceil(queue_timeout_s))
        self._lock = threading.Lock()
        self._running = 0
        self.idle_since = time.monotonic()  # when the last render ended, leaving none running
        # Requests waiting for a slot, first come first served, each with its event loop.
        self._waiters: deque[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = deque()
        self._executor = ThreadPoolExecutor(max_concurrent, thread_name_prefix="fewsmap-render")
        # Test suites build many apps: idle render threads end with their limiter.
        weakref.finalize(self, self._executor.shutdown, wait=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> RenderLimiter:
        """The limiter the settings describe."""
        return cls(settings.max_concurrent_renders, settings.render_queue_timeout_s,
                   settings.render_timeout_s)

    @property
    def running(self) -> int:
        """Threads rendering now, including renders whose request already timed out."""
        return self._running

    @property
    def queued(self) -> int:
        """Requests waiting for a slot."""
        return len(self._waiters)

    async def run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Call ``fn(*args, **kwargs)`` in a render thread once a slot is free.

        Raises
        ------
        ServiceUnavailable
            If no slot frees up within ``queue_timeout_s``, or the call takes longer than
            ``timeout_s`` (the thread then keeps its slot until it ends).
        """
        await self._acquire()
        call = functools.partial(contextvars.copy_context().run, fn, *args, **kwargs)
        try:
            future: Future[T] = self._executor.submit(call)
        except BaseException:
            self._release()
            raise
        future.add_done_callback(self._release)  # when the thread ends, not when we give up
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future),
                                          self.timeout_s if self.timeout_s > 0 else None)
        except TimeoutError as exc:
            raise ServiceUnavailable(
                f"the render took longer than {self.timeout_s:g} s (render_timeout_s) and was "
                f"abandoned; retry in {self.retry_after_s} s or ask for less (a smaller map, "
                "fewer times)", self.retry_after_s) from exc

    async def _acquire(self) -> None:
        loop = asyncio.get_running_loop()
        with self._lock:
            if self._running < self.max_concurrent and not self._waiters:
                self._running += 1
                return
            waiter: asyncio.Future[None] = loop.create_future()
            self._waiters.append((loop, waiter))
        try:
            await asyncio.wait_for(waiter, self.queue_timeout_s)
        except BaseException as exc:  # gave up: timeout, or the request was cancelled
            with self._lock:
                if (loop, waiter) in self._waiters:
                    self._waiters.remove((loop, waiter))
            if waiter.done() and not waiter.cancelled():  # granted just as it gave up
                self._release()
            if isinstance(exc, TimeoutError):
                raise ServiceUnavailable(
                    f"the service is busy: {self.max_concurrent} renders are running and "
                    f"no slot freed up within {self.queue_timeout_s:g} s; retry in "
                    f"{self.retry_after_s} s", self.retry_after_s) from exc
            raise

    def _release(self, _future: object = None) -> None:
        """Free a slot, or hand it to the first waiter (from any thread)."""
        with self._lock:
            while self._waiters:
                loop, waiter = self._waiters.popleft()
                try:
                    loop.call_soon_threadsafe(self._grant, waiter)
                    return  # the slot passes on: running stays as it is
                except RuntimeError:  # that waiter's event loop is closed
                    continue
            self._running -= 1
            if not self._running:
                self.idle_since = time.monotonic()

    def _grant(self, waiter: asyncio.Future[None]) -> None:
        if waiter.done():  # it gave up meanwhile: the slot goes to the next one
            self._release()
        else:
            waiter.set_result(None)


def render_limiter(request: Request) -> RenderLimiter:
    """The app's limiter, for any route that renders (maps, tiles, animations, EDR)."""
    limiter: RenderLimiter = request.app.state.render_limiter
    return limiter
