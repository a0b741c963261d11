"""Compiled per-pixel loops of the render path: one pass over the image where numpy needs
several, without the GIL so that concurrent renders use every core.

On a 1920 × 1200 map, painting cells with numpy fancy indexing took about 8 ms and mapping
values to palette indices seven whole-array passes, about 6.5 ms (benchmarks/results/
suite.md). Each function here gives exactly the numpy result it replaces (tests compare).
Compiling them takes about 1.3 s; numba caches the machine code on disk (``__pycache__``,
or its user-wide cache where the package is read-only), so later starts load it.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(nogil=True, cache=True)
def paint(values: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """``values[rows[i], cols[j]]`` for every pixel (i, j); NaN where the row or column index
    is negative (outside the grid). ``values`` is C-contiguous float32 (H, W)."""
    out = np.empty((rows.size, cols.size), dtype=np.float32)
    for i in range(rows.size):
        row = rows[i]
        for j in range(cols.size):
            col = cols[j]
            out[i, j] = values[row, col] if row >= 0 and col >= 0 else np.float32(np.nan)
    return out


@numba.njit(nogil=True, cache=True)
def quantise_even(values: np.ndarray, low: np.float32, factor: np.float32,
                  top: np.float32) -> np.ndarray:
    """Indices 1 + clip((v - low) * factor, 0, top) in float32 arithmetic, 0 where v is not
    finite. ``values`` is 1-D float32."""
    out = np.empty(values.size, dtype=np.uint8)
    zero, one = np.float32(0.0), np.float32(1.0)
    for k in range(values.size):
        v = values[k]
        if np.isfinite(v):
            scaled = (v - low) * factor  # may overflow to ±inf, which clamps
            out[k] = np.uint8(min(max(scaled, zero), top) + one)
        else:
            out[k] = 0
    return out


@numba.njit(nogil=True, cache=True)
def quantise_breaks(values: np.ndarray, lower: np.ndarray) -> np.ndarray:
    """The number of ``lower`` values (ascending float64) at or below each value: the index
    of its class; 0 where the value is not finite. ``values`` is 1-D float32."""
    out = np.empty(values.size, dtype=np.uint8)
    for k in range(values.size):
        v = np.float64(values[k])
        if not np.isfinite(v):
            out[k] = 0
            continue
        first, last = 0, lower.size  # binary search for the first lower value above v
        while first < last:
            middle = (first + last) // 2
            if lower[middle] <= v:
                first = middle + 1
            else:
                last = middle
        out[k] = first
    return out


@numba.njit(nogil=True, cache=True)
def cell_means(values: np.ndarray, xs: np.ndarray, ys: np.ndarray, width: int,
               height: int) -> np.ndarray:
    """The mean of the non-NaN cells covering each pixel, as datashader's rectilinear
    quadmesh computes it: cell (j, i) covers pixel columns ``xs[i]`` up to ``xs[i + 1]``
    (excluded; the one pixel ``xs[i]`` where they are equal, unless that is ``width``), rows
    likewise from ``ys``. ``values`` (ny, nx) float32 with rows along ascending y; ``xs``,
    ``ys`` the int64 pixel positions of the cells' breaks (nx + 1, ny + 1), clipped to the
    canvas. Returns float32 (height, width), row 0 at the bottom, NaN where no cell is."""
    total = np.zeros((height, width), dtype=np.float64)
    count = np.zeros((height, width), dtype=np.int32)
    nx = xs.size - 1
    first, stop = np.empty(nx, dtype=np.int64), np.empty(nx, dtype=np.int64)
    for i in range(nx):
        first[i], stop[i] = min(xs[i], xs[i + 1]), max(xs[i], xs[i + 1])
        if first[i] == stop[i] and stop[i] != width:
            stop[i] += 1
    # Row by row (datashader goes column by column: the same sums in another order).
    for j in range(ys.size - 1):
        y0, y1 = min(ys[j], ys[j + 1]), max(ys[j], ys[j + 1])
        if y0 == y1 and y1 != height:
            y1 += 1
        for i in range(nx):
            v = values[j, i]
            if np.isnan(v):
                continue
            for yi in range(y0, y1):
                for xi in range(first[i], stop[i]):
                    total[yi, xi] += v
                    count[yi, xi] += 1
    out = np.empty((height, width), dtype=np.float32)
    for yi in range(height):
        for xi in range(width):
            out[yi, xi] = total[yi, xi] / count[yi, xi] if count[yi, xi] else np.nan
    return out


def warm_up() -> None:
    """Compile the kernels for the types renders call them with."""
    field = np.zeros((2, 2), dtype=np.float32)
    index = np.zeros(2, dtype=np.int64)
    paint(field, index, index)
    quantise_even(field.ravel(), np.float32(0.0), np.float32(1.0), np.float32(254.999))
    quantise_breaks(field.ravel(), np.zeros(2, dtype=np.float64))
    cell_means(field, index, index, 2, 2)
