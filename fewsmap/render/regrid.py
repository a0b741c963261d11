"""Regrid one field of the cube onto the output canvas.

The source grid's cell centres are expressed in the canvas CRS. Where the mapping is
separable (a lon/lat grid drawn in EPSG:3857, EPSG:4326 or CRS:84, or any grid in its own
CRS) the centres stay two 1-D axes: zoomed in each pixel shows the cell holding its centre,
zoomed out datashader's rectilinear quadmesh (or its compiled equivalent) averages the cells
in it. Otherwise they are 2-D, transformed once per (store state, CRS) and cached by the
store's geometry (`fewsmap.store.geometry`): a grid with 1-D axes in its own CRS (Lambert,
polar stereographic, lon/lat in a projected CRS) finds each pixel's cell by inverse
projection (`fewsmap.render.warp`), a curvilinear grid's cells are placed by compiled
kernels (`_draw_placed_cells`). Only the window of cells that the bbox touches is read,
through the cube's read path (`fewsmap.store.reads`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import datashader as dsh
import numpy as np
import xarray as xr

from fewsmap.catalog.extent import MERCATOR_HALF_WORLD_M
from fewsmap.products import ensemble
from fewsmap.products.accumulate import StepSelector, StepSum
from fewsmap.products.ensemble import MemberStatistic, Selector
from fewsmap.render import kernels
from fewsmap.render.warp import NativeAxes, warp, warp_centres
from fewsmap.store.cube import ForecastStore
from fewsmap.store.geometry import CentresWindow, GridGeometry, cell_edges, unfolded
from fewsmap.store.overviews import is_categorical, overview_window

# The largest side of a canvas, in pixels (WMS WIDTH/HEIGHT, the Python client's maps).
MAX_SIDE_PX = 16384


@dataclass(frozen=True)
class Canvas:
    """The output raster: CRS (authority code), bbox in x/y (east, north) order, size."""

    crs: str
    bbox: tuple[float, float, float, float]
    width: int
    height: int


@dataclass(frozen=True, eq=False)
class SourceWindow:
    """The cells near the canvas: values and their centres in the canvas CRS."""

    values: np.ndarray  # (ny, nx) float32
    x: np.ndarray  # (nx,) or (ny, nx), ascending along x when 1-D
    y: np.ndarray  # (ny,) or (ny, nx)
    # With 2-D centres of a grid that has 1-D axes in its own CRS: those axes, so pixels
    # find their cells by inverse projection (`fewsmap.render.warp`).
    native: NativeAxes | None = None
    # Classes (CF flags): each pixel shows one cell's class at every zoom, never a mean.
    categorical: bool = False
    # What the grid's 2-D centres tell of every window (`fewsmap.store.geometry.Centres`):
    # that they fold nowhere, how far they reach along x.
    unfolded: bool = False
    grid_x_span: float = np.inf

    def with_values(self, values: np.ndarray) -> SourceWindow:
        """The same cells holding other values."""
        return replace(self, values=values)


def read_window(store: ForecastStore, variable: str,
                prefix: tuple[Selector | StepSelector, ...], canvas: Canvas, *,
                overviews: bool = True) -> SourceWindow | None:
    """Read the cells of ``store[variable][prefix]`` that the canvas shows (None: none),
    read by the cube's one read path (`fewsmap.store.reads`): the window of the coarsest
    overview level whose cells are no larger than a pixel where the run has overviews
    (`fewsmap.store.overviews.overview_window`), else of the full-resolution grid
    (`GridGeometry.window_in`); reduced over the members where the prefix holds an
    ensemble statistic (`fewsmap.products.ensemble`), summed over an accumulation's steps
    (`fewsmap.products.accumulate`). ``overviews=False`` reads full resolution."""
    # The members' mean is the mean of their block means (where they miss the same cells),
    # so it reads an overview level as one member does (level k: 4^-k of the cells of every
    # member). Other statistics are computed per cell at full resolution: a percentile or
    # probability of block means is not the mean of the cells' (a storm in one member's
    # cell would fade from the probability zoomed out).
    slot = prefix[0]  # the run: an index
    per_cell = any(isinstance(s, MemberStatistic) and not s.statistic.of_block_means
                   for s in prefix)
    found = None if per_cell or not overviews or isinstance(slot, StepSum | MemberStatistic) \
        else overview_window(
        store, variable, int(slot), canvas.crs, canvas.bbox, (canvas.width, canvas.height))
    array, window, geometry = (found.array, found.window, found.geometry) \
        if found is not None else (variable, store.geometry.window_in(canvas.crs, canvas.bbox),
                                   store.geometry)
    if window is None:
        return None
    values = ensemble.read_window(store, array, prefix, window.rows, window.cols)
    return SourceWindow(values, window.x, window.y, native_axes(geometry, window),
                        categorical=is_categorical(store.attributes(variable)),
                        unfolded=window.unfolded, grid_x_span=window.grid_x_span)


def native_axes(geometry: GridGeometry, window: CentresWindow) -> NativeAxes | None:
    """The window's 1-D axes in the grid's own CRS where its centres on the canvas are 2-D
    and those axes are monotonic over the window (None: the cells are placed instead)."""
    if window.x.ndim == 1 or geometry.curvilinear:
        return None
    x, y = geometry.x[window.cols], geometry.y[window.rows]
    if not all(_monotonic(axis) for axis in (x, y)):
        return None  # a lon/lat window across the seam of its longitudes
    # Longitudes, rotated ones too (a CF rotated pole), wrap at ±180°.
    return NativeAxes(geometry.axes_crs, x, y,
                      wraps=geometry.lonlat or geometry.native_crs.is_geographic)


def _monotonic(axis: np.ndarray) -> bool:
    steps = np.diff(axis)
    return axis.size > 1 and bool(np.all(steps > 0) or np.all(steps < 0))


# At or above this many pixels per source cell (both axes) the cell holding each pixel centre
# is painted, ~18x faster than quadmesh (reference/perf-anchors.md); below it datashader
# averages the cells. tests/render/test_regrid.py states the tolerance against quadmesh:
# none for evenly spaced axes from one pixel per cell; a shift of at most one pixel between
# 0.7 and 1 (quadmesh averages the cells whose upper edges fall in a pixel) and for uneven
# axes such as Mercator rows (quadmesh covers pixels from the floor of a cell's lower edge).
# Quadmesh in that band would cost a 1920x1200 map about 70 ms instead of 4 (measured).
NEAREST_MIN_PIXELS_PER_CELL = 0.7


def regrid(window: SourceWindow | None, canvas: Canvas) -> np.ndarray:
    """Resample the window onto the canvas: float32 (H, W), row 0 at the top, NaN = no data."""
    if window is None:
        return np.full((canvas.height, canvas.width), np.nan, dtype=np.float32)
    if window.native is not None:
        return warp(window.values, window.native, canvas.crs, canvas.bbox, canvas.width,
                    canvas.height)
    if window.x.ndim == 2:
        found = _inverted_cells(window, canvas)
        return found if found is not None else _draw_placed_cells(window, canvas)
    if window.categorical or _pixels_per_cell(window, canvas) >= NEAREST_MIN_PIXELS_PER_CELL:
        return _paint_cells(window, canvas)
    if not (_evenly_spaced(window.x) and _evenly_spaced(window.y)):
        return _average_cells(window, canvas)
    minx, miny, maxx, maxy = canvas.bbox
    cvs = dsh.Canvas(plot_width=canvas.width, plot_height=canvas.height,
                     x_range=(minx, maxx), y_range=(miny, maxy))
    dims = ("y", "x")
    source = xr.DataArray(window.values, dims=dims, name="v",
                          coords={"y": window.y, "x": window.x})
    out = cvs.quadmesh(source, x="x", y="y", agg=dsh.mean("v"))
    return np.asarray(out.values[::-1], dtype=np.float32)


def _inverted_cells(window: SourceWindow, canvas: Canvas) -> np.ndarray | None:
    """Draw cells placed by 2-D centres as a projection is warped: each pixel shows the
    cell nearest its centre's position in the grid, the centres taken as bilinear between
    each four (`fewsmap.render.warp.warp_centres`); None (cells are placed instead) where
    a centre has no position, the window is thinner than 2 × 2 cells or its centres than
    2 pixels (a grid smaller than a few pixels: a pixel holding its centres shows them, where
    the cell nearest each pixel centre would be none), the grid folds over itself
    (`unfolded`: a point would lie in two places) or a position is not found."""
    unwrapped = _unwrapped(window, canvas)
    x = np.asarray(unwrapped, dtype=np.float64)
    y = np.asarray(window.y, dtype=np.float64)
    # A window of a grid that folds nowhere does not fold, unless unwrapping moved cells.
    known = window.unfolded and unwrapped is window.x
    if min(x.shape) < 2 or not (known or unfolded(x, y)):  # (not where a centre is NaN)
        return None
    minx, miny, maxx, maxy = canvas.bbox
    corners = (slice(None, None, x.shape[0] - 1), slice(None, None, x.shape[1] - 1))
    if np.ptp(x[corners]) < 2 * (maxx - minx) / canvas.width or \
            np.ptp(y[corners]) < 2 * (maxy - miny) / canvas.height:
        return None
    return warp_centres(window.values, x, y, canvas.bbox, canvas.width, canvas.height)


def _draw_placed_cells(window: SourceWindow, canvas: Canvas) -> np.ndarray:
    """Draw cells placed by 2-D centres (a projected grid in another CRS, a curvilinear
    grid): each pixel shows the mean of the cells whose centres fall in it, else the cell
    that holds its own centre (`kernels.draw_placed_cells`).

    Zoomed out the window is an overview level of about a pixel per cell, so the mean is
    over a few cells, as datashader's curvilinear quadmesh averages them; zoomed in each
    pixel is the cell holding it. Both passes are compiled and walk the window once, where
    the quadmesh took 10-70 ms for a 256² tile (tests/render/test_regrid.py states the
    tolerance against it)."""
    minx, miny, maxx, maxy = canvas.bbox
    pixel_x, pixel_y = (maxx - minx) / canvas.width, (maxy - miny) / canvas.height
    x = np.ascontiguousarray(_unwrapped(window, canvas), dtype=np.float64)
    y = np.ascontiguousarray(window.y, dtype=np.float64)
    values = np.ascontiguousarray(window.values, dtype=np.float32)
    return np.asarray(kernels.draw_placed_cells(values, x, y, minx, maxy, pixel_x, pixel_y,
                                                canvas.width, canvas.height,
                                                not window.categorical))


# The width of the world along x in the CRSs whose x wraps around it.
WORLD_WIDTH = {"EPSG:3857": 2 * MERCATOR_HALF_WORLD_M, "EPSG:4326": 360.0, "OGC:CRS84": 360.0}


def _unwrapped(window: SourceWindow, canvas: Canvas) -> np.ndarray:
    """A window's 2-D centres' x made continuous where they span more than half the world
    (a grid across the antimeridian has centres at both ends of it, whose cells would span
    the world), then moved by whole turns to lie nearest the canvas; the same array where
    the whole grid spans less (not looked at again)."""
    x, width = window.x, WORLD_WIDTH.get(canvas.crs)
    if width is None or window.grid_x_span <= width / 2 or \
            not np.fmax.reduce(x, axis=None) - np.fmin.reduce(x, axis=None) > width / 2:
        return x
    reference = float(x[np.isfinite(x)][0])
    x = reference + (x - reference + width / 2) % width - width / 2
    middle = (np.fmax.reduce(x, axis=None) + np.fmin.reduce(x, axis=None)) / 2
    turns = np.round(((canvas.bbox[0] + canvas.bbox[2]) / 2 - middle) / width)
    return np.asarray(x + turns * width)


def _evenly_spaced(axis: np.ndarray) -> bool:
    """Whether datashader takes an axis for a raster's (its own test): evenly spaced axes
    get its fast raster quadmesh, any other its rectilinear one (`_average_cells`)."""
    return bool(np.allclose(axis, np.linspace(axis[0], axis[-1], axis.size)))


def _average_cells(window: SourceWindow, canvas: Canvas) -> np.ndarray:
    """datashader's rectilinear quadmesh mean (axes not evenly spaced, such as Mercator
    rows), compiled for this one case: the same cells (`_cover`), breaks and pixel cover,
    one pass over the cells (`kernels.cell_means`), equal to datashader's up to float64
    summation order; a 1920 × 1200 map of 3 M cells took 120-340 ms in datashader on this
    machine (its rectilinear glyph appends each cell to each pixel through Python-level
    dispatch of the reduction)."""
    minx, miny, maxx, maxy = canvas.bbox
    cols, xs = _cover(window.x, minx, maxx, canvas.width)
    rows, ys = _cover(window.y, miny, maxy, canvas.height)
    if cols.start == cols.stop or rows.start == rows.stop:
        return np.full((canvas.height, canvas.width), np.nan, dtype=np.float32)
    values = np.ascontiguousarray(window.values[rows, cols], dtype=np.float32)
    return np.asarray(kernels.cell_means(values, xs, ys, canvas.width, canvas.height)[::-1])


def _cover(centres: np.ndarray, low: float, high: float, pixels: int
           ) -> tuple[slice, np.ndarray]:
    """The cells of an ascending axis that overlap (low, high) and the pixel position of
    their breaks, as datashader computes them: breaks halfway between centres and half a
    step beyond the outer ones (``datashader.resampling.infer_interval_breaks``), scaled to
    0..1, cells from the last break at or below 0 to the first at or above 1, positions
    truncated to int and clipped to the canvas."""
    centres = np.asarray(centres, dtype="float64")
    deltas = 0.5 * np.diff(centres)
    breaks = np.concatenate([centres[:1] - deltas[:1], centres[:-1] + deltas,
                             centres[-1:] + deltas[-1:]])
    scaled = (breaks - low) / (high - low)
    first = max(int(np.searchsorted(scaled, 0.0, "right")) - 1, 0)
    last = int(np.searchsorted(scaled, 1.0, "left"))
    positions = np.clip((scaled[first:last + 1] * pixels).astype(np.int64), 0, pixels)
    return slice(first, last), positions


def _pixels_per_cell(window: SourceWindow, canvas: Canvas) -> float:
    """The smaller of the two axes' ratio of (narrowest) cell size to pixel size."""
    minx, miny, maxx, maxy = canvas.bbox
    ratios = []
    for axis, pixel in ((window.x, (maxx - minx) / canvas.width),
                        (window.y, (maxy - miny) / canvas.height)):
        if axis.size < 2:
            return 0.0
        ratios.append(float(np.min(np.diff(axis))) / pixel)
    return min(ratios)


def _paint_cells(window: SourceWindow, canvas: Canvas) -> np.ndarray:
    """Give each pixel the value of the cell containing its centre (separable axes)."""
    minx, miny, maxx, maxy = canvas.bbox
    cols = _cell_of(window.x, minx + (np.arange(canvas.width) + 0.5) * (maxx - minx) /
                    canvas.width)
    rows = _cell_of(window.y, maxy - (np.arange(canvas.height) + 0.5) * (maxy - miny) /
                    canvas.height)
    values = np.ascontiguousarray(window.values, dtype=np.float32)
    return np.asarray(kernels.paint(values, rows.astype(np.int64), cols.astype(np.int64)))


def _cell_of(centres: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Index of the cell (edges halfway between ascending centres) holding each point; -1
    outside the outer edges, which lie half a cell beyond the outer centres."""
    edges = cell_edges(centres, 0.0)
    index = np.searchsorted(edges, points, side="right") - 1
    index[(points < edges[0]) | (points >= edges[-1])] = -1
    return index


def warm_up() -> None:
    """Compile datashader's quadmesh kernels (numba) before a request needs them (fewsmap's
    own are compiled before serving: `fewsmap.render.kernels.warm_up`).

    Without this the first map of each kind costs 1.5-9 s on this machine: the rectilinear
    quadmesh (a lon/lat grid zoomed out, fewer than `NEAREST_MIN_PIXELS_PER_CELL` pixels
    per cell; zoomed in, fewsmap paints cells itself).
    """
    values = np.arange(64, dtype=np.float32).reshape(8, 8)
    axis = np.arange(8, dtype="float64")
    regrid(SourceWindow(values, axis, axis), Canvas("EPSG:4326", (0.0, 0.0, 7.0, 7.0), 4, 4))
