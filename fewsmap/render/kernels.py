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


def warm_up() -> None:
    """Compile the kernels for the types renders call them with."""
    field = np.zeros((2, 2), dtype=np.float32)
    index = np.zeros(2, dtype=np.int64)
    paint(field, index, index)
    quantise_even(field.ravel(), np.float32(0.0), np.float32(1.0), np.float32(254.999))
    quantise_breaks(field.ravel(), np.zeros(2, dtype=np.float64))
