"""Regrid one field of the cube onto the output canvas with datashader.

The source grid's cell centres are expressed in the canvas CRS, and datashader's quadmesh
averages the cells that fall in each output pixel (or paints the cell containing it when
zoomed in). Where the mapping is separable (a lon/lat grid drawn in EPSG:3857, EPSG:4326 or
CRS:84, or any grid in its own CRS) the centres stay two 1-D axes (rectilinear quadmesh);
otherwise they are 2-D, transformed once per (store, CRS) and cached. Only the window of
cells that the bbox touches is read.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import datashader as dsh
import numpy as np
import pyproj
import xarray as xr
import zarr

from fewsmap.render import kernels
from fewsmap.store.axes import cell_spacings
from fewsmap.store.cube import ForecastStore, StoreVersion
from fewsmap.store.direct import DirectReader
from fewsmap.store.layout import GRID_MAPPING

MERCATOR_MAX_LAT = 85.0511287798066
# CRSs in which a lon/lat grid keeps separable axes: x depends on lon only, y on lat only.
LONLAT_SEPARABLE = ("EPSG:4326", "OGC:CRS84", "EPSG:3857")


@dataclass(frozen=True)
class Canvas:
    """The output raster: CRS (authority code), bbox in x/y (east, north) order, size."""

    crs: str
    bbox: tuple[float, float, float, float]
    width: int
    height: int


@dataclass(frozen=True, eq=False)
class Geometry:
    """Source cell centres in a canvas CRS, ordered so both axes ascend."""

    x: np.ndarray  # 1-D (separable) or 2-D
    y: np.ndarray
    rows: np.ndarray  # store row index of each y position (row of x/y when 2-D)
    cols: np.ndarray

    @property
    def separable(self) -> bool:
        return self.x.ndim == 1


@dataclass(frozen=True, eq=False)
class SourceWindow:
    """The cells near the canvas: values and their centres in the canvas CRS."""

    values: np.ndarray  # (ny, nx) float32
    x: np.ndarray  # (nx,) or (ny, nx), ascending along x when 1-D
    y: np.ndarray  # (ny,) or (ny, nx)


def read_window(store: ForecastStore, variable: str, prefix: tuple[int, ...],
                canvas: Canvas) -> SourceWindow | None:
    """Read the cells of ``store[variable][prefix]`` that the canvas shows (None: none)."""
    geometry = geometry_in(store.location, store.version, canvas.crs)
    window = _window(geometry, canvas)
    if window is None:
        return None
    rows, cols = window
    source = _Source(store.array(variable), store.reader(variable), prefix)
    values = _read_rows_cols(source, geometry.rows[rows], geometry.cols[cols])
    if geometry.separable:
        x, y = geometry.x[cols], geometry.y[rows]
    else:
        x, y = geometry.x[rows, cols], geometry.y[rows, cols]
    return SourceWindow(np.asarray(values, dtype=np.float32), x, y)


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
    if window.x.ndim == 1 and _pixels_per_cell(window, canvas) >= NEAREST_MIN_PIXELS_PER_CELL:
        return _paint_cells(window, canvas)
    minx, miny, maxx, maxy = canvas.bbox
    cvs = dsh.Canvas(plot_width=canvas.width, plot_height=canvas.height,
                     x_range=(minx, maxx), y_range=(miny, maxy))
    dims = ("y", "x")
    source = xr.DataArray(window.values, dims=dims, name="v", coords={
        "y": (dims if window.y.ndim == 2 else "y", window.y),
        "x": (dims if window.x.ndim == 2 else "x", window.x)})
    out = cvs.quadmesh(source, x="x", y="y", agg=dsh.mean("v"))
    return np.asarray(out.values[::-1], dtype=np.float32)


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
    mid = (centres[1:] + centres[:-1]) / 2
    edges = np.concatenate([[centres[0] - (mid[0] - centres[0])], mid,
                            [centres[-1] + (centres[-1] - mid[-1])]])
    index = np.searchsorted(edges, points, side="right") - 1
    index[(points < edges[0]) | (points >= edges[-1])] = -1
    return index


def _window(geometry: Geometry, canvas: Canvas) -> tuple[slice, slice] | None:
    """Rows and columns (in geometry order) of cells near the bbox, one cell of margin."""
    minx, miny, maxx, maxy = canvas.bbox
    if geometry.separable:
        c0 = max(int(np.searchsorted(geometry.x, minx)) - 1, 0)
        c1 = min(int(np.searchsorted(geometry.x, maxx, side="right")) + 1, geometry.x.size)
        r0 = max(int(np.searchsorted(geometry.y, miny)) - 1, 0)
        r1 = min(int(np.searchsorted(geometry.y, maxy, side="right")) + 1, geometry.y.size)
    else:
        inside = (geometry.x >= minx) & (geometry.x <= maxx) & \
            (geometry.y >= miny) & (geometry.y <= maxy)
        if inside.any():
            rows, cols = np.flatnonzero(inside.any(axis=1)), np.flatnonzero(inside.any(axis=0))
        else:  # zoomed in within one cell: no centre inside, the cell around still shows
            cell = _cell_under_centre(geometry, canvas)
            if cell is None:
                return None
            rows, cols = np.array([cell[0]]), np.array([cell[1]])
        r0, r1 = max(rows[0] - 1, 0), min(rows[-1] + 2, geometry.x.shape[0])
        c0, c1 = max(cols[0] - 1, 0), min(cols[-1] + 2, geometry.x.shape[1])
    if c1 - c0 < 2 or r1 - r0 < 2:
        return None
    return slice(r0, r1), slice(c0, c1)


def _cell_under_centre(geometry: Geometry, canvas: Canvas) -> tuple[int, int] | None:
    """The (row, col) of the 2-D centre nearest the canvas centre, if within a cell of it
    (the distance to its farthest neighbour): else the canvas is off the grid."""
    minx, miny, maxx, maxy = canvas.bbox
    with np.errstate(invalid="ignore"):
        distance = np.hypot(geometry.x - (minx + maxx) / 2, geometry.y - (miny + maxy) / 2)
    if not np.isfinite(distance).any():
        return None
    row, col = np.unravel_index(int(np.nanargmin(distance)), distance.shape)
    rows = slice(max(row - 1, 0), row + 2)
    cols = slice(max(col - 1, 0), col + 2)
    spacing = np.hypot(geometry.x[rows, cols] - geometry.x[row, col],
                       geometry.y[rows, cols] - geometry.y[row, col])
    if not np.isfinite(spacing).any() or distance[row, col] > np.nanmax(spacing):
        return None
    return int(row), int(col)


@dataclass(frozen=True)
class _Source:
    """One 2-D slice of a stored array: read from the chunk files directly where the layout
    allows it (`fewsmap.store.direct`, ~0.5 ms less per read), else through zarr."""

    array: zarr.Array[Any]
    reader: DirectReader | None
    prefix: tuple[int, ...]

    def read(self, rows: slice | np.ndarray, cols: slice | np.ndarray) -> np.ndarray:
        if self.reader is not None and isinstance(rows, slice) and isinstance(cols, slice):
            values = self.reader.read_window(self.prefix, rows, cols)
            if values is not None:
                return values
        return np.asarray(self.array.oindex[(*self.prefix, rows, cols)])


def _read_rows_cols(source: _Source, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Read ``source[rows][:, cols]``: contiguous runs (either direction, e.g. the
    north-to-south rows of most grids) as plain slices, flipped after reading, which is
    2.7-3.3x faster than zarr's orthogonal indexing (benchmarks/results/suite.md)."""
    row_key, flip_rows = _as_slice(rows)
    col_key, flip_cols = _as_slice(cols)
    values = source.read(row_key, col_key)
    return values[::-1 if flip_rows else 1, ::-1 if flip_cols else 1]


def _as_slice(index: np.ndarray) -> tuple[slice | np.ndarray, bool]:
    """A contiguous index as an ascending slice and whether to flip what it reads."""
    if index.size:
        step = np.diff(index)
        if np.all(step == 1):
            return slice(int(index[0]), int(index[-1]) + 1), False
        if np.all(step == -1):
            return slice(int(index[-1]), int(index[0]) + 1), True
    return index, False


@lru_cache(maxsize=64)
def geometry_in(path: object, version: StoreVersion, crs: str) -> Geometry:
    """Cell centres of the store's grid in ``crs`` (cached per store state and CRS)."""
    store = ForecastStore(path)  # type: ignore[arg-type]
    y_dim, x_dim = store.spatial_dims
    source_crs = pyproj.CRS.from_wkt(store.attributes(GRID_MAPPING)["crs_wkt"])
    target = pyproj.CRS.from_user_input(crs)
    curvilinear = store.curvilinear
    if not curvilinear:
        y, x = store.coordinate(y_dim), store.coordinate(x_dim)
        dy, dx = cell_spacings(y, x)
        (y, rows), (x, cols) = _halved(y, dy), _halved(x, dx)
        if y_dim == "latitude" and crs in LONLAT_SEPARABLE:
            return _separable(_lon_to(x, crs), _lat_to(y, crs), rows, cols)
        if target.equals(source_crs, ignore_axis_order=True):
            return _separable(x, y, rows, cols)
        yy, xx = np.meshgrid(y, x, indexing="ij")
        lon, lat = (xx, yy) if y_dim == "latitude" else _transform(source_crs, "EPSG:4326", xx, yy)
    else:
        lat, lon = store.coordinate("latitude"), store.coordinate("longitude")
        rows, cols = np.arange(lat.shape[0]), np.arange(lat.shape[1])
    if crs == "EPSG:3857":
        lat = np.clip(lat, -MERCATOR_MAX_LAT, MERCATOR_MAX_LAT)
    lon = (np.asarray(lon) + 180.0) % 360.0 - 180.0
    x2, y2 = _transform(pyproj.CRS.from_epsg(4326), crs, lon, lat)
    return Geometry(x2, y2, rows, cols)


def _halved(centres: np.ndarray, spacing: float) -> tuple[np.ndarray, np.ndarray]:
    """Positions along a 1-D axis and the store index each reads.

    A lone cell (an axis of one centre: a single row, column or point) becomes two half
    cells reading it, since regridding sizes a cell by its neighbours (issue #13).
    """
    centres = np.asarray(centres, dtype="float64")
    if centres.size != 1:
        return centres, np.arange(centres.size)
    return centres[0] + np.array([-spacing, spacing]) / 4, np.zeros(2, dtype=np.int64)


def _separable(x: np.ndarray, y: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> Geometry:
    x_order, y_order = np.argsort(x, kind="stable"), np.argsort(y, kind="stable")
    return Geometry(np.asarray(x)[x_order], np.asarray(y)[y_order], rows[y_order],
                    cols[x_order])


def _lon_to(lon: np.ndarray, crs: str) -> np.ndarray:
    wrapped = (np.asarray(lon, dtype="float64") + 180.0) % 360.0 - 180.0
    if crs == "EPSG:3857":
        return np.radians(wrapped) * 6378137.0
    return wrapped


def _lat_to(lat: np.ndarray, crs: str) -> np.ndarray:
    lat = np.asarray(lat, dtype="float64")
    if crs == "EPSG:3857":
        phi = np.radians(np.clip(lat, -MERCATOR_MAX_LAT, MERCATOR_MAX_LAT))
        return np.asarray(6378137.0 * np.log(np.tan(np.pi / 4 + phi / 2)))
    return lat


def _transform(source: pyproj.CRS | str, target: pyproj.CRS | str, x: np.ndarray,
               y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    transformer = pyproj.Transformer.from_crs(source, target, always_xy=True)
    tx, ty = transformer.transform(x, y)
    tx, ty = np.asarray(tx, dtype="float64"), np.asarray(ty, dtype="float64")
    bad = ~(np.isfinite(tx) & np.isfinite(ty))
    tx[bad], ty[bad] = np.nan, np.nan
    return tx, ty


def warm_up() -> None:
    """Compile datashader's quadmesh kernels (numba) before a request needs them (fewsmap's
    own are compiled before serving: `fewsmap.render.kernels.warm_up`).

    Without this the first map of each kind costs 1.5-9 s on this machine: the rectilinear
    quadmesh (a lon/lat grid zoomed out, fewer than `NEAREST_MIN_PIXELS_PER_CELL` pixels
    per cell; zoomed in, fewsmap paints cells itself) and the curvilinear one.
    """
    values = np.arange(64, dtype=np.float32).reshape(8, 8)
    axis = np.arange(8, dtype="float64")
    zoomed_out = Canvas("EPSG:4326", (0.0, 0.0, 7.0, 7.0), 4, 4)
    regrid(SourceWindow(values, axis, axis), zoomed_out)
    xx, yy = np.meshgrid(axis, axis)
    regrid(SourceWindow(values, xx + 0.1 * yy, yy), zoomed_out)
