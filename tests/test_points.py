"""Finding the grid cell under a point and reading its values (fewsmap/points.py)."""

from __future__ import annotations

import ast
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyproj
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st

from fewsmap import points
from fewsmap.ingest.grids import AXIS_ATTRS, grid_attrs
from fewsmap.points import find_cell, read_cell, read_components
from fewsmap.store.cube import ForecastStore
from fewsmap.store.files import StoreFiles
from fewsmap.store.run import Grid, RunData, SourceFile
from fewsmap.store.writer import append_run
from tests.synthetic import T0, lambert_store, lonlat_store

MERCATOR = pyproj.Transformer.from_crs("EPSG:4326", "EPSG:3857", always_xy=True)


@pytest.fixture(scope="module")
def grid(tmp_path_factory: pytest.TempPathFactory) -> ForecastStore:
    """1° lon/lat grid: lon −20..40, lat 60..30 (descending); value = lon or lat."""
    return ForecastStore(lonlat_store(tmp_path_factory.mktemp("points") / "grid.zarr"))


@pytest.fixture(scope="module")
def lambert(tmp_path_factory: pytest.TempPathFactory) -> ForecastStore:
    return ForecastStore(lambert_store(tmp_path_factory.mktemp("points") / "lambert.zarr"))


def curvilinear_store(path: Path) -> Path:
    """A 2-D lat/lon grid rotated by 30° (curvilinear), 0.5° spacing; value = lon / lat."""
    rows, cols = np.meshgrid(np.arange(20.0), np.arange(30.0), indexing="ij")
    angle = np.radians(30.0)
    lon = 5.0 + 0.5 * (cols * np.cos(angle) - rows * np.sin(angle))
    lat = 50.0 + 0.5 * (cols * np.sin(angle) + rows * np.cos(angle))
    dims = ("y", "x")
    grid = Grid(dims, {
        "latitude": xr.DataArray(lat, dims=dims, attrs=AXIS_ATTRS["latitude"]),
        "longitude": xr.DataArray(lon, dims=dims, attrs=AXIS_ATTRS["longitude"]),
    }, grid_attrs(pyproj.CRS.from_epsg(4326)))
    step = np.array([0], "timedelta64[s]").astype("timedelta64[ns]")

    def field(values: np.ndarray) -> xr.DataArray:
        return xr.DataArray(values[None].astype("float32"), dims=("step", *dims),
                            coords={"step": step}, attrs={"units": "degree"})

    fields = {"lon": (field(lon),), "lat": (field(lat),)}
    append_run(path, RunData(T0, fields, grid, (SourceFile("synthetic", "0" * 64, 0),),
                             "synthetic"), progress=False)
    return path


@pytest.fixture(scope="module")
def curvilinear(tmp_path_factory: pytest.TempPathFactory) -> ForecastStore:
    return ForecastStore(curvilinear_store(tmp_path_factory.mktemp("points") / "curv.zarr"))


def value(store: ForecastStore, variable: str, cell: points.GridCell) -> float:
    return float(read_cell(store, variable, cell, store.runs[0])[0])


@pytest.mark.parametrize("crs", ["OGC:CRS84", "EPSG:4326", "EPSG:3857"])
def test_lonlat_grid_cell_holds_the_point(grid: ForecastStore, crs: str) -> None:
    for lon, lat in [(-20.0, 60.0), (13.3, 44.6), (13.51, 44.49), (39.6, 30.4), (-20.49, 29.51)]:
        x, y = MERCATOR.transform(lon, lat) if crs == "EPSG:3857" else (lon, lat)
        cell = find_cell(grid, crs, x, y)
        assert cell is not None
        assert value(grid, "lon", cell) == cell.lon == round(lon)
        assert value(grid, "lat", cell) == cell.lat == round(lat)
        assert cell.row == int(60 - cell.lat) and cell.col == int(cell.lon + 20)
        assert cell.crs == crs
        expected = MERCATOR.transform(cell.lon, cell.lat) if crs == "EPSG:3857" else (
            cell.lon, cell.lat)
        assert (cell.x, cell.y) == pytest.approx(expected)


def test_half_a_cell_beyond_the_edge_is_still_the_grid(grid: ForecastStore) -> None:
    # The outer cells end half a cell beyond their centres: lon −20.5..40.5, lat 29.5..60.5.
    for lon, lat in [(-20.5, 45.0), (40.5, 45.0), (10.0, 29.5), (10.0, 60.5)]:
        assert find_cell(grid, "OGC:CRS84", lon, lat) is not None
    for lon, lat in [(-20.51, 45.0), (40.51, 45.0), (10.0, 29.49), (10.0, 60.51),
                     (120.0, 45.0), (10.0, -45.0), (float("nan"), 45.0)]:
        assert find_cell(grid, "OGC:CRS84", lon, lat) is None


@settings(max_examples=60, deadline=None)
@given(lon=st.floats(-25, 45), lat=st.floats(25, 65))
def test_separable_lookup_is_the_nearest_centre(grid: ForecastStore, lon: float,
                                                lat: float) -> None:
    cell = find_cell(grid, "OGC:CRS84", lon, lat)
    inside = -20.5 <= lon <= 40.5 and 29.5 <= lat <= 60.5
    assert (cell is not None) == inside
    if cell is not None:
        assert abs(cell.lon - lon) <= 0.5 + 1e-9 and abs(cell.lat - lat) <= 0.5 + 1e-9


def test_projected_grid_uses_its_own_axes(lambert: ForecastStore) -> None:
    """Lambert conformal: the point goes into the grid's CRS; the cell is the nearest there."""
    wkt = lambert.attributes("crs")["crs_wkt"]
    to_grid = pyproj.Transformer.from_crs("EPSG:4326", pyproj.CRS.from_wkt(wkt), always_xy=True)
    x_axis, y_axis = lambert.coordinate("x"), lambert.coordinate("y")
    rng = np.random.default_rng(1)
    for lon, lat in zip(rng.uniform(4, 10, 40), rng.uniform(58, 62, 40), strict=True):
        for crs, (px, py) in (("OGC:CRS84", (lon, lat)), ("EPSG:3857",
                                                        MERCATOR.transform(lon, lat))):
            cell = find_cell(lambert, crs, px, py)
            gx, gy = to_grid.transform(lon, lat)
            inside = (x_axis[0] - 5000 <= gx <= x_axis[-1] + 5000
                      and y_axis[0] - 5000 <= gy <= y_axis[-1] + 5000)
            assert (cell is not None) == inside
            if cell is not None:
                assert cell.col == int(np.argmin(np.abs(x_axis - gx)))
                assert cell.row == int(np.argmin(np.abs(y_axis - gy)))
                # The stored value is the cell centre's longitude, as the cell says.
                assert value(lambert, "lon", cell) == pytest.approx(cell.lon, abs=1e-4)


def test_polar_stereographic_sample(ingested: Callable[[str], Path]) -> None:
    """FMAT (GRIB polar stereographic): nearest cell in the grid's own metres."""
    store = ForecastStore(ingested("fmat"))
    wkt = store.attributes("crs")["crs_wkt"]
    to_grid = pyproj.Transformer.from_crs("EPSG:4326", pyproj.CRS.from_wkt(wkt), always_xy=True)
    x_axis, y_axis = store.coordinate("x"), store.coordinate("y")
    half_x, half_y = np.abs(np.diff(x_axis)).max() / 2, np.abs(np.diff(y_axis)).max() / 2
    rng = np.random.default_rng(3)
    found = 0
    for lon, lat in zip(rng.uniform(-85, -68, 80), rng.uniform(33, 47, 80), strict=True):
        cell = find_cell(store, "EPSG:4326", lon, lat)
        gx, gy = to_grid.transform(lon, lat)
        inside = (min(x_axis) - half_x <= gx <= max(x_axis) + half_x
                  and min(y_axis) - half_y <= gy <= max(y_axis) + half_y)
        assert (cell is not None) == inside
        if cell is not None:
            found += 1
            assert (cell.row, cell.col) == (int(np.argmin(np.abs(y_axis - gy))),
                                            int(np.argmin(np.abs(x_axis - gx))))
            assert abs(cell.lon - lon) < 0.05 and abs(cell.lat - lat) < 0.05  # 4.8 km cells
    assert found > 20
    assert find_cell(store, "EPSG:4326", 0.0, 0.0) is None


def test_global_grid_wraps_longitude(ingested: Callable[[str], Path]) -> None:
    """multi_param: longitudes 0..355 (5°); −2.4° is the cell at 0°, −2.6° the one at 355°."""
    store = ForecastStore(ingested("multi_param"))
    east = find_cell(store, "EPSG:4326", -2.4, 40.0)
    west = find_cell(store, "EPSG:4326", -2.6, 40.0)
    assert east is not None and west is not None
    assert (east.col, east.lon) == (0, 0.0)
    assert (west.col, west.lon) == (71, -5.0)
    far = find_cell(store, "EPSG:4326", 357.6, 40.0)
    assert far is not None and far.col == 0
    pole = find_cell(store, "EPSG:3857", 0.0, 19_000_000.0)  # ~84.9°N: nearest row is 85°N
    assert pole is not None and pole.lat == 85.0


def test_curvilinear_nearest_centre_and_edges(curvilinear: ForecastStore) -> None:
    lat2 = curvilinear.coordinate("latitude")
    lon2 = curvilinear.coordinate("longitude")
    rng = np.random.default_rng(7)
    for _ in range(60):
        row, col = int(rng.integers(0, 20)), int(rng.integers(0, 30))
        dlon, dlat = rng.uniform(-0.15, 0.15, 2)
        lon, lat = lon2[row, col] + dlon, lat2[row, col] + dlat
        cell = find_cell(curvilinear, "OGC:CRS84", lon, lat)
        assert cell is not None
        distance = np.hypot((lon2 - lon) * np.cos(np.radians(lat)), lat2 - lat)
        assert (cell.row, cell.col) == np.unravel_index(np.argmin(distance), distance.shape)
        assert value(curvilinear, "lon", cell) == pytest.approx(cell.lon, abs=1e-5)
    # Outward from a corner cell along its own grid directions: inside up to half a cell.
    angle = np.radians(30.0)
    step_col = np.array([np.cos(angle), np.sin(angle)]) * 0.5
    corner = np.array([lon2[0, 0], lat2[0, 0]])
    assert find_cell(curvilinear, "OGC:CRS84", *(corner - 0.45 * step_col)) is not None
    assert find_cell(curvilinear, "OGC:CRS84", *(corner - 0.6 * step_col)) is None
    assert find_cell(curvilinear, "OGC:CRS84", -100.0, -40.0) is None


def counted(store: ForecastStore, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record the chunk files reads open, as keys relative to the store (``lon/c/0/1/2/4``);
    every reader opens them through the store's file rule (`StoreFiles.open`)."""
    opened: list[str] = []
    real_open = StoreFiles.open

    def recording_open(files: StoreFiles, key: str) -> int:
        assert files.root == os.path.realpath(store.path)
        opened.append(key)
        return real_open(files, key)

    monkeypatch.setattr(StoreFiles, "open", recording_open)
    return opened


def test_a_small_field_reads_one_chunk_per_run(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """A small field's chunk holds its run's steps: a series opens it once, nothing else."""
    monkeypatch.setattr("fewsmap.store.layout.SPATIAL_CHUNK", 8)  # 31 × 61 → 4 × 8 tiles
    monkeypatch.setattr("fewsmap.store.layout.SMALL_FIELD_CELLS", 31 * 61)
    store = ForecastStore(lonlat_store(tmp_path / "grid.zarr"))
    assert store.array("lon").chunks[-2:] == (8, 8) and store.array("lon").chunks[1] > 1
    cell = find_cell(store, "OGC:CRS84", 13.2, 44.1)
    assert cell is not None and (cell.row, cell.col) == (16, 33)
    opened = counted(store, monkeypatch)
    run = store.runs[0]
    values = read_cell(store, "lon", cell, run)
    np.testing.assert_array_equal(values, [13.0, 13.0])
    assert opened == [f"lon/c/{run.slot}/0/{16 // 8}/{33 // 8}"]
    opened.clear()
    speed, parts = read_components(store, ("u", "v"), cell, run, run.valid_times[1:])
    assert speed[0] == pytest.approx(np.hypot(13.0, 44.0)) and set(parts) == {"u", "v"}
    assert sorted(opened) == [f"{name}/c/{run.slot}/0/2/4" for name in ("u", "v")]


def test_a_larger_field_reads_one_shard_of_its_copy_per_run(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A field chunked one per step is read from its time-chunked copy: one file per run."""
    store = ForecastStore(lonlat_store(tmp_path / "grid.zarr"))
    assert store.array("lon").chunks[:2] == (1, 1)
    cell = find_cell(store, "OGC:CRS84", 13.2, 44.1)
    assert cell is not None
    opened = counted(store, monkeypatch)
    run = store.runs[0]
    np.testing.assert_array_equal(read_cell(store, "lon", cell, run), [13.0, 13.0])
    assert opened == [f"lon.series/c/{run.slot}/0/0/0"]
    assert "lon.series" not in store.variables


def test_reads_one_shard_per_member(ingested: Callable[[str], Path],
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """wgust: 50 members × 3 steps at one cell read 50 shards of the time-chunked copy (one
    per member, holding every step), each once."""
    store = ForecastStore(ingested("wgust"))
    cell = find_cell(store, "EPSG:4326", 10.0, 50.0)
    assert cell is not None
    opened = counted(store, monkeypatch)
    run = store.runs[0]
    members = list(range(50))
    values = read_cell(store, "fg10_6", cell, run, labels=[members])
    assert values.shape == (3, 50)
    assert all(k.startswith("fg10_6.series/c/") for k in opened)
    assert len(opened) == len(set(opened)) == 50
    reference = ForecastStore(store.path)
    for k, when in enumerate(run.valid_times):
        for member in (0, 17, 49):
            field = reference.read_slice("fg10_6", run, when, realization=member)
            assert values[k, member] == field[cell.row, cell.col]


def test_missing_values_are_nan_and_labels_are_checked(ingested: Callable[[str], Path]) -> None:
    """GEFS dswrf has no value at lead time 0 (an accumulation): NaN, never a fill value."""
    store = ForecastStore(ingested("gefs"))
    cell = find_cell(store, "EPSG:4326", -110.0, 32.0)
    assert cell is not None
    run = store.runs[0]
    values = read_cell(store, "dswrf", cell, run, run.valid_times[:2], labels=[[0, 20]])
    assert np.isnan(values[0]).all() and np.isfinite(values[1]).all()
    with pytest.raises(KeyError):
        read_cell(store, "dswrf", cell, run)  # the member dimension is not given
    with pytest.raises(KeyError):
        read_cell(store, "dswrf", cell, run, np.array(["2000-01-01"], "datetime64[s]"),
                  labels=[[0]])


def test_the_module_is_core() -> None:
    """fewsmap/points.py is core (DESIGN.md §1): no web or drawing imports."""
    tree = ast.parse(Path(points.__file__).read_text())
    names: set[Any] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            names.add(node.module)
    assert not {n for n in names if n and n.startswith(
        ("starlette", "uvicorn", "fewsmap.app", "fewsmap.ogc", "datashader", "matplotlib"))}
