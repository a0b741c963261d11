"""The load generator: a small asyncio HTTP/1.1 keep-alive client, one connection per
concurrent worker, 127.0.0.1 only.

A hand-written client rather than httpx: on this 2-core machine the client shares the CPU
with the server, and httpx costs 0.7–2.8 ms of client CPU per request (perf-anchors), as
much as a fast tile. This one parses a status line, headers and a Content-Length or
chunked body, nothing more. ``--client httpx`` swaps in httpx's AsyncClient (keep-alive,
same loop) as a cross-check. Client CPU (this process) and server CPU (its process tree,
from /proc) are measured over each load.

Every load is bounded twice: a fixed list of requests, and a wall-clock limit after which
no new request starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from benchmarks.suite.procs import ProcessTree

HOST = "127.0.0.1"
REQUEST_TIMEOUT_S = 120.0


class HttpError(Exception):
    """The server's answer could not be parsed."""


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "")


class RawConnection:
    """One keep-alive HTTP/1.1 connection to 127.0.0.1:port."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def get(self, path: str) -> Response:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(HOST, self.port)
        assert self.reader is not None
        self.writer.write(f"GET {path} HTTP/1.1\r\nHost: {HOST}:{self.port}\r\n"
                          "Accept: */*\r\nAccept-Encoding: identity\r\n\r\n".encode("latin-1"))
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/"):
            raise HttpError(f"bad status line {lines[0]!r}")
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                name, value = line.split(":", 1)
                headers[name.strip().lower()] = value.strip()
        if headers.get("transfer-encoding", "").lower() == "chunked":
            body = await self._chunked()
        elif "content-length" in headers:
            body = await self.reader.readexactly(int(headers["content-length"]))
        else:
            body = await self.reader.read()
            await self.close()
        if headers.get("connection", "").lower() == "close" or parts[0] == "HTTP/1.0":
            await self.close()
        return Response(int(parts[1]), headers, body)

    async def _chunked(self) -> bytes:
        """A chunked body, parsed from large reads: some servers send a chunk per few
        hundred bytes (xpublish-wms streams a PNG by lines), and one await per chunk would
        cost the client more CPU than the server spends."""
        assert self.reader is not None
        buffer = bytearray()
        pieces = []
        pos = 0
        while True:
            end = buffer.find(b"\r\n", pos)
            while end < 0:
                buffer += await self._more()
                end = buffer.find(b"\r\n", pos)
            size = int(bytes(buffer[pos:end]).split(b";")[0].strip(), 16)
            pos = end + 2
            if size == 0:
                break
            while len(buffer) < pos + size + 2:
                buffer += await self._more()
            pieces.append(bytes(buffer[pos:pos + size]))
            pos += size + 2
            if pos > 1 << 20:
                del buffer[:pos]
                pos = 0
        while buffer.find(b"\r\n", pos) < 0:  # trailers end with an empty line
            buffer += await self._more()
        while not buffer.startswith(b"\r\n", pos):
            pos = buffer.find(b"\r\n", pos) + 2
            while buffer.find(b"\r\n", pos) < 0:
                buffer += await self._more()
        if len(buffer) > pos + 2:
            raise HttpError("bytes after a chunked body (pipelining is not used)")
        return b"".join(pieces)

    async def _more(self) -> bytes:
        assert self.reader is not None
        data = await self.reader.read(1 << 16)
        if not data:
            raise HttpError("connection closed inside a chunked body")
        return data

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(OSError):
                await self.writer.wait_closed()
        self.reader = self.writer = None


class HttpxConnection:
    """The same interface over a shared httpx.AsyncClient (keep-alive pool)."""

    def __init__(self, client: Any, port: int) -> None:
        self.client, self.port = client, port

    async def get(self, path: str) -> Response:
        r = await self.client.get(f"http://{HOST}:{self.port}{path}")
        return Response(r.status_code, {k.lower(): v for k, v in r.headers.items()}, r.content)

    async def close(self) -> None:
        pass


@dataclass
class LoadResult:
    """What one load measured; times in ms."""

    n: int
    errors: int
    concurrency: int
    wall_s: float
    latencies_ms: list[float] = field(repr=False)
    bytes_mean: float
    client_cpu_ms_per_req: float
    server_cpu_ms_per_req: float | None
    server_rss_mb: float | None
    first_error: str | None = None
    stopped_by_time: bool = False

    @property
    def median_ms(self) -> float | None:
        return statistics.median(self.latencies_ms) if self.latencies_ms else None

    def percentile(self, p: float) -> float | None:
        if not self.latencies_ms:
            return None
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]

    @property
    def rps(self) -> float | None:
        return len(self.latencies_ms) / self.wall_s if self.wall_s and self.latencies_ms else None

    def summary(self) -> dict[str, Any]:
        return {"n": self.n, "errors": self.errors, "concurrency": self.concurrency,
                "wall_s": round(self.wall_s, 3), "median_ms": _r(self.median_ms),
                "p95_ms": _r(self.percentile(95)), "p99_ms": _r(self.percentile(99)),
                "min_ms": _r(min(self.latencies_ms) if self.latencies_ms else None),
                "max_ms": _r(max(self.latencies_ms) if self.latencies_ms else None),
                "rps": _r(self.rps), "bytes_mean": round(self.bytes_mean),
                "client_cpu_ms_per_req": _r(self.client_cpu_ms_per_req),
                "server_cpu_ms_per_req": _r(self.server_cpu_ms_per_req),
                "server_rss_mb": _r(self.server_rss_mb), "first_error": self.first_error,
                "stopped_by_time": self.stopped_by_time}


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


Check = Callable[[Response], str | None]


def expect_png(response: Response) -> str | None:
    """None if ``response`` is a PNG, else why not."""
    if response.status != 200 or not response.body.startswith(b"\x89PNG"):
        return f"HTTP {response.status} {response.content_type}: {response.body[:200]!r}"
    return None


def expect_ok(response: Response) -> str | None:
    """None if ``response`` is a 200 with a body, else why not."""
    if response.status != 200 or not response.body:
        return f"HTTP {response.status} {response.content_type}: {response.body[:200]!r}"
    return None


Job = str | tuple[str, ...]


def load(port: int, paths: Sequence[Job], concurrency: int, max_seconds: float,
         tree: ProcessTree | None = None, check: Check = expect_png,
         client: str = "raw") -> LoadResult:
    """GET every path (or until ``max_seconds``) with ``concurrency`` connections. A tuple
    of paths is one job: its GETs run one after another and count as one request."""
    return asyncio.run(_load(port, paths, concurrency, max_seconds, tree, check, client))


async def _load(port: int, paths: Sequence[Job], concurrency: int, max_seconds: float,
                tree: ProcessTree | None, check: Check, client: str) -> LoadResult:
    latencies: list[float] = []
    sizes: list[int] = []
    errors: list[str] = []
    queue = iter(paths)
    stopped = False
    http_client = None
    if client == "httpx":
        import httpx

        http_client = httpx.AsyncClient(limits=httpx.Limits(
            max_connections=concurrency, max_keepalive_connections=concurrency),
            timeout=REQUEST_TIMEOUT_S)
    connections: list[RawConnection | HttpxConnection] = [
        HttpxConnection(http_client, port) if http_client else RawConnection(port)
        for _ in range(concurrency)]
    deadline = time.perf_counter() + max_seconds

    async def worker(connection: RawConnection | HttpxConnection) -> None:
        nonlocal stopped
        for job in queue:
            if time.perf_counter() > deadline:
                stopped = True
                return
            parts = job if isinstance(job, tuple) else (job,)
            start = time.perf_counter()
            size, problem = 0, None
            for path in parts:
                try:
                    response = await asyncio.wait_for(connection.get(path), REQUEST_TIMEOUT_S)
                except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                        HttpError, TimeoutError, ValueError) as exc:
                    problem = f"{type(exc).__name__}: {exc}"
                    await connection.close()
                    break
                except Exception as exc:  # httpx's own errors
                    problem = f"{type(exc).__name__}: {exc}"
                    await connection.close()
                    break
                problem = check(response)
                if problem:
                    break
                size += len(response.body)
            elapsed = (time.perf_counter() - start) * 1000
            if problem:
                errors.append(problem)
                continue
            latencies.append(elapsed)
            sizes.append(size)

    server_cpu0 = tree.cpu_seconds() if tree else None
    cpu0 = time.process_time()
    start = time.perf_counter()
    await asyncio.gather(*(worker(c) for c in connections))
    wall = time.perf_counter() - start
    client_cpu = time.process_time() - cpu0
    server_cpu = tree.cpu_seconds() - server_cpu0 if tree and server_cpu0 is not None else None
    if server_cpu is not None and server_cpu < 0:  # a process of the tree died meanwhile
        server_cpu = None
    rss = tree.rss_mb() if tree else None
    for connection in connections:
        await connection.close()
    if http_client is not None:
        await http_client.aclose()
    done = max(len(latencies) + len(errors), 1)
    return LoadResult(
        n=len(latencies), errors=len(errors), concurrency=concurrency, wall_s=wall,
        latencies_ms=latencies, bytes_mean=statistics.mean(sizes) if sizes else 0.0,
        client_cpu_ms_per_req=client_cpu * 1000 / done,
        server_cpu_ms_per_req=server_cpu * 1000 / done if server_cpu is not None else None,
        server_rss_mb=rss, first_error=errors[0] if errors else None, stopped_by_time=stopped)


def fetch(port: int, path: str, timeout_s: float = REQUEST_TIMEOUT_S) -> Response:
    """One GET on a fresh connection (for probes and warm-ups)."""

    async def once() -> Response:
        connection = RawConnection(port)
        try:
            return await asyncio.wait_for(connection.get(path), timeout_s)
        finally:
            await connection.close()

    return asyncio.run(once())
