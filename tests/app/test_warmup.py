"""Warm-up before taking traffic: /health says "ready" only once the first maps are fast."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from tests.live_server import free_port, stop

# The first map of each kind after a start: a zoomed-out tile of a lon/lat grid (datashader's
# rectilinear quadmesh), a tile of a projected grid in Web Mercator (its curvilinear one), a
# map with contours (matplotlib).
FIRST_MAPS = ["/tiles/naefs-mean.QPF/1/0/0.png", "/tiles/marfc-fmat.t/5/9/12.png",
              "/wms?request=GetMap&layers=naefs-mean.QTF&crs=EPSG:3857&width=800&height=600"
              "&bbox=-13914936,2875744,-7235766,7170156&showContours=true"]


def test_health_says_warming_up_until_the_first_maps_are_fast(demo_stores: Path) -> None:
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "fewsmap.cli", "serve", "--stores", str(demo_stores), "--port",
         str(port), "--workers", "1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    answers: list[httpx.Response] = []
    try:
        deadline = time.monotonic() + 120
        while not answers or answers[-1].status_code != 200:
            assert time.monotonic() < deadline and server.poll() is None
            with contextlib.suppress(httpx.TransportError):
                answers.append(httpx.get(f"{base}/health", timeout=5))
            time.sleep(0.05)
        seconds = {}
        for path in FIRST_MAPS:
            began = time.perf_counter()
            response = httpx.get(base + path, timeout=60)
            seconds[path] = time.perf_counter() - began
            assert response.status_code == 200 and response.content.startswith(b"\x89PNG")
    finally:
        stop(server)
    warming, ready = answers[0], answers[-1]
    # The kernels compile for seconds after a start: the first answer comes before that ends.
    assert warming.status_code == 503 and warming.headers["retry-after"] == "1"
    assert warming.json()["ready"] is False and warming.json()["status"] == "warming up"
    assert ready.json()["ready"] is True and ready.json()["status"] == "ok"
    assert {s["name"] for s in ready.json()["stores"]} == {s["name"] for s in
                                                            warming.json()["stores"]}
    # Once ready, no first map waits for a compile (before: 1.7 s, 5-9 s).
    assert max(seconds.values()) < 1.0, seconds


# A tile of a projected grid drawn in Web Mercator: datashader's curvilinear quadmesh, 5-9 s
# to compile on a cold worker (tens of ms warm).
SLOW_FIRST_TILE = "/tiles/marfc-fmat.t/5/9/12.png"
PROBES = 4  # clients asking at once, each on a new connection per request
TILES_AFTER_READY = 120


def test_no_tile_reaches_a_cold_worker(demo_stores: Path) -> None:
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "fewsmap.cli", "serve", "--stores", str(demo_stores), "--port",
         str(port), "--workers", "2"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    answers: list[tuple[float, float, int]] = []  # (answered at, seconds taken, status)
    done = threading.Event()

    def probe() -> None:
        while not done.is_set():
            began = time.monotonic()
            try:  # httpx.get opens a new connection: the kernel picks a worker each time
                status = httpx.get(base + SLOW_FIRST_TILE, timeout=60).status_code
            except httpx.TransportError:  # nothing listens yet
                time.sleep(0.02)
                continue
            answers.append((time.monotonic(), time.monotonic() - began, status))

    probes = [threading.Thread(target=probe) for _ in range(PROBES)]
    try:
        for each in probes:
            each.start()
        deadline = time.monotonic() + 180
        while not answered_ok(base):
            assert time.monotonic() < deadline and server.poll() is None
            time.sleep(0.1)
        ready_at = len(answers)
        while len(answers) < ready_at + TILES_AFTER_READY:
            assert time.monotonic() < deadline and server.poll() is None
            time.sleep(0.1)
    finally:
        done.set()
        for each in probes:
            each.join()
        stop(server)
    first_ok = min(at for at, _, status in answers if status == 200)
    after = [(round(seconds, 3), status) for at, seconds, status in answers if at >= first_ok]
    # Every answer from the first 200 on (and /health's 200, which waits for every worker)
    # comes from a warm worker: no tile waits for a compile. Before, a request that reached
    # a worker still compiling waited seconds, after others had been answered.
    assert len(after) > TILES_AFTER_READY
    assert all(status == 200 for _, status in after), after
    assert max(seconds for seconds, _ in after) < 1.0, after


def answered_ok(base: str) -> bool:
    """Whether ``/health`` answers 200 on a new connection."""
    with contextlib.suppress(httpx.TransportError):
        return httpx.get(f"{base}/health", timeout=5).status_code == 200
    return False
