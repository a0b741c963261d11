"""Run the service with uvicorn: one process per worker, each on its own listening socket.

``uvicorn --workers N`` shares one pre-bound socket created without ``IPPROTO_TCP``, so
asyncio never enables TCP_NODELAY and each keep-alive response waits ~40 ms for a delayed
ACK (Kludex/uvicorn#3149; reference/perf-anchors.md). Each worker here binds its own
``SO_REUSEPORT`` socket created with ``IPPROTO_TCP``; the kernel spreads connections.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import logging
import os
import signal
import socket
import sys
import threading
import time

import uvicorn

from fewsmap.app.limits import RenderLimiter
from fewsmap.app.server import create_app
from fewsmap.settings import Settings

log = logging.getLogger(__name__)
# glibc's mallopt parameter for the number of malloc arenas (malloc.h).
M_ARENA_MAX = -8
MALLOC_ARENAS = 2


def limit_malloc_arenas() -> None:
    """Keep glibc to a few malloc arenas, so memory freed by one render thread is reused by
    the next instead of each pool thread growing an arena of its own. Measured under load
    (benchmarks/load.py, 120 s at concurrency 32): peak RSS 587 → 468 MB, and the drift
    after warm-up +4.5 % → -2.1 %. The same as ``MALLOC_ARENA_MAX=2``; a no-op off glibc."""
    if "MALLOC_ARENA_MAX" in os.environ:
        return  # the operator's choice wins
    name = ctypes.util.find_library("c")
    if name and sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(name).mallopt(M_ARENA_MAX, MALLOC_ARENAS)


def return_memory_when_idle(limiter: RenderLimiter, settle_s: float = 1.0) -> None:
    """Hand the memory of finished renders back to the OS once the worker has been idle for
    ``settle_s``, in a daemon thread (glibc only).

    glibc keeps freed heap memory for reuse, so RSS at rest depends on which renders ran last
    and how many at once: 378 or 422 MB after the same demo requests in another order. Under
    load nothing changes; after a burst the worker shrinks to what it holds.
    """
    name = ctypes.util.find_library("c")
    if not (name and sys.platform.startswith("linux")):
        return
    try:
        trim = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):
        return

    def watch() -> None:
        trimmed_at = limiter.idle_since
        while True:
            time.sleep(settle_s / 2)
            idle_since = limiter.idle_since
            if (not limiter.running and idle_since != trimmed_at
                    and time.monotonic() - idle_since >= settle_s):
                trim(0)
                trimmed_at = idle_since

    threading.Thread(target=watch, name="fewsmap-trim", daemon=True).start()


def listening_socket(host: str, port: int, reuse_port: bool) -> socket.socket:
    """Bind a TCP listening socket (IPv4 or IPv6 by host)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _run_worker(settings: Settings, sock: socket.socket) -> None:
    app = create_app(settings)
    return_memory_when_idle(app.state.render_limiter)
    config = uvicorn.Config(app, log_level="warning", access_log=False, timeout_keep_alive=30)
    uvicorn.Server(config).run(sockets=[sock])


def serve(settings: Settings) -> None:
    """Serve until interrupted; with several workers, supervise them and stop them together."""
    workers = max(1, settings.workers)
    limit_malloc_arenas()
    print(f"fewsmap serving {settings.stores_dir} on http://{settings.host}:{settings.port}/ "
          f"({workers} worker{'s' if workers > 1 else ''})", flush=True)
    if workers == 1:
        _run_worker(settings, listening_socket(settings.host, settings.port, reuse_port=False))
        return
    children = []
    for _ in range(workers):
        pid = os.fork()
        if pid == 0:
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            try:
                _run_worker(settings, listening_socket(settings.host, settings.port, True))
            finally:
                os._exit(0)
        children.append(pid)

    def stop(signum: int, _frame: object) -> None:
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    status = 0
    for pid in children:
        _, code = os.waitpid(pid, 0)
        status = status or os.waitstatus_to_exitcode(code)
    sys.exit(status if status > 0 else 0)
