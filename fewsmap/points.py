"""Values at a point: find the grid cell under a point, read its values over time.

The core of GetFeatureInfo and the time-series API (no web imports). A point is given in any
CRS as (x, y) in east/north order (pyproj ``always_xy``). Separable grids (1-D axes: regular
lon/lat or projected x/y) find the cell on each axis after transforming the point into the
grid's own CRS; curvilinear grids (2-D latitude/longitude) take the nearest cell centre on the
sphere. A point more than half a cell outside the grid has no cell.

Reading touches only the chunks holding that cell, one per (run, step, member, level) value,
never a whole field (docs/design/cube.md: one such slice per chunk, 512 × 512 spatial tiles),
and of each chunk only the compressed block holding the value (`fewsmap.store.direct`).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pyproj
from scipy.spatial import cKDTree

from fewsmap.store.axes import cell_spacings
from fewsmap.store.cube import ForecastStore, RunInfo, StoreVersion
from fewsmap.store.layout import GRID_MAPPING

# A point on a cell edge belongs to the cell; this absorbs rounding in the transforms.
EDGE_TOLERANCE = 1e-6  # in cells
MERCATOR_MAX_LAT = 85.0511287798066


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
class _Separable:
    """1-D axes of the grid in its own CRS."""

    x: np.ndarray
    y: np.ndarray
    periodic_x: bool  # a longitude axis: offsets wrap at ±180°
    spacing: tuple[float, float]  # (dy, dx): sizes an axis of one cell (cell_spacings)


@dataclass(frozen=True, eq=False)
class _Curvilinear:
    """2-D cell centres as unit vectors on the sphere, with a k-d tree over the valid ones."""

    lon: np.ndarray  # (ny, nx) degrees
    lat: np.ndarray
    xyz: np.ndarray  # (ny, nx, 3), NaN where the coordinates are missing
    tree: cKDTree
    flat_index: np.ndarray  # tree position → flat cell index


@dataclass(frozen=True, eq=False)
class _GridIndex:
    axes_crs: str  # the CRS of the axes (WKT or an authority code)
    shape: tuple[int, int]
    lookup: _Separable | _Curvilinear


def find_cell(store: ForecastStore, crs: str, x: float, y: float) -> GridCell | None:
    """Find the grid cell containing (or nearest to) a point.

    Parameters
    ----------
    store
        The forecast cube.
    crs
        The point's CRS as an authority code (``EPSG:3857``, ``EPSG:4326``, ``OGC:CRS84`` …).
    x, y
        The point in ``crs``, easting/longitude first whatever the CRS's axis order.

    Returns
    -------
    GridCell or None
        The cell, or None when the point lies more than half a cell outside the grid or
        cannot be expressed in the grid's CRS.
    """
    index = _grid_index(store.location, store.version)
    if not (np.isfinite(x) and np.isfinite(y)):
        return None
    if isinstance(index.lookup, _Separable):
        found = _find_separable(index, crs, x, y)
    else:
        found = _find_curvilinear(index.lookup, crs, x, y)
    if found is None:
        return None
    row, col = found
    return _cell(index, crs, row, col)


def read_cell(store: ForecastStore, variable: str, cell: GridCell, run: RunInfo,
              valid_times: np.ndarray | None = None,
              labels: Sequence[Sequence[int]] = ()) -> np.ndarray:
    """Read the values of ``variable`` at ``cell`` for some valid times of one run.

    Only the chunks holding the cell are read, one per (time, member, level) value, and of
    each only the blosc block holding it (zarr orthogonal indexing for other layouts).

    Parameters
    ----------
    store
        The forecast cube.
    variable
        A forecast variable of the store.
    cell
        The cell, from `find_cell` on the same store.
    run
        A published run of the store.
    valid_times
        Valid times of the run to read (datetime64); None reads all, in time order.
    labels
        Store indices along each dimension between ``step`` and the grid (members, levels),
        in the variable's dimension order: one sequence per dimension.

    Returns
    -------
    numpy.ndarray
        float32 of shape ``(len(valid_times), *map(len, labels))``; NaN where there is no
        data (a missing value, or a chunk never written).

    Raises
    ------
    KeyError
        If a valid time is not one of the run's, or ``labels`` does not give every
        dimension of the variable.
    """
    dims = store.dims(variable)[2:-2]
    if len(labels) != len(dims):
        raise KeyError(f"'{variable}' has dimensions {list(dims)} between step and the grid; "
                       f"got {len(labels)} label lists")
    steps = _step_slots(run, valid_times)
    label_lists = [np.asarray(list(lab), dtype=np.int64) for lab in labels]
    array = store.array(variable)
    reader = store.reader(variable)
    if reader is not None:  # one blosc block per value instead of one chunk
        points = [(run.slot, *rest, cell.row, cell.col)
                  for rest in itertools.product(steps.tolist(), *(lab.tolist()
                                                                  for lab in label_lists))]
        values = reader.read_items(points).astype(np.float32)
    else:
        index = (run.slot, steps, *label_lists, cell.row, cell.col)
        values = np.asarray(array.oindex[index], dtype=np.float32)  # type: ignore[index]  # zarr's stub is narrow
    fill = array.metadata.fill_value
    if fill is not None and np.isfinite(fill):  # a fill value other than NaN means "missing"
        values = np.where(values == np.float32(fill), np.float32(np.nan), values)
    return values.reshape((steps.size, *(len(lab) for lab in labels)))


def _step_slots(run: RunInfo, valid_times: np.ndarray | None) -> np.ndarray:
    if valid_times is None:
        return np.asarray(run.step_slots, dtype=np.int64)
    wanted = np.asarray(valid_times).astype("datetime64[s]").ravel()
    where = np.searchsorted(run.valid_times, wanted)
    inside = where < run.valid_times.size
    found = np.zeros(wanted.shape, dtype=bool)
    found[inside] = run.valid_times[where[inside]] == wanted[inside]
    if not found.all():
        missing = wanted[~found][0]
        raise KeyError(f"run {run.label} has no valid time {missing}Z")
    return np.asarray(run.step_slots[where], dtype=np.int64)


def _find_separable(index: _GridIndex, crs: str, x: float, y: float) -> tuple[int, int] | None:
    lookup = index.lookup
    assert isinstance(lookup, _Separable)
    sx, sy = _transformer(crs, index.axes_crs).transform(x, y)
    if not (np.isfinite(sx) and np.isfinite(sy)):
        return None
    col = _axis_index(lookup.x, float(sx), lookup.periodic_x, lookup.spacing[1])
    row = _axis_index(lookup.y, float(sy), False, lookup.spacing[0])
    if col is None or row is None:
        return None
    return row, col


def _axis_index(axis: np.ndarray, value: float, periodic: bool,
                lone_spacing: float) -> int | None:
    """The cell of a monotonic 1-D axis that holds ``value``, or None beyond half a cell;
    an axis of one cell is ``lone_spacing`` wide."""
    offsets = axis - value
    if periodic:
        offsets = (offsets + 180.0) % 360.0 - 180.0
    i = int(np.argmin(np.abs(offsets)))
    if axis.size == 1:
        return i if abs(offsets[i]) <= lone_spacing / 2 * (1 + EDGE_TOLERANCE) else None
    before = abs(_gap(axis, i - 1, i, periodic)) if i > 0 else None
    after = abs(_gap(axis, i, i + 1, periodic)) if i + 1 < axis.size else None
    below, above = before or after or 0.0, after or before or 0.0
    ascending = axis[-1] > axis[0]
    if not ascending:
        below, above = above, below
    # The value's offset from the centre, with the sign of the axis direction.
    offset = -float(offsets[i])
    return i if -below / 2 * (1 + EDGE_TOLERANCE) <= offset <= above / 2 * (
        1 + EDGE_TOLERANCE) else None


def _gap(axis: np.ndarray, i: int, j: int, periodic: bool) -> float:
    gap = float(axis[j] - axis[i])
    if periodic:
        gap = (gap + 180.0) % 360.0 - 180.0
    return gap


def _find_curvilinear(lookup: _Curvilinear, crs: str, x: float,
                      y: float) -> tuple[int, int] | None:
    lon, lat = _transformer(crs, "EPSG:4326").transform(x, y)
    if not (np.isfinite(lon) and np.isfinite(lat)) or abs(lat) > 90:
        return None
    point = _unit_vectors(np.asarray(lon, dtype="float64"), np.asarray(lat, dtype="float64"))
    _, nearest = lookup.tree.query(point)
    row, col = divmod(int(lookup.flat_index[int(nearest)]), lookup.lon.shape[1])
    if not _inside_curvilinear_cell(lookup.xyz, row, col, point):
        return None
    return row, col


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


def _cell(index: _GridIndex, crs: str, row: int, col: int) -> GridCell:
    lookup = index.lookup
    if isinstance(lookup, _Separable):
        sx, sy = float(lookup.x[col]), float(lookup.y[row])
        if lookup.periodic_x:  # the axes are longitude and latitude
            lon, lat = _wrap(sx), sy
        else:
            lon, lat = _transformer(index.axes_crs, "EPSG:4326").transform(sx, sy)
    else:
        lon, lat = float(lookup.lon[row, col]), float(lookup.lat[row, col])
    lon, lat = _wrap(float(lon)), float(lat)
    # Web Mercator has no poles: a polar cell centre is drawn (and reported) at its limit.
    shown_lat = float(np.clip(lat, -MERCATOR_MAX_LAT, MERCATOR_MAX_LAT)) if crs == (
        "EPSG:3857") else lat
    x, y = _transformer("EPSG:4326", crs).transform(lon, shown_lat)
    return GridCell(row=row, col=col, lon=lon, lat=lat, x=float(x), y=float(y), crs=crs)


def _wrap(lon: float) -> float:
    """A longitude in −180…180 (unchanged when it already is)."""
    return lon if -180.0 <= lon <= 180.0 else (lon + 180.0) % 360.0 - 180.0


def _unit_vectors(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    lam, phi = np.radians(lon), np.radians(lat)
    return np.stack([np.cos(phi) * np.cos(lam), np.cos(phi) * np.sin(lam), np.sin(phi)],
                    axis=-1)


@lru_cache(maxsize=64)
def _grid_index(path: object, version: StoreVersion) -> _GridIndex:
    """The store's axes or k-d tree, built once per published store state."""
    store = ForecastStore(path)  # type: ignore[arg-type]
    y_dim, x_dim = store.spatial_dims
    # Lon/lat axes are read as WGS 84 degrees, as the map renderer draws them
    # (fewsmap/render/regrid.py), whatever sphere a GRIB file names.
    wkt = "EPSG:4326" if y_dim == "latitude" else str(
        store.attributes(GRID_MAPPING)["crs_wkt"])
    if store.curvilinear:
        lat = store.coordinate("latitude").astype("float64")
        lon = store.coordinate("longitude").astype("float64")
        xyz = _unit_vectors(lon, lat)
        valid = np.flatnonzero(np.isfinite(xyz).all(axis=-1).ravel())
        tree = cKDTree(xyz.reshape(-1, 3)[valid])
        return _GridIndex(wkt, (lat.shape[0], lat.shape[1]),
                          _Curvilinear(lon, lat, xyz, tree, valid))
    x = store.coordinate(x_dim).astype("float64")
    y = store.coordinate(y_dim).astype("float64")
    periodic = y_dim == "latitude"
    return _GridIndex(wkt, (y.size, x.size), _Separable(x, y, periodic, cell_spacings(y, x)))


@lru_cache(maxsize=256)
def _transformer(source: str, target: str) -> pyproj.Transformer:
    """A cached transformer in east/north order (``always_xy``) between two CRSs."""
    return pyproj.Transformer.from_crs(_crs(source), _crs(target), always_xy=True)


def _crs(name: str) -> pyproj.CRS:
    return pyproj.CRS.from_wkt(name) if name.lstrip().startswith(
        ("PROJCRS", "GEOGCRS", "PROJCS", "GEOGCS", "GEODCRS", "BOUNDCRS", "COMPOUNDCRS")
    ) else pyproj.CRS.from_user_input(name)


def read_components(
    store: ForecastStore, variables: Sequence[str], cell: GridCell, run: RunInfo,
    valid_times: np.ndarray | None = None, labels: Sequence[Sequence[int]] = (),
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Read a layer's value at ``cell``: a scalar, or the speed of a (u, v) vector.

    Parameters are those of `read_cell`; ``variables`` is one variable or a (u, v) pair.

    Returns
    -------
    tuple
        The values (the speed ``hypot(u, v)`` for a pair; float32, NaN where missing) and,
        for a pair, each component's values by variable name (empty for a scalar).
    """
    read = {name: read_cell(store, name, cell, run, valid_times, labels) for name in variables}
    if len(variables) == 1:
        return read[variables[0]], {}
    u, v = (read[name] for name in variables)
    return np.hypot(u, v).astype(np.float32), read
