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
    lattice_i, lattice_j = _lattice(height, step), _lattice(width, step)
    while True:
        if step == 1:  # every pixel transformed exactly
            rows, cols = _positions(native, canvas_crs, bbox, width, height, lattice_i,
                                    lattice_j)
            break
        # The lattice with the midpoints of its sides and squares, in one transform.
        half_i, half_j = _with_midpoints(lattice_i), _with_midpoints(lattice_j)
        rows, cols = _positions(native, canvas_crs, bbox, width, height, half_i, half_j)
        if _accurate(rows, cols, half_i, half_j):
            rows, cols = rows[::2, ::2], cols[::2, ::2]
            break
        step //= 2
        lattice_i, lattice_j = (half_i, half_j) if step > 1 else (
            _lattice(height, 1), _lattice(width, 1))
    return np.asarray(kernels.gather_lattice(
        np.ascontiguousarray(values, dtype=np.float32), np.ascontiguousarray(rows),
        np.ascontiguousarray(cols), lattice_i, lattice_j, height, width))


def _lattice(pixels: int, step: int) -> np.ndarray:
    """Pixel indices every ``step`` pixels, the last pixel included (two at least: a
    one-pixel side repeats its pixel)."""
    found = np.arange(0, pixels, step, dtype=np.float64)
    return found if found[-1] == pixels - 1 and found.size > 1 else np.append(found, pixels - 1)


def _with_midpoints(lattice: np.ndarray) -> np.ndarray:
    """The lattice's positions with the midpoint between each two (at odd indices)."""
    out = np.empty(2 * lattice.size - 1)
    out[0::2], out[1::2] = lattice, (lattice[:-1] + lattice[1:]) / 2
    return out


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


def _accurate(rows: np.ndarray, cols: np.ndarray, at_i: np.ndarray, at_j: np.ndarray
              ) -> bool:
    """Whether the lattice (even indices of positions ``rows``, ``cols`` at ``at_i`` ×
    ``at_j``) interpolates the midpoints of its sides and squares (odd indices) within
    ``MAX_ERROR_PX`` output pixels. A lattice with a point outside the CRS's area of use
    is not accurate: near that edge it is refined down to every pixel."""
    if not (np.isfinite(rows).all() and np.isfinite(cols).all()):
        return False
    limit = MAX_ERROR_PX * _cells_per_pixel(rows[::2, ::2], cols[::2, ::2], at_i[::2],
                                            at_j[::2])
    for v in (rows, cols):
        corners = v[::2, ::2]
        between_columns = (corners[:, :-1] + corners[:, 1:]) / 2
        between_rows = (corners[:-1] + corners[1:]) / 2
        centres = (between_columns[:-1] + between_columns[1:]) / 2
        for found, interpolated in ((v[::2, 1::2], between_columns),
                                    (v[1::2, ::2], between_rows), (v[1::2, 1::2], centres)):
            if np.max(np.abs(interpolated - found), initial=0.0) > limit:
                return False
    return True


def _cells_per_pixel(rows: np.ndarray, cols: np.ndarray, lattice_i: np.ndarray,
                     lattice_j: np.ndarray) -> float:
    """How many cells one output pixel spans (the median over the lattice, the smaller of
    the canvas's two directions)."""
    along_j = np.hypot(np.diff(rows, axis=1), np.diff(cols, axis=1)) / np.maximum(
        np.diff(lattice_j), 1.0)
    along_i = np.hypot(np.diff(rows, axis=0), np.diff(cols, axis=0)) / np.maximum(
        np.diff(lattice_i), 1.0)[:, None]
    return float(min(np.median(along_j), np.median(along_i)))
