"""Time the first GetMaps after ``fewsmap serve`` starts: the issue asks for ≤ 1 s.

Starts the server on a stores folder, waits only until ``/health`` answers, then times a
256×256 tile and a 1920×1200 map (each the first of its kind) and a second tile. The
numba kernels are compiled by a background warm-up at start; this shows whether the first
user waits for it. Usage::

    .venv/bin/python -m benchmarks.first_map [STORES] [--trials N]

(default STORES: the benchmark suite's Europe cube in ~/.cache/fewsmap-bench).
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

DEFAULT_STORES = Path.home() / ".cache" / "fewsmap-bench" / "full" / "stores-maps"
TILE = ("bbox=0,5009377.085697311,1252344.2714243277,6261721.357121639&width=256&height=256")
MAP = ("bbox=-2782987.269831839,3123471.5397898024,5009377.085697311,8350255.958398426"
       "&width=1920&height=1200")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(stores: Path, *args: str, confirmations: int = 1
                 ) -> tuple[subprocess.Popen[bytes], str, float]:
    """Start ``fewsmap serve`` on ``stores``; return it, its URL and the seconds until
    ``/health`` answered 200 (ready: warmed up) on ``confirmations`` new connections in a
    row (each worker warms up on its own; the kernel spreads connections over them)."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "fewsmap.cli", "serve", "--stores", str(stores), "--port",
         str(port), *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    started = time.perf_counter()
    in_a_row = 0
    while in_a_row < confirmations:
        try:
            ready = httpx.get(f"{base}/health", timeout=5).status_code == 200
        except httpx.TransportError:
            ready = False
        in_a_row = in_a_row + 1 if ready else 0
        if not ready:
            time.sleep(0.05)
    return server, base, time.perf_counter() - started


def first_maps(stores: Path, layer: str) -> dict[str, float]:
    """Seconds for the first tile, the first big map and a second tile after start-up."""
    server, base, up = start_server(stores)
    try:
        times = {"start-up until /health answers": up}
        query = f"{base}/wms?request=GetMap&layers={layer}&crs=EPSG:3857&format=image/png"
        for name, extra in (("first 256x256 GetMap", TILE), ("first 1920x1200 GetMap", MAP),
                            ("second 256x256 GetMap", TILE)):
            t = time.perf_counter()
            response = httpx.get(f"{query}&{extra}", timeout=60)
            response.raise_for_status()
            times[name] = time.perf_counter() - t
        return times
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("stores", nargs="?", type=Path, default=DEFAULT_STORES)
    parser.add_argument("--layer", default="eu.t2m")
    parser.add_argument("--trials", type=int, default=3)
    args = parser.parse_args()
    runs = [first_maps(args.stores, args.layer) for _ in range(args.trials)]
    for name in runs[0]:
        values = [run[name] for run in runs]
        print(f"{name:32s} median {statistics.median(values) * 1000:8.1f} ms  "
              f"max {max(values) * 1000:8.1f} ms  ({len(values)} starts)")


if __name__ == "__main__":
    main()
