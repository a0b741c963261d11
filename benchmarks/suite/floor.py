"""The in-process floor: the least work that turns a stored slice into the same PNG.

Per request, timed: read the window of cells the image touches straight from zarr, gather
it onto the canvas with precomputed nearest-neighbour indices (two ``np.take``), quantise to
a 256-entry palette (index 0 transparent), and encode a palette PNG with the fastest encoder
at hand: ISA-L deflate (``isal-palette``, the floor of record; fewsmap's own writer, so the
floor is no slower than what fewsmap ships), Pillow at zlib level 1, and fpng when that
optional package is importable. Not timed: the
index (W + H integers per bbox and size, a cache hit in a real server) and opening the store.
No HTTP, no parsing, one thread: what a server could approach, not a server.
"""

from __future__ import annotations

import io
import math
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import zarr
from matplotlib import colormaps
from PIL import Image

from benchmarks.suite.data import COLOR_RANGE, VARIABLE, CubeSpec
from benchmarks.suite.workload import EARTH_RADIUS, MapRequest
from fewsmap.render.png import encode_palette
from fewsmap.store.cube import ForecastStore, quiet_zarr

FLOOR_ENCODER = "isal-palette"  # the floor of record


@dataclass(frozen=True)
class Index:
    """Where each output row and column reads from, relative to the window."""

    window: tuple[slice, slice] | None
    rows: np.ndarray  # (H,) int64 into the window
    cols: np.ndarray  # (W,)
    row_ok: np.ndarray  # (H,) bool: the pixel row is on the grid
    col_ok: np.ndarray


def build_index(cube: CubeSpec, request: MapRequest) -> Index:
    """Nearest cell of each pixel centre (separable: lon from x, lat from y)."""
    minx, miny, maxx, maxy = request.bbox
    west, south, east, north = cube.domain
    x = minx + (np.arange(request.width) + 0.5) * (maxx - minx) / request.width
    y = maxy - (np.arange(request.height) + 0.5) * (maxy - miny) / request.height
    lon = np.degrees(x / EARTH_RADIUS)
    lat = np.degrees(2 * np.arctan(np.exp(y / EARTH_RADIUS)) - math.pi / 2)
    col = np.floor((lon - west) / ((east - west) / cube.nx)).astype(np.int64)
    row = np.floor((north - lat) / ((north - south) / cube.ny)).astype(np.int64)
    col_ok, row_ok = (col >= 0) & (col < cube.nx), (row >= 0) & (row < cube.ny)
    if not col_ok.any() or not row_ok.any():
        empty = np.zeros(0, dtype=np.int64)
        return Index(None, empty, empty, row_ok, col_ok)
    r0, r1 = int(row[row_ok].min()), int(row[row_ok].max()) + 1
    c0, c1 = int(col[col_ok].min()), int(col[col_ok].max()) + 1
    rows = np.where(row_ok, row - r0, 0)
    cols = np.where(col_ok, col - c0, 0)
    return Index((slice(r0, r1), slice(c0, c1)), rows, cols, row_ok, col_ok)


def palette() -> np.ndarray:
    """256 × RGBA: index 0 transparent, 1..255 RdYlBu_r (fewsmap's temperature style)."""
    lut = np.zeros((256, 4), dtype=np.uint8)
    lut[1:] = np.round(colormaps["RdYlBu_r"](np.linspace(0, 1, 255)) * 255)
    return lut


LUT = palette()
PALETTE_RGB = LUT[:, :3].reshape(-1).tolist()
TRANSPARENCY = bytes(LUT[:, 3].tolist())
SCALE = np.float32(255 / (COLOR_RANGE[1] - COLOR_RANGE[0]))


def gather(window: np.ndarray, index: Index) -> np.ndarray:
    return np.take(np.take(window, index.rows, axis=0), index.cols, axis=1)


def quantise(field: np.ndarray, index: Index) -> np.ndarray:
    """Palette indices (uint8): 1..255 over COLOR_RANGE, 0 for NaN and off the grid."""
    q = field - np.float32(COLOR_RANGE[0])
    q *= SCALE
    missing = np.isnan(q)
    np.clip(q, 0, 254, out=q)
    q += 1
    q[missing] = 0
    out = q.astype(np.uint8)
    if not index.row_ok.all():
        out[~index.row_ok, :] = 0
    if not index.col_ok.all():
        out[:, ~index.col_ok] = 0
    return out


def png_palette_isal(indices: np.ndarray) -> bytes:
    return encode_palette(indices, LUT)


def png_palette_level1(indices: np.ndarray) -> bytes:
    height, width = indices.shape
    image = Image.frombytes("P", (width, height), indices.tobytes())
    image.putpalette(PALETTE_RGB, rawmode="RGB")
    image.info["transparency"] = TRANSPARENCY
    out = io.BytesIO()
    image.save(out, format="PNG", compress_level=1)
    return out.getvalue()


def fpng_encoder() -> Callable[[np.ndarray], bytes] | None:
    """fpng's RGBA encoder when the optional package is installed (``pip install fpng``)."""
    try:
        import fpng  # type: ignore[import-not-found]
    except ImportError:
        return None
    table = LUT.view(np.uint32).reshape(-1)

    def encode(indices: np.ndarray) -> bytes:
        rgba = table[indices].view(np.uint8).reshape((*indices.shape, 4))
        return bytes(fpng.encode_image_to_memory(np.ascontiguousarray(rgba)))

    return encode


@dataclass
class FloorResult:
    name: str
    n: int
    median_ms: float
    p95_ms: float
    stages_ms: dict[str, float]
    bytes_mean: float

    def summary(self) -> dict[str, Any]:
        return {"encoder": self.name, "n": self.n, "median_ms": round(self.median_ms, 3),
                "p95_ms": round(self.p95_ms, 3),
                "stages_median_ms": {k: round(v, 4) for k, v in self.stages_ms.items()},
                "bytes_mean": round(self.bytes_mean)}


def measure(stores: dict[str, Path], requests: Sequence[MapRequest],
            max_seconds: float) -> list[FloorResult]:
    """Time the floor over ``requests`` (after one untimed pass that warms the page cache)."""
    arrays: dict[str, Any] = {}
    infos: dict[str, ForecastStore] = {}
    for name, path in stores.items():
        with quiet_zarr():
            arrays[name] = zarr.open_group(path, mode="r", use_consolidated=True)[VARIABLE]
        infos[name] = ForecastStore(path)
    encoders: list[tuple[str, Callable[[np.ndarray], bytes]]] = [
        (FLOOR_ENCODER, png_palette_isal), ("pillow-palette-level1", png_palette_level1)]
    fpng = fpng_encoder()
    if fpng is not None:
        encoders.append(("fpng-rgba", fpng))
    prepared = []
    for request in requests:
        cube = request.cube
        run = infos[cube.name].run(cube.reference_time(request.run))
        where = int(np.flatnonzero(run.valid_times == cube.valid_time(request.run,
                                                                      request.step))[0])
        prepared.append((arrays[cube.name], run.slot, int(run.step_slots[where]),
                         build_index(cube, request)))
    results = []
    for name, encode in encoders:
        totals: list[float] = []
        stages: dict[str, list[float]] = {"read": [], "gather": [], "quantise": [],
                                          "encode": []}
        sizes: list[int] = []
        deadline = time.perf_counter() + max_seconds
        for warm in (True, False):
            for array, slot, step, index in prepared:
                if time.perf_counter() > deadline and not warm:
                    break
                t0 = time.perf_counter()
                if index.window is None:
                    indices = np.zeros((index.row_ok.size, index.col_ok.size), np.uint8)
                    t1 = t2 = t3 = time.perf_counter()
                else:
                    window = array[(slot, step, *index.window)]
                    t1 = time.perf_counter()
                    field = gather(window, index)
                    t2 = time.perf_counter()
                    indices = quantise(field, index)
                    t3 = time.perf_counter()
                png = encode(indices)
                t4 = time.perf_counter()
                if warm:
                    continue
                totals.append((t4 - t0) * 1000)
                for key, a, b in (("read", t0, t1), ("gather", t1, t2), ("quantise", t2, t3),
                                  ("encode", t3, t4)):
                    stages[key].append((b - a) * 1000)
                sizes.append(len(png))
        ordered = sorted(totals)
        results.append(FloorResult(
            name, len(totals), statistics.median(totals),
            ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))],
            {k: statistics.median(v) for k, v in stages.items()}, statistics.mean(sizes)))
    return results


def index_build_ms(requests: Sequence[MapRequest], repeat: int = 1) -> float:
    """Median time to build one index (what a real server would cache per bbox and size)."""
    times = []
    for request in requests:
        for _ in range(repeat):
            t0 = time.perf_counter()
            build_index(request.cube, request)
            times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)
