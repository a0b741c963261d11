"""Measure how much slower tiles are in the first seconds after ``fewsmap serve`` starts.

Starts the server on a stores folder (default: a 1400 × 900 Europe cube of 24 hourly steps,
written once into ``~/.cache/fewsmap-bench/warm-start``), waits until ``/health`` answers 200
(ready) on 10 new connections in a row,
then fetches 200 distinct 256² tiles one after another on one keep-alive connection (the
"cold" series, timed from the first answer) and then 200 other tiles of the same zoom (the
"warm" series: no tile of it was drawn before, so per-window caches are as cold as in the
first series). The result is the ratio of the medians, cold over warm (issue #13 item 18:
8.5 ms vs 3.2 ms, 2.7×, before the service warmed up before taking traffic). Usage::

    .venv/bin/python -m benchmarks.warm_start [--stores DIR --layer L] [--starts N]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import signal
import statistics
import time
from pathlib import Path

import httpx

from benchmarks.first_map import start_server
from benchmarks.suite.data import DOMAIN, CubeSpec, build_stores

DEFAULT_CACHE = Path.home() / ".cache" / "fewsmap-bench" / "warm-start"
EU = CubeSpec("eu", 900, 1400, 1, 24)
ZOOM = 7
SERIES = 200
# Fresh connections that must find /health 200 in a row. Since every worker's /health waits
# for all workers to be warm, one is enough; ten keep older versions (each worker speaking
# for itself: 10 reaching the ready one by chance, 1 in 1024 with 2 workers) comparable.
READY_CONFIRMATIONS = 10


def tile_xy(lon: float, lat: float, zoom: int) -> tuple[int, int]:
    """The XYZ tile holding (lon, lat) at ``zoom``."""
    n = 2**zoom
    y = (1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n
    return int((lon + 180) / 360 * n), int(y)


def tile_paths(layer: str, seed: int = 1) -> tuple[list[str], list[str]]:
    """Two disjoint series of tiles over the Europe domain, in a seeded random order."""
    west, south, east, north = DOMAIN
    x0, y0 = tile_xy(west, north, ZOOM)
    x1, y1 = tile_xy(east, south, ZOOM)
    tiles = [f"/tiles/{layer}/{ZOOM}/{x}/{y}.png"
             for x in range(x0, x1 + 1) for y in range(y0, y1 + 1)]
    random.Random(seed).shuffle(tiles)
    if len(tiles) < 2 * SERIES:
        raise SystemExit(f"only {len(tiles)} tiles at zoom {ZOOM}; need {2 * SERIES}")
    return tiles[:SERIES], tiles[SERIES:2 * SERIES]


def timed_series(client: httpx.Client, paths: list[str]) -> list[float]:
    """Milliseconds for each tile, fetched one after another."""
    out = []
    for path in paths:
        began = time.perf_counter()
        response = client.get(path)
        out.append((time.perf_counter() - began) * 1000)
        response.raise_for_status()
    return out


def one_start(stores: Path, layer: str, workers: list[str]) -> dict[str, float]:
    """Start the server, then time the cold and the warm series of tiles."""
    cold_paths, warm_paths = tile_paths(layer)
    server, base, up = start_server(stores, *workers, confirmations=READY_CONFIRMATIONS)
    try:
        with httpx.Client(base_url=base, timeout=60) as client:
            began = time.perf_counter()
            cold = timed_series(client, cold_paths)
            cold_s = time.perf_counter() - began
            warm = timed_series(client, warm_paths)
        return {"up_s": up, "cold_series_s": cold_s,
                "cold_median_ms": statistics.median(cold),
                "cold_first_ms": cold[0],
                "warm_median_ms": statistics.median(warm),
                "ratio": statistics.median(cold) / statistics.median(warm)}
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--stores", type=Path, help="a stores folder (default: the Europe cube)")
    parser.add_argument("--layer", default="eu.t2m")
    parser.add_argument("--starts", type=int, default=3)
    parser.add_argument("--workers", type=int, help="default: fewsmap's (one per core)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    stores = args.stores or build_stores(DEFAULT_CACHE, [EU]).folder
    workers = ["--workers", str(args.workers)] if args.workers else []
    runs = [one_start(stores, args.layer, workers) for _ in range(args.starts)]
    for run in runs:
        print(f"up {run['up_s']:.2f} s; first tile {run['cold_first_ms']:.1f} ms; first "
              f"{SERIES} tiles median {run['cold_median_ms']:.2f} ms (in "
              f"{run['cold_series_s']:.1f} s); next {SERIES} {run['warm_median_ms']:.2f} ms; "
              f"ratio {run['ratio']:.2f}")
    print(f"median ratio over {len(runs)} starts: "
          f"{statistics.median(r['ratio'] for r in runs):.2f}")
    if args.json:
        args.json.write_text(json.dumps(runs, indent=1))


if __name__ == "__main__":
    main()
