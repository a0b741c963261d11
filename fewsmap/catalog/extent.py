"""Geographic and Web Mercator extents of a store's grid."""

from __future__ import annotations

from functools import cache

import numpy as np
import pyproj

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
    sampled densely so curved edges are covered. Longitudes are in -180..180.
    """
    y_dim, x_dim = store.spatial_dims
    if "latitude" in store.group and store.dims("latitude") == (y_dim, x_dim):
        lat, lon = store.coordinate("latitude"), store.coordinate("longitude")
        lons = _wrap(lon[np.isfinite(lon)])
        return float(lons.min()), float(np.nanmin(lat)), float(lons.max()), float(np.nanmax(lat))
    ys, xs = _edges(store.coordinate(y_dim)), _edges(store.coordinate(x_dim))
    outline_x = np.concatenate([xs, np.full(ys.size, xs[-1]), xs[::-1], np.full(ys.size, xs[0])])
    outline_y = np.concatenate([np.full(xs.size, ys[0]), ys, np.full(xs.size, ys[-1]), ys[::-1]])
    if y_dim == "latitude":
        lon, lat = outline_x, outline_y
    else:
        lon, lat = _to_lonlat(store.attributes(GRID_MAPPING)["crs_wkt"]).transform(
            outline_x, outline_y)
    lat = np.clip(lat, -90.0, 90.0)
    if y_dim == "latitude" and xs.max() - xs.min() >= 359.0:
        return -180.0, float(lat.min()), 180.0, float(lat.max())
    lon = _wrap(np.asarray(lon))
    return float(lon.min()), float(lat.min()), float(lon.max()), float(lat.max())


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


def _edges(centres: np.ndarray) -> np.ndarray:
    """Cell edges from 1-D centres (half a cell beyond each end)."""
    if centres.size == 1:
        return np.array([centres[0] - 0.5, centres[0] + 0.5])
    mid = (centres[1:] + centres[:-1]) / 2
    return np.concatenate([[2 * centres[0] - mid[0]], mid, [2 * centres[-1] - mid[-1]]])


def _wrap(lon: np.ndarray) -> np.ndarray:
    return (np.asarray(lon) + 180.0) % 360.0 - 180.0
