"""One grid geometry per published store state: where every cell of the grid lies.

`GridGeometry` holds what the store says about its grid (CRS, 1-D axes or 2-D
latitude/longitude, cell spacing) and answers every spatial question a reader asks: the cell
centres in a request CRS (maps), the window of cells a bbox shows (maps, exports), the cell
under a point (GetFeatureInfo, time series, EDR positions), the cells of a polygon (EDR
areas), and the grid's extent in lon/lat (capabilities, tiles). It is built once per store
state (`geometry_of`, `ForecastStore.geometry`) and caches what it derives: centres per CRS,
the k-d tree of a curvilinear grid, the extent. Transformers are cached once per pair of CRSs
and always take east/north order (``always_xy``).

Three kinds of grid: regular lon/lat (1-D ``latitude``/``longitude``, read as WGS 84 degrees
whatever sphere a GRIB file names, with longitudes that wrap), projected (1-D ``y``/``x`` and
the CF grid mapping ``crs``) and curvilinear (2-D ``latitude``/``longitude`` on ``y``/``x``).
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import TYPE_CHECKING, Protocol

import numba
import numpy as np
import pyproj

from fewsmap.errors import InvalidParameterValue, StoreError
from fewsmap.store.axes import cell_spacings, is_evenly_spaced, mean_step
from fewsmap.store.layout import GRID_MAPPING
from fewsmap.store.state_cache import PerStoreState

if TYPE_CHECKING:
    from scipy.spatial import cKDTree

    from fewsmap.store.cube import ForecastStore

MERCATOR_MAX_LAT = 85.0511287798066
MERCATOR_RADIUS_M = 6378137.0  # Web Mercator's sphere
# CRSs in which a lon/lat grid keeps separable axes: x depends on lon only, y on lat only.
LONLAT_SEPARABLE = ("EPSG:4326", "OGC:CRS84", "EPSG:3857")
LONLAT = "EPSG:4326"
# A point on a cell edge belongs to the cell; this absorbs rounding in the transforms.
EDGE_TOLERANCE = 1e-6  # in cells
# Centres kept per geometry: one per CRS a client draws in (a few in practice).
CENTRES_PER_GEOMETRY = 8
GEOMETRIES = 64  # stores whose newest state's geometry is kept

Bbox = tuple[float, float, float, float]


# --- CRSs, transformers and longitudes: one copy each ---------------------------------------

def crs_of(name: str) -> pyproj.CRS:
    """The CRS named by WKT or by an authority code (``EPSG:3857``, ``OGC:CRS84`` …)."""
    return pyproj.CRS.from_wkt(name) if name.lstrip().startswith(
        ("PROJCRS", "GEOGCRS", "PROJCS", "GEOGCS", "GEODCRS", "BOUNDCRS", "COMPOUNDCRS")
    ) else pyproj.CRS.from_user_input(name)


@lru_cache(maxsize=256)
def transformer(source: str, target: str) -> pyproj.Transformer:
    """A cached transformer in east/north order (``always_xy``) between two CRSs, each
    named by WKT or an authority code."""
    return pyproj.Transformer.from_crs(crs_of(source), crs_of(target), always_xy=True)


def transform_finite(source: str, target: str, x: np.ndarray,
                     y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Transform positions (any shape) to float64; NaN where either coordinate is not
    finite (outside the target's area of use)."""
    tx, ty = (np.asarray(v, dtype="float64") for v in transformer(source, target).transform(x, y))
    bad = ~(np.isfinite(tx) & np.isfinite(ty))
    tx[bad], ty[bad] = np.nan, np.nan
    return tx, ty


# A tile's bounds in its grid's CRS are asked for by every overview level tried and by the
# full-resolution grid (they share the CRS): computed once per tile (about 30 µs each).
NATIVE_BOUNDS = 256


@lru_cache(maxsize=NATIVE_BOUNDS)
def native_bounds(crs: str, native: str, bbox: Bbox) -> Bbox | None:
    """``bbox`` (in ``crs``) in the CRS ``native``: the bounds of its edges densified as
    GDAL computes them; None where they leave ``native``'s area of use."""
    try:
        found = transformer(crs, native).transform_bounds(*bbox, densify_pts=21)
    except pyproj.exceptions.ProjError:
        return None
    if not all(math.isfinite(v) for v in found):
        return None
    west, south, east, north = found
    return float(west), float(south), float(east), float(north)


def from_canvas(crs: str, target: str, x: np.ndarray,
                y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`transform_finite` from ``crs`` to ``target``; from Web Mercator by way of lon/lat
    computed here (the spherical inverse, as PROJ's ``webmerc``), as PROJ's pipeline from
    EPSG:3857 costs 2-4 times its pipeline from EPSG:4326 per point (measured: 0.3-0.5 µs
    against 0.1-0.17 µs to Lambert and polar stereographic grids)."""
    if crs != "EPSG:3857":
        return transform_finite(crs, target, x, y)
    lon = np.degrees(np.asarray(x, dtype="float64") / MERCATOR_RADIUS_M)
    lat = np.degrees(np.arctan(np.sinh(np.asarray(y, dtype="float64") / MERCATOR_RADIUS_M)))
    return transform_finite(LONLAT, target, lon, lat)


def lonlat_to(crs: str, lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lon/lat (any shape) in ``crs``: longitudes into [-180, 180), latitudes clipped to
    Web Mercator's limit there (it has no poles)."""
    lon = normalise_longitudes(lon)
    lat = np.asarray(lat, dtype="float64")
    if crs == "EPSG:3857":
        lat = np.clip(lat, -MERCATOR_MAX_LAT, MERCATOR_MAX_LAT)
    return transform_finite(LONLAT, crs, lon, lat)


def lon_axis_in(crs: str, lon: np.ndarray) -> np.ndarray:
    """A longitude axis in one of `LONLAT_SEPARABLE` (x depends on longitude only)."""
    wrapped = normalise_longitudes(lon)
    if crs == "EPSG:3857":
        return np.asarray(np.radians(wrapped) * MERCATOR_RADIUS_M)
    return wrapped


def lat_axis_in(crs: str, lat: np.ndarray) -> np.ndarray:
    """A latitude axis in one of `LONLAT_SEPARABLE` (y depends on latitude only), clipped
    to Web Mercator's limit there."""
    lat = np.asarray(lat, dtype="float64")
    if crs == "EPSG:3857":
        phi = np.radians(np.clip(lat, -MERCATOR_MAX_LAT, MERCATOR_MAX_LAT))
        return np.asarray(MERCATOR_RADIUS_M * np.log(np.tan(np.pi / 4 + phi / 2)))
    return lat


def normalise_longitudes(lon: np.ndarray) -> np.ndarray:
    """Longitudes in [-180, 180) (180 becomes -180): where maps draw them."""
    return np.asarray((np.asarray(lon, dtype="float64") + 180.0) % 360.0 - 180.0)


def wrap_longitude(lon: float) -> float:
    """A longitude in −180…180 (unchanged when it already is): `wrap_longitudes` of one."""
    return lon if -180.0 <= lon <= 180.0 else (lon + 180.0) % 360.0 - 180.0


def wrap_longitudes(lon: np.ndarray) -> np.ndarray:
    """Longitudes in −180…180 (values already there are unchanged)."""
    lon = np.asarray(lon, dtype="float64")
    return np.where((lon >= -180.0) & (lon <= 180.0), lon, (lon + 180.0) % 360.0 - 180.0)


def shift_longitudes(lon: np.ndarray, west: float) -> np.ndarray:
    """Move longitudes by whole turns into [west, west + 360); exact where already there."""
    turns = np.ceil((west - lon) / 360.0)
    return np.where(turns == 0, lon, lon + 360.0 * turns)


def cell_edges(centres: np.ndarray, spacing: float) -> np.ndarray:
    """The edges of the cells of a monotonic 1-D axis, in its order: halfway between
    centres, mirrored at the ends; a lone cell is ``spacing`` wide."""
    centres = np.asarray(centres, dtype="float64")
    if centres.size == 1:
        return np.array([centres[0] - spacing / 2, centres[0] + spacing / 2])
    mid = (centres[1:] + centres[:-1]) / 2
    return np.concatenate([[2 * centres[0] - mid[0]], mid, [2 * centres[-1] - mid[-1]]])


def _unit_vectors(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    lam, phi = np.radians(lon), np.radians(lat)
    return np.stack([np.cos(phi) * np.cos(lam), np.cos(phi) * np.sin(lam), np.sin(phi)],
                    axis=-1)


# --- What the geometry answers -------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class Centres:
    """Cell centres in a request CRS, ordered so both axes ascend."""

    x: np.ndarray  # 1-D (separable) or 2-D
    y: np.ndarray
    rows: np.ndarray  # store row index of each y position (row of x/y when 2-D)
    cols: np.ndarray

    @property
    def separable(self) -> bool:
        """Whether x depends on the column only and y on the row only (1-D axes)."""
        return self.x.ndim == 1

    @cached_property
    def blocks(self) -> _Blocks:
        """The extent of each block of 2-D centres, to search them without a pass over all."""
        return _Blocks.of(self.x, self.y)

    @cached_property
    def least_step(self) -> float:
        """The shortest distance between neighbouring centres along either axis (NaN
        positions left out; inf where none is finite): no window of them has cells smaller."""
        if self.separable:
            steps = [np.abs(np.diff(axis)) for axis in (self.x, self.y)]
            return float(min((np.fmin.reduce(s) for s in steps if s.size), default=np.inf))
        return float(_least_step(np.asarray(self.x, dtype=np.float64),
                                 np.asarray(self.y, dtype=np.float64)))

    @cached_property
    def x_span(self) -> float:
        """How far the centres reach along x (NaN positions left out; 0 where none has
        one): no window of them reaches farther."""
        with np.errstate(invalid="ignore"):
            span = np.fmax.reduce(self.x, axis=None) - np.fmin.reduce(self.x, axis=None)
        return float(span) if np.isfinite(span) else 0.0

    @cached_property
    def unfolded(self) -> bool:
        """Whether 2-D centres neither fold nor collapse a cell anywhere (`unfolded`):
        then no window of them does, and a tile need not check its own."""
        return not self.separable and bool(unfolded(np.asarray(self.x, dtype=np.float64),
                                                    np.asarray(self.y, dtype=np.float64)))


@numba.njit(nogil=True, cache=True)
def unfolded(x: np.ndarray, y: np.ndarray) -> bool:
    """Whether every cell's steps to its next centres along the two grid axes turn the
    same way (2-D centres ``x``, ``y`` (ny, nx) float64): the grid neither folds over
    itself nor collapses a cell, so a point lies in one place of it. False where a centre
    has no position (NaN)."""
    ny, nx = x.shape
    sign = 0.0
    for i in range(ny - 1):
        for j in range(nx - 1):
            cross = (x[i, j + 1] - x[i, j]) * (y[i + 1, j] - y[i, j]) \
                - (y[i, j + 1] - y[i, j]) * (x[i + 1, j] - x[i, j])
            if not (cross != 0.0 and cross * sign >= 0.0):  # NaN fails both
                return False
            sign = cross
    return True


@numba.njit(nogil=True, cache=True)
def _least_step(x: np.ndarray, y: np.ndarray) -> float:
    """`Centres.least_step` of 2-D centres, in one pass without temporaries."""
    ny, nx = x.shape
    least = np.inf
    for i in range(ny):
        for j in range(nx):
            if j + 1 < nx:
                step = np.hypot(x[i, j + 1] - x[i, j], y[i, j + 1] - y[i, j])
                if step < least:  # (False for NaN)
                    least = step
            if i + 1 < ny:
                step = np.hypot(x[i + 1, j] - x[i, j], y[i + 1, j] - y[i, j])
                if step < least:
                    least = step
    return least


# 2-D centres are searched by blocks of this many cells on a side (`_Blocks`).
SEARCH_BLOCK = 32


@dataclass(frozen=True, eq=False)
class _Blocks:
    """Where 2-D centres lie, block by block: the extent (x and y, NaN positions left out)
    of the centres of each pair of blocks along both axes (2 × 2 blocks, overlapping by
    one), and the longest step between neighbouring centres. A bbox finds its centres in
    the blocks whose extent meets it (a 2000 × 2000 grid: 4000 extents, not 4 M centres),
    and a point between centres the 2 × 2 blocks that hold the cells around it."""

    x0: np.ndarray  # (rows of blocks, columns of blocks)
    x1: np.ndarray
    y0: np.ndarray
    y1: np.ndarray
    step: float

    @classmethod
    def of(cls, x: np.ndarray, y: np.ndarray) -> _Blocks:
        """The blocks of centres ``x``, ``y`` (2-D, NaN where a cell has no position)."""
        with np.errstate(invalid="ignore"):
            steps = [np.fmax.reduce(np.abs(np.diff(a, axis=axis)), axis=None, initial=0.0)
                     for a in (x, y) for axis in (0, 1)]
        return cls(*_block_extent(x), *_block_extent(y), float(max(steps)))

    def candidates(self, bbox: Bbox, shape: tuple[int, int]) -> tuple[slice, slice] | None:
        """Rows and columns of the blocks whose centres' extent meets the bbox (None:
        no block's does); every centre in the bbox lies within them."""
        return _hit_span(self.hits(bbox), shape)

    def hits(self, bbox: Bbox) -> np.ndarray:
        """Whether the extent of each block's centres meets the bbox (rows × columns of
        blocks)."""
        minx, miny, maxx, maxy = bbox
        return np.asarray((self.x0 <= maxx) & (self.x1 >= minx) & (self.y0 <= maxy)
                          & (self.y1 >= miny))


def _hit_span(hit: np.ndarray, shape: tuple[int, int]) -> tuple[slice, slice] | None:
    """`_Blocks.candidates` of the blocks ``hit`` (`_Blocks.hits`)."""
    rows, cols = np.flatnonzero(hit.any(axis=1)), np.flatnonzero(hit.any(axis=0))
    if not rows.size:
        return None
    return (slice(int(rows[0]) * SEARCH_BLOCK, min((int(rows[-1]) + 2) * SEARCH_BLOCK,
                                                   shape[0])),
            slice(int(cols[0]) * SEARCH_BLOCK, min((int(cols[-1]) + 2) * SEARCH_BLOCK,
                                                   shape[1])))


def _hit_columns(hit: np.ndarray, nx: int) -> tuple[np.ndarray, np.ndarray]:
    """For each row of blocks, the columns (start, stop) of the blocks from its first to
    its last ``hit`` (`_Blocks.hits`; 0, 0: none is): a centre of a row in the bbox lies
    within those of the row's block."""
    any_hit = hit.any(axis=1)
    first = np.where(any_hit, np.argmax(hit, axis=1), 0) * SEARCH_BLOCK
    last = hit.shape[1] - np.argmax(hit[:, ::-1], axis=1)  # after the last hit
    stop = np.where(any_hit, np.minimum((last + 1) * SEARCH_BLOCK, nx), 0)
    return first.astype(np.int64), stop.astype(np.int64)


def _block_extent(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The least and greatest value (NaN left out; NaN where all are) of each 2 × 2 blocks
    of `SEARCH_BLOCK` cells of a 2-D array, the first block at each block."""
    ny, nx = values.shape
    rows, cols = -(-ny // SEARCH_BLOCK), -(-nx // SEARCH_BLOCK)
    padded = np.full((rows * SEARCH_BLOCK, cols * SEARCH_BLOCK), np.nan)
    padded[:ny, :nx] = values
    tiles = padded.reshape(rows, SEARCH_BLOCK, cols, SEARCH_BLOCK)
    out = []
    for reduce in (np.fmin, np.fmax):
        extent = reduce.reduce(reduce.reduce(tiles, axis=3), axis=1)
        extent[:-1] = reduce(extent[:-1], extent[1:])
        extent[:, :-1] = reduce(extent[:, :-1], extent[:, 1:])
        out.append(extent)
    return out[0], out[1]


@dataclass(frozen=True, eq=False)
class CentresWindow:
    """The cells near a bbox: store rows and columns, their centres in the bbox's CRS."""

    rows: np.ndarray  # store row of each window row
    cols: np.ndarray  # store column of each window column
    x: np.ndarray  # (nx,) ascending, or (ny, nx)
    y: np.ndarray  # (ny,) ascending, or (ny, nx)
    # What the grid's 2-D centres tell of every window: `Centres.unfolded`, `Centres.x_span`.
    unfolded: bool = False
    grid_x_span: float = np.inf


@dataclass(frozen=True)
class GridCell:
    """The grid cell under a point: store indices and the cell centre.

    ``row``/``col`` index the store's y and x dimensions. ``lon``/``lat`` are the centre in
    WGS 84 degrees (longitude in −180…180); ``x``/``y`` the centre in ``crs``, the CRS the
    point was given in, east/north order.
    """

    row: int
    col: int
    lon: float
    lat: float
    x: float
    y: float
    crs: str


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


class Area(Protocol):
    """A region in CRS84 (`fewsmap.edr.window.Region`): a box (``east`` may exceed 180°),
    an optional polygon (None: the box itself), and which centres lie in it."""

    @property
    def west(self) -> float: ...
    @property
    def south(self) -> float: ...
    @property
    def east(self) -> float: ...
    @property
    def north(self) -> float: ...
    @property
    def area(self) -> object: ...

    def outline(self) -> np.ndarray:
        """Points on the boundary, densely sampled: (n, 2) lon/lat."""

    def contains(self, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        """Mark the centres (any longitude range) that lie in the region."""


@dataclass(frozen=True, eq=False)
class AreaWindow:
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

    def shrunk(self) -> AreaWindow | None:
        """The smallest sub-window holding every inside cell; None if there is none."""
        rows = np.flatnonzero(self.inside.any(axis=1))
        cols = np.flatnonzero(self.inside.any(axis=0))
        if not rows.size:
            return None
        r = slice(int(rows[0]), int(rows[-1]) + 1)
        c = slice(int(cols[0]), int(cols[-1]) + 1)
        return AreaWindow(self.rows[r], self.cols[c], self.x[c], self.y[r], self.lon[r, c],
                          self.lat[r, c], self.inside[r, c], self.projected_wkt)


@dataclass(frozen=True, eq=False)
class _Curvilinear:
    """2-D cell centres as unit vectors on the sphere, with a k-d tree over the valid ones."""

    xyz: np.ndarray  # (ny, nx, 3), NaN where the coordinates are missing
    tree: cKDTree
    flat_index: np.ndarray  # tree position → flat cell index


class GridGeometry:
    """The grid of one store state: its CRS, axes, cells, and the windows and cells that
    bboxes, points and polygons select (module docstring).

    Parameters
    ----------
    name
        The store's name, for messages.
    dims
        The spatial dimensions, y first.
    crs_wkt
        The WKT of the store's CF grid mapping.
    x, y
        The 1-D axes as stored (None when curvilinear).
    lon, lat
        The 2-D cell centres as stored (curvilinear only).
    """

    def __init__(self, name: str, dims: tuple[str, str], crs_wkt: str,
                 x: np.ndarray | None = None, y: np.ndarray | None = None,
                 lon: np.ndarray | None = None, lat: np.ndarray | None = None) -> None:
        self.name = name
        self.dims = dims
        self.crs_wkt = crs_wkt
        self._x, self._y, self._lon, self._lat = x, y, lon, lat
        self._centres: OrderedDict[str, Centres] = OrderedDict()
        self._lock = threading.Lock()

    @classmethod
    def of(cls, store: ForecastStore) -> GridGeometry:
        """Read the geometry of ``store``'s grid (its coordinates and grid mapping)."""
        dims = store.spatial_dims
        wkt = str(store.attributes(GRID_MAPPING)["crs_wkt"])
        if store.curvilinear:
            return cls(store.name, dims, wkt, lon=store.coordinate("longitude"),
                       lat=store.coordinate("latitude"))
        return cls(store.name, dims, wkt, x=store.coordinate(dims[1]),
                   y=store.coordinate(dims[0]))

    # --- what the grid is ---

    @property
    def curvilinear(self) -> bool:
        """Whether cells are placed by 2-D latitude/longitude (no 1-D axes)."""
        return self._lon is not None

    @property
    def lonlat(self) -> bool:
        """Whether the 1-D axes are longitude and latitude (x wraps at ±180°)."""
        return self.dims[0] == "latitude" and not self.curvilinear

    @property
    def axes_crs(self) -> str:
        """The CRS of the axes: WGS 84 degrees for lon/lat axes (as maps draw them, whatever
        sphere a GRIB file names), else the grid mapping's WKT."""
        return LONLAT if self.dims[0] == "latitude" else self.crs_wkt

    @cached_property
    def native_crs(self) -> pyproj.CRS:
        """The CRS of the store's grid mapping."""
        return pyproj.CRS.from_wkt(self.crs_wkt)

    @cached_property
    def x(self) -> np.ndarray:
        """The x axis in float64 (longitude on lon/lat grids).

        Raises
        ------
        ValueError
            On a curvilinear grid, which has no 1-D axes.
        """
        return self._axis(self._x)

    @cached_property
    def y(self) -> np.ndarray:
        """The y axis in float64 (latitude on lon/lat grids); ValueError when curvilinear."""
        return self._axis(self._y)

    def _axis(self, stored: np.ndarray | None) -> np.ndarray:
        if stored is None:
            raise ValueError(f"store {self.name!r} has a curvilinear grid: no 1-D axes")
        return np.asarray(stored, dtype="float64")

    @property
    def lon(self) -> np.ndarray:
        """Longitudes of the cell centres, (rows, cols), as stored (curvilinear grids)."""
        return self._centres_2d(self._lon)

    @property
    def lat(self) -> np.ndarray:
        """Latitudes of the cell centres, (rows, cols), as stored (curvilinear grids)."""
        return self._centres_2d(self._lat)

    def _centres_2d(self, stored: np.ndarray | None) -> np.ndarray:
        if stored is None:
            raise ValueError(f"store {self.name!r} has 1-D axes, not 2-D centres")
        return stored

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, columns)."""
        if self.curvilinear:
            rows, cols = self.lat.shape
            return int(rows), int(cols)
        return self.y.size, self.x.size

    @cached_property
    def spacing(self) -> tuple[float, float]:
        """(dy, dx): the mean cell size along each 1-D axis (`cell_spacings`)."""
        return cell_spacings(self.y, self.x)

    # --- centres in a request CRS, and the window a bbox shows (maps) ---

    def centres_in(self, crs: str) -> Centres:
        """Cell centres in ``crs`` (an authority code), cached per CRS: 1-D axes where the
        mapping is separable (lon/lat drawn in EPSG:3857/4326/CRS84, or a grid in its own
        CRS), else 2-D (NaN outside the CRS's area of use)."""
        with self._lock:
            found = self._centres.get(crs)
            if found is not None:
                self._centres.move_to_end(crs)
                return found
        found = self._compute_centres(crs)
        with self._lock:
            self._centres[crs] = found
            while len(self._centres) > CENTRES_PER_GEOMETRY:
                self._centres.popitem(last=False)
        return found

    def _compute_centres(self, crs: str) -> Centres:
        if self.curvilinear:
            lat, lon = self.lat, self.lon
            rows, cols = np.arange(lat.shape[0]), np.arange(lat.shape[1])
        else:
            dy, dx = self.spacing
            (y, rows), (x, cols) = _halved(self.y, dy), _halved(self.x, dx)
            if self.lonlat and crs in LONLAT_SEPARABLE:
                return _separable(lon_axis_in(crs, x), lat_axis_in(crs, y), rows, cols)
            if crs_of(crs).equals(self.native_crs, ignore_axis_order=True):
                return _separable(x, y, rows, cols)
            yy, xx = np.meshgrid(y, x, indexing="ij")
            lon, lat = (xx, yy) if self.lonlat else transform_finite(self.crs_wkt, LONLAT,
                                                                     xx, yy)
        x2, y2 = lonlat_to(crs, lon, lat)
        return Centres(x2, y2, rows, cols)

    def window_in(self, crs: str, bbox: Bbox) -> CentresWindow | None:
        """The cells near ``bbox`` (in ``crs``, east/north order), one cell of margin, with
        their centres in ``crs``; None when fewer than 2 × 2 cells are near it."""
        centres = self.centres_in(crs)
        found = self._native_window(crs, bbox, centres)
        if found is None:
            return None
        rows, cols = found
        if centres.separable:
            return CentresWindow(centres.rows[rows], centres.cols[cols], centres.x[cols],
                                 centres.y[rows])
        return CentresWindow(centres.rows[rows], centres.cols[cols], centres.x[rows, cols],
                             centres.y[rows, cols], centres.unfolded, centres.x_span)

    def _native_window(self, crs: str, bbox: Bbox, centres: Centres
                       ) -> tuple[slice, slice] | None:
        """`_window`, found on the 1-D axes of a projected grid drawn in another CRS: the
        bbox's bounds in the grid's CRS (its edges densified, as GDAL computes them) select
        rows and columns with a cell of margin, instead of a search of every 2-D centre
        (1-2 ms for an overview level of 500² cells). Other grids, and a bbox whose bounds
        leave the grid CRS's area of use, search the centres."""
        if centres.separable or self.curvilinear or self.lonlat:
            return _window(centres, bbox)
        bounds = native_bounds(crs, self.crs_wkt, bbox)
        if bounds is None:
            return _window(centres, bbox)
        west, south, east, north = bounds
        dy, dx = self.spacing  # the axes as the centres hold them (a lone cell halved)
        (y, _), (x, _) = _halved(self.y, dy), _halved(self.x, dx)
        rows, cols = _span(y, south, north), _span(x, west, east)
        if rows.stop - rows.start < 2 or cols.stop - cols.start < 2:
            return None
        return rows, cols

    # --- the cells a bbox overlaps, in the grid's own CRS (exports) ---

    def overlapping(self, crs: str, bbox: Bbox) -> GridWindow:
        """The native cells whose extent overlaps ``bbox`` (in ``crs``, east/north order):
        rows north first, columns west to east, a longitude axis shifted by whole turns to
        meet the bbox; on a curvilinear grid the index box of the centres inside it.

        Raises
        ------
        InvalidParameterValue
            If the bbox cannot be expressed in the grid's CRS.
        """
        if self.curvilinear:
            return self._curvilinear_overlap(crs, bbox)
        minx, miny, maxx, maxy = self._bounds_in(crs, bbox)
        dy, dx = self.spacing
        cols, x = _axis_cells(self.x, minx, maxx, dx, periodic=self.native_crs.is_geographic)
        rows, y = _axis_cells(self.y, miny, maxy, dy, periodic=False)
        return GridWindow(rows[::-1], cols, y[::-1], x, (dx, dy), self.crs_wkt)

    def _bounds_in(self, crs: str, bbox: Bbox) -> Bbox:
        """The bbox in the grid's CRS (densified edges, so curved edges are covered)."""
        if crs_of(crs).equals(self.native_crs, ignore_axis_order=True):
            return bbox
        found = native_bounds(crs, self.crs_wkt, bbox)
        if found is None:
            raise InvalidParameterValue(f"BBOX={','.join(f'{v:g}' for v in bbox)} ({crs}) "
                                        "cannot be expressed in the grid's CRS")
        minx, miny, maxx, maxy = found
        if self.native_crs.is_geographic and maxx < minx:  # crosses the antimeridian
            maxx += 360.0
        return float(minx), float(miny), float(maxx), float(maxy)

    def _curvilinear_overlap(self, crs: str, bbox: Bbox) -> GridWindow:
        centres = self.centres_in(crs)
        rows, cols = _inside(centres, bbox)
        if rows.size:
            rows, cols = np.arange(rows[0], rows[-1] + 1), np.arange(cols[0], cols[-1] + 1)
        return GridWindow(rows, cols, rows.astype("float64"), cols.astype("float64"),
                          (1.0, 1.0), self.crs_wkt, curvilinear=True)

    # --- the cell under a point (feature info, time series, EDR positions) ---

    def cell_at(self, crs: str, x: float, y: float) -> GridCell | None:
        """The cell containing the point (x, y) in ``crs`` (east/north order), or None when
        it lies more than half a cell outside the grid or cannot be expressed in its CRS.

        Separable grids find the cell on each axis in the grid's own CRS; curvilinear grids
        take the nearest centre on the sphere.
        """
        if not (np.isfinite(x) and np.isfinite(y)):
            return None
        found = self._curvilinear_cell(crs, x, y) if self.curvilinear else \
            self._separable_cell(crs, x, y)
        if found is None:
            return None
        return self._cell(crs, *found)

    def _separable_cell(self, crs: str, x: float, y: float) -> tuple[int, int] | None:
        sx, sy = transformer(crs, self.axes_crs).transform(x, y)
        if not (np.isfinite(sx) and np.isfinite(sy)):
            return None
        dy, dx = self.spacing
        col = _axis_index(self.x, float(sx), self.lonlat, dx)
        row = _axis_index(self.y, float(sy), False, dy)
        if col is None or row is None:
            return None
        return row, col

    @cached_property
    def _sphere(self) -> _Curvilinear:
        from scipy.spatial import cKDTree  # only curvilinear grids need it (the client not)

        xyz = _unit_vectors(self.lon.astype("float64"), self.lat.astype("float64"))
        valid = np.flatnonzero(np.isfinite(xyz).all(axis=-1).ravel())
        return _Curvilinear(xyz, cKDTree(xyz.reshape(-1, 3)[valid]), valid)

    def _curvilinear_cell(self, crs: str, x: float, y: float) -> tuple[int, int] | None:
        lon, lat = transformer(crs, LONLAT).transform(x, y)
        if not (np.isfinite(lon) and np.isfinite(lat)) or abs(lat) > 90:
            return None
        sphere = self._sphere
        if not sphere.flat_index.size:  # no cell of the grid has a position
            return None
        point = _unit_vectors(np.asarray(lon, dtype="float64"), np.asarray(lat, dtype="float64"))
        _, nearest = sphere.tree.query(point)
        row, col = divmod(int(sphere.flat_index[int(nearest)]), self.shape[1])
        if not _inside_curvilinear_cell(sphere.xyz, row, col, point):
            return None
        return row, col

    def _cell(self, crs: str, row: int, col: int) -> GridCell:
        if self.curvilinear:
            lon, lat = float(self.lon[row, col]), float(self.lat[row, col])
        elif self.lonlat:
            lon, lat = float(self.x[col]), float(self.y[row])
        else:
            lon, lat = transformer(self.axes_crs, LONLAT).transform(float(self.x[col]),
                                                                    float(self.y[row]))
        lon, lat = wrap_longitude(float(lon)), float(lat)
        # Web Mercator has no poles: a polar cell centre is drawn (and reported) at its limit.
        shown_lat = float(np.clip(lat, -MERCATOR_MAX_LAT, MERCATOR_MAX_LAT)) if crs == (
            "EPSG:3857") else lat
        x, y = transformer(LONLAT, crs).transform(lon, shown_lat)
        return GridCell(row=row, col=col, lon=lon, lat=lat, x=float(x), y=float(y), crs=crs)

    # --- the cells of a polygon (EDR areas and cubes) ---

    def area_candidates(self, area: Area) -> tuple[np.ndarray, np.ndarray] | None:
        """Rows and columns that may hold a centre of ``area`` (cheap: no cell transformed),
        columns of a lon/lat grid ordered west to east from the area's west edge; None when
        none can.

        Raises
        ------
        ValueError
            On a curvilinear grid: no rows × columns window exists.
        """
        if self.lonlat:
            rows = np.flatnonzero((self.y >= area.south) & (self.y <= area.north))
            shifted = shift_longitudes(self.x, area.west)
            cols = np.flatnonzero(shifted <= area.east)
            cols = cols[np.argsort(shifted[cols], kind="stable")]
        else:
            outline = area.outline()
            ox, oy = transformer("OGC:CRS84", self.crs_wkt).transform(outline[:, 0],
                                                                      outline[:, 1])
            ok = np.isfinite(ox) & np.isfinite(oy)
            if not ok.any():
                return None
            # The outline's envelope, one cell wider: every centre of the area lies within it.
            rows = _within(self.y, float(oy[ok].min()), float(oy[ok].max()))
            cols = _within(self.x, float(ox[ok].min()), float(ox[ok].max()))
        return (rows, cols) if rows.size and cols.size else None

    def area_window(self, area: Area, rows: np.ndarray, cols: np.ndarray) -> AreaWindow | None:
        """The window of ``rows`` × ``cols`` (from `area_candidates`), shrunk to the cells
        whose centres lie in ``area`` (edges included); None when none does."""
        if self.lonlat:
            xs, ys = shift_longitudes(self.x, area.west)[cols], self.y[rows]
            # Centres of a lon/lat grid as read-only views of its axes (a million cells would
            # take 16 MB as arrays, held while the answer is sent; issue #13).
            shape = (ys.size, xs.size)
            lon2, lat2 = np.broadcast_to(xs, shape), np.broadcast_to(ys[:, None], shape)
            inside = np.ones(shape, bool) if area.area is None else area.contains(lon2, lat2)
            window = AreaWindow(rows, cols, xs, ys,
                                np.broadcast_to(wrap_longitudes(xs), shape), lat2, inside)
        else:
            xx, yy = np.meshgrid(self.x[cols], self.y[rows])
            lon, lat = (np.asarray(v) for v in transformer(self.crs_wkt, "OGC:CRS84").transform(
                xx, yy))
            inside = np.isfinite(lon) & np.isfinite(lat)
            inside[inside] = area.contains(lon[inside], lat[inside])
            window = AreaWindow(rows, cols, self.x[cols], self.y[rows], wrap_longitudes(lon),
                                lat, inside, self.crs_wkt)
        return window.shrunk()

    # --- the extent ---

    @cached_property
    def _outline(self) -> tuple[np.ndarray, np.ndarray]:
        """Finite longitudes and latitudes of the grid's outline (every centre when
        curvilinear)."""
        if self.curvilinear:
            # Longitudes made continuous across the antimeridian before stepping outwards.
            lon = np.unwrap(np.unwrap(np.asarray(self.lon, dtype="float64"), period=360.0,
                                      axis=1), period=360.0, axis=0)
            lat = _half_cell_beyond(np.asarray(self.lat, dtype="float64"))
            lon = _half_cell_beyond(lon)
        else:
            xs, ys = self.edges
            lon = np.concatenate([xs, np.full(ys.size, xs[-1]), xs[::-1], np.full(ys.size, xs[0])])
            lat = np.concatenate([np.full(xs.size, ys[0]), ys, np.full(xs.size, ys[-1]),
                                  ys[::-1]])
            if not self.lonlat:
                lon, lat = transformer(self.crs_wkt, LONLAT).transform(lon, lat)
                lon, lat = self._with_poles_inside(lon, lat)
        lon, lat = np.asarray(lon, dtype="float64").ravel(), np.asarray(lat, "float64").ravel()
        finite = np.isfinite(lon) & np.isfinite(lat)
        return lon[finite], lat[finite]

    @property
    def edges(self) -> tuple[np.ndarray, np.ndarray]:
        """Cell edges along x and y (1-D axes), in axis order."""
        dy, dx = self.spacing
        return cell_edges(self.x, dx), cell_edges(self.y, dy)

    def _with_poles_inside(self, lon: np.ndarray,
                           lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Add each pole inside a projected grid to its outline: a polar stereographic grid
        around the pole reaches 90° although none of its edges does."""
        xs, ys = self.edges
        pole_x, pole_y = transformer(self.crs_wkt, LONLAT).transform(
            np.zeros(2), np.array([90.0, -90.0]),
            direction=pyproj.enums.TransformDirection.INVERSE)
        inside = ((pole_x >= xs.min()) & (pole_x <= xs.max()) & (pole_y >= ys.min())
                  & (pole_y <= ys.max()))
        return (np.concatenate([np.asarray(lon), np.zeros(int(inside.sum()))]),
                np.concatenate([np.asarray(lat), np.array([90.0, -90.0])[inside]]))

    def _finite_outline(self) -> tuple[np.ndarray, np.ndarray]:
        lon, lat = self._outline
        if not lon.size:
            raise StoreError(f"store {self.name!r}: no cell of the grid has a finite position")
        return lon, lat

    def lonlat_bbox(self) -> Bbox:
        """(west, south, east, north) in degrees covering every cell of the grid.

        Cell edges are half a cell beyond the outer centres; a projected grid's outline is
        sampled densely so curved edges are covered. Longitudes are in -180..180: a grid that
        crosses the antimeridian spans all of them (WMS and TileJSON boxes cannot wrap).

        Raises
        ------
        StoreError
            If no cell of the grid has a finite position.
        """
        lon, lat = self._finite_outline()
        south = float(np.clip(lat.min(), -90.0, 90.0))
        north = float(np.clip(lat.max(), -90.0, 90.0))
        west, east = _covering_arc(lon)
        if east > 180.0:  # crosses the antimeridian
            return -180.0, south, 180.0, north
        return west, south, east, north

    def longitude_width(self) -> float:
        """The width in degrees of the narrowest longitude interval holding the grid, which
        may cross the antimeridian (a Pacific grid at 170..190 is 20° wide, not 360°)."""
        west, east = _covering_arc(self._finite_outline()[0])
        return east - west

    def native_bbox(self) -> Bbox | None:
        """The cell edges in the grid's own CRS (min x, min y, max x, max y) for grids on
        1-D axes; None when curvilinear."""
        if self.curvilinear:
            return None
        xs, ys = self.edges
        return float(xs.min()), float(ys.min()), float(xs.max()), float(ys.max())


# --- One geometry per store state ----------------------------------------------------------

# One state per store: a reader still holding an older state keeps its geometry
# (`ForecastStore.geometry` caches it), the cache needs only the newest.
geometry_of: PerStoreState[ForecastStore, GridGeometry] = PerStoreState(GridGeometry.of, GEOMETRIES)
"""The geometry of a store's grid, built once per published store state."""


# --- Helpers --------------------------------------------------------------------------------

def _halved(centres: np.ndarray, spacing: float) -> tuple[np.ndarray, np.ndarray]:
    """Positions along a 1-D axis and the store index each reads.

    A lone cell (an axis of one centre: a single row, column or point) becomes two half
    cells reading it, since regridding sizes a cell by its neighbours (issue #13).
    """
    centres = np.asarray(centres, dtype="float64")
    if centres.size != 1:
        return centres, np.arange(centres.size)
    return centres[0] + np.array([-spacing, spacing]) / 4, np.zeros(2, dtype=np.int64)


def _separable(x: np.ndarray, y: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> Centres:
    x_order, y_order = np.argsort(x, kind="stable"), np.argsort(y, kind="stable")
    return Centres(np.asarray(x)[x_order], np.asarray(y)[y_order], rows[y_order],
                   cols[x_order])


def _span(axis: np.ndarray, low: float, high: float) -> slice:
    """The indices of a monotonic axis whose centres lie in [low, high], with one more
    on each side."""
    descending = axis.size > 1 and axis[-1] < axis[0]
    ascending = axis[::-1] if descending else axis
    first = max(int(np.searchsorted(ascending, low)) - 1, 0)
    stop = min(int(np.searchsorted(ascending, high, side="right")) + 1, axis.size)
    if stop <= first:
        return slice(0, 0)
    return slice(axis.size - stop, axis.size - first) if descending else slice(first, stop)


def _inside(centres: Centres, bbox: Bbox) -> tuple[np.ndarray, np.ndarray]:
    """Rows and columns (in centres order) from the first to the last that hold a 2-D
    centre lying in the bbox (empty: none does), looked for in the blocks that can hold
    them (`Centres.blocks`) in one compiled pass (`_inside_extent`)."""
    hit = centres.blocks.hits(bbox)
    found = _hit_span(hit, centres.x.shape)
    if found is None:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    rows, _ = found
    col_start, col_stop = _hit_columns(hit, centres.x.shape[1])
    first_row, last_row, first_col, last_col = _inside_extent(
        centres.x, centres.y, rows.start, rows.stop, col_start, col_stop, *bbox)
    if last_row < 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    return np.arange(first_row, last_row + 1), np.arange(first_col, last_col + 1)


@numba.njit(nogil=True, cache=True)
def _inside_extent(x: np.ndarray, y: np.ndarray, row0: int, row1: int,
                   col_start: np.ndarray, col_stop: np.ndarray,
                   minx: float, miny: float, maxx: float, maxy: float
                   ) -> tuple[int, int, int, int]:
    """The first and last row and column of rows row0…row1-1 of 2-D centres ``x``, ``y``
    where one lies in the bbox (-1 for the last: none does), each row looked at in the
    columns ``col_start`` … ``col_stop`` of its row of blocks (`_hit_columns`).

    Each row is searched from both ends for its first and last centre inside, so a
    zoomed-out tile whose bbox holds most of its candidate blocks (300 × 300 centres and
    more) looks at two a row: 1.7 ms in numpy, which compares every centre; rows whose
    blocks miss the bbox are not looked at."""
    first_row, last_row, first_col, last_col = row1, -1, x.shape[1], -1
    for i in range(row0, row1):
        col0, col1 = col_start[i // SEARCH_BLOCK], col_stop[i // SEARCH_BLOCK]
        j = col0
        while j < col1 and not (minx <= x[i, j] <= maxx and miny <= y[i, j] <= maxy):
            j += 1  # (False for NaN)
        if j >= col1:
            continue
        k = col1 - 1
        while k > j and not (minx <= x[i, k] <= maxx and miny <= y[i, k] <= maxy):
            k -= 1
        first_row, last_row = min(first_row, i), i
        first_col, last_col = min(first_col, j), max(last_col, k)
    return first_row, last_row, first_col, last_col


def _window(centres: Centres, bbox: Bbox) -> tuple[slice, slice] | None:
    """Rows and columns (in centres order) of cells near the bbox, one cell of margin."""
    minx, miny, maxx, maxy = bbox
    if centres.separable:
        c0 = max(int(np.searchsorted(centres.x, minx)) - 1, 0)
        c1 = min(int(np.searchsorted(centres.x, maxx, side="right")) + 1, centres.x.size)
        r0 = max(int(np.searchsorted(centres.y, miny)) - 1, 0)
        r1 = min(int(np.searchsorted(centres.y, maxy, side="right")) + 1, centres.y.size)
    else:
        rows, cols = _inside(centres, bbox)
        if not rows.size:  # zoomed in within one cell: no centre inside, the cell around shows
            cell = _cell_under_centre(centres, bbox)
            if cell is None:
                return None
            rows, cols = np.array([cell[0]]), np.array([cell[1]])
        r0, r1 = max(rows[0] - 1, 0), min(rows[-1] + 2, centres.x.shape[0])
        c0, c1 = max(cols[0] - 1, 0), min(cols[-1] + 2, centres.x.shape[1])
    if c1 - c0 < 2 or r1 - r0 < 2:
        return None
    return slice(r0, r1), slice(c0, c1)


def _cell_under_centre(centres: Centres, bbox: Bbox) -> tuple[int, int] | None:
    """The (row, col) of the 2-D centre nearest the bbox centre, if within a cell of it
    (the distance to its farthest neighbour): else the bbox is off the grid."""
    minx, miny, maxx, maxy = bbox
    px, py, reach = (minx + maxx) / 2, (miny + maxy) / 2, centres.blocks.step
    # A cell holding the point has its centre within the longest step of it.
    found = centres.blocks.candidates((px - reach, py - reach, px + reach, py + reach),
                                      centres.x.shape)
    if found is None:
        return None
    near_rows, near_cols = found
    with np.errstate(invalid="ignore"):
        distance = np.hypot(centres.x[found] - px, centres.y[found] - py)
    if not np.isfinite(distance).any():
        return None
    near_row, near_col = np.unravel_index(int(np.nanargmin(distance)), distance.shape)
    row, col = near_row + near_rows.start, near_col + near_cols.start
    rows = slice(max(row - 1, 0), row + 2)
    cols = slice(max(col - 1, 0), col + 2)
    spacing = np.hypot(centres.x[rows, cols] - centres.x[row, col],
                       centres.y[rows, cols] - centres.y[row, col])
    if not np.isfinite(spacing).any() or distance[near_row, near_col] > np.nanmax(spacing):
        return None
    return int(row), int(col)


def _axis_cells(centres: np.ndarray, low: float, high: float, spacing: float,
                periodic: bool) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the cells overlapping (low, high), ascending, with their (unwrapped)
    centres. A periodic (longitude) axis is shifted by whole turns to meet the interval."""
    lower, upper = _cell_bounds(centres, spacing)
    shift = np.zeros_like(centres)
    if periodic:  # move each cell by whole turns so that its upper edge is in (low, low + 360]
        turn = (upper - low) % 360.0
        turn[turn == 0] = 360.0
        shift = low + turn - upper
    index = np.flatnonzero((lower + shift < high) & (upper + shift > low))
    position = centres[index] + shift[index]
    order = np.argsort(position, kind="stable")
    return index[order], position[order]


def _cell_bounds(centres: np.ndarray, spacing: float) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper edge of each cell of a 1-D axis in either direction."""
    order = np.argsort(centres, kind="stable")
    edges = cell_edges(centres[order], spacing)
    lower, upper = np.empty_like(centres), np.empty_like(centres)
    lower[order], upper[order] = edges[:-1], edges[1:]
    return lower, upper


def _axis_index(axis: np.ndarray, value: float, periodic: bool,
                lone_spacing: float) -> int | None:
    """The cell of a monotonic 1-D axis that holds ``value``, or None beyond half a cell;
    an axis of one cell is ``lone_spacing`` wide."""
    i, offset = nearest_centre(axis, value, periodic)
    if axis.size == 1:
        return i if abs(offset) <= lone_spacing / 2 * (1 + EDGE_TOLERANCE) else None
    before = abs(_gap(axis, i - 1, i, periodic)) if i > 0 else None
    after = abs(_gap(axis, i, i + 1, periodic)) if i + 1 < axis.size else None
    below, above = before or after or 0.0, after or before or 0.0
    if axis[-1] < axis[0]:
        below, above = above, below
    # The value's offset from the centre, with the sign of the axis direction.
    offset = -offset
    return i if -below / 2 * (1 + EDGE_TOLERANCE) <= offset <= above / 2 * (
        1 + EDGE_TOLERANCE) else None


def nearest_centre(axis: np.ndarray, value: float, periodic: bool) -> tuple[int, float]:
    """The index of the centre of a monotonic axis nearest ``value`` (the first of equals)
    and its offset ``axis[i] - value`` (in [-180, 180) for a periodic axis), as an argmin
    over every centre gives them: only the centres either side of where ``value`` sorts in
    and the two ends are candidates (a series of 10 runs located its cell over 1,400
    longitudes each time). An axis spanning more than 360° is searched whole."""
    n = axis.size
    first, last = float(axis[0]), float(axis[-1])
    if periodic and abs(last - first) > 360.0:
        candidates = np.arange(n)
    else:
        low = min(first, last)
        sought = low + (value - low) % 360.0 if periodic else value
        at = int(np.searchsorted(axis, sought)) if last >= first else \
            n - int(np.searchsorted(axis[::-1], sought))
        candidates = np.array(sorted({0, n - 1, *(k for k in (at - 1, at) if 0 <= k < n)}))
    offsets = axis[candidates] - value
    if periodic:
        offsets = normalise_longitudes(offsets)
    best = int(np.argmin(np.abs(offsets)))
    return int(candidates[best]), float(offsets[best])


def _gap(axis: np.ndarray, i: int, j: int, periodic: bool) -> float:
    gap = float(axis[j] - axis[i])
    if periodic:
        gap = (gap + 180.0) % 360.0 - 180.0
    return gap


def _inside_curvilinear_cell(xyz: np.ndarray, row: int, col: int, point: np.ndarray) -> bool:
    """Tell whether ``point`` lies within half a cell of cell (row, col).

    The offset from the centre is expressed in the cell's own index directions (a local
    linearisation of the grid in the tangent plane). Inside the grid the nearest centre is
    the right cell, so only offsets beyond the grid's outer rows and columns exclude.
    """
    ny, nx = xyz.shape[:2]
    steps = []
    for d_row, d_col, size, at in ((0, 1, nx, col), (1, 0, ny, row)):
        lo, hi = max(at - 1, 0), min(at + 1, size - 1)
        a = xyz[row + d_row * (lo - at), col + d_col * (lo - at)]
        b = xyz[row + d_row * (hi - at), col + d_col * (hi - at)]
        steps.append((b - a) / (hi - lo) if hi > lo else np.full(3, np.nan))
    delta = point - xyz[row, col]
    usable = [s for s in steps if np.isfinite(s).all() and np.linalg.norm(s) > 0]
    if len(usable) < 2:  # a single row or column, or missing neighbours: compare distances
        spacing = max((float(np.linalg.norm(s)) for s in usable), default=0.0)
        return float(np.linalg.norm(delta)) <= spacing / 2 * (1 + EDGE_TOLERANCE)
    coefficients, *_ = np.linalg.lstsq(np.stack(steps, axis=1), delta, rcond=None)
    off_col, off_row = (float(c) for c in coefficients)
    limit = 0.5 * (1 + EDGE_TOLERANCE)
    return not ((col == 0 and off_col < -limit) or (col == nx - 1 and off_col > limit)
                or (row == 0 and off_row < -limit) or (row == ny - 1 and off_row > limit))


def _within(axis: np.ndarray, low: float, high: float) -> np.ndarray:
    step = float(np.abs(np.diff(axis)).max()) if axis.size > 1 else 0.0
    return np.flatnonzero((axis >= low - step) & (axis <= high + step))


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


def _covering_arc(lon: np.ndarray) -> tuple[float, float]:
    """The narrowest (west, east) holding every longitude: west in -180..180, east up to
    west + 360 (east > 180 when the arc crosses the antimeridian)."""
    wrapped = np.unique(normalise_longitudes(lon))
    gaps = np.diff(np.concatenate([wrapped, [wrapped[0] + 360.0]]))
    widest = int(np.argmax(gaps))
    if widest == wrapped.size - 1:  # the widest gap is the one across the antimeridian
        return float(wrapped[0]), float(wrapped[-1])
    return float(wrapped[widest + 1]), float(wrapped[widest]) + 360.0
