"""Draw a grid with 1-D axes in its own CRS onto a canvas in another: each pixel shows the
cell holding its centre, found by inverse-projecting the pixel centres, not by placing
every cell on the canvas.

This is how GDAL's warper works (``GDALApproxTransform``): the exact transform runs on a
lattice of pixels only, positions in between are bilinear, and the interpolation errs by at
most ``MAX_ERROR_PX`` (an eighth of an output pixel, GDAL's default). The lattice is
checked at the midpoints of its sides and squares (GDAL checks the middle of each row's
span); where it errs by at most twice that there, the midpoints join it (halving a
lattice's step at least halves its error), and where it errs more the step is divided by
the expected factor at once (the error of a smooth transform goes with the square of the
step), so each tile transforms about one lattice and one check: a tile zoomed out to all
of Europe took 5 × 5, 9 × 9, 17 × 17 and 33 × 33 points with their midpoints (5 684
exact positions), now 5 × 5 and 17 × 17 (1 170). One compiled pass gathers the cells
(`kernels.gather_lattice`). The check and the positions along the axes are compiled too
(`kernels.lattice_error`, `kernels.fractional_index`) and the lattices are shared by all
tiles of a size: zoomed in, a tile's warp costs about 0.12 ms, a regular grid's painting
0.06 (was 0.37).
Positions are fractional indices of the window's cells (so uneven axes, such as the partial
block at an overview level's edge, are handled by interpolating between their centres), and
the error is their distance in cells over the cells one pixel spans.

Zoomed in, each pixel shows the cell holding its centre, as before. Zoomed out, the window
is an overview level of about one cell per pixel (`fewsmap.store.overviews`), so the cell
holding a pixel's centre is the block mean of the full-resolution cells around it:
tests/render/test_warp.py states the tolerance against datashader's curvilinear quadmesh.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal, overload

import numpy as np

from fewsmap.render import kernels
from fewsmap.store.geometry import from_canvas

# The largest error of an interpolated position, in output pixels (GDAL's default for
# gdalwarp -et).
MAX_ERROR_PX = 0.125
# The largest error at the midpoints of a lattice's sides and squares before it is refined:
# the midpoints, transformed to check it, then join the lattice, and halving the step at
# least halves the error (it quarters it where the transform is smooth, halves it at a kink
# such as the edge between two cells of a curvilinear grid).
CHECKED_ERROR_PX = 2 * MAX_ERROR_PX
# The lattice starts with a point every this many pixels and halves it while it errs
# (zoomed in a tile is nearly affine: 5 × 5 points do; zoomed out it takes 17 × 17 or more).
FIRST_STEP_PX = 64


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
    def positions(at_i: np.ndarray, at_j: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return _positions(native, canvas_crs, bbox, width, height, at_i, at_j)

    return _gathered(values, positions, width, height, refine_unknown=True)


def warp_centres(values: np.ndarray, x: np.ndarray, y: np.ndarray,
                 bbox: tuple[float, float, float, float], width: int,
                 height: int) -> np.ndarray | None:
    """`warp` for a grid known only by its 2-D centres on the canvas (``x``, ``y`` (ny,
    nx), float64, ny and nx ≥ 2, all finite): the exact position of a pixel centre is
    where the centres, bilinear between each four, reach it (`kernels.invert_centres`),
    and the lattice interpolates it within `MAX_ERROR_PX` as for a projection. None where
    a lattice point is not found (a folded grid): such windows are placed instead."""
    minx, miny, maxx, maxy = bbox

    def positions(at_i: np.ndarray, at_j: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        at_x = minx + (at_j + 0.5) * (maxx - minx) / width
        at_y = maxy - (at_i + 0.5) * (maxy - miny) / height
        rows, cols = kernels.invert_centres(x, y, at_x, at_y)
        return np.asarray(rows), np.asarray(cols)

    return _gathered(values, positions, width, height, refine_unknown=False)


Positions = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


@overload
def _gathered(values: np.ndarray, positions: Positions, width: int, height: int, *,
              refine_unknown: Literal[True]) -> np.ndarray: ...


@overload
def _gathered(values: np.ndarray, positions: Positions, width: int, height: int, *,
              refine_unknown: Literal[False]) -> np.ndarray | None: ...


def _gathered(values: np.ndarray, positions: Positions, width: int, height: int, *,
              refine_unknown: bool) -> np.ndarray | None:
    """Each pixel's cell: ``positions`` (fractional rows and columns at pixels ``at_i`` ×
    ``at_j``) on a lattice refined until it interpolates them within `MAX_ERROR_PX`, then
    one gather. An unknown position refines the lattice down to every pixel
    (``refine_unknown``: the edge of a CRS's area of use) or gives None."""
    step = FIRST_STEP_PX
    while True:
        if step == 1:  # every pixel transformed exactly
            lattice_i, lattice_j = _lattice(height, 1), _lattice(width, 1)
            rows, cols = positions(lattice_i, lattice_j)
            break
        # The lattice with the midpoints of its sides and squares, in one transform.
        lattice_i, lattice_j = _with_midpoints(height, step), _with_midpoints(width, step)
        rows, cols = positions(lattice_i, lattice_j)
        if not refine_unknown and not (np.isfinite(rows).all() and np.isfinite(cols).all()):
            return None
        error = kernels.lattice_error(rows, cols, lattice_i, lattice_j)
        if error <= CHECKED_ERROR_PX:  # the midpoints too make the lattice
            break
        step = _finer_step(step, error)
    return np.asarray(kernels.gather_lattice(
        np.ascontiguousarray(values, dtype=np.float32), np.ascontiguousarray(rows),
        np.ascontiguousarray(cols), lattice_i, lattice_j, height, width))


def _finer_step(step: int, error: float) -> int:
    """The step (a power of two below ``step``, 1 at least) whose lattice is expected to
    err by at most `CHECKED_ERROR_PX` where the lattice every ``step`` pixels errs by
    ``error`` (interpolating a smooth transform errs by the square of the step); 1 where
    ``error`` is infinite (a position unknown)."""
    if not math.isfinite(error):
        return 1
    halvings = max(1, math.ceil(math.log(error / CHECKED_ERROR_PX, 4)))
    return max(step >> halvings, 1)


@lru_cache(maxsize=256)
def _lattice(pixels: int, step: int) -> np.ndarray:
    """Pixel indices every ``step`` pixels, the last pixel included (two at least: a
    one-pixel side repeats its pixel); read-only, shared by every tile of that size."""
    found = np.arange(0, pixels, step, dtype=np.float64)
    if not (found[-1] == pixels - 1 and found.size > 1):
        found = np.append(found, pixels - 1)
    found.flags.writeable = False
    return found


@lru_cache(maxsize=256)
def _with_midpoints(pixels: int, step: int) -> np.ndarray:
    """`_lattice` with the midpoint between each two of its positions (at odd indices)."""
    lattice = _lattice(pixels, step)
    out = np.empty(2 * lattice.size - 1)
    out[0::2], out[1::2] = lattice, (lattice[:-1] + lattice[1:]) / 2
    out.flags.writeable = False
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
    nx_, ny_ = from_canvas(canvas_crs, native.crs, xx, yy)
    if native.wraps:  # the turn of the world nearest the window's first column
        west = float(native.x[0])
        nx_ = west + (nx_ - west + 180.0) % 360.0 - 180.0
    return (kernels.fractional_index(native.y, ny_), kernels.fractional_index(native.x, nx_))
