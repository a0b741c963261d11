"""The grid cells of an area or cube query: a window of the native grid and its inside mask.

A region is given in CRS84 (longitude, latitude): a bounding box, and for an area query the
rings of a polygon. A cell belongs to the region when its **centre** does (bounding box:
edges included; polygon: the even-odd rule, so holes and multipolygons need nothing special;
a centre exactly on a polygon edge may fall either way). The answer is the smallest window of
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
from itertools import pairwise

import numpy as np
import pyproj

from fewsmap.edr.errors import ResponseTooLarge
from fewsmap.errors import OperationNotSupported
from fewsmap.store.cube import ForecastStore
from fewsmap.store.layout import GRID_MAPPING

CRS84 = "OGC:CRS84"
# Edge × cell tests of the even-odd rule one query may cost (about 1 s of numpy work).
MAX_POLYGON_WORK = 300_000_000
OUTLINE_POINTS = 64  # samples per edge when an outline is carried into a projected CRS


@dataclass(frozen=True, eq=False)
class Region:
    """A query region in CRS84: a box (``east`` may exceed 180°) and optional polygon rings."""

    west: float
    south: float
    east: float
    north: float
    rings: tuple[np.ndarray, ...] = ()  # (n, 2) lon/lat, closed; empty: the box itself

    @classmethod
    def box(cls, west: float, south: float, east: float, north: float) -> Region:
        """A box; ``west > east`` means it crosses 180° (OGC API Common bbox)."""
        return cls(west, south, east + 360.0 if east < west else east, north)

    @classmethod
    def polygon(cls, rings: tuple[np.ndarray, ...]) -> Region:
        """A polygon (or multipolygon) given by all its rings."""
        xy = np.concatenate(rings)
        return cls(float(xy[:, 0].min()), float(xy[:, 1].min()), float(xy[:, 0].max()),
                   float(xy[:, 1].max()), rings)

    def outline(self) -> np.ndarray:
        """Points on the region's boundary, densely sampled: (n, 2) lon/lat."""
        if self.rings:
            return np.concatenate([_densify(ring) for ring in self.rings])
        w, s, e, n = self.west, self.south, self.east, self.north
        return _densify(np.array([[w, s], [e, s], [e, n], [w, n], [w, s]]))

    def contains(self, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        """Mark the centres (any longitude range) that lie in the region."""
        shifted = shift_longitudes(lon, self.west)
        if not self.rings:
            return (shifted <= self.east) & (lat >= self.south) & (lat <= self.north)
        edges = sum(len(ring) - 1 for ring in self.rings)
        if edges * lon.size > MAX_POLYGON_WORK:
            raise ResponseTooLarge(
                f"the polygon has {edges} edges over {lon.size} candidate cells; at most "
                f"{MAX_POLYGON_WORK} edge-cell tests are allowed (simplify the polygon or "
                "query a smaller area)")
        return even_odd(shifted, lat, self.rings)


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
        them), or a polygon is too detailed for the cells it covers.
    """
    y_dim, x_dim = store.spatial_dims
    if "latitude" in store.group and store.dims("latitude") == (y_dim, x_dim):
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
    inside = region.contains(lon2, lat2) if region.rings else np.ones(shape, bool)
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


def even_odd(x: np.ndarray, y: np.ndarray, rings: tuple[np.ndarray, ...]) -> np.ndarray:
    """Mark points inside the rings by the even-odd rule (a ray cast towards +x)."""
    inside = np.zeros(np.shape(x), dtype=bool)
    for ring in rings:
        for (x1, y1), (x2, y2) in pairwise(ring.tolist()):
            if y1 == y2:  # a horizontal edge never crosses the ray
                continue
            crosses = (y1 > y) != (y2 > y)
            inside ^= crosses & (x < x1 + (y - y1) * (x2 - x1) / (y2 - y1))
    return inside


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
