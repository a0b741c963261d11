"""The window of native grid cells a bounding box touches, in the grid's own CRS.

A WCS-like subset: the bbox (in any offered CRS) is transformed to the grid's CRS and every
cell whose extent overlaps it is kept, unchanged. Rows are ordered north first and columns
west to east; a longitude axis may wrap (a 0..360 grid asked for -10..10 gives 350..370).
Curvilinear grids (2-D latitude/longitude) keep the index box of the cells inside the bbox.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyproj

from fewsmap.errors import InvalidParameterValue
from fewsmap.render.regrid import geometry_in
from fewsmap.store.axes import cell_spacings, is_evenly_spaced, mean_step
from fewsmap.store.cube import ForecastStore
from fewsmap.store.layout import GRID_MAPPING

# 64 MiB of float32 per variable: larger subsets are read from /zarr directly.
MAX_EXPORT_CELLS = 16 * 1024 * 1024


@dataclass(frozen=True, eq=False)
class GridWindow:
    """Store rows and columns of a subset, with their coordinates in the grid's CRS.

    For curvilinear grids ``x``/``y`` are the column/row indices and ``curvilinear`` is set.
    """

    rows: np.ndarray  # store row index of each output row
    cols: np.ndarray  # store column index of each output column
    y: np.ndarray  # coordinate of each output row (north first)
    x: np.ndarray  # coordinate of each output column (west first)
    cell_size: tuple[float, float]  # (dx, dy) of the grid, for a one-cell-wide window
    crs_wkt: str
    curvilinear: bool = False

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, columns)."""
        return self.rows.size, self.cols.size

    @property
    def regular(self) -> bool:
        """Whether both axes are evenly spaced (an affine transform describes them)."""
        return not self.curvilinear and is_evenly_spaced(self.x) and is_evenly_spaced(self.y)

    def transform(self) -> tuple[float, float, float, float, float, float]:
        """The GDAL geotransform order (a, b, c, d, e, f) of the affine: north-up cell edges.

        Raises
        ------
        ValueError
            If the window is not regular.
        """
        if not self.regular:
            raise ValueError("an irregular or curvilinear window has no affine transform")
        # The step through the outer centres: float32 axes jitter from cell to cell (#13).
        dx = mean_step(self.x) if self.x.size > 1 else self.cell_size[0]
        dy = -mean_step(self.y) if self.y.size > 1 else self.cell_size[1]
        return dx, 0.0, float(self.x[0]) - dx / 2, 0.0, -dy, float(self.y[0]) + dy / 2


def native_window(store: ForecastStore, crs: str, bbox: tuple[float, float, float, float],
                  layer_id: str) -> GridWindow:
    """The native cells of ``store`` that ``bbox`` (east/north order, in ``crs``) overlaps.

    Raises
    ------
    InvalidParameterValue
        If the bbox covers no cell, or more than ``MAX_EXPORT_CELLS``.
    """
    wkt = str(store.attributes(GRID_MAPPING)["crs_wkt"])
    y_dim, x_dim = store.spatial_dims
    if store.curvilinear:
        window = _curvilinear_window(store, crs, bbox, wkt)
    else:
        native = pyproj.CRS.from_wkt(wkt)
        minx, miny, maxx, maxy = _bounds_in(native, crs, bbox)
        x_all, y_all = store.coordinate(x_dim), store.coordinate(y_dim)
        dy, dx = cell_spacings(y_all, x_all)
        cols, x = _axis_cells(x_all, minx, maxx, dx, periodic=native.is_geographic)
        rows, y = _axis_cells(y_all, miny, maxy, dy, periodic=False)
        rows, y = rows[::-1], y[::-1]  # north first
        window = GridWindow(rows, cols, y, x, (dx, dy), wkt)
    rows_n, cols_n = window.shape
    if rows_n == 0 or cols_n == 0:
        raise InvalidParameterValue(f"BBOX={','.join(f'{v:g}' for v in bbox)} ({crs}) covers "
                                    f"no cell of the grid of layer {layer_id!r}")
    if rows_n * cols_n > MAX_EXPORT_CELLS:
        raise InvalidParameterValue(
            f"the BBOX covers {rows_n}×{cols_n} cells; an export holds at most "
            f"{MAX_EXPORT_CELLS} (narrow the BBOX, or read the store at /zarr/{store.name})")
    return window


def _bounds_in(native: pyproj.CRS, crs: str,
               bbox: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    """The bbox in the grid's CRS (densified edges, so curved edges are covered)."""
    source = pyproj.CRS.from_user_input(crs)
    if source.equals(native, ignore_axis_order=True):
        return bbox
    transformer = pyproj.Transformer.from_crs(source, native, always_xy=True)
    minx, miny, maxx, maxy = transformer.transform_bounds(*bbox, densify_pts=21)
    if not all(np.isfinite((minx, miny, maxx, maxy))):
        raise InvalidParameterValue(f"BBOX={','.join(f'{v:g}' for v in bbox)} ({crs}) cannot "
                                    "be expressed in the grid's CRS")
    if native.is_geographic and maxx < minx:  # crosses the antimeridian
        maxx += 360.0
    return float(minx), float(miny), float(maxx), float(maxy)


def _axis_cells(centres: np.ndarray, low: float, high: float, spacing: float,
                periodic: bool) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the cells overlapping (low, high), ascending, with their (unwrapped)
    centres. A periodic (longitude) axis is shifted by whole turns to meet the interval."""
    centres = np.asarray(centres, dtype="float64")
    lower, upper = _cell_edges(centres, spacing)
    shift = np.zeros_like(centres)
    if periodic:  # move each cell by whole turns so that its upper edge is in (low, low + 360]
        turn = (upper - low) % 360.0
        turn[turn == 0] = 360.0
        shift = low + turn - upper
    inside = (lower + shift < high) & (upper + shift > low)
    index = np.flatnonzero(inside)
    position = centres[index] + shift[index]
    order = np.argsort(position, kind="stable")
    return index[order], position[order]


def _cell_edges(centres: np.ndarray, spacing: float) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper edge of each cell: halfway to its neighbours, mirrored at the ends
    (a lone cell is ``spacing`` wide)."""
    if centres.size < 2:
        return centres - spacing / 2, centres + spacing / 2
    order = np.argsort(centres, kind="stable")
    ascending = centres[order]
    mid = (ascending[1:] + ascending[:-1]) / 2
    lower_sorted = np.concatenate([[2 * ascending[0] - mid[0]], mid])
    upper_sorted = np.concatenate([mid, [2 * ascending[-1] - mid[-1]]])
    lower, upper = np.empty_like(centres), np.empty_like(centres)
    lower[order], upper[order] = lower_sorted, upper_sorted
    return lower, upper


def _curvilinear_window(store: ForecastStore, crs: str, bbox: tuple[float, float, float, float],
                        wkt: str) -> GridWindow:
    """The index box of the cells whose centres lie inside the bbox."""
    geometry = geometry_in(store.location, store.version, crs)
    minx, miny, maxx, maxy = bbox
    inside = (geometry.x >= minx) & (geometry.x <= maxx) & \
        (geometry.y >= miny) & (geometry.y <= maxy)
    rows, cols = np.flatnonzero(inside.any(axis=1)), np.flatnonzero(inside.any(axis=0))
    if rows.size:
        rows, cols = np.arange(rows[0], rows[-1] + 1), np.arange(cols[0], cols[-1] + 1)
    return GridWindow(rows, cols, rows.astype("float64"), cols.astype("float64"),
                      (1.0, 1.0), wkt, curvilinear=True)
