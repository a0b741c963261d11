"""Measure the cube's read path (fewsmap.store.reads) and grid geometry, direct vs zarr.

Run: .venv/bin/python benchmarks/read_paths.py [--quick]
Writes benchmarks/results/read_paths.json and prints a table: the fastest of a fixed number
of repeats (this machine is shared; the minimum is the stable figure), in ms. Data in a
temporary folder deleted at the end.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.store_paths import synthetic_run
from fewsmap.render.regrid import Canvas
from fewsmap.render.regrid import read_window as read_map_window
from fewsmap.store.cube import ForecastStore
from fewsmap.store.reads import read_block, read_window
from fewsmap.store.writer import append_run
from tests.synthetic import field_store, lonlat_grid

RESULTS = Path(__file__).resolve().parent / "results" / "read_paths.json"
HALF_WORLD_M = 20037508.342789244
TILE_Z4_M = 2 * HALF_WORLD_M / 2**4


def fastest(fn: Callable[[], object], repeat: int) -> float:
    """The fastest of ``repeat`` calls after one warm-up, in ms."""
    fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return round(min(times), 4)


def europe(root: Path, quick: bool) -> dict[str, float]:
    """A 0.05° Europe grid (store_paths' field): tile, series, EDR block, export window."""
    ny, nx, steps = (90, 140, 4) if quick else (900, 1400, 24)
    path = root / "eu.zarr"
    append_run(path, synthetic_run(np.datetime64("2026-01-01T00:00:00", "s"), steps, ny, nx,
                                   0), progress=False)
    store = ForecastStore(path)
    run = store.runs[-1]
    prefix = (run.slot, int(run.step_slots[steps // 2]))
    tile = Canvas("EPSG:3857", (0.0, 5.0e6, TILE_Z4_M / 8, 5.0e6 + TILE_Z4_M / 8), 256, 256)
    window = store.geometry.window_in(tile.crs, tile.bbox)
    cell = store.geometry.cell_at("EPSG:4326", 10.0, 50.0)
    assert window is not None and cell is not None
    rows, cols = np.arange(ny // 3, ny // 3 + ny // 9), np.arange(nx // 3, nx // 3 + nx // 9)
    found: dict[str, float] = {
        "map_window_256_tile": fastest(lambda: read_map_window(store, "t2m", prefix, tile), 200),
        "cell_at": fastest(lambda: store.geometry.cell_at("EPSG:4326", 10.0, 50.0), 500),
        "export_window_20deg": fastest(
            lambda: store.geometry.overlapping("EPSG:4326", (0.0, 40.0, 20.0, 60.0)), 200),
    }
    for direct in (True, False):
        path_name = "direct" if direct else "zarr"
        found[f"tile_values_{path_name}"] = fastest(
            lambda d=direct: read_window(store, "t2m", prefix, window.rows, window.cols, direct=d),
            100)
        found[f"series_{steps}_steps_{path_name}"] = fastest(
            lambda d=direct: read_block(store, "t2m", run.slot, run.step_slots, [], [cell.row],
                                        [cell.col], direct=d), 50)
        found[f"edr_block_4_steps_{path_name}"] = fastest(
            lambda d=direct: read_block(store, "t2m", run.slot, run.step_slots[:4], [], rows,
                                        cols, direct=d), 20)
    return found


def global_0_360(root: Path, quick: bool) -> dict[str, float]:
    """A global 0..360 grid: a Web Mercator tile across 0° reads a wrapped window."""
    spacing = 2.0 if quick else 0.25
    lat, lon = np.arange(90.0, -90.1, -spacing), np.arange(0.0, 360.0, spacing)
    values = np.random.default_rng(1).normal(size=(lat.size, lon.size))
    store = ForecastStore(field_store(root / "global.zarr", lonlat_grid(lat, lon), values,
                                      values))
    run = store.runs[0]
    prefix = (run.slot, int(run.step_slots[0]))
    across = Canvas("EPSG:3857", (-TILE_Z4_M / 2, 5e6, TILE_Z4_M / 2, 5e6 + TILE_Z4_M), 256,
                    256)
    east = Canvas("EPSG:3857", (TILE_Z4_M, 5e6, 2 * TILE_Z4_M, 5e6 + TILE_Z4_M), 256, 256)
    return {"tile_across_0deg": fastest(lambda: read_map_window(store, "lon", prefix, across),
                                        200),
            "tile_east_of_0deg": fastest(lambda: read_map_window(store, "lon", prefix, east),
                                         200)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny sizes, seconds")
    quick = parser.parse_args().quick
    with tempfile.TemporaryDirectory(prefix="fewsmap-reads-") as folder:
        results = {**europe(Path(folder), quick), **global_0_360(Path(folder), quick)}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=1))
    print("\n".join(f"{key:28s} {value:9.4f} ms" for key, value in results.items()))


if __name__ == "__main__":
    main()
