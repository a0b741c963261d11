"""Run the service with uvicorn: one process per worker, each on its own listening socket.

``uvicorn --workers N`` shares one pre-bound socket created without ``IPPROTO_TCP``, so
asyncio never enables TCP_NODELAY and each keep-alive response waits ~40 ms for a delayed
ACK (Kludex/uvicorn#3149; reference/perf-anchors.md). Each worker here binds its own
``SO_REUSEPORT`` socket created with ``IPPROTO_TCP``; the kernel spreads connections.
A socket of such a group receives connections only once it listens, so each worker binds
first (a port in use fails at once), warms up, and then listens: no request ever reaches a
cold worker (issue #13 item 18; docs/design/admission.md).
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
import traceback
from collections import OrderedDict
from dataclasses import dataclass

import uvicorn

from fewsmap.app.connections import ACCEPT_BATCH, guarded_protocol, raise_file_limit
from fewsmap.app.limits import RenderLimiter
from fewsmap.app.metrics import multiprocess_directory, worker_ended
from fewsmap.app.server import create_app
from fewsmap.app.warmup import WarmWorkers
from fewsmap.errors import FewsmapError
from fewsmap.settings import Settings

log = logging.getLogger(__name__)
# glibc's mallopt parameters (malloc.h) and the environment variables that set them, which
# win over fewsmap's choice: a few arenas, and freed render buffers kept for the next render.
MALLOPT = {"MALLOC_ARENA_MAX": (-8, 2),                    # M_ARENA_MAX
           "MALLOC_MMAP_THRESHOLD_": (-3, 128 << 20),     # M_MMAP_THRESHOLD
           "MALLOC_TRIM_THRESHOLD_": (-1, 256 << 20)}     # M_TRIM_THRESHOLD
# Loggers whose records reach the worker's log: the root (fewsmap, asyncio, ...) and
# uvicorn's own, which do not propagate.
LOGGERS = ("", "uvicorn", "uvicorn.error", "uvicorn.access")
LISTEN_BACKLOG = 2048


def tune_malloc() -> None:
    """Keep glibc to a few malloc arenas and keep the memory renders free for the next
    render; `return_memory_when_idle` hands it back to the OS at rest. A no-op off glibc;
    each setting the operator made in the environment wins.

    * Arenas: memory freed by one render thread is reused by the next instead of each pool
      thread growing an arena of its own. Measured under load (benchmarks/load.py, 120 s at
      concurrency 32): peak RSS 587 → 468 MB, and the drift after warm-up +4.5 % → -2.1 %.
    * Thresholds: glibc gives arrays above its mmap threshold (dynamic, at most 32 MB) their
      own mapping and trims freed heap above 128 kB, so every zoomed-out 1920 × 1200 map
      faulted its 10-40 MB of arrays in again: 3,500 page faults and 30.5 ms of CPU a map
      of the 4000 × 3000 cube, 1.6 faults and 24 ms with these thresholds (median over
      HTTP 47.9 → 28.9 ms, benchmarks/suite/operational.py's maps, load 4.4).
    """
    name = ctypes.util.find_library("c")
    if not (name and sys.platform.startswith("linux")):
        return
    with contextlib.suppress(OSError, AttributeError):
        mallopt = ctypes.CDLL(name).mallopt
        for variable, (parameter, value) in MALLOPT.items():
            if variable not in os.environ:
                mallopt(parameter, value)


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


def listening_socket(host: str, port: int, reuse_port: bool,
                     listen: bool = True) -> socket.socket:
    """Bind a TCP socket (IPv4 or IPv6 by host), listening unless asked not to (uvicorn
    listens on it when it starts serving)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    if listen:
        sock.listen(LISTEN_BACKLOG)
    sock.set_inheritable(True)
    return sock


@dataclass
class _Repeats:
    since: float  # start of the current window
    logged: int = 0
    left_out: int = 0


class RepeatFolder(logging.Filter):
    """Log the first ``burst`` records of a message in each ``window_s``; count the rest and
    say how many were left out with the first one logged in a later window.

    Issue #13: with its file descriptors exhausted, a worker wrote 140 MB of identical
    asyncio tracebacks in two minutes. A message is its logger, level and format string
    (not its arguments), so "refused a connection: %d are open" folds whatever the count.
    """

    def __init__(self, burst: int = 5, window_s: float = 60.0, max_messages: int = 1000):
        super().__init__()
        self.burst, self.window_s, self.max_messages = burst, window_s, max_messages
        self._seen: OrderedDict[tuple[str, int, str], _Repeats] = OrderedDict()
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        """Whether to log ``record`` (a record logged after a fold says how many were not)."""
        key = (record.name, record.levelno, str(record.msg))
        now = time.monotonic()
        with self._lock:
            seen = self._seen.get(key)
            if seen is None or now - seen.since >= self.window_s:
                left_out = seen.left_out if seen else 0
                self._seen[key] = seen = _Repeats(now)
                self._seen.move_to_end(key)
                while len(self._seen) > self.max_messages:
                    self._seen.popitem(last=False)
                if left_out:
                    record.msg = (f"{record.msg} [{left_out} more of this message before "
                                  "this one were not logged]")
            if seen.logged < self.burst:
                seen.logged += 1
                return True
            seen.left_out += 1
            return False


def fold_repeated_log_lines() -> None:
    """Put a `RepeatFolder` on every handler of the worker's log (one on the root first)."""
    root = logging.getLogger()
    if not root.handlers:  # else Python's last-resort handler writes, unfiltered
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s:%(name)s: %(message)s"))
        root.addHandler(handler)
    for name in LOGGERS:
        for each in logging.getLogger(name).handlers:
            if not any(isinstance(f, RepeatFolder) for f in each.filters):
                each.addFilter(RepeatFolder())


class _Server(uvicorn.Server):
    """uvicorn's server, accepting in small batches from a long queue of connections."""

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        # asyncio listens with uvicorn's backlog, which is also how many connections it
        # accepts in a batch (ACCEPT_BATCH, small for the connection cap); the kernel's
        # queue stays long, so a burst of connections waits instead of being dropped.
        for sock in sockets or ():
            sock.listen(LISTEN_BACKLOG)


def _run_worker(settings: Settings, sock: socket.socket,
                group: tuple[WarmWorkers, int] | None = None) -> None:
    """Serve on ``sock``; a worker of ``group`` (the workers, its index) warms up first."""
    app = create_app(settings)
    own = app.state.service  # the worker's Service (fewsmap/app/state.py)
    return_memory_when_idle(own.render_limiter)
    # The accept batch bounds how many connections are accepted before any is checked
    # against max_connections (fewsmap/app/connections.py).
    config = uvicorn.Config(app, log_level="warning", access_log=False,
                            http=guarded_protocol(settings, own.metrics.refused),
                            backlog=ACCEPT_BATCH,
                            timeout_keep_alive=settings.keep_alive_timeout_s)  # type: ignore[arg-type]
    fold_repeated_log_lines()  # after uvicorn has set up its logging
    if group is not None:
        # Not listening yet, so the kernel gives this worker no connection: warm up now
        # (best effort, failures logged) and join the group when uvicorn listens.
        own.readiness.join(*group)
        own.readiness.warm_up()
    _Server(config).run(sockets=[sock])


def serve(settings: Settings) -> None:
    """Serve until interrupted; with several workers, supervise them and stop them together."""
    workers = max(1, settings.workers)
    tune_malloc()
    raise_file_limit()
    print(f"fewsmap serving {settings.stores_dir} on http://{settings.host}:{settings.port}/ "
          f"({workers} worker{'s' if workers > 1 else ''})", flush=True)
    if workers == 1:
        _run_worker(settings, listening_socket(settings.host, settings.port, reuse_port=False))
        return
    # The workers' metrics go to files in a private directory, summed by the worker that
    # answers /metrics (fewsmap/app/metrics.py); the directory goes when the service stops.
    with multiprocess_directory() as metrics_files:
        status = _supervise(settings, workers, metrics_files)
    sys.exit(status)


def _supervise(settings: Settings, workers: int, metrics_files: str) -> int:
    """Fork ``workers`` workers and wait for them all; the service's exit status."""
    children = []
    warm = WarmWorkers(workers)  # shared: /health is ready once every worker is warm
    for index in range(workers):
        pid = os.fork()
        if pid == 0:
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            os._exit(_worker_status(settings, (warm, index)))
        children.append(pid)

    def stop(signum: int, _frame: object) -> None:
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    status = 0
    for _ in children:
        pid, code = os.wait()
        worker_ended(pid, metrics_files)
        failed = os.waitstatus_to_exitcode(code)
        if failed > 0 and not status:  # a worker that failed stops the service
            status = failed
            stop(signal.SIGTERM, None)
    return status


def _worker_status(settings: Settings, group: tuple[WarmWorkers, int]) -> int:
    """Run one forked worker; its exit status, the error said on stderr as the CLI says it.

    A forked child must leave by ``os._exit`` (never through the parent's stack), so the
    status and message are worked out here: a worker whose app cannot be built used to
    exit 0 without a word.
    """
    try:
        _run_worker(settings, listening_socket(settings.host, settings.port, True,
                                               listen=False), group)
    except FewsmapError as exc:
        print(f"fewsmap: error: {exc}", file=sys.stderr, flush=True)
        return 2
    except SystemExit as exc:  # uvicorn exits 3 when the app's start-up fails
        return exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        traceback.print_exc()
        sys.stderr.flush()
        return 1
    return 0
