"""Zoomed-out maps and random tiles of a 4000 × 3000 cube, with and without overviews.

Issue #18: "a 1920 × 1200 full-extent map ≤ 60 ms; random 256² tiles over zooms 2–10 with
p95 ≤ 2× median". Builds the same synthetic cube (benchmarks/suite/data.py: 4000 × 3000
over Europe, 29 % missing "sea", 1 run × ``STEPS`` steps) twice, once with overview levels
(`fewsmap.store.overviews`) and once without (as fewsmap wrote before), in a cache folder
reused by later runs. Starts one ``fewsmap serve`` (one worker) on each and sends both the
same requests, interleaved on one keep-alive connection each: 1920 × 1200 EPSG:3857 GetMaps
of the whole domain and random 256² GetMap tiles at zooms 2–10, after a warm-up pass; then
the tiles per second of each at ``CONCURRENCY`` connections. Last, the ingest cost of the
levels: one run of ``STEPS`` steps, fields in memory, appended with and without overviews
(alternating, ``--ingest-repeats`` times), and the bytes each store takes. Usage::

    .venv/bin/python -m benchmarks.big_grid [--maps 20] [--tiles 300] [--quick]

Results: benchmarks/results/big_grid.{md,json}.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import xarray as xr

from benchmarks.first_map import start_server
from benchmarks.object_store import timed
from benchmarks.suite.client import load
from benchmarks.suite.data import (
    CubeSpec,
    FieldMaker,
    build_stores,
    folder_bytes,
    grid_of,
)
from benchmarks.suite.workload import FewsmapUrls, MapRequest, maps, tiles
from fewsmap.store.run import RunData, SourceFile
from fewsmap.store.writer import append_run

DEFAULT_CACHE = Path.home() / ".cache" / "fewsmap-bench" / "big-grid"
RESULTS = Path(__file__).parent / "results"
STEPS = 3
BIG = CubeSpec("big", 3000, 4000, 1, STEPS, seed=7)
ZOOMS = (2, 10)
CONCURRENCY = 8
KINDS = ("overviews", "plain")  # the store written with levels, and without
TARGET_MAP_MS = 60.0
TARGET_TILE_P95_OVER_MEDIAN = 2.0


def build(cache: Path) -> dict[str, Path]:
    """The two stores folders (with and without overviews), built once."""
    folders = {kind: cache / kind for kind in KINDS}
    for kind, folder in folders.items():
        built = build_stores(folder, [BIG], overviews=kind == "overviews")
        if not built.reused:
            print(f"built {kind} in {built.seconds:.0f} s")
    return folders


def series(clients: dict[str, httpx.Client], requests: list[MapRequest], warm: int
           ) -> dict[str, list[float]]:
    """Milliseconds of each request from each server, interleaved request by request,
    after ``warm`` untimed requests (the chunks' first reads)."""
    urls = FewsmapUrls()
    times: dict[str, list[float]] = {kind: [] for kind in clients}
    for k, request in enumerate(requests):
        for kind, client in clients.items():
            elapsed = timed(client, urls.getmap(request))
            if k >= warm:
                times[kind].append(elapsed)
    return times


def summary(values: list[float]) -> dict[str, float]:
    """Median, p95 and their ratio, in ms."""
    median = statistics.median(values)
    p95 = statistics.quantiles(values, n=20)[-1]
    return {"n": len(values), "median_ms": median, "p95_ms": p95, "p95_over_median": p95 / median,
            "mean_ms": statistics.fmean(values)}


def by_zoom(requests: list[MapRequest], times: list[float]) -> dict[int, float]:
    """Median milliseconds per zoom level of the tiles."""
    zooms: dict[int, list[float]] = {}
    for request, elapsed in zip(requests, times, strict=True):
        width = request.bbox[2] - request.bbox[0]
        zoom = round(np.log2(2 * 20037508.342789244 / width))
        zooms.setdefault(zoom, []).append(elapsed)
    return {z: statistics.median(v) for z, v in sorted(zooms.items())}


def serve_and_measure(folders: dict[str, Path], n_maps: int, n_tiles: int,
                      seconds: float) -> dict[str, Any]:
    """Start one server per store folder; time maps, tiles and throughput of both."""
    started = {kind: start_server(folder, "--workers", "1") for kind, folder in
               folders.items()}
    try:
        clients = {kind: httpx.Client(base_url=base, timeout=120)
                   for kind, (_, base, _) in started.items()}
        warm_maps = 3
        map_requests = maps(BIG, warm_maps + n_maps, seed=11)
        map_times = series(clients, map_requests, warm_maps)
        tile_requests = tiles(BIG, 2 * n_tiles, seed=12, zooms=ZOOMS)
        series(clients, tile_requests[n_tiles:], 0)  # warm-up pass: other tiles
        tile_times = series(clients, tile_requests[:n_tiles], 0)
        for client in clients.values():
            client.close()
        urls = FewsmapUrls()
        paths = [urls.getmap(r) for r in tile_requests]
        throughput = {}
        for kind, (_, base, _) in started.items():  # one at a time: they share the cores
            result = load(int(base.rsplit(":", 1)[1]), paths * 20, CONCURRENCY, seconds)
            throughput[kind] = {"tiles_per_s": result.n / result.wall_s, "requests": result.n,
                                "errors": result.errors}
    finally:
        for server, _, _ in started.values():
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(30)
    return {
        "maps": {kind: summary(v) for kind, v in map_times.items()},
        "tiles": {kind: summary(v) for kind, v in tile_times.items()},
        "tiles_by_zoom_median_ms": {kind: by_zoom(tile_requests[:n_tiles], v)
                                    for kind, v in tile_times.items()},
        "throughput": throughput,
    }


def in_memory_run(spec: CubeSpec) -> RunData:
    """Run 0 of ``spec`` with its fields computed beforehand, so an ingest times writing."""
    maker = FieldMaker(spec)
    values = np.stack([maker.field(0, s) for s in range(spec.steps)])
    steps = (np.arange(spec.steps) * 3600).astype("timedelta64[s]").astype("timedelta64[ns]")
    field = xr.DataArray(values, dims=("step", "latitude", "longitude"),
                         coords={"step": steps}, attrs={"units": "degC"})
    return RunData(spec.reference_time(0), {"t2m": (field,)}, grid_of(spec),
                   (SourceFile("synthetic:big", "0" * 64, 0),), "synthetic")


def ingest_cost(repeats: int) -> dict[str, Any]:
    """Seconds to append one run with and without overviews (alternating), and bytes."""
    run = in_memory_run(BIG)
    seconds: dict[str, list[float]] = {kind: [] for kind in KINDS}
    sizes: dict[str, int] = {}
    with tempfile.TemporaryDirectory(prefix="fewsmap-big-grid-") as scratch:
        for k in range(repeats):
            for kind in (KINDS if k % 2 == 0 else KINDS[::-1]):
                store = Path(scratch) / f"{kind}.zarr"
                began = time.perf_counter()
                append_run(store, run, progress=False, overviews=kind == "overviews")
                seconds[kind].append(time.perf_counter() - began)
                sizes[kind] = folder_bytes(store)
                shutil.rmtree(store)
    raw = run.fields["t2m"][0].nbytes
    median = {kind: statistics.median(v) for kind, v in seconds.items()}
    return {"raw_bytes": raw, "seconds": seconds, "median_s": median,
            "mb_per_s": {kind: raw / 1e6 / s for kind, s in median.items()},
            "ratio_with_over_without": median["overviews"] / median["plain"],
            "disk_bytes": sizes,
            "disk_ratio_with_over_without": sizes["overviews"] / sizes["plain"]}


def report(figures: dict[str, Any]) -> str:
    """The figures as Markdown."""
    maps_, tiles_, zoom, put, ingest = (figures[k] for k in (
        "maps", "tiles", "tiles_by_zoom_median_ms", "throughput", "ingest"))
    with_, plain = maps_["overviews"], maps_["plain"]
    tw, tp = tiles_["overviews"], tiles_["plain"]
    zooms = sorted(zoom["overviews"], key=int)
    lines = [
        "# 4000 × 3000 cube: zoomed-out maps and tiles with and without overviews", "",
        f"One run × {STEPS} steps, synthetic Europe field (benchmarks/suite/data.py), 512² "
        f"chunks; one `fewsmap serve --workers 1` per store, same requests interleaved on "
        f"one keep-alive connection each; {figures['cores']} cores shared with other work "
        f"(load average at start {figures['load_average']:.1f}).", "",
        "| measurement | with overviews | without (as before) | with / without | target |",
        "|---|---|---|---|---|",
        f"| 1920×1200 EPSG:3857 GetMap of the domain, median ({with_['n']} maps) | "
        f"{with_['median_ms']:.1f} ms | {plain['median_ms']:.1f} ms | "
        f"{with_['median_ms'] / plain['median_ms']:.2f} | ≤ {TARGET_MAP_MS:g} ms |",
        f"| same, p95 | {with_['p95_ms']:.1f} ms | {plain['p95_ms']:.1f} ms | "
        f"{with_['p95_ms'] / plain['p95_ms']:.2f} | |",
        f"| random 256² tiles, zooms {ZOOMS[0]}–{ZOOMS[1]}, median ({tw['n']} tiles) | "
        f"{tw['median_ms']:.1f} ms | {tp['median_ms']:.1f} ms | "
        f"{tw['median_ms'] / tp['median_ms']:.2f} | |",
        f"| same, p95 | {tw['p95_ms']:.1f} ms | {tp['p95_ms']:.1f} ms | "
        f"{tw['p95_ms'] / tp['p95_ms']:.2f} | |",
        f"| tiles p95 / median | {tw['p95_over_median']:.2f} | {tp['p95_over_median']:.2f} | "
        f"| ≤ {TARGET_TILE_P95_OVER_MEDIAN:g} |",
        f"| tiles per second at c={CONCURRENCY} | {put['overviews']['tiles_per_s']:.0f} | "
        f"{put['plain']['tiles_per_s']:.0f} | "
        f"{put['overviews']['tiles_per_s'] / put['plain']['tiles_per_s']:.2f} | |",
        "", "Median tile time by zoom (ms):", "",
        "| zoom | " + " | ".join(str(z) for z in zooms) + " |",
        "|---|" + "---|" * len(zooms),
        *(f"| {kind} | " + " | ".join(f"{zoom[kind][z]:.1f}" for z in zooms) + " |"
          for kind in KINDS),
        "",
        f"Ingest of one run ({ingest['raw_bytes'] / 1e6:.0f} MB float32, fields in memory, "
        f"median of {len(ingest['seconds']['plain'])}): with overviews "
        f"{ingest['median_s']['overviews']:.2f} s ({ingest['mb_per_s']['overviews']:.0f} "
        f"MB/s), without {ingest['median_s']['plain']:.2f} s "
        f"({ingest['mb_per_s']['plain']:.0f} MB/s): "
        f"{ingest['ratio_with_over_without']:.2f}× the time; on disk "
        f"{ingest['disk_bytes']['overviews'] / 1e6:.0f} MB vs "
        f"{ingest['disk_bytes']['plain'] / 1e6:.0f} MB "
        f"({ingest['disk_ratio_with_over_without']:.2f}×).", "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--maps", type=int, default=20)
    parser.add_argument("--tiles", type=int, default=300)
    parser.add_argument("--seconds", type=float, default=15.0,
                        help="duration of each throughput measurement")
    parser.add_argument("--ingest-repeats", type=int, default=4)
    parser.add_argument("--quick", action="store_true",
                        help="5 maps, 60 tiles, 3 s throughput, 2 ingests")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    n_maps, n_tiles, seconds, repeats = (5, 60, 3.0, 2) if args.quick else (
        args.maps, args.tiles, args.seconds, args.ingest_repeats)
    folders = build(args.cache)
    load_average = os.getloadavg()[0]
    figures = {**serve_and_measure(folders, n_maps, n_tiles, seconds),
               "ingest": ingest_cost(repeats), "cores": os.cpu_count(),
               "load_average": load_average}
    args.out.mkdir(parents=True, exist_ok=True)
    name = "big_grid_quick" if args.quick else "big_grid"
    (args.out / f"{name}.json").write_text(json.dumps(figures, indent=1))
    (args.out / f"{name}.md").write_text(report(figures))
    print(report(figures))


if __name__ == "__main__":
    main()
