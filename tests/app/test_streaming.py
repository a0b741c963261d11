"""Large answers over the real server: sent as the client reads, within a per-worker budget
of bytes in flight, and given up when the client stops reading (issue #13 item 10)."""

from __future__ import annotations

import hashlib
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from fewsmap.catalog import Catalog
from fewsmap.edr.data import answer_query
from fewsmap.edr.encode import coverage_csv, coverage_json
from fewsmap.edr.query import parse_query
from fewsmap.params import Params
from fewsmap.settings import Settings
from fewsmap.store.writer import append_run
from tests.live_server import live_server, open_connections, server_rss_mb
from tests.synthetic import _run, lonlat_grid

SEND_TIMEOUT_S = 3
# 1000 × 1000 cells × 2 times: the largest answer max_edr_values (2,000,000) allows.
SIDE = 1000
BIGGEST = "/edr/collections/big.lon/cube?bbox=-21,9,31,61&f=CSV"
NON_READERS = 10
MAX_GROWTH_MB = 200


def big_store(path: Path) -> Path:
    """A 1000 × 1000 lon/lat grid (0.05°) with two valid times: ``lon`` = longitude, ``lat``
    = latitude plus noise (which compresses badly: large exports)."""
    lat, lon = np.linspace(60.0, 10.05, SIDE), np.linspace(-20.0, 29.95, SIDE)
    lon2, lat2 = np.meshgrid(lon, lat)
    noise = np.random.default_rng(13).random(lat2.shape)
    append_run(path, _run(lonlat_grid(lat, lon), lon2, lat2 + noise), progress=False)
    return path


@pytest.fixture(scope="module")
def big_stores(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("streaming") / "stores"
    big_store(folder / "big.zarr")
    return folder


@pytest.fixture(scope="module")
def base(big_stores: Path) -> Iterator[str]:
    env = {"FEWSMAP_SEND_TIMEOUT_S": str(SEND_TIMEOUT_S), "FEWSMAP_KEEP_ALIVE_TIMEOUT_S": "2"}
    with live_server("--stores", str(big_stores), env=env) as url:
        yield url


def never_reading(port: int, path: str) -> socket.socket:
    """A connection that asks for ``path`` and then reads nothing."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: test\r\n\r\n".encode())
    return sock


def test_clients_that_never_read_cost_bounded_memory_and_are_dropped(base: str) -> None:
    httpx.get(base + BIGGEST.replace("bbox=-21,9,31,61", "bbox=0,20,1,21"), timeout=60)
    before = server_rss_mb(base)
    port = int(base.rsplit(":", 1)[1])
    sockets = [never_reading(port, BIGGEST) for _ in range(NON_READERS)]
    try:
        peak, health_s = before, []
        deadline = time.monotonic() + SEND_TIMEOUT_S + 1
        while time.monotonic() < deadline:
            start = time.monotonic()
            assert httpx.get(base + "/health", timeout=10).status_code == 200
            health_s.append(time.monotonic() - start)
            peak = max(peak, server_rss_mb(base))
            time.sleep(0.2)
        assert peak - before < MAX_GROWTH_MB, (before, peak)
        assert max(health_s) < 1.0, health_s
        # Each is answered (in part) or refused for lack of budget, then dropped.
        deadline = time.monotonic() + 2 * SEND_TIMEOUT_S + 5
        while open_connections(base) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert open_connections(base) == 0
        heads = [sock.recv(64) for sock in sockets]
        assert all(head.startswith((b"HTTP/1.1 200", b"HTTP/1.1 503")) for head in heads)
        assert any(head.startswith(b"HTTP/1.1 200") for head in heads)
    finally:
        for sock in sockets:
            sock.close()
    # The budget is free again: a new answer is sent in full.
    rows = httpx.get(base + BIGGEST.replace("bbox=-21,9,31,61", "bbox=0,20,5,25"), timeout=60)
    assert rows.status_code == 200 and rows.content.count(b"\n") == 1 + 2 * 101 * 101


def test_streamed_answers_are_the_whole_documents(base: str, big_stores: Path) -> None:
    catalog = Catalog(Settings(stores_dir=big_stores))
    area = "/edr/collections/big.lon/area"
    coords = "POLYGON((0 20,10 20,10 40,0 20))"
    for f in ("CSV", "CoverageJSON"):
        served = httpx.get(base + area, params={"coords": coords, "f": f}, timeout=60)
        assert served.status_code == 200
        answer = answer_query(catalog, "big.lon", None,
                              parse_query("area", Params([("coords", coords), ("f", f)])),
                              2_000_000)
        whole = (coverage_csv(answer) if f == "CSV"
                 else json.dumps(coverage_json(answer), allow_nan=False).encode())
        assert len(whole) > 256 * 1024  # more than one chunk
        assert served.content == whole


def test_a_large_export_is_sent_in_slices_with_its_length(base: str) -> None:
    served = httpx.get(base + "/wms", timeout=60, params={
        "service": "WMS", "version": "1.3.0", "request": "GetMap", "layers": "big.lat",
        "crs": "CRS:84", "bbox": "-20,10,30,60", "width": "1000", "height": "1000",
        "format": "image/tiff;subtype=float32"})
    assert served.status_code == 200, served.text[:300]
    assert int(served.headers["content-length"]) == len(served.content) > 1 << 20
    assert served.headers["etag"].strip('"') == hashlib.sha256(served.content).hexdigest()[:32]


def test_answers_beyond_the_budget_are_refused_until_it_frees(big_stores: Path) -> None:
    env = {"FEWSMAP_SEND_TIMEOUT_S": "2", "FEWSMAP_MAX_BYTES_IN_FLIGHT": str(1 << 20)}
    with live_server("--stores", str(big_stores), env=env) as url:
        port = int(url.rsplit(":", 1)[1])
        stalled = never_reading(port, BIGGEST)
        try:
            time.sleep(1)  # its answer holds more than the whole budget
            refused = httpx.get(url + BIGGEST, timeout=60)
            assert refused.status_code == 503
            assert refused.json()["code"] == "ServiceUnavailable"
            assert int(refused.headers["retry-after"]) >= 1
            time.sleep(4)  # the stalled client is dropped: its bytes are free again
            small = httpx.get(url + BIGGEST.replace("bbox=-21,9,31,61", "bbox=0,20,8,28"),
                              timeout=60)
            assert small.status_code == 200
        finally:
            stalled.close()


def test_head_of_a_large_answer_sends_its_headers_only(base: str) -> None:
    head = httpx.head(base + BIGGEST, timeout=10)
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-type"] == "text/csv; charset=utf-8"


def test_closed_connections_whose_client_never_reads_are_dropped(big_stores: Path) -> None:
    env = {"FEWSMAP_SEND_TIMEOUT_S": "1", "FEWSMAP_MAX_BYTES_IN_FLIGHT": str(1 << 30)}
    with live_server("--stores", str(big_stores), env=env) as url:
        port = int(url.rsplit(":", 1)[1])
        sockets = []
        # Answers of many sizes, the connection to close once sent: asyncio's close waits
        # for the client to read what is left in the buffer, forever if it never does.
        for side in range(20, 140, 3):
            sock = socket.create_connection(("127.0.0.1", port))
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            path = BIGGEST.replace("bbox=-21,9,31,61", f"bbox=0,20,{side / 10},{20 + side / 10}")
            sock.sendall(f"GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".encode())
            sockets.append(sock)
        try:
            deadline = time.monotonic() + 8
            while open_connections(url) and time.monotonic() < deadline:
                time.sleep(0.2)
            assert open_connections(url) == 0
        finally:
            for sock in sockets:
                sock.close()
