"""Connections of the real server: silent and slow-header clients are closed in bounded
time, and a worker's connections are capped without refusing real requests (issue #13)."""

from __future__ import annotations

import asyncio
import resource
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from fewsmap.app.connections import (
    ACCEPT_BATCH,
    ACCEPT_BATCHES,
    MAX_HEAD_BYTES,
    MIN_CONNECTIONS,
    RESERVED_FILES,
    connection_cap,
    guarded_protocol,
)
from fewsmap.settings import Settings
from tests.app.test_metrics import metric
from tests.app.test_streaming import BIGGEST, big_store, never_reading
from tests.live_server import live_server, open_connections

HEADER_TIMEOUT_S = 1.0
KEEP_ALIVE_S = 4.0
CAP = 24
GETMAP = {"service": "WMS", "request": "GetMap", "layers": "naefs-mean.QPF", "crs": "CRS:84",
          "bbox": "-100,30,-90,40", "width": "64", "height": "64", "format": "image/png"}


@pytest.fixture(scope="module")
def url(demo_stores: Path) -> Iterator[str]:
    env = {"FEWSMAP_HEADER_TIMEOUT_S": str(HEADER_TIMEOUT_S),
           "FEWSMAP_KEEP_ALIVE_TIMEOUT_S": str(KEEP_ALIVE_S)}
    with live_server("--stores", str(demo_stores), env=env) as base:
        yield base


def connect(url: str) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1])))
    sock.settimeout(10)
    return sock


def closed_after(sock: socket.socket) -> float:
    """Seconds until the server closes ``sock`` (reading whatever it sends first)."""
    start = time.monotonic()
    try:
        while sock.recv(4096):
            pass
    except ConnectionResetError:
        pass
    return time.monotonic() - start


def test_a_silent_connection_is_closed(url: str) -> None:
    with connect(url) as sock:
        assert HEADER_TIMEOUT_S * 0.8 < closed_after(sock) < HEADER_TIMEOUT_S + 1


def test_half_a_request_head_is_closed(url: str) -> None:
    with connect(url) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: test\r\n")
        assert closed_after(sock) < HEADER_TIMEOUT_S + 1


def test_a_head_sent_byte_by_byte_is_closed_on_time(url: str) -> None:
    with connect(url) as sock:
        start = time.monotonic()
        for byte in b"GET /health HTTP/1.1\r\nHost: test\r\nX-Slow: yes\r\n":
            try:
                sock.send(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError):
                break
            time.sleep(0.1)
        closed_after(sock)
        assert time.monotonic() - start < HEADER_TIMEOUT_S + 1


def test_kept_alive_connections_stay_for_their_next_request(url: str) -> None:
    with httpx.Client(base_url=url, timeout=10) as client:
        first = client.get("/health")
        time.sleep(HEADER_TIMEOUT_S * 2)  # idle, but within the keep-alive timeout
        assert client.get("/health").status_code == 200
        assert first.status_code == 200 and client.get("/health").status_code == 200
    with connect(url) as sock:  # half a head after a first answer is closed as well
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: test\r\n\r\n")
        assert sock.recv(4096).startswith(b"HTTP/1.1 200")
        sock.sendall(b"GET /health HTTP/1.1\r\n")
        assert closed_after(sock) < HEADER_TIMEOUT_S + 1


def test_a_head_beyond_its_allowance_is_refused_and_a_long_one_within_it_answered(
        url: str) -> None:
    """The request head is bounded (`MAX_HEAD_BYTES`: httptools sets no limit, so headers
    streamed within the head timeout would grow without end): beyond it, 431 and the
    connection closes; a long head within it is answered, and the request after it."""
    with connect(url) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: test\r\n")
        try:
            for _ in range(2 * MAX_HEAD_BYTES // 1000):
                sock.sendall(b"X-Filler: " + b"f" * 988 + b"\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        answer = sock.recv(4096)
        assert answer.startswith(b"HTTP/1.1 431"), answer[:100]
        assert closed_after(sock) < 1
    query = "/wms?" + "&".join(f"{k}={v}" for k, v in GETMAP.items())
    cookie = "c=" + "v" * (MAX_HEAD_BYTES - 2000)  # long, yet within the allowance
    with connect(url) as sock:
        one = f"GET {query} HTTP/1.1\r\nHost: test\r\nCookie: {cookie}\r\n\r\n".encode()
        sock.sendall(one + b"GET /health HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
        answers = b""
        while chunk := sock.recv(65536):
            answers += chunk
    assert answers.startswith(b"HTTP/1.1 200") and b"image/png" in answers[:400]
    assert answers.count(b"HTTP/1.1 200") == 2


def test_at_the_connection_cap_a_new_request_is_still_answered(demo_stores: Path) -> None:
    env = {"FEWSMAP_MAX_CONNECTIONS": str(CAP), "FEWSMAP_HEADER_TIMEOUT_S": "60"}
    with live_server("--stores", str(demo_stores), env=env) as base:
        idle = [connect(base) for _ in range(3 * CAP)]  # silent, beyond the cap
        try:
            deadline = time.monotonic() + 10  # the excess is closed at once; a loaded CI slower
            while open_connections(base) > CAP and time.monotonic() < deadline:
                time.sleep(0.1)
            assert open_connections(base) <= CAP
            for _ in range(3):
                response = httpx.get(base + "/wms", params=GETMAP, timeout=30)
                assert response.status_code == 200
                assert response.headers["content-type"] == "image/png"
            # The oldest idle connections made room; the newest still wait.
            assert closed_after(idle[0]) < 1
            assert open_connections(base) <= CAP
        finally:
            for sock in idle:
                sock.close()


def test_the_default_cap_keeps_below_the_file_limit() -> None:
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    cap = connection_cap(Settings())
    assert cap + RESERVED_FILES + ACCEPT_BATCHES * ACCEPT_BATCH <= soft or cap == MIN_CONNECTIONS
    assert connection_cap(Settings(max_connections=7)) == 7


def test_when_every_connection_is_busy_a_new_one_gets_503(tmp_path: Path) -> None:
    big_store(tmp_path / "stores" / "big.zarr")
    env = {"FEWSMAP_MAX_CONNECTIONS": "3", "FEWSMAP_SEND_TIMEOUT_S": "60",
           "FEWSMAP_MAX_BYTES_IN_FLIGHT": str(1 << 30)}
    with live_server("--stores", str(tmp_path / "stores"), env=env) as base:
        port = int(base.rsplit(":", 1)[1])
        busy = [never_reading(port, BIGGEST) for _ in range(3)]  # stalled answers
        try:
            time.sleep(1.5)
            refused = httpx.get(base + "/health", timeout=10)
            assert refused.status_code == 503 and refused.headers["retry-after"] == "1"
            assert "max_connections" in refused.text
        finally:
            for sock in busy:
                sock.close()
        time.sleep(0.5)
        assert httpx.get(base + "/health", timeout=10).status_code == 200
        refusals = httpx.get(base + "/metrics", timeout=10).text
        assert metric(refusals, "fewsmap_refusals_total", reason="connections") == 1


async def forty_kb(scope: Scope, receive: Receive, send: Send) -> None:
    """An ASGI app answering every request with 40 kB."""
    if scope["type"] == "http":
        await Response(b"x" * 40_000, media_type="text/plain")(scope, receive, send)


def test_a_closed_connection_with_unread_bytes_is_dropped() -> None:
    # The answer outgrows the kernel's small buffers but not asyncio's high-water mark
    # (64 kB): writing never pauses, and close() would wait for the client forever.
    listener = socket.create_server(("127.0.0.1", 0))
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)  # inherited on accept
    settings = Settings(send_timeout_s=1, header_timeout_s=30)
    config = uvicorn.Config(forty_kb, http=guarded_protocol(settings), lifespan="off",
                            log_level="critical")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]})
    thread.start()
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    try:
        while not server.started:
            time.sleep(0.05)
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before the window
            sock.connect(listener.getsockname())
            sock.sendall(b"GET / HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
            time.sleep(0.5)
            assert open_connections(url) == 1  # closed by the server, bytes left to send
            deadline = time.monotonic() + 4
            while open_connections(url) and time.monotonic() < deadline:
                time.sleep(0.1)
            assert open_connections(url) == 0
    finally:
        server.should_exit = True
        thread.join(10)
        listener.close()


async def slow_answer(scope: Scope, receive: Receive, send: Send) -> None:
    """An ASGI app answering every request after 3 s."""
    if scope["type"] == "http":
        await asyncio.sleep(3)
        await Response(b"done", media_type="text/plain")(scope, receive, send)


def test_a_pipelined_head_is_bounded_while_a_request_runs() -> None:
    """httptools reads on while a request runs (h11 paused): the head of a pipelined
    request streamed meanwhile is bounded too, and its connection dropped at once."""
    listener = socket.create_server(("127.0.0.1", 0))
    config = uvicorn.Config(slow_answer, http=guarded_protocol(Settings()), lifespan="off",
                            log_level="critical")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]})
    thread.start()
    try:
        while not server.started:
            time.sleep(0.05)
        with socket.create_connection(listener.getsockname(), timeout=10) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: test\r\n\r\nGET / HTTP/1.1\r\n")
            start, refused = time.monotonic(), False
            try:
                for _ in range(4096):  # 4 MiB of headers for the second request
                    sock.sendall(b"X-Filler: " + b"f" * 1012 + b"\r\n")
            except (BrokenPipeError, ConnectionResetError):
                refused = True
            assert refused and time.monotonic() - start < 2  # before the first answer
    finally:
        server.should_exit = True
        thread.join(10)
        listener.close()
