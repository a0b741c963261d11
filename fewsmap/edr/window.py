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
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pyproj
import shapely

from fewsmap.edr.errors import ResponseTooLarge
from fewsmap.errors import InvalidParameterValue, OperationNotSupported
from fewsmap.store.cube import ForecastStore
from fewsmap.store.layout import GRID_MAPPING

CRS84 = "OGC:CRS84"
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
    def polygon(cls, parts: tuple[tuple[np.ndarray, ...], ...], kind: str = "POLYGON") -> Region:
        """The union of polygons, each given by its rings (lon/lat): shell, then holes.

        Raises
        ------
        InvalidParameterValue
            If a polygon is not valid (a ring crosses itself, a hole lies outside its shell),
            naming the part and GEOS's reason.
        """
        polygons = [shapely.Polygon(part[0], part[1:]) for part in parts]
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


@dataclass(frozen=True, eq=False)
class Window:
    """Cells of the native grid: rows × columns, their centres, and which are inside.

    ``x``/``y`` are the grid's own axis values along ``cols``/``rows`` (longitudes moved into
    the region's range on lon/lat grids); ``lon``/``lat`` the centres in WGS 84 degrees
    (longitude −180…180) with shape (rows, cols); ``projected_wkt`` is None when x/y are
    longitude/latitude.
    """

    rows: np.ndarray
    cols: np.ndarray
    x: np.ndarray
    y: np.ndarray
    lon: np.ndarray
    lat: np.ndarray
    inside: np.ndarray
    projected_wkt: str | None = None

    @property
    def size(self) -> int:
        """Cells in the window (inside or not)."""
        return int(self.rows.size * self.cols.size)

    def shrunk(self) -> Window | None:
        """The smallest sub-window holding every inside cell; None if there is none."""
        rows = np.flatnonzero(self.inside.any(axis=1))
        cols = np.flatnonzero(self.inside.any(axis=0))
        if not rows.size:
            return None
        r = slice(int(rows[0]), int(rows[-1]) + 1)
        c = slice(int(cols[0]), int(cols[-1]) + 1)
        return Window(self.rows[r], self.cols[c], self.x[c], self.y[r], self.lon[r, c],
                      self.lat[r, c], self.inside[r, c], self.projected_wkt)


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
    y_dim, x_dim = store.spatial_dims
    if store.curvilinear:
        raise OperationNotSupported(
            f"store {store.name!r} has a curvilinear grid (2-D latitude/longitude): area and "
            "cube queries need rows × columns of a regular or projected grid; use a "
            "position query")
    x, y = store.coordinate(x_dim).astype("float64"), store.coordinate(y_dim).astype("float64")
    if y_dim == "latitude":
        window = _lonlat_window(x, y, region, max_cells)
    else:
        window = _projected_window(x, y, str(store.attributes(GRID_MAPPING)["crs_wkt"]),
                                   region, max_cells)
    return window.shrunk() if window is not None else None


def _lonlat_window(lon: np.ndarray, lat: np.ndarray, region: Region,
                   max_cells: int) -> Window | None:
    rows = np.flatnonzero((lat >= region.south) & (lat <= region.north))
    shifted = shift_longitudes(lon, region.west)
    cols = np.flatnonzero(shifted <= region.east)
    cols = cols[np.argsort(shifted[cols], kind="stable")]
    if not (rows.size and cols.size):
        return None
    _check_size(rows.size * cols.size, max_cells)
    xs, ys = shifted[cols], lat[rows]
    # Centres of a lon/lat grid as read-only views of its axes (a million cells would take
    # 16 MB as arrays, held while the answer is sent; issue #13).
    shape = (ys.size, xs.size)
    lon2, lat2 = np.broadcast_to(xs, shape), np.broadcast_to(ys[:, None], shape)
    inside = np.ones(shape, bool) if region.area is None else region.contains(lon2, lat2)
    return Window(rows, cols, xs, ys, np.broadcast_to(wrap_longitudes(xs), shape), lat2,
                  inside)


def _projected_window(x: np.ndarray, y: np.ndarray, wkt: str, region: Region,
                      max_cells: int) -> Window | None:
    outline = region.outline()
    ox, oy = _transformer(CRS84, wkt).transform(outline[:, 0], outline[:, 1])
    ok = np.isfinite(ox) & np.isfinite(oy)
    if not ok.any():
        return None
    # The outline's envelope, one cell wider: every centre of the region lies within it.
    rows = _within(y, float(oy[ok].min()), float(oy[ok].max()))
    cols = _within(x, float(ox[ok].min()), float(ox[ok].max()))
    if not (rows.size and cols.size):
        return None
    _check_size(rows.size * cols.size, max_cells)
    xx, yy = np.meshgrid(x[cols], y[rows])
    lon, lat = _transformer(wkt, CRS84).transform(xx, yy)
    lon, lat = np.asarray(lon), np.asarray(lat)
    inside = np.isfinite(lon) & np.isfinite(lat)
    inside[inside] = region.contains(lon[inside], lat[inside])
    return Window(rows, cols, x[cols], y[rows], wrap_longitudes(lon), lat, inside, wkt)


def _within(axis: np.ndarray, low: float, high: float) -> np.ndarray:
    step = float(np.abs(np.diff(axis)).max()) if axis.size > 1 else 0.0
    return np.flatnonzero((axis >= low - step) & (axis <= high + step))


def _check_size(cells: int, max_cells: int) -> None:
    if cells > max_cells:
        raise ResponseTooLarge(
            f"the region covers about {cells} grid cells; an answer may hold at most "
            f"{max_cells} values (max_edr_values): query a smaller area")


def shift_longitudes(lon: np.ndarray, west: float) -> np.ndarray:
    """Move longitudes by whole turns into [west, west + 360); exact where already there."""
    turns = np.ceil((west - lon) / 360.0)
    return np.where(turns == 0, lon, lon + 360.0 * turns)


def wrap_longitudes(lon: np.ndarray) -> np.ndarray:
    """Longitudes in −180…180 (values already there are unchanged)."""
    lon = np.asarray(lon, dtype="float64")
    return np.where((lon >= -180.0) & (lon <= 180.0), lon, (lon + 180.0) % 360.0 - 180.0)


def _densify(ring: np.ndarray) -> np.ndarray:
    """Sample each edge of a closed ring at `OUTLINE_POINTS` points."""
    t = np.linspace(0.0, 1.0, OUTLINE_POINTS, endpoint=False)[:, None, None]
    start, end = ring[:-1][None], ring[1:][None]
    return np.asarray(start + t * (end - start)).reshape(-1, 2)


@lru_cache(maxsize=64)
def _transformer(source: str, target: str) -> pyproj.Transformer:
    """A cached east/north transformer (``always_xy``) between a CRS name or WKT and another."""
    return pyproj.Transformer.from_crs(pyproj.CRS.from_user_input(source),
                                       pyproj.CRS.from_user_input(target), always_xy=True)
