"""The grid geometry of every kind of store picks the cells xarray selects (issue #14).

For each grid kind ingest produces (tests/grid_kinds.py) the cell under a point, the window
of cells a bbox overlaps (exports) and the window a map reads must be the cells that xarray
selects on `open_cube` of the same store: nearest centre on 1-D axes (longitudes wrapped), the
nearest centre on the sphere for curvilinear grids, the cells whose extent overlaps a bbox.
Values are read through the cube's read path and compared with xarray's.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyproj
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st

from fewsmap import open_cube
from fewsmap.errors import StoreError
from fewsmap.store.axes import cell_spacings
from fewsmap.store.cube import ForecastStore
from fewsmap.store.geometry import (
    Centres,
    GridGeometry,
    from_canvas,
    geometry_of,
    nearest_centre,
    transform_finite,
    transformer,
)
from fewsmap.store.reads import read_block, read_window
from tests.grid_kinds import GRID_KINDS, KIND_AXES, grid_kind_stores, unplaced
from tests.synthetic import T0, lonlat_store

CURVILINEAR = ("rotated_pole", "curvilinear_antimeridian")
CRS84 = "OGC:CRS84"


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return grid_kind_stores(tmp_path_factory.mktemp("kinds") / "stores")


def variable_of(kind: str) -> str:
    return "t" if kind == "reduced_gaussian" else "lat"


def first_field(ds: xr.Dataset, kind: str) -> xr.DataArray:
    """The tested variable at the first run, first step and first other label."""
    field = ds[variable_of(kind)].isel(forecast_reference_time=0, step=0)
    return field.isel({d: 0 for d in field.dims[:-2]})


def labels_of(store: ForecastStore, kind: str) -> list[list[int]]:
    return [[0] for _ in store.dims(variable_of(kind))[2:-2]]


def expected_cell(ds: xr.Dataset, kind: str, lon: float, lat: float) -> tuple[int, int]:
    """The (row, col) xarray picks for a point: nearest on the axes in the grid's CRS, or
    the nearest centre on the sphere (curvilinear)."""
    if kind in CURVILINEAR:
        clat, clon = (np.radians(ds[n].values.astype("float64")) for n in ("latitude",
                                                                             "longitude"))
        plat, plon = np.radians(lat), np.radians(lon)
        cosine = (np.sin(clat) * np.sin(plat)
                  + np.cos(clat) * np.cos(plat) * np.cos(clon - plon))
        row, col = np.unravel_index(int(np.nanargmax(cosine)), cosine.shape)
        return int(row), int(col)
    y_dim, x_dim = ds[variable_of(kind)].dims[-2:]
    if y_dim == "latitude":
        axis = ds.indexes[x_dim]
        lon = lon + 360.0 * np.round((float(axis[axis.size // 2]) - lon) / 360.0)
        x, y = lon, lat
    else:
        x, y = transformer(CRS84, str(ds["crs"].attrs["crs_wkt"])).transform(lon, lat)
    col = int(ds.indexes[x_dim].get_indexer([x], method="nearest")[0])
    row = int(ds.indexes[y_dim].get_indexer([y], method="nearest")[0])
    return row, col


def sample_points(store: ForecastStore, kind: str) -> list[tuple[float, float]]:
    """Points (CRS84) inside a few cells: off their centres by a fraction of a cell."""
    geometry = store.geometry
    rows, cols = geometry.shape
    cells = {(0, 0), (rows - 1, cols - 1), (rows // 2, cols // 3), (rows // 3, cols // 2)}
    points = []
    for row, col in sorted(cells):
        if geometry.curvilinear:
            lon, lat = float(geometry.lon[row, col]), float(geometry.lat[row, col])
            # A fifth of the way towards the next cell (inside the grid).
            r2, c2 = min(row + 1, rows - 1), min(col + 1, cols - 1)
            dlon = (float(geometry.lon[r2, c2]) - lon + 180.0) % 360.0 - 180.0
            points.append((lon + 0.2 * dlon, lat + 0.2 * (float(geometry.lat[r2, c2]) - lat)))
            continue
        dy, dx = geometry.spacing
        x, y = geometry.x[col] + 0.3 * dx, geometry.y[row] - 0.2 * dy
        if col + 1 < cols:
            x = geometry.x[col] + 0.3 * (geometry.x[col + 1] - geometry.x[col])
        if row + 1 < rows:
            y = geometry.y[row] + 0.2 * (geometry.y[row + 1] - geometry.y[row])
        lon, lat = transformer(geometry.axes_crs, CRS84).transform(x, y)
        points.append((float((lon + 180.0) % 360.0 - 180.0), float(lat)))
    return points


@pytest.mark.parametrize("kind", list(GRID_KINDS))
def test_the_cell_under_a_point_is_the_one_xarray_selects(stores: Path, kind: str) -> None:
    store = ForecastStore(stores / f"{kind}.zarr")
    with open_cube(store.path) as ds:
        field = first_field(ds, kind)
        for lon, lat in sample_points(store, kind):
            cell = store.geometry.cell_at(CRS84, lon, lat)
            assert cell is not None, (lon, lat)
            row, col = expected_cell(ds, kind, lon, lat)
            assert (cell.row, cell.col) == (row, col), (lon, lat)
            read = read_block(store, variable_of(kind), store.runs[0].slot,
                              store.runs[0].step_slots[:1], labels_of(store, kind),
                              np.array([cell.row]), np.array([cell.col]))
            np.testing.assert_array_equal(read.ravel(), [field.values[row, col]])


@pytest.mark.parametrize(("kind", "lon", "lat"), [
    ("regular", -21.0, 45.0), ("regular", 0.0, 61.0), ("single_point", 5.6, 52.0),
    ("single_row", 5.0, 52.6), ("antimeridian", 160.0, 50.0),
    ("lambert", -60.0, 0.0), ("rotated_pole", -60.0, 0.0),
    ("curvilinear_antimeridian", 0.0, 0.0)])
def test_a_point_beyond_half_a_cell_off_the_grid_has_no_cell(stores: Path, kind: str,
                                                             lon: float, lat: float) -> None:
    assert ForecastStore(stores / f"{kind}.zarr").geometry.cell_at(CRS84, lon, lat) is None


def test_a_point_across_the_antimeridian_finds_the_cell_past_180(stores: Path) -> None:
    """The Pacific grid runs 170..190: -175° is its cell at 185°."""
    store = ForecastStore(stores / "antimeridian.zarr")
    cell = store.geometry.cell_at(CRS84, -175.1, 50.1)
    assert cell is not None
    assert float(store.geometry.x[cell.col]) == 185.0 and cell.lon == -175.0
    assert float(store.geometry.y[cell.row]) == 50.0


# --- bboxes: the cells an export holds -------------------------------------------------------

def overlap_selection(ds: xr.Dataset, kind: str, bbox: tuple[float, float, float, float],
                      wrap_from: float | None = None) -> xr.DataArray:
    """What xarray selects: the cells whose extent overlaps the bbox (grid CRS), north first,
    longitudes moved by whole turns to start at ``wrap_from``."""
    field = first_field(ds, kind)
    y_dim, x_dim = field.dims
    dy, dx = cell_spacings(ds[y_dim].values, ds[x_dim].values)
    if wrap_from is not None:
        shifted = (field[x_dim] - wrap_from) % 360.0 + wrap_from
        field = field.assign_coords({x_dim: shifted}).sortby(x_dim)
    minx, miny, maxx, maxy = bbox
    x, y = field[x_dim], field[y_dim]
    chosen = field.where((x - dx / 2 < maxx) & (x + dx / 2 > minx), drop=True)
    chosen = chosen.where((y - dy / 2 < maxy) & (y + dy / 2 > miny), drop=True)
    return chosen.sortby(x_dim).sortby(y_dim, ascending=False)


@pytest.mark.parametrize(("kind", "crs", "bbox", "wrap_from"), [
    ("regular", "EPSG:4326", (0.3, 40.2, 10.6, 50.7), None),
    ("regular_0_360", "EPSG:4326", (-10.0, -5.0, 10.0, 5.0), -10.0),
    ("antimeridian", "EPSG:4326", (175.2, 45.1, 185.3, 50.2), None),
    ("reduced_gaussian", "EPSG:4326", (10.0, 40.0, 30.0, 55.0), None),
    ("single_point", "EPSG:4326", (4.0, 51.0, 6.0, 53.0), None),
    ("single_row", "EPSG:4326", (4.2, 51.0, 6.1, 53.0), None),
    ("lambert", "native", (-600_000.0, -100_000.0, -450_000.0, 30_000.0), None),
    ("polar_stereographic", "native", (1_200_000.0, -6_800_000.0, 1_400_000.0,
                                       -6_500_000.0), None),
    ("single_cell_projected", "native", (-505_000.0, -5_000.0, -495_000.0, 5_000.0), None),
])
def test_the_cells_a_bbox_overlaps_are_those_xarray_selects(
        stores: Path, kind: str, crs: str, bbox: tuple[float, float, float, float],
        wrap_from: float | None) -> None:
    store = ForecastStore(stores / f"{kind}.zarr")
    geometry = store.geometry
    request_crs = crs if crs != "native" else geometry.crs_wkt
    window = geometry.overlapping(request_crs, bbox)
    run = store.runs[0]
    values = read_window(store, variable_of(kind),
                         (run.slot, int(run.step_slots[0]), *[0] * len(labels_of(store, kind))),
                         window.rows, window.cols)
    with open_cube(store.path) as ds:
        expected = overlap_selection(ds, kind, bbox, wrap_from)
        y_dim, x_dim = expected.dims
        np.testing.assert_array_equal(window.x, expected[x_dim].values)
        np.testing.assert_array_equal(window.y, expected[y_dim].values)
        np.testing.assert_array_equal(values, expected.values)


@pytest.mark.parametrize("kind", CURVILINEAR)
def test_a_bbox_on_a_curvilinear_grid_keeps_the_index_box_of_its_centres(
        stores: Path, kind: str) -> None:
    store = ForecastStore(stores / f"{kind}.zarr")
    with open_cube(store.path) as ds:
        lon, lat = ds["longitude"].values, ds["latitude"].values
        middle = lon.shape[0] // 2, lon.shape[1] // 2
        x, y = transformer(CRS84, "EPSG:3857").transform(lon, lat)
        cx, cy = float(x[middle]), float(y[middle])
        bbox = (cx - 150_000.0, cy - 100_000.0, cx + 150_000.0, cy + 100_000.0)
        window = store.geometry.overlapping("EPSG:3857", bbox)
        inside = (x >= bbox[0]) & (x <= bbox[2]) & (y >= bbox[1]) & (y <= bbox[3])
        rows, cols = np.flatnonzero(inside.any(axis=1)), np.flatnonzero(inside.any(axis=0))
        np.testing.assert_array_equal(window.rows, np.arange(rows[0], rows[-1] + 1))
        np.testing.assert_array_equal(window.cols, np.arange(cols[0], cols[-1] + 1))
        assert window.curvilinear and not window.regular


# --- maps: the window a canvas reads -------------------------------------------------------

@pytest.mark.parametrize("kind", list(GRID_KINDS))
def test_a_map_window_holds_every_cell_centred_in_the_bbox(stores: Path, kind: str) -> None:
    """A tile around the grid's middle cell reads every cell whose centre it shows, with the
    values and (Web Mercator) centres xarray gives for them."""
    store = ForecastStore(stores / f"{kind}.zarr")
    with open_cube(store.path) as ds:
        field = first_field(ds, kind)
        rows, cols = field.shape
        if "longitude" in field.coords and field["longitude"].ndim == 2:
            lon, lat = field["longitude"].values, field["latitude"].values
        elif field.dims[0] == "latitude":
            lon, lat = np.meshgrid(field["longitude"].values, field["latitude"].values)
        else:
            xx, yy = np.meshgrid(field[field.dims[1]].values, field[field.dims[0]].values)
            lon, lat = transformer(store.geometry.crs_wkt, CRS84).transform(xx, yy)
        lon = (np.asarray(lon, dtype="float64") + 180.0) % 360.0 - 180.0
        x, y = transformer(CRS84, "EPSG:3857").transform(lon, np.asarray(lat, "float64"))
        cx, cy = float(x[rows // 2, cols // 2]), float(y[rows // 2, cols // 2])
        bbox = (cx - 200_000.0, cy - 200_000.0, cx + 200_000.0, cy + 200_000.0)
        window = store.geometry.window_in("EPSG:3857", bbox)
        assert window is not None
        shown = np.argwhere((x >= bbox[0]) & (x <= bbox[2]) & (y >= bbox[1]) & (y <= bbox[3]))
        assert shown.size
        assert set(map(int, shown[:, 0])) <= set(map(int, window.rows))
        assert set(map(int, shown[:, 1])) <= set(map(int, window.cols))
        run = store.runs[0]
        prefix = (run.slot, int(run.step_slots[0]), *[0] * len(labels_of(store, kind)))
        values = read_window(store, variable_of(kind), prefix, window.rows, window.cols)
        np.testing.assert_array_equal(values, field.values[np.ix_(window.rows, window.cols)])
        centre_x = x[np.ix_(window.rows, window.cols)]
        wx = window.x if window.x.ndim == 2 else np.broadcast_to(window.x, centre_x.shape)
        if store.geometry.shape[1] > 1:  # a lone column is drawn as two half cells
            np.testing.assert_allclose(wx, centre_x, rtol=0, atol=1e-3)


def test_a_bbox_off_the_grid_reads_no_window(stores: Path) -> None:
    geometry = ForecastStore(stores / "lambert.zarr").geometry
    assert geometry.window_in("EPSG:3857", (-1.9e7, -1e6, -1.8e7, 0.0)) is None


# --- one geometry per store state ------------------------------------------------------------

def test_one_geometry_serves_every_reader_of_a_store_state(tmp_path: Path) -> None:
    path = lonlat_store(tmp_path / "eu.zarr")
    first, again = ForecastStore(path), ForecastStore(path)
    assert first.geometry is again.geometry is geometry_of(first)
    assert first.geometry.centres_in("EPSG:3857") is again.geometry.centres_in("EPSG:3857")
    lonlat_store(path, t0=T0 + np.timedelta64(6, "h"))  # a new run: a new state
    assert ForecastStore(path).geometry is not first.geometry


@pytest.mark.parametrize("kind", list(GRID_KINDS))
def test_the_lonlat_extent_holds_every_cell_centre(stores: Path, kind: str) -> None:
    store = ForecastStore(stores / f"{kind}.zarr")
    west, south, east, north = store.geometry.lonlat_bbox()
    with open_cube(store.path) as ds:
        field = first_field(ds, kind)
        lat = field["latitude"].values if "latitude" in field.coords else None
        lon = field["longitude"].values if "longitude" in field.coords else None
        if lat is None or lon is None:
            xx, yy = np.meshgrid(field[field.dims[1]].values, field[field.dims[0]].values)
            lon, lat = transformer(store.geometry.crs_wkt, CRS84).transform(xx, yy)
    lon = (np.asarray(lon, dtype="float64") + 180.0) % 360.0 - 180.0
    assert south <= float(np.min(lat)) and float(np.max(lat)) <= north
    assert west <= float(np.min(lon)) and float(np.max(lon)) <= east


def test_a_grid_without_a_placed_cell_has_no_extent(tmp_path: Path) -> None:
    geometry = ForecastStore(unplaced(tmp_path / "unplaced.zarr")).geometry
    with pytest.raises(StoreError, match="no cell of the grid has a finite position"):
        geometry.lonlat_bbox()
    assert geometry.cell_at(CRS84, 0.0, 0.0) is None


def test_the_axes_of_a_curvilinear_grid_are_refused_by_name() -> None:
    nan = np.full((2, 2), np.nan)
    geometry = GridGeometry("curvy", ("y", "x"), pyproj.CRS.from_epsg(4326).to_wkt(),
                            lon=nan, lat=nan)
    with pytest.raises(ValueError, match="curvilinear"):
        _ = geometry.x


@pytest.mark.parametrize("kind", list(KIND_AXES))
def test_positions_from_web_mercator_are_projs(kind: str) -> None:
    """Tiles take their pixels from Web Mercator to a grid's CRS by way of lon/lat
    computed in numpy (`from_canvas`, faster than PROJ's pipeline): the same positions as
    PROJ's to 1e-12 of their size (a micrometre near the grid), NaN where PROJ has none."""
    crs = KIND_AXES[kind][0].to_wkt()
    rng = np.random.default_rng(3)
    x, y = rng.uniform(-2e7, 2e7, (40, 50)), rng.uniform(-2e7, 2e7, (40, 50))
    x[0, 0] = np.nan
    ours, theirs = from_canvas("EPSG:3857", crs, x, y), transform_finite("EPSG:3857", crs, x, y)
    for a, b in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-6)
        np.testing.assert_array_equal(np.isnan(a), np.isnan(b))


def test_2d_centres_know_their_least_step_and_whether_they_fold() -> None:
    """What every window of a grid's 2-D centres inherits: no cell smaller than the least
    step between neighbouring centres (NaN positions left out), and no fold where the
    whole grid has none; a grid folded anywhere leaves its windows to check their own."""
    rng = np.random.default_rng(3)
    yy, xx = np.meshgrid(np.arange(40.0), np.arange(50.0), indexing="ij")
    x, y = xx * 1.5 + 0.2 * yy + rng.uniform(0, 0.1, xx.shape), yy + 0.1 * xx
    kept, x[5, 7] = x[5, 7], np.nan
    index = np.arange(40), np.arange(50)
    centres = Centres(x, y, *index)
    steps = [np.hypot(np.diff(x, axis=a), np.diff(y, axis=a)) for a in (0, 1)]
    assert centres.least_step == pytest.approx(min(np.nanmin(s) for s in steps))
    assert not centres.unfolded  # a centre without a position: unknown
    x[5, 7] = kept
    assert Centres(x, y, *index).unfolded
    folded = x.copy()
    folded[:, 30:] = folded[:, 30:][:, ::-1]
    assert not Centres(folded, y, *index).unfolded
    assert Centres(np.full((3, 3), np.nan), np.full((3, 3), np.nan),
                   np.arange(3), np.arange(3)).least_step == np.inf
    assert Centres(np.array([0.0, 2.0, 2.5]), np.array([1.0, 4.0]), np.arange(2),
                   np.arange(3)).least_step == 0.5


@settings(max_examples=500, deadline=None)
@given(st.floats(-400, 400), st.floats(0.01, 40), st.integers(1, 60), st.booleans(),
       st.booleans(), st.floats(-1000, 1000), st.floats(0.0, 0.9))
def test_thenearest_centre_is_the_argmin_of_every_centre(
        start: float, step: float, n: int, descending: bool, periodic: bool, value: float,
        jitter: float) -> None:
    """Either direction, even or uneven spacing, periodic spans under and over 360°,
    values anywhere (also on centres and ends): the index and offset an argmin over every
    centre gives (the first of equals)."""
    rng = np.random.default_rng(n)
    axis = start + np.cumsum(step * (1 + jitter * rng.random(n))) - step
    axis = axis[::-1].copy() if descending else axis
    for at in (value, float(axis[0]), float(axis[-1]), float(axis[n // 2]) + step / 2):
        offsets = axis - at
        if periodic:
            offsets = (offsets + 180.0) % 360.0 - 180.0
        expected = int(np.argmin(np.abs(offsets)))
        assert nearest_centre(axis, at, periodic) == (expected, float(offsets[expected]))
