"""The grid cells of an area or cube query: a window of the native grid and its inside mask.

A region is given in CRS84 (longitude, latitude): a bounding box, and for an area query a
polygon or multipolygon. A cell belongs to the region when its **centre** does, edges
included. Each polygon must be valid (OGC 06-103r4 §6.1.11: rings that neither cross nor
touch themselves, holes inside their shell); an invalid one such as a bow-tie is refused with
GEOS's reason, as its intended area is a guess. The parts of a multipolygon may overlap or
touch: the region is their union (issue #13: the even-odd rule used before cancelled the
overlap). The answer is the smallest window of
the native grid (whole rows × whole columns, never resampled) holding every such cell, with a
mask telling which of its cells are inside.

Longitudes wrap: a cell at 350° is inside a box from -20° to 20°, and a box whose west edge
is east of its east edge crosses 180°. On lon/lat grids the window's x axis is the cells'
longitudes moved into the region's own range (so it increases across 0° or 180°); projected
grids keep their x/y axes. Curvilinear grids (2-D latitude/longitude) have no such window.
The store's geometry finds the cells (`GridGeometry.area_candidates`, `area_window`); this
module owns the region and the answer's size limit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely

from fewsmap.errors import InvalidParameterValue, OperationNotSupported, ResponseTooLarge
from fewsmap.store.cube import ForecastStore
from fewsmap.store.geometry import AreaWindow, shift_longitudes, wrap_longitudes

__all__ = ["Region", "Window", "select_window", "shift_longitudes", "wrap_longitudes"]

# The cells of a region: rows × columns of the native grid and which are inside.
Window = AreaWindow
OUTLINE_POINTS = 64  # samples per edge when an outline is carried into a projected CRS


@dataclass(frozen=True, eq=False)
class Region:
    """A query region in CRS84: a box (``east`` may exceed 180°) and an optional area.

    ``area`` is a prepared shapely (multi)polygon in lon/lat; None means the box itself.
    """

    west: float
    south: float
    east: float
    north: float
    area: shapely.Geometry | None = None

    @classmethod
    def box(cls, west: float, south: float, east: float, north: float) -> Region:
        """A box; ``west > east`` means it crosses 180° (OGC API Common bbox)."""
        return cls(west, south, east + 360.0 if east < west else east, north)

    @classmethod
    def polygon(cls, area: shapely.Polygon | shapely.MultiPolygon) -> Region:
        """The region of a polygon, or the union of a multipolygon's parts (lon/lat).

        Raises
        ------
        InvalidParameterValue
            If a polygon is not valid (a ring crosses itself, a hole lies outside its shell),
            naming the part and GEOS's reason.
        """
        kind = area.geom_type.upper()
        polygons = shapely.get_parts(area)
        for number, polygon in enumerate(polygons, start=1):
            if not shapely.is_valid(polygon):
                which = kind if len(polygons) == 1 else f"part {number} of the {kind}"
                raise InvalidParameterValue(
                    f"coords: the {which} is not a valid polygon: "
                    f"{_reason(shapely.is_valid_reason(polygon))} (lon lat); a ring may not "
                    "cross or touch itself and holes must lie inside their shell: split a "
                    "bow-tie into two polygons of a MULTIPOLYGON")
        area = polygons[0] if len(polygons) == 1 else shapely.union_all(polygons)
        shapely.prepare(area)
        west, south, east, north = (float(v) for v in area.bounds)
        return cls(west, south, east, north, area)

    def outline(self) -> np.ndarray:
        """Points on the region's boundary, densely sampled: (n, 2) lon/lat."""
        if self.area is not None:
            rings = shapely.get_rings(shapely.get_parts(self.area))
            return np.concatenate([_densify(shapely.get_coordinates(ring)) for ring in rings])
        w, s, e, n = self.west, self.south, self.east, self.north
        return _densify(np.array([[w, s], [e, s], [e, n], [w, n], [w, s]]))

    def contains(self, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        """Mark the centres (any longitude range) that lie in the region, edges included."""
        shifted = shift_longitudes(lon, self.west)
        if self.area is None:
            return (shifted <= self.east) & (lat >= self.south) & (lat <= self.north)
        # GEOS on a prepared geometry: O(log edges) a point, vectorised, without the GIL.
        return np.asarray(shapely.intersects_xy(self.area, shifted, lat), dtype=bool)


def _reason(geos_reason: str) -> str:
    """GEOS's ``Self-intersection[-95 35]`` as ``Self-intersection at -95 35``."""
    return geos_reason.replace("[", " at ").rstrip("]")


def select_window(store: ForecastStore, region: Region, max_cells: int) -> Window | None:
    """Find the window of the store's grid holding the cells whose centres lie in ``region``.

    Returns
    -------
    Window or None
        None when no cell centre lies in the region.

    Raises
    ------
    OperationNotSupported
        For a curvilinear grid (2-D latitude/longitude): no rows × columns window exists.
    ResponseTooLarge
        When the candidate cells alone exceed ``max_cells`` (checked before transforming
        them).
    """
    geometry = store.geometry
    if geometry.curvilinear:
        raise OperationNotSupported(
            f"store {store.name!r} has a curvilinear grid (2-D latitude/longitude): area and "
            "cube queries need rows × columns of a regular or projected grid; use a "
            "position query")
    candidates = geometry.area_candidates(region)
    if candidates is None:
        return None
    rows, cols = candidates
    cells = rows.size * cols.size
    if cells > max_cells:
        raise ResponseTooLarge(
            f"the region covers about {cells} grid cells; an answer may hold at most "
            f"{max_cells} values (max_edr_values): query a smaller area")
    return geometry.area_window(region, rows, cols)


def _densify(ring: np.ndarray) -> np.ndarray:
    """Sample each edge of a closed ring at `OUTLINE_POINTS` points."""
    t = np.linspace(0.0, 1.0, OUTLINE_POINTS, endpoint=False)[:, None, None]
    start, end = ring[:-1][None], ring[1:][None]
    return np.asarray(start + t * (end - start)).reshape(-1, 2)

