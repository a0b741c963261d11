"""Render limits: renders admitted by their declared cost, in two lanes, stopped when given up.

Every render declares its cost before it starts (`map_cost`: pixels × frames, contours counted
as extra pixels; `values_cost`: values read and encoded), and the limiter admits it by cost
(issue #13 item 11: eight animations of 6-11 s CPU each took every slot, and tiles answered
503 for ~50 s):

* light renders (every tile, with contours too; GetMaps up to ``heavy_render_cost``, e.g. a
  plain 1920×1200 map; legends, GetFeatureInfo, time series) run in their own
  ``max_concurrent_renders`` threads and never wait behind heavy ones;
* heavy renders (animations, maps with contours over many pixels, large EDR answers and
  exports) run in ``max_concurrent_heavy_renders`` threads of their own, at a lower CPU
  priority, as long as the costs running stay within ``heavy_render_budget`` per worker (one
  render above the budget runs alone).

Waiting is first come, first served within a lane, for at most the lane's queue time; then
503 with Retry-After. A render past ``render_timeout_s`` is answered 503 at once. Threads
cannot be killed, so a render keeps its slot until its thread really ends; but each render
gets a `fewsmap.cancel.CancelToken` that is set when its client disconnects or its time runs
out, and long renders stop at their next checkpoint (an animation between frames).

A slot is freed by the worker thread itself (which may outlive the request that started it),
so it is handed to the next waiter through that waiter's event loop
(``call_soon_threadsafe``) rather than an asyncio primitive bound to one loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import math
import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, ParamSpec, TypeVar

from starlette.requests import Request
from starlette.types import Receive

from fewsmap.cancel import CancelToken
from fewsmap.errors import RenderCancelled, ServiceUnavailable
from fewsmap.settings import Settings

P = ParamSpec("P")
T = TypeVar("T")

# Contour lines cost about 20 times drawing the field (a 1920×1200 NAEFS temperature map,
# warm, median of 5 times on the loaded 2-core machine: 21-27 ms, with contours 490-650 ms);
# counted as extra pixels.
CONTOUR_EXTRA = 20
# One value read and encoded (EDR CoverageJSON/CSV, exports) costs about as much as drawing
# 300 pixels: a million EDR values take 2-4 s (docs/design/edr.md), a 1920×1200 map ~24 ms.
VALUE_PIXELS = 300
# What a point query or a legend costs: about one 256² tile.
POINT_COST = 256 * 256
# Heavy render threads run at this nice value (Linux: per thread), so the light renders and
# the event loop of every worker get the CPU first when both cores are busy. Tiles beside a
# maximal animation with contours (tests/app/test_limits.py, two runs each on the loaded
# 2-core machine): at nice 0 p50 10-12 ms, p95 36-42 ms; at nice 10 p50 4-7 ms, p95 16-23 ms.
HEAVY_NICE = 10


def map_cost(width: int, height: int, frames: int = 1, layers: int = 1,
             contours: bool = False) -> int:
    """The cost of drawing ``frames`` images of ``layers`` layers at ``width`` × ``height``."""
    per_pixel = 1 + (CONTOUR_EXTRA if contours else 0)
    return max(1, width * height) * max(1, frames) * max(1, layers) * per_pixel


def values_cost(values: int) -> int:
    """The cost of reading and encoding ``values`` values."""
    return max(1, values) * VALUE_PIXELS


class Lane:
    """Threads for one kind of render: at most ``slots`` at once, within a cost ``budget``.

    A render is admitted when a slot is free and the costs running plus its own stay within
    the budget, or when nothing runs (a render above the budget runs alone).
    """

    def __init__(self, name: str, slots: int, budget: int, queue_timeout_s: float,
                 nice: int = 0) -> None:
        if slots < 1:
            raise ValueError(f"{name} lane: slots must be at least 1, not {slots}")
        self.name = name
        self.slots = slots
        self.budget = budget
        self.queue_timeout_s = queue_timeout_s
        self.retry_after_s = max(1, math.ceil(queue_timeout_s))
        self._lock = threading.Lock()
        self._running = 0
        self._cost = 0
        # Renders waiting, first come first served: (event loop, future, cost).
        self._waiters: deque[tuple[asyncio.AbstractEventLoop, asyncio.Future[None], int]] = \
            deque()
        # Told of every change of running, queued or cost (the metrics, app/metrics.py).
        self.on_change: Callable[[Lane], None] = ignore_event
        self.executor = ThreadPoolExecutor(slots, thread_name_prefix=f"fewsmap-{name}",
                                           initializer=_lower_priority, initargs=(nice,))
        # Test suites build many apps: idle render threads end with their lane.
        weakref.finalize(self, self.executor.shutdown, wait=False)

    @property
    def running(self) -> int:
        """Threads rendering now, including renders whose request already gave up."""
        return self._running

    @property
    def queued(self) -> int:
        """Renders waiting for a slot."""
        return len(self._waiters)

    @property
    def cost(self) -> int:
        """The declared cost of the renders running."""
        return self._cost

    async def acquire(self, cost: int) -> None:
        """Wait until the render of ``cost`` may start (FIFO), at most the queue time.

        Raises
        ------
        ServiceUnavailable
            If it was not admitted within ``queue_timeout_s``.
        """
        loop = asyncio.get_running_loop()
        with self._lock:
            if not self._waiters and self._fits(cost):
                self._take(cost)
                self.on_change(self)
                return
            waiter: asyncio.Future[None] = loop.create_future()
            entry = (loop, waiter, cost)
            self._waiters.append(entry)
            self.on_change(self)
        try:
            await asyncio.wait_for(waiter, self.queue_timeout_s)
        except BaseException as exc:  # gave up: timeout, or the request was cancelled
            with self._lock:
                if entry in self._waiters:
                    self._waiters.remove(entry)
                    self._admit()  # those behind it may fit now
                    self.on_change(self)
            if waiter.done() and not waiter.cancelled():  # admitted just as it gave up
                self.release(cost)
            if isinstance(exc, TimeoutError):
                raise ServiceUnavailable(
                    f"the service is busy: {self._running} {self.name} renders are running "
                    f"and none of them ended in time for this one within "
                    f"{self.queue_timeout_s:g} s; retry in {self.retry_after_s} s"
                    + (" or ask for less (fewer frames, a smaller map)"
                       if self.name == "heavy" else ""), self.retry_after_s) from exc
            raise

    def release(self, cost: int) -> None:
        """Free a slot and its cost, and admit the waiters that fit now (from any thread)."""
        with self._lock:
            self._running -= 1
            self._cost -= cost
            self._admit()
            self.on_change(self)

    def _fits(self, cost: int) -> bool:
        return self._running < self.slots and (
            self._running == 0 or self._cost + cost <= self.budget)

    def _take(self, cost: int) -> None:
        self._running += 1
        self._cost += cost

    def _admit(self) -> None:
        """Admit waiters from the head while they fit (holding the lock)."""
        while self._waiters and self._fits(self._waiters[0][2]):
            loop, waiter, cost = self._waiters.popleft()
            self._take(cost)
            try:
                loop.call_soon_threadsafe(self._grant, waiter, cost)
            except RuntimeError:  # that waiter's event loop is closed
                self._running -= 1
                self._cost -= cost

    def _grant(self, waiter: asyncio.Future[None], cost: int) -> None:
        if waiter.done():  # it gave up meanwhile: its admission goes to the next ones
            self.release(cost)
        else:
            waiter.set_result(None)


def ignore_event(*_: object) -> None:
    """Take note of nothing (what a lane, limiter or send budget tells when nobody watches)."""


def _lower_priority(nice: int) -> None:
    """Lower the CPU priority of the calling thread (Linux schedules threads one by one)."""
    if nice:
        with contextlib.suppress(OSError, AttributeError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), nice)


class RenderLimiter:
    """Run renders in a light and a heavy lane, by declared cost; refuse with 503 beyond.

    A render of cost above ``heavy_from`` goes to the heavy lane. A request waits at most its
    lane's queue time to start, and its render at most ``timeout_s`` (0: no limit); either
    refusal is a `ServiceUnavailable` with Retry-After. A render given up (timeout, or its
    request cancelled) has its cancel token set.
    """

    def __init__(self, max_concurrent: int, queue_timeout_s: float, timeout_s: float, *,
                 heavy_from: int = 8_000_000, heavy_slots: int = 2,
                 heavy_budget: int = 25_000_000,
                 heavy_queue_timeout_s: float | None = None) -> None:
        self.light = Lane("light", max_concurrent, max_concurrent * max(1, heavy_from),
                          queue_timeout_s)
        self.heavy = Lane("heavy", heavy_slots, heavy_budget,
                          queue_timeout_s if heavy_queue_timeout_s is None
                          else heavy_queue_timeout_s, nice=HEAVY_NICE)
        self.heavy_from = heavy_from
        self.timeout_s = timeout_s
        self.retry_after_s = max(1, math.ceil(queue_timeout_s))
        self.idle_since = time.monotonic()  # when the last render ended, leaving none running
        self.inline = 0  # renders drawn on the event loop (`run_here`)
        self.cancelled = 0  # renders stopped because their client went away
        self.timed_out = 0  # renders stopped because they ran past timeout_s
        # Told the reason of each refusal: light_queue, heavy_queue or render_timeout.
        self.on_refusal: Callable[[str], None] = ignore_event

    @classmethod
    def from_settings(cls, settings: Settings) -> RenderLimiter:
        """The limiter the settings describe."""
        return cls(settings.max_concurrent_renders, settings.render_queue_timeout_s,
                   settings.render_timeout_s, heavy_from=settings.heavy_render_cost,
                   heavy_slots=settings.max_concurrent_heavy_renders,
                   heavy_budget=settings.heavy_render_budget,
                   heavy_queue_timeout_s=settings.heavy_render_queue_timeout_s)

    @property
    def running(self) -> int:
        """Threads rendering now (both lanes), including renders whose request gave up."""
        return self.light.running + self.heavy.running

    @property
    def queued(self) -> int:
        """Requests waiting for a slot (both lanes)."""
        return self.light.queued + self.heavy.queued

    def lane(self, cost: int) -> Lane:
        """The lane a render of ``cost`` runs in."""
        return self.heavy if cost > self.heavy_from else self.light

    def stats(self) -> dict[str, Any]:
        """Renders running and waiting per lane, and how many were stopped (for /health)."""
        return {
            **{lane.name: {"running": lane.running, "queued": lane.queued, "cost": lane.cost}
               for lane in (self.light, self.heavy)},
            "inline": self.inline, "cancelled": self.cancelled, "timed_out": self.timed_out,
        }

    async def run(self, cost: int, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Call ``fn(*args, **kwargs)``, a render of ``cost``, in its lane once admitted.

        Raises
        ------
        ServiceUnavailable
            If it is not admitted within its lane's queue time, or the call takes longer
            than ``timeout_s`` (it is then asked to stop; the thread keeps its slot until it
            ends).
        """
        lane = self.lane(cost)
        try:
            await lane.acquire(cost)
        except ServiceUnavailable:
            self.on_refusal(f"{lane.name}_queue")
            raise
        token = CancelToken()
        context = contextvars.copy_context()
        context.run(token.install)
        call = functools.partial(context.run, fn, *args, **kwargs)
        try:
            future: Future[T] = lane.executor.submit(call)
        except BaseException:
            self._release(lane, cost)
            raise
        # Freed when the thread ends, not when we give up.
        future.add_done_callback(lambda _: self._release(lane, cost))
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future),
                                          self.timeout_s if self.timeout_s > 0 else None)
        except TimeoutError as exc:
            self.timed_out += 1
            self.on_refusal("render_timeout")
            token.cancel(f"it took longer than {self.timeout_s:g} s (render_timeout_s)")
            raise ServiceUnavailable(
                f"the render took longer than {self.timeout_s:g} s (render_timeout_s) and was "
                f"stopped; retry in {self.retry_after_s} s or ask for less (a smaller map, "
                "fewer times)", self.retry_after_s) from exc
        except asyncio.CancelledError:
            self.cancelled += 1
            token.cancel("its client went away")
            raise

    def run_here(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Call ``fn(*args, **kwargs)``, a render too small to pay for a thread's hand-off
        (`fewsmap.app.maps.drawn_inline`), in the calling thread: the event loop, which
        answers nothing else meanwhile. Counted when it returns, never queued, timed or
        cancelled."""
        try:
            result = fn(*args, **kwargs)
        finally:
            if not self.running:
                self.idle_since = time.monotonic()
        self.inline += 1
        return result

    def _release(self, lane: Lane, cost: int) -> None:
        lane.release(cost)
        if not self.running:
            self.idle_since = time.monotonic()


def render_limiter(request: Request) -> RenderLimiter:
    """The app's limiter, for any route that renders (maps, tiles, animations, EDR)."""
    limiter: RenderLimiter = request.state.service.render_limiter  # lifespan state
    return limiter


async def render(request: Request, cost: int, fn: Callable[P, T], *args: P.args,
                 **kwargs: P.kwargs) -> T:
    """Run a render of ``cost`` for ``request`` through the app's limiter, dropping it (from
    the queue, or stopping it at its next checkpoint) when the client disconnects.
    (`RenderLimiter.run_here` draws a small map on the event loop instead.)

    Raises
    ------
    RenderCancelled
        If the client went away first (nobody reads the answer).
    ServiceUnavailable
        As `RenderLimiter.run`.
    """
    work = asyncio.ensure_future(render_limiter(request).run(cost, fn, *args, **kwargs))
    gone = asyncio.ensure_future(_disconnect(request.receive))
    try:
        await asyncio.wait((work, gone), return_when=asyncio.FIRST_COMPLETED)
    finally:
        gone.cancel()
        if not work.done():
            work.cancel()  # the limiter sets the render's cancel token
    if not work.done() or work.cancelled():
        raise RenderCancelled("the client closed the connection before its answer was ready")
    return work.result()


async def _disconnect(receive: Receive) -> None:
    """Return when the client disconnects (ASGI ``http.disconnect``).

    A GET has no body to read: its one ``http.request`` message passes, and the next
    ``receive`` waits until the connection closes (uvicorn, httpx's ASGI transport). A server
    that answers ``receive`` again at once after the body would make this loop spin: such a
    server is not watched any further.
    """
    body_read = False
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        if body_read:
            await asyncio.Event().wait()  # never set: the render is not cancelled
        body_read = not message.get("more_body", False)
