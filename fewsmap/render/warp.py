"""Draw a grid with 1-D axes in its own CRS onto a canvas in another: each pixel shows the
cell holding its centre, found by inverse-projecting the pixel centres, not by placing
every cell on the canvas.

This is how GDAL's warper works (``GDALApproxTransform``): the exact transform runs on a
lattice of pixels only, positions in between are bilinear, and the lattice is refined until
the interpolation errs by at most ``MAX_ERROR_PX`` (an eighth of an output pixel, GDAL's
default) at the midpoints of its sides and squares (GDAL checks the middle of each row's
span). On a 256² tile that is 17 × 17 exact positions and about 900 checks instead of
65 536, and one compiled pass gathers the cells (`kernels.gather_lattice`).
Positions are fractional indices of the window's cells (so uneven axes, such as the partial
block at an overview level's edge, are handled by interpolating between their centres), and
the error is their distance in cells over the cells one pixel spans.

Zoomed in, each pixel shows the cell holding its centre, as before. Zoomed out, the window
is an overview level of about one cell per pixel (`fewsmap.store.overviews`), so the cell
holding a pixel's centre is the block mean of the full-resolution cells around it:
tests/render/test_warp.py states the tolerance against datashader's curvilinear quadmesh.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from fewsmap.render import kernels
from fewsmap.store.geometry import transform_finite

# The largest error of an interpolated position, in output pixels, before the lattice is
# refined (GDAL's default for gdalwarp -et).
MAX_ERROR_PX = 0.125
# The lattice starts with a point every this many pixels and halves it while it errs.
FIRST_STEP_PX = 16


@dataclass(frozen=True, eq=False)
class NativeAxes:
    """A window's cells in the grid's own CRS: 1-D centres along each window axis."""

    crs: str  # WKT or authority code of the grid's CRS
    x: np.ndarray  # (nx,) centre of each window column, monotonic
    y: np.ndarray  # (ny,) centre of each window row, monotonic
    wraps: bool = False  # x is a longitude: positions are taken by whole turns to the axis


def warp(values: np.ndarray, native: NativeAxes, canvas_crs: str,
         bbox: tuple[float, float, float, float], width: int, height: int) -> np.ndarray:
    """The cell of ``values`` (ny, nx) holding each pixel centre of the canvas: float32
    (height, width), row 0 at the top, NaN outside the window or the CRS's area of use."""
    step = FIRST_STEP_PX
    while True:
        lattice_i, lattice_j = _lattice(height, step), _lattice(width, step)
        rows, cols = _positions(native, canvas_crs, bbox, width, height, lattice_i, lattice_j)
        if step == 1 or _accurate(native, canvas_crs, bbox, width, height, lattice_i,
                                  lattice_j, rows, cols):
            break
        step //= 2
    return np.asarray(kernels.gather_lattice(
        np.ascontiguousarray(values, dtype=np.float32), rows, cols, lattice_i, lattice_j,
        height, width))


def _lattice(pixels: int, step: int) -> np.ndarray:
    """Pixel indices every ``step`` pixels, the last pixel included (two at least: a
    one-pixel side repeats its pixel)."""
    found = np.arange(0, pixels, step, dtype=np.float64)
    return found if found[-1] == pixels - 1 and found.size > 1 else np.append(found, pixels - 1)


def _positions(native: NativeAxes, canvas_crs: str, bbox: tuple[float, float, float, float],
               width: int, height: int, at_i: np.ndarray, at_j: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray]:
    """Fractional (row, column) of the window's cells at pixel centres ``at_i`` × ``at_j``
    (any pixel positions, fractional too); NaN where the transform has none."""
    minx, miny, maxx, maxy = bbox
    px = minx + (at_j + 0.5) * (maxx - minx) / width
    py = maxy - (at_i + 0.5) * (maxy - miny) / height
    xx, yy = np.meshgrid(px, py)
    nx_, ny_ = transform_finite(canvas_crs, native.crs, xx, yy)
    if native.wraps:  # the turn of the world nearest the window's first column
        west = float(native.x[0])
        nx_ = west + (nx_ - west + 180.0) % 360.0 - 180.0
    return _fraction(native.y, ny_), _fraction(native.x, nx_)


def _fraction(centres: np.ndarray, at: np.ndarray) -> np.ndarray:
    """The fractional index of positions ``at`` along monotonic ``centres`` (2 or more):
    linear between centres and, with the outer spacing, beyond them; NaN where ``at`` is."""
    index = np.arange(centres.size, dtype=np.float64)
    if centres[-1] < centres[0]:
        centres, index = centres[::-1], index[::-1]
    found = np.asarray(np.interp(at, centres, index), dtype=np.float64)
    for beyond, end, inner in ((at < centres[0], 0, 1), (at > centres[-1], -1, -2)):
        slope = (index[end] - index[inner]) / (centres[end] - centres[inner])
        found[beyond] = index[end] + (at[beyond] - centres[end]) * slope
    return found


def _accurate(native: NativeAxes, canvas_crs: str, bbox: tuple[float, float, float, float],
              width: int, height: int, lattice_i: np.ndarray, lattice_j: np.ndarray,
              rows: np.ndarray, cols: np.ndarray) -> bool:
    """Whether bilinear positions are within ``MAX_ERROR_PX`` output pixels of the exact
    ones at the midpoints of the lattice's sides and squares. A lattice with a point
    outside the CRS's area of use is not: near that edge it is refined to every pixel."""
    if not (np.isfinite(rows).all() and np.isfinite(cols).all()):
        return False
    limit = MAX_ERROR_PX * _cells_per_pixel(rows, cols, lattice_i, lattice_j)
    mid_i, mid_j = (lattice_i[:-1] + lattice_i[1:]) / 2, (lattice_j[:-1] + lattice_j[1:]) / 2
    checks: tuple[tuple[np.ndarray, np.ndarray, Callable[[np.ndarray], np.ndarray]], ...] = (
        (lattice_i, mid_j, _between_columns), (mid_i, lattice_j, _between_rows),
        (mid_i, mid_j, _between_both))  # where, and the interpolation there
    for at_i, at_j, interpolated in checks:
        exact = _positions(native, canvas_crs, bbox, width, height, at_i, at_j)
        for found, corners in zip(exact, (rows, cols), strict=True):
            if not np.isfinite(found).all() or \
                    np.max(np.abs(interpolated(corners) - found)) > limit:
                return False
    return True


def _between_columns(v: np.ndarray) -> np.ndarray:
    return np.asarray((v[:, :-1] + v[:, 1:]) / 2)


def _between_rows(v: np.ndarray) -> np.ndarray:
    return np.asarray((v[:-1] + v[1:]) / 2)


def _between_both(v: np.ndarray) -> np.ndarray:
    return _between_rows(_between_columns(v))


def _cells_per_pixel(rows: np.ndarray, cols: np.ndarray, lattice_i: np.ndarray,
                     lattice_j: np.ndarray) -> float:
    """How many cells one output pixel spans (the median over the lattice, the smaller of
    the canvas's two directions)."""
    along_j = np.hypot(np.diff(rows, axis=1), np.diff(cols, axis=1)) / np.maximum(
        np.diff(lattice_j), 1.0)
    along_i = np.hypot(np.diff(rows, axis=0), np.diff(cols, axis=0)) / np.maximum(
        np.diff(lattice_i), 1.0)[:, None]
    return float(min(np.median(along_j), np.median(along_i)))
