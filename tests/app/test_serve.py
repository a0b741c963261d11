"""Serving: repeated log lines are folded into a count (issue #13 item 13); workers that
cannot start fail the service; big maps reuse the memory of the last render (issue #18)."""

from __future__ import annotations

import logging
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from fewsmap.app.serve import RepeatFolder
from tests.live_server import live_server, server_log, server_page_faults
from tests.synthetic import field_store, lonlat_grid

BAD_REQUESTS = 60
BURST = 5


def record(message: str, *args: object, name: str = "fewsmap.test") -> logging.LogRecord:
    return logging.LogRecord(name, logging.WARNING, __file__, 1, message, args, None)


def test_repeats_are_counted_and_the_count_is_logged_with_the_next() -> None:
    folder = RepeatFolder(burst=BURST, window_s=0.3)
    logged = [folder.filter(record("refused a connection: %d are open", n)) for n in range(50)]
    assert logged == [True] * BURST + [False] * (50 - BURST)
    assert folder.filter(record("another message"))  # counted apart
    time.sleep(0.35)
    later = record("refused a connection: %d are open", 51)
    assert folder.filter(later)
    assert later.getMessage() == ("refused a connection: 51 are open [45 more of this "
                                  "message before this one were not logged]")


def test_the_folder_forgets_the_oldest_messages_beyond_its_size() -> None:
    folder = RepeatFolder(burst=1, window_s=60, max_messages=10)
    for n in range(100):
        assert folder.filter(record(f"message {n}"))  # distinct texts, each logged
    assert not folder.filter(record("message 99"))
    assert folder.filter(record("message 0"))  # forgotten: logged again


def test_a_flood_of_identical_errors_leaves_a_few_lines(demo_stores: Path) -> None:
    with live_server("--stores", str(demo_stores)) as url:
        port = int(url.rsplit(":", 1)[1])
        for _ in range(BAD_REQUESTS):  # uvicorn warns "Invalid HTTP request received."
            with socket.create_connection(("127.0.0.1", port)) as sock:
                sock.sendall(b"NOT HTTP AT ALL\r\n\r\n")
                assert sock.recv(4096).startswith(b"HTTP/1.1 400")
        log = server_log(url)
    assert 1 <= log.count("Invalid HTTP request received.") <= BURST


def test_a_worker_that_cannot_start_fails_the_service_saying_why(tmp_path: Path) -> None:
    # A token of 3 characters is refused when the app is built, in each forked worker:
    # `fewsmap serve` used to exit 0 with nothing said.
    config = tmp_path / "fewsmap.toml"
    config.write_text('[[security.tokens]]\ntoken = "abc"\nlayers = ["x"]\n')
    (tmp_path / "stores").mkdir()
    done = subprocess.run(
        [sys.executable, "-m", "fewsmap.cli", "serve", "--workers", "2", "--port", "0",
         "--stores", str(tmp_path / "stores"), "--config", str(config)],
        capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert "at least 8 characters" in done.stderr


@pytest.fixture(scope="module")
def wide_stores(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 3000 × 2000 lon/lat grid: a map of all of it averages cells into 2.3 M pixels."""
    folder = tmp_path_factory.mktemp("wide") / "stores"
    lat, lon = np.linspace(69.99, 30.0, 2000), np.linspace(-20.0, 39.98, 3000)
    lon2, lat2 = np.meshgrid(lon, lat)
    field_store(folder / "wide.zarr", lonlat_grid(lat, lon), lon2, lat2)
    return folder


def faults_per_map(url: str, maps: int = 7) -> float:
    """Median page faults of the server per 1920 × 1200 map of the whole grid, after two: the
    median, as the idle trim may hand memory back between two maps on a slow machine."""
    query = {"service": "WMS", "version": "1.3.0", "request": "GetMap", "layers": "wide.lon",
             "styles": "", "crs": "EPSG:4326", "bbox": "30,-20,70,40", "width": "1920",
             "height": "1200", "format": "image/png", "transparent": "true"}
    faults = []
    with httpx.Client(base_url=url, timeout=60) as client:
        while client.get("/health/ready").status_code != 200:  # warm-up draws maps too
            time.sleep(0.1)
        for _ in range(2):
            assert client.get("/wms", params=query).status_code == 200
        for _ in range(maps):
            before = server_page_faults(url)
            assert client.get("/wms", params=query).status_code == 200
            faults.append(server_page_faults(url) - before)
    return float(np.median(faults))


def test_big_maps_reuse_the_memory_of_the_last_render(wide_stores: Path) -> None:
    """glibc gives large arrays their own mapping and trims freed heap: each zoomed-out map
    faulted its tens of MB of arrays in again (thousands of page faults, a third of its
    CPU). The server keeps freed memory for the next render, unless the operator's
    environment says otherwise."""
    with live_server("--stores", str(wide_stores)) as url:
        kept = faults_per_map(url)
    glibc_defaults = {"MALLOC_MMAP_THRESHOLD_": str(128 << 10),
                      "MALLOC_TRIM_THRESHOLD_": str(128 << 10)}
    with live_server("--stores", str(wide_stores), env=glibc_defaults) as url:
        returned = faults_per_map(url)
    assert kept < 1000 < 5000 < returned, (kept, returned)  # measured: 0-115 and 12-14 k
