"""Geographic and Web Mercator extents of a store's grid (from `GridGeometry`)."""

from __future__ import annotations

from fewsmap.store.cube import ForecastStore
from fewsmap.store.geometry import MERCATOR_MAX_LAT, transformer

MERCATOR_HALF_WORLD_M = 20037508.342789244


def lonlat_bbox(store: ForecastStore) -> tuple[float, float, float, float]:
    """Return (west, south, east, north) in degrees covering every cell of the grid, in
    -180..180 (`GridGeometry.lonlat_bbox`)."""
    return store.geometry.lonlat_bbox()


def longitude_width(store: ForecastStore) -> float:
    """The width in degrees of the narrowest longitude interval holding the grid
    (`GridGeometry.longitude_width`)."""
    return store.geometry.longitude_width()


def native_bbox(store: ForecastStore) -> tuple[float, float, float, float] | None:
    """The grid's cell edges in its own CRS; None when curvilinear
    (`GridGeometry.native_bbox`)."""
    return store.geometry.native_bbox()


def mercator_bbox(store: ForecastStore) -> tuple[float, float, float, float]:
    """Return (minx, miny, maxx, maxy) of the store's grid in EPSG:3857 metres."""
    return lonlat_to_mercator(lonlat_bbox(store))


def lonlat_to_mercator(
    box: tuple[float, float, float, float],
) -> tuple[float, float, float, float]:
    """Convert a (west, south, east, north) box to EPSG:3857, latitudes clipped to ±85.05°."""
    west, south, east, north = box
    to_merc = transformer("EPSG:4326", "EPSG:3857")
    south, north = (max(min(v, MERCATOR_MAX_LAT), -MERCATOR_MAX_LAT) for v in (south, north))
    minx, miny = to_merc.transform(west, south)
    maxx, maxy = to_merc.transform(east, north)
    return minx, miny, maxx, maxy
