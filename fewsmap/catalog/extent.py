"""Geographic and Web Mercator extents of a store's grid."""

from __future__ import annotations

from functools import cache

import numpy as np
import pyproj

from fewsmap.errors import StoreError
from fewsmap.store.axes import cell_spacings
from fewsmap.store.cube import ForecastStore
from fewsmap.store.layout import GRID_MAPPING

MERCATOR_LIMIT_DEG = 85.0511287798066
MERCATOR_HALF_WORLD_M = 20037508.342789244


@cache
def _to_lonlat(crs_wkt: str) -> pyproj.Transformer:
    return pyproj.Transformer.from_crs(pyproj.CRS.from_wkt(crs_wkt), "EPSG:4326", always_xy=True)


def lonlat_bbox(store: ForecastStore) -> tuple[float, float, float, float]:
    """Return (west, south, east, north) in degrees covering every cell of the grid.

    Cell edges are half a cell beyond the outer centres; a projected grid's outline is
    sampled densely so curved edges are covered. Longitudes are in -180..180: a grid that
    crosses the antimeridian spans all of them (WMS and TileJSON boxes cannot wrap).
    """
    lon, lat = _outline(store)
    south, north = float(np.clip(lat.min(), -90.0, 90.0)), float(np.clip(lat.max(), -90.0, 90.0))
    west, east = _covering_arc(lon)
    if east > 180.0:  # crosses the antimeridian
        return -180.0, south, 180.0, north
    return west, south, east, north


def longitude_width(store: ForecastStore) -> float:
    """The width in degrees of the narrowest longitude interval holding the grid, which
    may cross the antimeridian (a Pacific grid at 170..190 is 20° wide, not 360°)."""
    west, east = _covering_arc(_outline(store)[0])
    return east - west


def _outline(store: ForecastStore) -> tuple[np.ndarray, np.ndarray]:
    """Finite longitudes and latitudes of the grid's outline (every centre when curvilinear).

    Raises
    ------
    StoreError
        If no cell of the grid has a finite position.
    """
    y_dim, x_dim = store.spatial_dims
    if store.curvilinear:
        lat, lon = store.coordinate("latitude"), store.coordinate("longitude")
        # Longitudes made continuous across the antimeridian before stepping outwards.
        lon = np.unwrap(np.unwrap(np.asarray(lon, dtype="float64"), period=360.0, axis=1),
                        period=360.0, axis=0)
        lat, lon = _half_cell_beyond(np.asarray(lat, dtype="float64")), _half_cell_beyond(lon)
    else:
        y, x = store.coordinate(y_dim), store.coordinate(x_dim)
        dy, dx = cell_spacings(y, x)
        ys, xs = _edges(y, dy), _edges(x, dx)
        lon = np.concatenate([xs, np.full(ys.size, xs[-1]), xs[::-1], np.full(ys.size, xs[0])])
        lat = np.concatenate([np.full(xs.size, ys[0]), ys, np.full(xs.size, ys[-1]), ys[::-1]])
        if y_dim != "latitude":
            to_lonlat = _to_lonlat(store.attributes(GRID_MAPPING)["crs_wkt"])
            lon, lat = to_lonlat.transform(lon, lat)
            lon, lat = _with_poles_inside(to_lonlat, xs, ys, lon, lat)
    lon, lat = np.asarray(lon, dtype="float64").ravel(), np.asarray(lat, dtype="float64").ravel()
    finite = np.isfinite(lon) & np.isfinite(lat)
    if not finite.any():
        raise StoreError(f"store {store.name!r}: no cell of the grid has a finite position")
    return lon[finite], lat[finite]


def native_bbox(store: ForecastStore) -> tuple[float, float, float, float] | None:
    """The grid's cell edges in its own CRS (min x, min y, max x, max y), for grids on 1-D
    axes; None when curvilinear (its 2-D positions have no axes of their own)."""
    if store.curvilinear:
        return None
    y_dim, x_dim = store.spatial_dims
    y, x = store.coordinate(y_dim), store.coordinate(x_dim)
    dy, dx = cell_spacings(y, x)
    ys, xs = _edges(y, dy), _edges(x, dx)
    return float(xs.min()), float(ys.min()), float(xs.max()), float(ys.max())


def _half_cell_beyond(centres: np.ndarray) -> np.ndarray:
    """2-D centres with a ring of the outer cells' outer edges added: half a step beyond
    the outer rows and columns (none along an axis of one cell)."""
    for axis in (0, 1):
        if centres.shape[axis] < 2:
            continue
        first, second = np.take(centres, [0], axis), np.take(centres, [1], axis)
        last, before = np.take(centres, [-1], axis), np.take(centres, [-2], axis)
        centres = np.concatenate([first + (first - second) / 2, centres,
                                  last + (last - before) / 2], axis=axis)
    return centres


def _with_poles_inside(to_lonlat: pyproj.Transformer, xs: np.ndarray, ys: np.ndarray,
                       lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Add each pole inside a projected grid to its outline: a polar stereographic grid
    around the pole reaches 90° although none of its edges does."""
    pole_x, pole_y = to_lonlat.transform(np.zeros(2), np.array([90.0, -90.0]),
                                         direction=pyproj.enums.TransformDirection.INVERSE)
    inside = ((pole_x >= xs.min()) & (pole_x <= xs.max()) & (pole_y >= ys.min())
              & (pole_y <= ys.max()))
    return (np.concatenate([np.asarray(lon), np.zeros(int(inside.sum()))]),
            np.concatenate([np.asarray(lat), np.array([90.0, -90.0])[inside]]))


def _covering_arc(lon: np.ndarray) -> tuple[float, float]:
    """The narrowest (west, east) holding every longitude: west in -180..180, east up to
    west + 360 (east > 180 when the arc crosses the antimeridian)."""
    wrapped = np.unique(_wrap(lon))
    gaps = np.diff(np.concatenate([wrapped, [wrapped[0] + 360.0]]))
    widest = int(np.argmax(gaps))
    if widest == wrapped.size - 1:  # the widest gap is the one across the antimeridian
        return float(wrapped[0]), float(wrapped[-1])
    return float(wrapped[widest + 1]), float(wrapped[widest]) + 360.0


def mercator_bbox(store: ForecastStore) -> tuple[float, float, float, float]:
    """Return (minx, miny, maxx, maxy) of the store's grid in EPSG:3857 metres."""
    return lonlat_to_mercator(lonlat_bbox(store))


def lonlat_to_mercator(
    box: tuple[float, float, float, float],
) -> tuple[float, float, float, float]:
    """Convert a (west, south, east, north) box to EPSG:3857, latitudes clipped to ±85.05°."""
    west, south, east, north = box
    to_merc = pyproj.Transformer.from_crs("EPSG:4326", "EPSG:3857", always_xy=True)
    south, north = (max(min(v, MERCATOR_LIMIT_DEG), -MERCATOR_LIMIT_DEG) for v in (south, north))
    minx, miny = to_merc.transform(west, south)
    maxx, maxy = to_merc.transform(east, north)
    return minx, miny, maxx, maxy


def _edges(centres: np.ndarray, spacing: float) -> np.ndarray:
    """Cell edges from 1-D centres (half a cell beyond each end; one cell is ``spacing``
    wide)."""
    if centres.size == 1:
        return np.array([centres[0] - spacing / 2, centres[0] + spacing / 2])
    mid = (centres[1:] + centres[:-1]) / 2
    return np.concatenate([[2 * centres[0] - mid[0]], mid, [2 * centres[-1] - mid[-1]]])


def _wrap(lon: np.ndarray) -> np.ndarray:
    return (np.asarray(lon) + 180.0) % 360.0 - 180.0
