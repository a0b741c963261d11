"""Measure catchment means: 100 catchments × 65 steps of one member (issue #15 target: 200 ms,
with the weights computed once per grid and set, then kept).

Run: .venv/bin/python benchmarks/catchments.py [--quick]
A 0.25° Europe grid (181 x 281, ECMWF ENS resolution), one run of 65 steps and a few members,
100 synthetic catchments (jittered polygons of 1-4° over the grid). Measured, warm (page
cache), the fastest of a fixed number of repeats in ms, taking turns:

- ``weights`` — computing the set's weights (exactextract), paid once per store state and set;
- ``read floor`` — reading the 65 windows of the set's cells (the baseline: no mean taken);
- ``means`` — reading them and taking all 100 catchments' means (`read_means`), the target;
- ``api one`` — one catchment's 65-step series through the app (JSON), weights kept.

Writes benchmarks/results/catchments.md and .json (not with --quick).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import pyproj
import shapely
import xarray as xr

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.ensemble import fastest
from fewsmap.app.server import create_app
from fewsmap.ingest.grids import grid_attrs
from fewsmap.products.catchments import (
    catchment_set,
    catchment_weights,
    read_means,
    window_of,
)
from fewsmap.settings import Settings
from fewsmap.store import reads
from fewsmap.store.cube import ForecastStore
from fewsmap.store.run import Grid, RunData, SourceFile
from fewsmap.store.writer import append_run
from tests.asgi_client import AppClient

RESULTS = Path(__file__).resolve().parent / "results" / "catchments"
TARGET_MS = 200.0
CATCHMENTS = 100


def ensemble_run(ny: int, nx: int, steps: int, members: int) -> RunData:
    """Precipitation-like members on a Europe lon/lat grid, hourly steps."""
    rng = np.random.default_rng(15)
    lat, lon = np.linspace(72.0, 27.0, ny), np.linspace(-25.0, 45.0, nx)
    values = rng.gamma(0.6, 2.0, (steps, members, ny, nx)).astype("float32")
    grid = Grid(("latitude", "longitude"),
                {"latitude": xr.DataArray(lat, dims="latitude"),
                 "longitude": xr.DataArray(lon, dims="longitude")},
                grid_attrs(pyproj.CRS.from_epsg(4326)))
    step = (np.arange(steps) * 3600).astype("timedelta64[s]").astype("timedelta64[ns]")
    rain = xr.DataArray(values, dims=("step", "realization", *grid.dims),
                        coords={"step": step, "realization": np.arange(members)},
                        attrs={"units": "mm", "long_name": "precipitation"})
    return RunData(np.datetime64("2026-01-01T00:00:00", "s"), {"tp": (rain,)}, grid,
                   (SourceFile("synthetic", "0" * 64, 0),), "synthetic")


def synthetic_catchments(count: int) -> list[shapely.Geometry]:
    """``count`` jittered 14-gons of 1-4° across the grid (synthetic, like the demo set)."""
    rng = np.random.default_rng(100)
    shapes = []
    for _ in range(count):
        x, y = rng.uniform(-20, 40), rng.uniform(32, 68)
        angles = np.sort(rng.uniform(0, 2 * np.pi, 14))
        radius = rng.uniform(0.5, 2.0) * rng.uniform(0.7, 1.3, 14)
        shapes.append(shapely.Polygon(np.column_stack(
            [x + radius * np.cos(angles), y + radius * np.sin(angles)])).buffer(0))
    return shapes


def measure(quick: bool) -> dict[str, float]:
    ny, nx, steps, members = (46, 71, 12, 2) if quick else (181, 281, 65, 5)
    repeat = 3 if quick else 15
    with tempfile.TemporaryDirectory(prefix="fewsmap-catchments-") as folder:
        stores = Path(folder)
        append_run(stores / "ens.zarr", ensemble_run(ny, nx, steps, members), progress=False)
        store = ForecastStore(stores / "ens.zarr")
        run = store.latest_run
        assert run is not None
        polygons = synthetic_catchments(CATCHMENTS)
        weights = catchment_weights(store.geometry, polygons)
        window = window_of(weights.polygons)
        assert window is not None
        labels = [[0]]

        def read_floor() -> object:
            return reads.read_block(store, "tp", run.slot, run.step_slots, labels,
                                    window.rows, window.cols)

        def means() -> object:
            return read_means(store, ["tp"], window, run.slot, run.step_slots, labels)

        found = fastest({"weights": lambda: catchment_weights(store.geometry, polygons),
                         "read floor": read_floor, "means": means}, repeat)
        catchments = catchment_set("bench", "bench", [f"C{k}" for k in range(CATCHMENTS)],
                                   polygons)
        (stores / "catchments").mkdir()
        (stores / "catchments" / "bench.geojson").write_text(json.dumps(
            catchments.feature_collection()))
        client = AppClient(create_app(Settings(stores_dir=stores)))
        found |= fastest({"api one": lambda: client.get(
            "/api/catchments/bench/C7", params={"layer": "ens.tp", "member": "0"})}, repeat)
        found["cells"] = float(sum(w.weights.size for w in weights.polygons))
        found["window cells"] = float(window.size)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny sizes, seconds")
    quick = parser.parse_args().quick
    found = measure(quick)
    lines = ["| case | ms |", "|---|---|",
             *(f"| {name} | {found[name]:.1f} |" for name in
               ("weights", "read floor", "means", "api one"))]
    ratio = found["means"] / found["read floor"]
    print("\n".join(lines))
    print(f"means of {CATCHMENTS} catchments: {found['means']:.1f} ms "
          f"({ratio:.2f}x the read floor; target {TARGET_MS:.0f} ms)")
    if not quick:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.with_suffix(".json").write_text(json.dumps(found, indent=1))
        RESULTS.with_suffix(".md").write_text("\n".join([
            "# Catchment means (benchmarks/catchments.py)", "",
            f"{CATCHMENTS} synthetic catchments on a 0.25° Europe grid (181 x 281), one run "
            f"of 65 steps, one member read; {int(found['cells'])} weighted cells in a window "
            f"of {int(found['window cells'])}. Warm, fastest of 15, ms. `means` is the issue "
            "#15 target (100 catchments x 65 steps of one member, weights kept): "
            f"{found['means']:.1f} ms ({ratio:.2f}x reading the window alone; target "
            f"{TARGET_MS:.0f} ms). `weights` is paid once per store state and set.", "",
            *lines, ""]))


if __name__ == "__main__":
    main()
