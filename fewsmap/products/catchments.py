"""Catchment means: area-weighted means of a field over polygons, with fractional cell coverage.

A *catchment set* is a list of polygons in WGS 84 longitude/latitude (CRS84), each with an id:
a GeoJSON FeatureCollection named in the configuration (``[catchments.<name>]``) or polygons
given in a request (GeoJSON geometry or WKT, bounded in vertices, cells and count).

Weights (`catchment_weights`): per (grid, polygon) the cells the polygon touches and the
weight of each, computed once per published store state and set (`CatchmentCache`):

- 1-D evenly spaced axes: exactextract's coverage fraction of each cell, on the grid in its
  own CRS (polygons reprojected into it, their edges densified first so they bend as the
  projection bends them). On longitude/latitude grids the weight is the covered area on the
  sphere (exactextract's ``coverage_weight=area_spherical_m2``: a cell at 60° N weighs half
  one at the equator); on projected grids, whose cells are equal in the plane, the fraction.
- Uneven 1-D axes (Gaussian latitudes) and curvilinear grids, which exactextract cannot
  describe: each cell whose centre lies in the polygon counts whole (times the cosine of its
  latitude on longitude/latitude axes). Documented in docs/catchments.md as an approximation.

The mean over a polygon is ``Σ w·v / Σ w`` over the cells with a value (NaN cells are left
out of both sums, as exactextract leaves out nodata), NaN where no cell has one: exactly
exactextract's ``mean`` on projected grids and ``mean(coverage_weight=area_spherical_m2)`` on
longitude/latitude grids (tests/products/test_catchments.py compares them on real fields).

An ensemble statistic (``mean``, ``p90``, ``above:X`` …) of a catchment is the statistic
over the members' catchment means: ``above:50`` is the share of members whose catchment mean
exceeds 50, which is what a forecaster asks of a catchment (not the mean of each cell's share).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import shapely
import shapely.affinity
from exactextract import exact_extract  # type: ignore[import-untyped]
from exactextract.raster import NumPyRasterSource  # type: ignore[import-untyped]
from shapely.errors import GEOSException

from fewsmap.cancel import checkpoint
from fewsmap.errors import ConfigError, FewsmapError, InvalidParameterValue, LayerNotDefined
from fewsmap.formats.wkt import parse_wkt  # the one WKT reader (limits, hostile input)
from fewsmap.products.ensemble import MemberStatistic, Selector, reduce_selected
from fewsmap.settings import ConfigFile
from fewsmap.store import reads
from fewsmap.store.axes import is_evenly_spaced
from fewsmap.store.cube import ForecastStore, RunInfo
from fewsmap.store.geometry import GridGeometry, transformer
from fewsmap.store.state_cache import PerStoreState

# Request-given polygons: how many, how many vertices in all, how many cells of the grid
# their bounding boxes may span (a polygon over a continent on a 0.25° grid spans ~100 000).
MAX_REQUEST_POLYGONS = 100
MAX_REQUEST_VERTICES = 10_000
MAX_POLYGON_CELLS = 1_000_000
# Configured sets: polygons and vertices per file (read once at start).
MAX_SET_POLYGONS = 10_000
MAX_SET_VERTICES = 5_000_000
CATCHMENTS_FOLDER = "catchments"  # in the stores folder: sets found without configuration
WEIGHT_STORES = 64  # stores whose newest state's weights are kept
GEOJSON_TYPES = ("Polygon", "MultiPolygon")
LONLAT_SHIFTS = (0.0, -360.0, 360.0)
# Values held at once when a series is read: 64 MiB of float32 (batches of steps).
MAX_HELD_VALUES = 1 << 24  # a polygon at -10..10 on a 0..360 grid: two parts


@dataclass(frozen=True, eq=False)
class CatchmentSet:
    """Polygons in CRS84 with their ids and GeoJSON properties.

    ``key`` identifies the polygons (a hash of their WKB): weights are cached by it.
    """

    name: str
    title: str
    ids: tuple[str, ...]
    polygons: tuple[shapely.Geometry, ...]
    properties: tuple[dict[str, Any], ...]
    key: str
    layers: tuple[str, ...] = ()  # layers drawn as <set>:<layer> WMS layers

    def index(self, catchment_id: str) -> int:
        """The position of ``catchment_id`` in the set.

        Raises
        ------
        LayerNotDefined
            If the set has no such id.
        """
        try:
            return self.ids.index(catchment_id)
        except ValueError:
            shown = ", ".join(self.ids[:10]) + (" …" if len(self.ids) > 10 else "")
            raise LayerNotDefined(f"catchment set {self.name!r} has no catchment "
                                      f"{catchment_id[:80]!r}; ids: {shown}") from None

    def feature_collection(self, values: Sequence[float | None] | None = None,
                           extra: dict[str, Any] | None = None) -> dict[str, Any]:
        """The set as a GeoJSON FeatureCollection; ``values`` adds each feature's ``value``."""
        features = []
        for k, (cid, polygon, props) in enumerate(zip(self.ids, self.polygons,
                                                      self.properties, strict=True)):
            properties = {**props, "id": cid}
            if values is not None:
                properties["value"] = values[k]
            features.append({"type": "Feature", "id": cid, "properties": properties,
                             "geometry": shapely.geometry.mapping(polygon)})
        return {"type": "FeatureCollection", "name": self.name, **(extra or {}),
                "features": features}


def catchment_set(name: str, title: str, ids: Sequence[str],
                  polygons: Sequence[shapely.Geometry],
                  properties: Sequence[dict[str, Any]] | None = None) -> CatchmentSet:
    """Build a set from checked polygons (its cache key from their WKB)."""
    digest = hashlib.sha256()
    for cid, polygon in zip(ids, polygons, strict=True):
        digest.update(cid.encode() + b"\0" + shapely.to_wkb(polygon) + b"\0")
    return CatchmentSet(name, title, tuple(ids), tuple(polygons),
                        tuple(properties or ({} for _ in ids)), digest.hexdigest())


# --- reading polygons -------------------------------------------------------------------------


def polygon_from_geojson(geometry: Any, what: str,
                         error: type[FewsmapError] = InvalidParameterValue) -> shapely.Geometry:
    """A GeoJSON Polygon or MultiPolygon object as a checked shapely polygon.

    Raises
    ------
    FewsmapError
        ``error``, naming ``what`` and the problem: not a polygon, unreadable, not valid
        (rings that cross themselves, with GEOS's reason), or coordinates out of range.
    """
    if not isinstance(geometry, dict) or geometry.get("type") not in GEOJSON_TYPES:
        kind = geometry.get("type") if isinstance(geometry, dict) else type(geometry).__name__
        raise error(f"{what}: the geometry must be a GeoJSON Polygon or MultiPolygon, not "
                    f"{str(kind)[:40]!r}")
    try:
        with np.errstate(all="ignore"):
            polygon = shapely.geometry.shape(geometry)
    except (GEOSException, ValueError, TypeError, IndexError, KeyError,
            AttributeError) as exc:
        raise error(f"{what}: not a readable GeoJSON {geometry['type']} "
                    f"({str(exc)[:120]})") from exc
    return checked_polygon(polygon, what, error)


def checked_polygon(polygon: shapely.Geometry, what: str,
                    error: type[FewsmapError] = InvalidParameterValue) -> shapely.Geometry:
    """Refuse a polygon a mean cannot be taken over: empty, 3-D, non-finite, outside
    longitude -360..360 / latitude -90..90, or not valid (GEOS's reason, e.g. a
    self-intersection: its area would be ambiguous)."""
    if polygon.geom_type not in GEOJSON_TYPES or polygon.is_empty:
        raise error(f"{what}: an empty geometry or not a polygon ({polygon.geom_type})")
    if shapely.has_z(polygon):
        raise error(f"{what}: has 3-D coordinates; give longitude/latitude only")
    coordinates = shapely.get_coordinates(polygon)
    if not np.isfinite(coordinates).all():
        raise error(f"{what}: has a coordinate that is not finite")
    if (np.abs(coordinates[:, 0]) > 360).any() or (np.abs(coordinates[:, 1]) > 90).any():
        raise error(f"{what}: coordinates must be longitude (-360..360), latitude (-90..90) "
                    "in WGS 84 (CRS84 order: longitude first)")
    if not polygon.is_valid:
        reason = shapely.is_valid_reason(polygon)
        raise error(f"{what}: is not a valid polygon ({reason[:120]}); rings must not cross "
                    "themselves or each other")
    return polygon


def load_catchment_file(name: str, path: Path, id_property: str, title: str = "",
                        ) -> CatchmentSet:
    """Read a configured set from a GeoJSON FeatureCollection in CRS84.

    Raises
    ------
    ConfigError
        If the file cannot be read, is not a FeatureCollection of polygons, a feature has no
        id property, ids repeat, or a limit is exceeded.
    """
    origin = f"[catchments.{name}] file {path}"
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{origin}: cannot be read ({exc.strerror})") from exc
    except ValueError as exc:
        raise ConfigError(f"{origin}: is not JSON ({exc})") from exc
    features = document.get("features") if isinstance(document, dict) else None
    if not isinstance(features, list) or not features:
        raise ConfigError(f"{origin}: must be a GeoJSON FeatureCollection with features")
    if len(features) > MAX_SET_POLYGONS:
        raise ConfigError(f"{origin}: has {len(features)} features; at most "
                          f"{MAX_SET_POLYGONS}")
    ids: list[str] = []
    polygons: list[shapely.Geometry] = []
    properties: list[dict[str, Any]] = []
    for number, feature in enumerate(features):
        props = feature.get("properties") or {} if isinstance(feature, dict) else {}
        found = props.get(id_property, feature.get("id") if id_property == "id" else None)
        if found is None or str(found) == "":
            raise ConfigError(f"{origin}: feature {number} has no property {id_property!r}")
        cid = str(found)
        polygons.append(polygon_from_geojson(feature.get("geometry"),
                                             f"{origin}: feature {cid!r}", ConfigError))
        ids.append(cid)
        properties.append({k: v for k, v in props.items()
                           if isinstance(v, str | int | float | bool) or v is None})
    repeated = sorted({cid for cid in ids if ids.count(cid) > 1}) if len(set(ids)) < len(
        ids) else []
    if repeated:
        raise ConfigError(f"{origin}: ids repeat: {', '.join(repeated[:5])}")
    vertices = int(shapely.get_num_coordinates(np.array(polygons, dtype=object)).sum())
    if vertices > MAX_SET_VERTICES:
        raise ConfigError(f"{origin}: has {vertices} vertices; at most {MAX_SET_VERTICES}")
    return catchment_set(name, title or name, ids, polygons, properties)


def catchments_from_config(config: ConfigFile) -> dict[str, CatchmentSet]:
    """The ``[catchments.<name>]`` sets of the configuration, their files read now.

    Raises
    ------
    ConfigError
        If a file cannot be used, naming the configuration file and the set.
    """
    sets = {}
    for name, table in config.catchments.items():
        with config.located("catchments", name):
            path = Path(table.file)
            found = load_catchment_file(name, path if path.is_absolute() else config.folder / path,
                                        table.id, table.title or name)
        sets[name] = replace(found, layers=table.layers)
    return sets


def catchments_in_folder(stores_dir: Path | str) -> dict[str, CatchmentSet]:
    """Sets found without configuration: ``<stores>/catchments/<name>.geojson`` (a local
    stores folder), each feature named by its ``id`` property (else its GeoJSON ``id``).

    Raises
    ------
    ConfigError
        If such a file cannot be used.
    """
    folder = Path(stores_dir) / CATCHMENTS_FOLDER if isinstance(stores_dir, Path) else None
    if folder is None or not folder.is_dir():
        return {}
    return {path.stem: load_catchment_file(path.stem, path, "id")
            for path in sorted(folder.glob("*.geojson"))}


def request_polygons(text: str) -> CatchmentSet:
    """Polygons given in a request: a GeoJSON geometry, Feature or FeatureCollection, or WKT
    (POLYGON / MULTIPOLYGON), in CRS84. Ids are the features' ``id`` (else 1, 2, …).

    Raises
    ------
    InvalidParameterValue
        If the text is neither, a polygon is unusable (`checked_polygon`), or there are more
        than `MAX_REQUEST_POLYGONS` polygons or `MAX_REQUEST_VERTICES` vertices.
    """
    stripped = text.strip()
    if stripped.startswith("{"):
        shapes, ids = _geojson_polygons(stripped)
    else:
        shapes, ids = [_wkt_polygon(stripped)], ["1"]
    vertices = sum(int(shapely.get_num_coordinates(p)) for p in shapes)
    if vertices > MAX_REQUEST_VERTICES:
        raise InvalidParameterValue(f"geometry: {vertices} vertices; at most "
                                    f"{MAX_REQUEST_VERTICES} are allowed (simplify the polygon)")
    return catchment_set("request", "Request polygons", ids, shapes)


def _wkt_polygon(text: str) -> shapely.Geometry:
    try:
        polygon = parse_wkt(text, ("POLYGON", "MULTIPOLYGON"))
    except InvalidParameterValue as exc:
        raise InvalidParameterValue(str(exc).replace("coords=", "geometry=", 1)) from exc
    return checked_polygon(polygon, "geometry")


def _geojson_polygons(text: str) -> tuple[list[shapely.Geometry], list[str]]:
    try:
        document = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise InvalidParameterValue(f"geometry: not JSON ({str(exc)[:80]})") from exc
    if not isinstance(document, dict):
        raise InvalidParameterValue("geometry: a GeoJSON object is expected")
    kind = document.get("type")
    features = (document.get("features") if kind == "FeatureCollection"
                else [document] if kind == "Feature"
                else [{"type": "Feature", "geometry": document}])
    if not isinstance(features, list) or not features:
        raise InvalidParameterValue("geometry: the FeatureCollection has no features")
    if len(features) > MAX_REQUEST_POLYGONS:
        raise InvalidParameterValue(f"geometry: {len(features)} polygons; at most "
                                    f"{MAX_REQUEST_POLYGONS} per request")
    shapes, ids = [], []
    for number, feature in enumerate(features, start=1):
        if not isinstance(feature, dict):
            raise InvalidParameterValue(f"geometry: feature {number} is not an object")
        cid = str(feature.get("id", number))[:80]
        shapes.append(polygon_from_geojson(feature.get("geometry"), f"geometry {cid!r}"))
        ids.append(cid)
    if len(set(ids)) < len(ids):
        raise InvalidParameterValue("geometry: feature ids repeat")
    return shapes, ids


# --- weights ----------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class PolygonWeights:
    """The cells one polygon touches (store rows and columns) and the weight of each."""

    rows: np.ndarray  # int64
    cols: np.ndarray  # int64
    weights: np.ndarray  # float64, > 0

    @property
    def empty(self) -> bool:
        """Whether the polygon touches no cell of the grid."""
        return not self.weights.size


@dataclass(frozen=True, eq=False)
class SetWeights:
    """Weights of every polygon of a set on one grid, and how they were computed."""

    polygons: tuple[PolygonWeights, ...]
    method: str  # "exactextract coverage" | "exactextract spherical area" | "cell centres"


@dataclass(frozen=True, eq=False)
class Window:
    """The rows × columns read for some polygons, and their cells as flat window indices
    grouped by polygon (``starts[k]`` .. ``starts[k + 1]``)."""

    rows: np.ndarray
    cols: np.ndarray
    cells: np.ndarray
    weights: np.ndarray
    starts: np.ndarray

    @property
    def size(self) -> int:
        """Cells of the window."""
        return int(self.rows.size * self.cols.size)


def catchment_weights(geometry: GridGeometry, polygons: Sequence[shapely.Geometry],
                      ) -> SetWeights:
    """Compute each polygon's cells and weights on the grid (module docstring).

    Raises
    ------
    InvalidParameterValue
        If a polygon's bounding box spans more than `MAX_POLYGON_CELLS` cells.
    """
    regular = not geometry.curvilinear and all(
        axis.size > 1 and is_evenly_spaced(axis) for axis in (geometry.x, geometry.y))
    if regular:
        return _exact_weights(geometry, polygons)
    return SetWeights(tuple(_centre_weights(geometry, p) for p in polygons), "cell centres")


def _in_grid_crs(geometry: GridGeometry, polygon: shapely.Geometry) -> list[shapely.Geometry]:
    """The polygon in the grid's CRS: on longitude/latitude grids shifted by ±360° as well
    (each copy covers the cells on its side of the grid's seam); else reprojected, its edges
    densified to about a cell so they bend as the projection bends them."""
    if geometry.lonlat:
        return [shapely.affinity.translate(polygon, xoff=shift) for shift in LONLAT_SHIFTS]
    dy, dx = geometry.spacing
    forward = transformer("OGC:CRS84", geometry.crs_wkt)
    lonlat_cell = max(abs(dx), abs(dy)) / 111_000.0 if _metric(geometry) else 0.25
    dense = shapely.segmentize(polygon, max(lonlat_cell, 1e-3))
    with np.errstate(all="ignore"):
        moved = shapely.transform(dense, lambda xy: np.column_stack(
            forward.transform(xy[:, 0], xy[:, 1])))
    if not np.isfinite(shapely.get_coordinates(moved)).all():
        return []  # outside the projection's domain: no cell of the grid
    return [shapely.make_valid(moved)]


def _metric(geometry: GridGeometry) -> bool:
    unit = geometry.native_crs.axis_info[0].unit_name if geometry.native_crs.axis_info else ""
    return unit in ("metre", "meter", "m")


def _exact_weights(geometry: GridGeometry, polygons: Sequence[shapely.Geometry]) -> SetWeights:
    """exactextract's coverage (spherical area on lon/lat grids) of every polygon's cells."""
    ny, nx = geometry.shape
    x_edges, y_edges = geometry.edges
    xmin, xmax = float(x_edges.min()), float(x_edges.max())
    ymin, ymax = float(y_edges.min()), float(y_edges.max())
    cell_area = abs((xmax - xmin) / nx * (ymax - ymin) / ny)
    # exactextract's raster runs north to south, west to east: map its rows/cols to the store's.
    row_of = np.arange(ny)[::-1] if geometry.y[0] < geometry.y[-1] else np.arange(ny)
    col_of = np.arange(nx)[::-1] if geometry.x[0] > geometry.x[-1] else np.arange(nx)
    raster = NumPyRasterSource(np.zeros((ny, nx), dtype=np.uint8), xmin, ymin, xmax, ymax,
                               srs_wkt=None if geometry.lonlat else geometry.crs_wkt)
    op = "coverage(coverage_weight=area_spherical_m2)" if geometry.lonlat else "coverage"
    parts: list[tuple[int, shapely.Geometry]] = []
    for k, polygon in enumerate(polygons):
        for part in _in_grid_crs(geometry, polygon):
            _check_cells(part, cell_area, k)
            if part.intersects(shapely.box(xmin, ymin, xmax, ymax)):
                parts.append((k, part))
    found: list[list[tuple[np.ndarray, np.ndarray]]] = [[] for _ in polygons]
    if parts:
        features = [{"type": "Feature", "properties": {"k": k},
                     "geometry": shapely.geometry.mapping(part)} for k, part in parts]
        for row in exact_extract(raster, features, ["cell_id", op], include_cols=["k"]):
            props = row["properties"]
            found[int(props["k"])].append((np.asarray(props["cell_id"], dtype=np.int64),
                                           np.asarray(props["coverage"], dtype=np.float64)))
    weights = []
    for pieces in found:
        cells = np.concatenate([c for c, _ in pieces]) if pieces else np.empty(0, np.int64)
        cover = np.concatenate([w for _, w in pieces]) if pieces else np.empty(0)
        keep = cover > 0
        cells, cover = cells[keep], cover[keep]
        weights.append(PolygonWeights(row_of[cells // nx], col_of[cells % nx], cover))
    method = "exactextract spherical area" if geometry.lonlat else "exactextract coverage"
    return SetWeights(tuple(weights), method)


def _check_cells(part: shapely.Geometry, cell_area: float, k: int) -> None:
    west, south, east, north = part.bounds
    cells = (east - west) * (north - south) / cell_area if cell_area else math.inf
    if cells > MAX_POLYGON_CELLS:
        raise InvalidParameterValue(
            f"polygon {k + 1} spans about {cells:.0f} grid cells; at most {MAX_POLYGON_CELLS}")


def _centre_weights(geometry: GridGeometry, polygon: shapely.Geometry) -> PolygonWeights:
    """Cells whose centre lies in the polygon, whole (times cos(latitude) on lon/lat axes)."""
    if geometry.curvilinear:
        lon, lat = np.asarray(geometry.lon, "float64"), np.asarray(geometry.lat, "float64")
        west, south, east, north = polygon.bounds
        lon = np.where(lon < west, lon + 360.0, np.where(lon > east, lon - 360.0, lon))
        near = (lat >= south) & (lat <= north) & (lon >= west) & (lon <= east)
        if near.sum() > MAX_POLYGON_CELLS:
            raise InvalidParameterValue(f"the polygon spans more than {MAX_POLYGON_CELLS} cells")
        rows, cols = np.nonzero(near)
        inside = shapely.contains_xy(polygon, lon[rows, cols], lat[rows, cols])
        return PolygonWeights(rows[inside], cols[inside], np.ones(int(inside.sum())))
    found_rows, found_cols, found_w = [], [], []
    for part in _in_grid_crs(geometry, polygon):
        west, south, east, north = part.bounds
        rows = np.flatnonzero((geometry.y >= south) & (geometry.y <= north))
        cols = np.flatnonzero((geometry.x >= west) & (geometry.x <= east))
        if rows.size * cols.size > MAX_POLYGON_CELLS:
            raise InvalidParameterValue(f"the polygon spans more than {MAX_POLYGON_CELLS} cells")
        rr, cc = np.meshgrid(rows, cols, indexing="ij")
        inside = shapely.contains_xy(part, geometry.x[cc], geometry.y[rr])
        rr, cc = rr[inside], cc[inside]
        found_rows.append(rr)
        found_cols.append(cc)
        found_w.append(np.cos(np.radians(geometry.y[rr])) if geometry.lonlat
                       else np.ones(rr.size))
    if not found_rows:
        return PolygonWeights(np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0))
    return PolygonWeights(np.concatenate(found_rows).astype(np.int64),
                          np.concatenate(found_cols).astype(np.int64), np.concatenate(found_w))


def window_of(weights: Sequence[PolygonWeights]) -> Window | None:
    """The window of rows × columns holding every cell of these polygons; None if none has
    a cell."""
    held = [w for w in weights if not w.empty]
    if not held:
        return None
    all_rows = np.concatenate([w.rows for w in held])
    all_cols = np.concatenate([w.cols for w in held])
    rows = np.arange(all_rows.min(), all_rows.max() + 1)
    cols = np.arange(all_cols.min(), all_cols.max() + 1)
    cells = [(w.rows - rows[0]) * cols.size + (w.cols - cols[0]) for w in weights]
    starts = np.cumsum([0, *(c.size for c in cells)])
    return Window(rows, cols, np.concatenate(cells), np.concatenate([w.weights for w in weights]),
                  starts)


def weighted_means(window: Window, values: np.ndarray) -> np.ndarray:
    """Each polygon's mean of ``values`` (..., window rows, window cols): ``Σ w·v / Σ w`` over
    the cells with a value, NaN where none has one.

    Returns
    -------
    numpy.ndarray
        float64 (..., polygons).
    """
    lead = values.shape[:-2]
    picked = values.reshape(*lead, -1)[..., window.cells].astype(np.float64)
    held = ~np.isnan(picked)
    weighted = np.where(held, picked, 0.0) * window.weights
    present = held * window.weights
    polygons = window.starts.size - 1
    sums = np.zeros((*lead, polygons))
    totals = np.zeros((*lead, polygons))
    nonempty = np.flatnonzero(np.diff(window.starts) > 0)
    if nonempty.size:
        at = window.starts[nonempty]
        sums[..., nonempty] = np.add.reduceat(weighted, at, axis=-1)
        totals[..., nonempty] = np.add.reduceat(present, at, axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(totals > 0, sums / totals, np.nan)


class CatchmentCache:
    """Weights per (store state, configured catchment set), built once and kept for the
    newest state of each of at most `WEIGHT_STORES` stores (`PerStoreState`). Polygons given
    in a request are not kept: they change with every request."""

    def __init__(self, build: Callable[[GridGeometry, Sequence[shapely.Geometry]], SetWeights]
                 = catchment_weights, most: int = WEIGHT_STORES) -> None:
        self._build = build
        self._per_store: PerStoreState[ForecastStore, dict[str, SetWeights]] = PerStoreState(
            lambda store: {}, most)

    def weights(self, store: ForecastStore, catchments: CatchmentSet) -> SetWeights:
        """The weights of ``catchments`` on ``store``'s grid."""
        held = self._per_store(store)
        found = held.get(catchments.key)
        if found is None:  # two threads may both build it once: same weights, no harm
            found = held[catchments.key] = self._build(store.geometry, catchments.polygons)
        return found


WEIGHTS = CatchmentCache()


def read_means(store: ForecastStore, variables: Sequence[str], window: Window, slot: int,
               steps: np.ndarray, labels: Sequence[Sequence[int]]) -> np.ndarray:
    """Read the window at ``steps`` × ``labels`` of one run and take each polygon's mean.

    A (u, v) pair of ``variables`` gives the mean speed. Steps are read in batches of at most
    `MAX_HELD_VALUES` values; a cancelled request stops between batches.

    Returns
    -------
    numpy.ndarray
        float64 (steps, *map(len, labels), polygons), NaN where a polygon has no value.
    """
    per_step = window.size * math.prod(len(lab) for lab in labels) * len(variables)
    batch = max(1, MAX_HELD_VALUES // max(1, per_step))
    steps = np.asarray(steps, dtype=np.int64)
    found = []
    for start in range(0, steps.size, batch):
        checkpoint()
        part = steps[start:start + batch]
        fields = [reads.read_block(store, name, slot, part, labels, window.rows, window.cols)
                  for name in variables]
        values = fields[0] if len(fields) == 1 else np.hypot(fields[0], fields[1])
        found.append(weighted_means(window, values))
    if not found:
        return np.empty((0, *(len(lab) for lab in labels), window.starts.size - 1))
    return np.concatenate(found)


@dataclass(frozen=True, eq=False)
class CatchmentCells:
    """A catchment's weighted cells on a grid, read as one place: each value is the
    catchment's mean (a `fewsmap.products.change.Place`, so series, changes and sums of
    catchments are those of cells)."""

    window: Window  # `window_of` the catchment's weights

    def read_values(self, store: ForecastStore, variables: Sequence[str], run: RunInfo,
                    valid_times: np.ndarray, labels: Sequence[Sequence[int]],
                    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """The catchment's means at ``valid_times`` × ``labels`` of ``run`` (float32; the
        mean speed of a vector pair, without components)."""
        steps = np.array([run.step_of(t) for t in valid_times], dtype=np.int64)
        means = read_means(store, variables, self.window, run.slot, steps, labels)[..., 0]
        return means.astype(np.float32), {}


def set_means(store: ForecastStore, variables: Sequence[str], catchments: CatchmentSet,
              run: RunInfo, times: np.ndarray, lists: Sequence[Sequence[int]],
              selectors: Sequence[Selector], which: Sequence[int] | None = None,
              ) -> np.ndarray:
    """Means of the catchments ``which`` (default: all) of a set at valid ``times`` of
    ``run``, read along ``lists`` (store indices per member/level dimension) and reduced over
    the members of any statistic among ``selectors`` (the statistic of the members' means).

    Returns
    -------
    numpy.ndarray
        float32 (times, per dimension its list's length or 1 for a statistic, catchments),
        NaN where a catchment has no value.
    """
    weights = WEIGHTS.weights(store, catchments).polygons
    chosen = range(len(weights)) if which is None else which
    window = window_of([weights[k] for k in chosen])
    if window is None:
        shape = [1 if isinstance(s, MemberStatistic) else len(li)
                 for s, li in zip(selectors, lists, strict=True)]
        return np.full((len(times), *shape, len(chosen)), np.nan, dtype=np.float32)
    steps = np.array([run.step_of(t) for t in times], dtype=np.int64)
    means = read_means(store, variables, window, run.slot, steps, lists)
    return reduce_selected(means.astype(np.float32), selectors, 1)


def catchment_at(catchments: CatchmentSet, lon: float, lat: float) -> int | None:
    """The catchment a point (CRS84) lies in: the last of the set holding it, which a map
    draws over the others where they overlap (`fewsmap.render.catchments.rasterise`);
    None outside every catchment."""
    inside = shapely.contains_xy(np.array(catchments.polygons, dtype=object), lon, lat)
    held = np.flatnonzero(inside)
    return int(held[-1]) if held.size else None
