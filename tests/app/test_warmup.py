"""Warm-up before taking traffic: /health says "ready" only once the first maps are fast."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
from starlette.applications import Starlette

from fewsmap.app.server import create_app
from fewsmap.app.warmup import WarmWorkers
from fewsmap.settings import Settings
from tests.asgi_client import AppClient
from tests.live_server import free_port, live_server, server_log, stop


def start_serving(stores: Path, workers: int) -> tuple[subprocess.Popen[bytes], str]:
    """Start ``fewsmap serve`` without waiting for it (the tests watch its warm-up)."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "fewsmap.cli", "serve", "--stores", str(stores), "--port",
         str(port), "--workers", str(workers)], stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, start_new_session=True)
    return server, f"http://127.0.0.1:{port}"


# The first map of each kind after a start: a zoomed-out tile of a lon/lat grid (datashader's
# rectilinear quadmesh), a tile of a projected grid in Web Mercator (its curvilinear one), a
# map with contours (matplotlib).
FIRST_MAPS = ["/tiles/naefs-mean.QPF/1/0/0.png", "/tiles/marfc-fmat.t/5/9/12.png",
              "/wms?request=GetMap&layers=naefs-mean.QTF&crs=EPSG:3857&width=800&height=600"
              "&bbox=-13914936,2875744,-7235766,7170156&showContours=true"]


def test_health_says_warming_up_until_the_first_maps_are_fast(demo_stores: Path) -> None:
    server, base = start_serving(demo_stores, workers=1)
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
    server, base = start_serving(demo_stores, workers=2)
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
        done.set()
        for each in probes:
            each.join()
        health = httpx.get(f"{base}/health", timeout=5).json()
        serving = workers_holding_connections(server.pid, httpx.URL(base).port, base)
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
    assert health["ready"] is True and health["workers"] == {"warm": 2, "count": 2}
    assert serving == 2  # new connections reach both workers


def test_a_worker_that_cannot_warm_up_still_serves_and_says_why(demo_stores: Path,
                                                                 tmp_path: Path) -> None:
    stores = tmp_path / "stores"
    shutil.copytree(demo_stores, stores)
    for chunk in (stores / "marfc-fmat.zarr" / "t" / "c").rglob("*"):
        if chunk.is_file():  # every chunk of the store's first layer: nothing can be drawn
            chunk.write_bytes(b"not a blosc chunk")
    with live_server("--stores", str(stores), "--workers", "2", timeout_s=180) as url:
        health = httpx.get(f"{url}/health", timeout=5).json()
        tile = httpx.get(url + FIRST_MAPS[0], timeout=10)
        log = server_log(url)
    # Both workers say which layer they could not draw, and why, and serve the others.
    assert log.count("warm-up skipped layer marfc-fmat.t") == 2, log
    assert tile.status_code == 200 and tile.content.startswith(b"\x89PNG")
    assert health["ready"] is True and health["workers"] == {"warm": 2, "count": 2}


def workers_holding_connections(server_pid: int, port: int, base: str,
                                connections: int = 30) -> int:
    """How many of the server's worker processes hold one of ``connections`` new keep-alive
    connections (from /proc: the sockets of each worker against the established ones)."""
    clients = [httpx.Client(base_url=base) for _ in range(connections)]
    try:
        for client in clients:
            client.get("/health", timeout=5)
        established = {line.split()[9] for line in
                       Path("/proc/net/tcp").read_text().splitlines()[1:]
                       if line.split()[1].endswith(f":{port:04X}") and line.split()[3] == "01"}
        children = Path(f"/proc/{server_pid}/task/{server_pid}/children").read_text().split()
        return sum(bool(socket_inodes(int(pid)) & established) for pid in children)
    finally:
        for client in clients:
            client.close()


def socket_inodes(pid: int) -> set[str]:
    """The inodes of the sockets process ``pid`` holds open."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):  # closed meanwhile
            target = str(fd.readlink())
            if target.startswith("socket:["):
                inodes.add(target.removeprefix("socket:[").rstrip("]"))
    return inodes


def answered_ok(base: str) -> bool:
    """Whether ``/health`` answers 200 on a new connection."""
    with contextlib.suppress(httpx.TransportError):
        return httpx.get(f"{base}/health", timeout=5).status_code == 200
    return False


def test_health_is_ready_only_once_every_worker_is_warm(tmp_path: Path) -> None:
    # Two workers of one service, as `serve` forks them: one shared record of who is warm.
    # Each warms up before it listens (and so before its lifespan starts), one after the other.
    workers = WarmWorkers(2)
    apps = [create_app(Settings(stores_dir=tmp_path)) for _ in range(2)]
    for index, app in enumerate(apps):
        app.state.service.readiness.join(workers, index)

    def health(app: Starlette) -> tuple[int, object, dict[str, int]]:
        answer = AppClient(app, wait_until_ready=False).get("/health")
        return answer.status_code, answer.json()["status"], answer.json()["workers"]

    apps[0].state.service.readiness.warm_up()
    # The warm worker takes connections, but does not speak for the service.
    assert health(apps[0]) == (503, "warming up", {"warm": 1, "count": 2})
    apps[1].state.service.readiness.warm_up()
    assert [health(app) for app in apps] == [(200, "ok", {"warm": 2, "count": 2})] * 2
