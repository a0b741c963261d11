"""Warm-up before taking traffic: /health says "ready" only once the first maps are fast."""

from __future__ import annotations

import contextlib
import subprocess
import sys
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
