"""Hostile requests over real HTTP against ``fewsmap serve``: the same generated requests
through uvicorn, then malformed request lines and raw bytes on a bare socket."""

from __future__ import annotations

import http.client
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fewsmap.settings import Settings
from tests.fuzz.asgi import RawRequest, RawResponse
from tests.fuzz.checks import LEAKS, problems
from tests.fuzz.conftest import budget, figures
from tests.fuzz.strategies import FAMILIES, ROUTES, Names, requests, routes
from tests.live_server import live_server

# Requests no HTTP parser should accept; the server must refuse them (4xx) or close the
# connection, and keep serving everybody else.
MALFORMED = [
    b"GET /wms?request=GetCapabilities&layers=\xff\xfe HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /wms?layers=\xc0\xae\xc0\xae/etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /tiles/\x00/1/1/1.png HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /wms?request=GetMap HTTP/1.1\r\nHost: x\r\nX-Bad: a\x00b\r\n\r\n",
    b"GET /wms HTTP/9.9\r\nHost: x\r\n\r\n",
    b"GET /wms\r\n\r\n",
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 64,  # a TLS hello
    b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello",
    b"POST /wms HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nNoColonHere\r\n\r\n",
    b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nX-Long: " + b"b" * 70_000 + b"\r\n\r\n",
    b"GET /../../../../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET //etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /viewer/assets/..%2f..%2f..%2fsettings.py HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /zarr/..%2f..%2f..%2fetc/passwd HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET http://127.0.0.1/wms?request=GetCapabilities HTTP/1.1\r\nHost: x\r\n\r\n",
    b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n",
    b"CONNECT 127.0.0.1:22 HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /health HTTP/1.1\r\n\r\n",  # no Host
    b"\r\n\r\n\r\n",
    b"GET /wms?request=GetMap&width=%FF%FF&height=%C0%80 HTTP/1.1\r\nHost: x\r\n\r\n",
]


@pytest.fixture(scope="module")
def server(fuzz_stores: Path, fuzz_settings: Settings) -> Iterator[tuple[str, int]]:
    config = str(fuzz_stores.parent / "fewsmap.toml")
    with live_server("--stores", str(fuzz_stores), "--config", config) as url:
        host, port = url.removeprefix("http://").split(":")
        yield host, int(port)


def send_http(connection: http.client.HTTPConnection, request: RawRequest) -> RawResponse:
    """Send ``request`` as it is (no re-quoting) and read the whole answer."""
    connection.putrequest(request.method, request.target.decode("ascii"), skip_host=True,
                          skip_accept_encoding=True)
    connection.putheader("Host", "fuzz.test")
    for name, value in request.headers:
        connection.putheader(name.decode("latin-1"), value.decode("latin-1"))
    connection.putheader("Content-Length", str(len(request.body)))
    connection.endheaders(request.body)
    answer = connection.getresponse()
    body = answer.read()
    headers = {k.lower(): v for k, v in answer.getheaders()}
    if answer.will_close:
        connection.close()
    return RawResponse(answer.status, headers, body)


def send_raw(address: tuple[str, int], data: bytes) -> bytes:
    """Write ``data`` on a fresh connection; return what the server answered (maybe b"")."""
    with socket.create_connection(address, timeout=10) as sock:
        try:
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
        except OSError:  # the server may close first, having refused the head
            pass
        chunks = []
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except OSError:
            pass
    return b"".join(chunks)


def test_hostile_requests_over_http(server: tuple[str, int], fuzz_names: Names,
                                    secret: bytes) -> None:
    counts = figures("over HTTP (uvicorn)")
    connection = http.client.HTTPConnection(*server, timeout=60)
    chosen = routes(list(ROUTES))

    examples = max(100, budget() // 20)

    @settings(max_examples=examples, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(data=st.data())
    def fuzz(data: st.DataObject) -> None:
        template = data.draw(chosen, label="route")
        request: RawRequest = data.draw(requests(template, fuzz_names), label="request")
        response = send_http(connection, request)
        counts.count(FAMILIES[template].name, response.status)
        found = problems(request, response, FAMILIES[template], (secret,))
        assert not found, f"{request.method} {request.target[:300]!r}: {found}"

    try:
        fuzz()
    finally:
        connection.close()
    assert counts.sent >= examples
    assert_healthy(server)


@pytest.mark.parametrize("data", MALFORMED, ids=range(len(MALFORMED)))
def test_malformed_http_is_refused(server: tuple[str, int], data: bytes, secret: bytes) -> None:
    answer = send_raw(server, data)
    status = int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else None
    figures("raw sockets (malformed HTTP)").count("raw", status or 0)
    assert status is None or status < 500, answer[:300]
    assert not any(leak in answer for leak in (*LEAKS, secret)), answer[:300]
    assert_healthy(server)


@settings(max_examples=min(500, max(50, budget() // 100)), deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
@given(target=st.binary(min_size=1, max_size=200), route=st.sampled_from(sorted(ROUTES)))
def test_raw_bytes_in_the_request_target(server: tuple[str, int], target: bytes,
                                         route: str) -> None:
    prefix = route.split("{")[0].encode()
    answer = send_raw(server, b"GET " + prefix + target + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    status = int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else None
    figures("raw sockets (random bytes)").count("raw", status or 0)
    assert status is None or status < 500 or b"retry-after" in answer.lower(), answer[:300]
    assert_healthy(server)


def assert_healthy(address: tuple[str, int]) -> None:
    connection = http.client.HTTPConnection(*address, timeout=30)
    try:
        connection.request("GET", "/health")
        response = connection.getresponse()
        assert response.status == 200 and b'"ok"' in response.read()
    finally:
        connection.close()
