"""Measure fewsmap's own store paths: append + publish a run, open, read a slice/window.

Run: .venv/bin/python benchmarks/store_paths.py [--quick]
Writes benchmarks/results/store_paths.json and prints a table. Bounded: fixed loop counts,
data in a temporary folder that is deleted at the end.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyproj
import xarray as xr

from fewsmap.ingest.grids import grid_attrs
from fewsmap.store.cube import ForecastStore
from fewsmap.store.run import Grid, RunData, SourceFile
from fewsmap.store.writer import append_run

RESULTS = Path(__file__).resolve().parent / "results" / "store_paths.json"


def synthetic_run(t0: np.datetime64, steps: int, ny: int, nx: int, seed: int) -> RunData:
    """A smooth quantised field on a 0.05° Europe grid with a NaN sea, like perf-anchors."""
    rng = np.random.default_rng(seed)
    lat = np.linspace(72, 27, ny)
    lon = np.linspace(-25, 45, nx)
    base = 20 - 0.6 * (lat[:, None] - 27) + 3 * np.sin(np.radians(lon[None, :] * 4))
    sea = (np.sin(np.radians(lat[:, None] * 7)) + np.cos(np.radians(lon[None, :] * 5))) > 1.2
    fields = np.empty((steps, ny, nx), dtype="float32")
    for s in range(steps):
        wave = 4 * np.sin(np.radians(lon[None, :] * 3 + 10 * s) + np.radians(lat[:, None] * 2))
        field = base + wave + rng.normal(0, 0.05, (ny, nx))
        field = np.round(field * 64) / 64
        field[sea] = np.nan
        fields[s] = field
    grid = Grid(("latitude", "longitude"),
                {"latitude": xr.DataArray(lat, dims="latitude"),
                 "longitude": xr.DataArray(lon, dims="longitude")},
                grid_attrs(pyproj.CRS.from_epsg(4326)))
    step = (np.arange(steps) * 3600).astype("timedelta64[s]").astype("timedelta64[ns]")
    field = xr.DataArray(fields, dims=("step", "latitude", "longitude"), coords={"step": step},
                         attrs={"units": "degC", "long_name": "temperature"})
    return RunData(t0, {"t2m": (field,)}, grid, (SourceFile("synthetic", "0" * 64, 0),),
                   "synthetic")


def timed(fn: Callable[[], object], repeat: int) -> dict[str, float]:
    fn()  # warm
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return {"median_ms": statistics.median(times), "min_ms": min(times), "max_ms": max(times),
            "n": repeat}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny sizes, seconds")
    args = parser.parse_args()
    ny, nx, steps, runs = (90, 140, 4, 3) if args.quick else (900, 1400, 24, 5)
    root = Path(tempfile.mkdtemp(prefix="fewsmap-bench-"))
    results: dict[str, object] = {"grid": [ny, nx], "steps": steps, "runs": runs}
    try:
        store = root / "eu.zarr"
        t0 = np.datetime64("2026-01-01T00:00:00", "s")
        append_ms = []
        for r in range(runs):
            run = synthetic_run(t0 + np.timedelta64(6 * r, "h"), steps, ny, nx, r)
            start = time.perf_counter()
            append_run(store, run, progress=False)
            append_ms.append((time.perf_counter() - start) * 1000)
        results["append_run_ms_per_run"] = append_ms
        results["append_ms_per_field"] = statistics.median(append_ms[1:] or append_ms) / steps
        results["open_store"] = timed(lambda: ForecastStore(store), 20)
        cube = ForecastStore(store)
        run = cube.runs[-1]
        when = run.valid_times[steps // 2]
        results["read_slice"] = timed(lambda: cube.read_slice("t2m", run, when), 30)
        array = cube.array("t2m")
        window = (run.slot, int(run.step_slots[steps // 2]),
                  slice(ny // 3, ny // 3 + 110), slice(nx // 3, nx // 3 + 110))
        results["read_window_110"] = timed(lambda: array[window], 30)
        results["bytes_on_disk_per_field"] = sum(
            p.stat().st_size for p in (store / "t2m").rglob("*") if p.is_file()) / (runs * steps)
    finally:
        shutil.rmtree(root)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=1))
    for key, value in results.items():
        print(f"{key:28s} {value}")


if __name__ == "__main__":
    main()
