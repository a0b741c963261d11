"""256² tiles of projected and curvilinear grids against a regular lon/lat grid of the same size.

Issue #18: "tiles of projected and curvilinear grids within 1.5× a regular grid of the same
size, at every zoom, on a 2000 × 2000 Lambert grid". Writes five stores of ``SIZE`` × ``SIZE``
cells over central Europe, one run of one step, with overviews (as ingest writes them): a
regular lon/lat grid (0.025°), Lambert conformal (2.5 km), polar stereographic (2.5 km),
rotated pole (0.025°, on its 1-D rotated axes as ingest stores a CF rotated-pole file) and
the same rotated pole kept as 2-D latitude/longitude (``curvilinear``: a rotated-pole GRIB,
or a store written before issue #18). The field is smooth with noise and a NaN "sea", the
same function of longitude and latitude on every grid.

At each zoom, ``--tiles`` random tiles over the part of Europe all four grids cover are drawn
by the render pipeline (parse → resolve → read → regrid → colour → PNG, as /tiles/ draws
them, no HTTP), every tile by each grid in turn, so a busy spell of this shared machine slows
all kinds alike; a first pass over other tiles warms the caches and compiled kernels. The
figures are the median ms per zoom and each kind's ratio to the regular grid in the same
run. Usage::

    .venv/bin/python -m benchmarks.projected [--tiles 12] [--quick] [--profile lambert:6]

Results: benchmarks/results/projected.{md,json}. Stores in a temporary folder.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyproj
import xarray as xr

from fewsmap.catalog import Catalog
from fewsmap.ingest.grids import grid_attrs
from fewsmap.ogc.getmap import parse_getmap
from fewsmap.ogc.tiles import TileAddress, getmap_params
from fewsmap.params import Params
from fewsmap.render.pipeline import render_maps
from fewsmap.resolve.maps import resolve_maps
from fewsmap.settings import Settings
from fewsmap.store.run import Grid, RunData, SourceFile
from fewsmap.store.writer import append_run

RESULTS = Path(__file__).parent / "results"
SIZE = 2000
QUICK_SIZE = 600
PROFILE_SIZE = int(os.environ.get("PROJECTED_PROFILE_SIZE", SIZE))
KINDS = ("regular", "lambert", "polar_stereographic", "rotated_pole", "curvilinear")
ZOOMS = tuple(range(3, 12))
QUICK_ZOOMS = (3, 6, 9)
TARGET_RATIO = 1.5
CLOCKS = {"cpu": "Process CPU time", "wall": "Wall time"}
# Random tiles are centred in this lon/lat box, which every grid covers.
COMMON = (0.0, 44.0, 20.0, 56.0)
LAMBERT = pyproj.CRS.from_proj4(
    "+proj=lcc +lat_0=50 +lon_0=10 +lat_1=50 +lat_2=50 +R=6371229 +units=m +no_defs")
POLAR = pyproj.CRS.from_proj4(
    "+proj=stere +lat_0=90 +lat_ts=60 +lon_0=10 +R=6371229 +units=m +no_defs")
ROTATED = pyproj.CRS.from_cf({"grid_mapping_name": "rotated_latitude_longitude",
                              "grid_north_pole_latitude": 40.0,
                              "grid_north_pole_longitude": -170.0})


def field(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """The same field on every grid: a function of longitude and latitude, with noise and
    NaN where a pattern of "sea" is."""
    lam, phi = np.radians(lon), np.radians(lat)
    relief = np.cos(phi * 37) * np.sin(lam * 29) + 0.5 * np.sin(phi * 83 + lam * 61)
    values = 25 - 0.5 * (lat - 30) + 3 * relief
    values += np.random.default_rng(5).normal(0, 0.2, lon.shape)
    values[relief < -0.9] = np.nan
    return np.asarray(values, dtype=np.float32)


def native_axes(crs: pyproj.CRS, step: float, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Axes of ``size`` cells of ``step`` centred on 10° E 50° N in ``crs``."""
    cx, cy = pyproj.Transformer.from_crs("EPSG:4326", crs, always_xy=True).transform(10.0, 50.0)
    offsets = (np.arange(size) - (size - 1) / 2) * step
    return cx + offsets, cy + offsets


def grid_and_lonlat(kind: str, size: int) -> tuple[Grid, np.ndarray, np.ndarray]:
    """The store grid of ``kind`` and its cells' 2-D longitudes and latitudes."""
    scale = SIZE / size  # the quick mode keeps the extent with fewer, larger cells
    if kind == "regular":
        lat = 50.0 + (np.arange(size)[::-1] - (size - 1) / 2) * 0.025 * scale
        lon = 10.0 + (np.arange(size) - (size - 1) / 2) * 0.025 * scale
        grid = Grid(("latitude", "longitude"), {"latitude": xr.DataArray(lat, dims="latitude"),
                                                "longitude": xr.DataArray(lon, dims="longitude")},
                    grid_attrs(pyproj.CRS.from_epsg(4326)))
        lon2, lat2 = np.meshgrid(lon, lat)
        return grid, lon2, lat2
    crs, step = {"lambert": (LAMBERT, 2500.0), "polar_stereographic": (POLAR, 2500.0),
                 "rotated_pole": (ROTATED, 0.025), "curvilinear": (ROTATED, 0.025)}[kind]
    if crs is ROTATED:  # rotated (0, 0) at 10° E 50° N
        x = y = (np.arange(size) - (size - 1) / 2) * step * scale
    else:
        x, y = native_axes(crs, step * scale, size)
    xx, yy = np.meshgrid(x, y)
    lon2, lat2 = pyproj.Transformer.from_crs(crs, "EPSG:4326", always_xy=True).transform(xx, yy)
    if kind == "curvilinear":
        grid = Grid(("y", "x"), {"latitude": xr.DataArray(lat2, dims=("y", "x")),
                                 "longitude": xr.DataArray(lon2, dims=("y", "x"))},
                    grid_attrs(pyproj.CRS.from_epsg(4326)))
    else:
        grid = Grid(("y", "x"), {"y": xr.DataArray(y, dims="y"), "x": xr.DataArray(x, dims="x")},
                    grid_attrs(crs))
    return grid, lon2, lat2


def write_store(folder: Path, kind: str, size: int) -> None:
    """One run, one step of `field` on the grid of ``kind``, with overviews."""
    grid, lon, lat = grid_and_lonlat(kind, size)
    values = field(lon, lat)[None]
    step = np.array([0], "timedelta64[s]").astype("timedelta64[ns]")
    data = xr.DataArray(values, dims=("step", *grid.dims), coords={"step": step},
                        attrs={"units": "degC", "long_name": "2 m temperature"})
    run = RunData(np.datetime64("2026-01-01T00:00:00", "s"), {"t2m": (data,)}, grid,
                  (SourceFile(f"synthetic:{kind}", "0" * 64, 0),), "synthetic")
    append_run(folder / f"{kind}.zarr", run, progress=False)


def tile_at(zoom: int, lon: float, lat: float) -> TileAddress:
    """The Web Mercator tile holding a point."""
    n = 2 ** zoom
    x = int((lon + 180.0) / 360.0 * n)
    y = int((1 - np.arcsinh(np.tan(np.radians(lat))) / np.pi) / 2 * n)
    return TileAddress(zoom, min(x, n - 1), min(y, n - 1))


def random_tiles(zoom: int, count: int, seed: int) -> list[TileAddress]:
    rng = np.random.default_rng(seed + zoom)
    west, south, east, north = COMMON
    return [tile_at(zoom, float(rng.uniform(west, east)), float(rng.uniform(south, north)))
            for _ in range(count)]


def drawer(catalog: Catalog, kind: str, tile: TileAddress) -> Callable[[], bytes]:
    """A tile drawn as /tiles/ draws it, from parsing its GetMap to the PNG bytes."""
    params = Params(getmap_params(f"{kind}.t2m", tile, Params([])))

    def draw() -> bytes:
        request = parse_getmap(params, catalog.settings.max_image_pixels)
        return render_maps(resolve_maps(catalog, request))

    return draw


def measure(catalog: Catalog, zooms: tuple[int, ...], count: int) -> dict[str, Any]:
    """Median ms per zoom and kind over ``count`` random tiles, kinds taking turns."""
    for zoom in zooms:  # warm-up: other tiles (compiled kernels, geometries, page cache)
        for tile in random_tiles(zoom, 2, seed=1000):
            for kind in KINDS:
                drawer(catalog, kind, tile)()
    medians: dict[str, dict[str, dict[int, float]]] = {
        clock: {kind: {} for kind in KINDS} for clock in CLOCKS}
    for zoom in zooms:
        times = {clock: {kind: [] for kind in KINDS} for clock in CLOCKS}
        for tile in random_tiles(zoom, count, seed=0):
            for kind in KINDS:
                draw = drawer(catalog, kind, tile)
                wall, cpu = time.perf_counter(), time.process_time()
                draw()
                times["cpu"][kind].append((time.process_time() - cpu) * 1000)
                times["wall"][kind].append((time.perf_counter() - wall) * 1000)
        for clock in CLOCKS:
            for kind in KINDS:
                medians[clock][kind][zoom] = statistics.median(times[clock][kind])
    ratios = {clock: {kind: {z: medians[clock][kind][z] / medians[clock]["regular"][z]
                             for z in zooms} for kind in KINDS if kind != "regular"}
              for clock in CLOCKS}
    return {"median_ms": medians, "ratio_to_regular": ratios,
            "worst_ratio": {clock: max(max(r.values()) for r in ratios[clock].values())
                            for clock in CLOCKS}}


def report(figures: dict[str, Any]) -> str:
    """The figures as Markdown."""
    lines = [
        "# 256² tiles of projected and curvilinear grids vs a regular grid "
        "(benchmarks/projected.py)", "",
        f"{figures['size']} × {figures['size']} cells each, one step, with overviews; "
        f"{figures['tiles']} random EPSG:3857 tiles per zoom over central Europe, drawn by "
        "the render pipeline in-process (parse → PNG), kinds taking turns; median ms "
        f"(ratio to the regular grid in the same run). {figures['cores']} cores shared with "
        f"other work (load average at start {figures['load_average']:.1f}): under load the "
        "wall time of a longer render grows more than its share (it is descheduled more "
        "often), so the process CPU time is the fairer figure.", ""]
    for clock in CLOCKS:
        med, ratio = figures["median_ms"][clock], figures["ratio_to_regular"][clock]
        zooms = sorted(int(z) for z in med["regular"])
        lines += [
            f"{CLOCKS[clock]}:", "",
            "| kind | " + " | ".join(f"z{z}" for z in zooms) + " |",
            "|---|" + "---|" * len(zooms),
            "| regular | " + " | ".join(f"{med['regular'][z]:.2f}" for z in zooms) + " |",
            *(f"| {kind} | " + " | ".join(f"{med[kind][z]:.2f} ({ratio[kind][z]:.2f})"
                                          for z in zooms) + " |" for kind in ratio),
            "", f"Worst ratio: {figures['worst_ratio'][clock]:.2f} "
                f"(target ≤ {TARGET_RATIO:g}).", ""]
    return "\n".join(lines)


def profile(catalog: Catalog, kind: str, zoom: int) -> None:
    """Print where the time of ``kind``'s tiles at ``zoom`` goes (cProfile)."""
    draws = [drawer(catalog, kind, tile) for tile in random_tiles(zoom, 20, seed=0)]
    for draw in draws[:2]:
        draw()
    profiler = cProfile.Profile()
    profiler.enable()
    for draw in draws:
        draw()
    profiler.disable()
    pstats.Stats(profiler).sort_stats("cumulative").print_stats(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiles", type=int, default=12, help="random tiles per zoom")
    parser.add_argument("--quick", action="store_true",
                        help=f"{QUICK_SIZE}² grids, zooms {QUICK_ZOOMS}, 3 tiles each")
    parser.add_argument("--profile", help="KIND:ZOOM: print a profile instead")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    size, zooms, count = (QUICK_SIZE, QUICK_ZOOMS, 3) if args.quick else (
        SIZE, ZOOMS, args.tiles)
    if args.profile:
        size = PROFILE_SIZE
    with tempfile.TemporaryDirectory(prefix="fewsmap-projected-") as folder:
        started = time.perf_counter()
        for kind in KINDS:
            write_store(Path(folder), kind, size)
        print(f"stores written in {time.perf_counter() - started:.1f} s")
        catalog = Catalog(Settings(stores_dir=Path(folder)))
        if args.profile:
            kind, zoom = args.profile.split(":")
            profile(catalog, kind, int(zoom))
            return
        load_average = os.getloadavg()[0]
        figures = {**measure(catalog, zooms, count), "size": size, "tiles": count,
                   "cores": os.cpu_count(), "load_average": load_average}
    args.out.mkdir(parents=True, exist_ok=True)
    name = "projected_quick" if args.quick else "projected"
    (args.out / f"{name}.json").write_text(json.dumps(figures, indent=1))
    (args.out / f"{name}.md").write_text(report(figures))
    print(report(figures))


if __name__ == "__main__":
    main()
