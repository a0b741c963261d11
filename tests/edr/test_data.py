"""EDR position, area and cube answers checked against direct xarray selections of the cube.

The oracle is `fewsmap.open_cube` (xarray over the same Zarr store) with the cells chosen
independently: nearest centres for positions, matplotlib's point-in-polygon and pyproj for
areas and boxes. Values must be identical, NaN for NaN.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pyproj
import pytest
import xarray as xr
from covjson_pydantic.coverage import Coverage
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from matplotlib.path import Path as PolygonPath

from fewsmap import open_cube
from fewsmap.catalog import Catalog
from fewsmap.edr.data import EdrAnswer, answer_query
from fewsmap.edr.encode import coverage_csv, coverage_json
from fewsmap.edr.query import parse_query
from fewsmap.errors import (
    FewsmapError,
    InvalidDimensionValue,
    InvalidParameterValue,
    InvalidPoint,
    NotFound,
    OperationNotSupported,
    ResponseTooLarge,
)
from fewsmap.params import Params
from fewsmap.settings import Settings
from tests.synthetic import sparse_levels_store

MAX_VALUES = 3_000_000


def ask(catalog: Catalog, layer: str, kind: str, run: str | None = None,
        max_values: int = MAX_VALUES, **params: str) -> EdrAnswer:
    # the stored units, as the cube holds them (display units: tests/app/test_display_units)
    params.setdefault("useDisplayUnits", "false")
    query = parse_query(kind, Params.of({k.replace("_", "-"): v for k, v in params.items()}))
    return answer_query(catalog, layer, run, query, max_values)


def cube(stores: Path, name: str, variable: str, run: int = -1) -> xr.DataArray:
    """One run of a variable as xarray reads it, with the run's valid times on ``step``."""
    with open_cube(stores / f"{name}.zarr") as ds:
        return ds[variable].isel(forecast_reference_time=run).load()


def at_times(da: xr.DataArray, times: np.ndarray) -> xr.DataArray:
    steps = np.flatnonzero(np.isin(da["valid_time"].values.astype("datetime64[s]"), times))
    return da.isel(step=steps)


def inside(polygon: np.ndarray, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    points = np.column_stack([np.ravel(lon), np.ravel(lat)])
    return PolygonPath(polygon, closed=True).contains_points(points).reshape(np.shape(lon))


def lonlat_of(stores: Path, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Cell centres of a projected store in lon/lat, by pyproj from the cube's x/y."""
    with open_cube(stores / f"{name}.zarr") as ds:
        to_lonlat = pyproj.Transformer.from_crs(pyproj.CRS.from_wkt(ds["crs"].attrs["crs_wkt"]),
                                                "EPSG:4326", always_xy=True)
        x, y = np.meshgrid(ds["x"].values, ds["y"].values)
    lon, lat = to_lonlat.transform(x, y)
    return np.asarray(lon), np.asarray(lat)


def test_position_on_a_lonlat_grid(catalog: Catalog, edr_stores: Path) -> None:
    answer = ask(catalog, "naefs-mean.QPF", "position", coords="POINT(-90.2 40.1)")
    expected = cube(edr_stores, "naefs-mean", "QPF").sel(longitude=-90.2, latitude=40.1,
                                                          method="nearest")
    assert answer.times.size == 64 and answer.values["QPF"].shape == (64, 1, 1, 1)
    np.testing.assert_array_equal(answer.values["QPF"][:, 0, 0, 0], expected.values)
    assert (answer.window.x[0], answer.window.y[0]) == (expected.longitude, expected.latitude)
    np.testing.assert_array_equal(answer.times, expected["valid_time"].values)


def test_position_with_datetime_filters(catalog: Catalog, edr_stores: Path) -> None:
    full = cube(edr_stores, "naefs-mean", "QTF").sel(longitude=-100, latitude=35)
    interval = ask(catalog, "naefs-mean.QTF", "position", coords="POINT(-100 35)",
                   datetime="2022-08-10T00:00:00Z/2022-08-11T00:00:00Z")
    expected = at_times(full, interval.times)
    assert interval.times.size == 5
    assert str(interval.times[0]) == "2022-08-10T00:00:00"
    np.testing.assert_array_equal(interval.values["QTF"].ravel(), expected.values)
    listed = ask(catalog, "naefs-mean.QTF", "position", coords="POINT(-100 35)",
                 datetime="2022-08-24T18:00:00Z,2022-08-09T06:00:00Z")
    assert [str(t) for t in listed.times] == ["2022-08-09T06:00:00", "2022-08-24T18:00:00"]
    np.testing.assert_array_equal(listed.values["QTF"].ravel(),
                                  at_times(full, listed.times).values)


def test_members_are_parameters(catalog: Catalog, edr_stores: Path) -> None:
    answer = ask(catalog, "ecmwf-ens-gust.fg10_6", "position", coords="POINT(5.3 50.4)")
    at = cube(edr_stores, "ecmwf-ens-gust", "fg10_6").sel(longitude=5.3, latitude=50.4,
                                                           method="nearest")
    assert [p.id for p in answer.parameters] == [f"fg10_6_member_{m}" for m in range(1, 51)]
    for parameter in answer.parameters:
        np.testing.assert_array_equal(answer.values[parameter.id].ravel(),
                                      at.sel(realization=parameter.member).values)
    two = ask(catalog, "ecmwf-ens-gust.fg10_6", "position", coords="POINT(5.3 50.4)",
              parameter_name="fg10_6_member_7,fg10_6_member_3")
    assert [p.id for p in two.parameters] == ["fg10_6_member_3", "fg10_6_member_7"]


def test_position_on_a_projected_grid_and_an_older_run(catalog: Catalog,
                                                       edr_stores: Path) -> None:
    lon, lat = lonlat_of(edr_stores, "marfc-fmat")
    row, col = 100, 80
    point = f"POINT({float(lon[row, col])!r} {float(lat[row, col])!r})"
    for run, index in ((None, -1), ("2022-06-01T00:00:00Z", 0)):
        answer = ask(catalog, "marfc-fmat.t", "position", run, coords=point)
        assert answer.cell is not None and (answer.cell.row, answer.cell.col) == (row, col)
        expected = cube(edr_stores, "marfc-fmat", "t", index).isel(y=row, x=col)
        np.testing.assert_array_equal(answer.values["t"].ravel(), expected.values)
        assert np.isfinite(expected.values).all()


def test_cube_on_a_lonlat_grid(catalog: Catalog, edr_stores: Path) -> None:
    answer = ask(catalog, "naefs-mean.QPF", "cube", bbox="-100.2,30,-90,40.3",
                 datetime="2022-08-10")
    full = cube(edr_stores, "naefs-mean", "QPF")
    lon, lat = full["longitude"].values, full["latitude"].values
    expected = at_times(full, answer.times).isel(
        longitude=np.flatnonzero((lon >= -100.2) & (lon <= -90)),
        latitude=np.flatnonzero((lat >= 30) & (lat <= 40.3)))
    np.testing.assert_array_equal(answer.window.x, expected["longitude"].values)
    np.testing.assert_array_equal(answer.window.y, expected["latitude"].values)
    np.testing.assert_array_equal(answer.values["QPF"][:, 0], expected.values)
    assert answer.values["QPF"].shape == (4, 1, *expected.shape[1:]) and expected.size


def test_cube_across_0_degrees_with_levels(catalog: Catalog, edr_stores: Path) -> None:
    answer = ask(catalog, "levels.t", "cube", bbox="-10,40,10,50", z="850,500")
    full = cube(edr_stores, "levels", "t")
    assert answer.window.x.tolist() == [-10.0, -5.0, 0.0, 5.0, 10.0]
    assert answer.window.y.tolist() == [50.0, 45.0, 40.0]
    assert answer.levels is not None and answer.levels.tolist() == [500.0, 850.0]
    expected = full.sel(longitude=[350.0, 355.0, 0.0, 5.0, 10.0], latitude=[50.0, 45.0, 40.0],
                        isobaricInhPa=[500.0, 850.0])
    np.testing.assert_array_equal(answer.values["t"], expected.values)
    ranged = ask(catalog, "levels.t", "position", coords="POINT(5 45)", z="400/900")
    assert ranged.levels is not None and ranged.levels.tolist() == [500.0, 850.0]
    every = ask(catalog, "levels.t", "position", coords="POINT(5 45)")
    assert every.levels is not None and every.levels.tolist() == [300.0, 500.0, 850.0, 1000.0]
    np.testing.assert_array_equal(every.values["t"][:, :, 0, 0],
                                  full.sel(longitude=5.0, latitude=45.0).values)


def test_area_on_a_lonlat_grid(catalog: Catalog, edr_stores: Path) -> None:
    # No centre on an edge: there the even-odd rules of two implementations may differ.
    triangle = np.array([[-100.13, 29.87], [-89.91, 30.06], [-95.03, 40.21],
                         [-100.13, 29.87]])
    wkt = "POLYGON((" + ", ".join(f"{x:g} {y:g}" for x, y in triangle) + "))"
    answer = ask(catalog, "naefs-mean.QTF", "area", coords=wkt, datetime="2022-08-12T00:00:00Z")
    full = at_times(cube(edr_stores, "naefs-mean", "QTF"), answer.times)
    lon, lat = np.meshgrid(full["longitude"].values, full["latitude"].values)
    expected_inside = inside(triangle, lon, lat)
    rows, cols = answer.window.rows, answer.window.cols
    assert expected_inside.sum() == answer.window.inside.sum() > 50  # none left out
    np.testing.assert_array_equal(expected_inside[np.ix_(rows, cols)], answer.window.inside)
    window = full.values[:, rows][:, :, cols]
    np.testing.assert_array_equal(answer.values["QTF"][:, 0],
                                  np.where(answer.window.inside, window, np.nan))


def test_area_on_a_projected_grid(catalog: Catalog, edr_stores: Path) -> None:
    polygon = np.array([[-80.0, 38.0], [-75.0, 38.5], [-77.0, 42.0], [-80.0, 38.0]])
    wkt = "MULTIPOLYGON(((" + ", ".join(f"{x:g} {y:g}" for x, y in polygon) + ")))"
    answer = ask(catalog, "marfc-fmat.t", "area", coords=wkt)
    lon, lat = lonlat_of(edr_stores, "marfc-fmat")
    expected_inside = inside(polygon, lon, lat)
    rows, cols = answer.window.rows, answer.window.cols
    assert expected_inside.sum() == answer.window.inside.sum() > 1000
    np.testing.assert_array_equal(expected_inside[np.ix_(rows, cols)], answer.window.inside)
    full = cube(edr_stores, "marfc-fmat", "t")
    np.testing.assert_array_equal(answer.values["t"][:, 0],
                                  np.where(answer.window.inside,
                                           full.values[:, rows][:, :, cols], np.nan))
    assert answer.window.projected_wkt is not None


def polygon_wkt(*parts: list[tuple[float, float]]) -> str:
    """A POLYGON (one part) or MULTIPOLYGON of closed shells given without their last point."""
    rings = ["((" + ", ".join(f"{x:g} {y:g}" for x, y in [*part, part[0]]) + "))"
             for part in parts]
    return f"POLYGON{rings[0]}" if len(parts) == 1 else f"MULTIPOLYGON({', '.join(rings)})"


def box(west: float, south: float, east: float, north: float) -> list[tuple[float, float]]:
    return [(west, south), (east, south), (east, north), (west, north)]


@pytest.mark.parametrize(("layer", "first", "second", "union"), [
    ("naefs-mean.QTF", box(-100.13, 29.87, -94.91, 35.07), box(-97.07, 32.13, -91.93, 38.11),
     [(-100.13, 29.87), (-94.91, 29.87), (-94.91, 32.13), (-91.93, 32.13), (-91.93, 38.11),
      (-97.07, 38.11), (-97.07, 35.07), (-100.13, 35.07)]),
    ("marfc-fmat.t", box(-80.13, 38.11, -77.07, 40.93), box(-78.91, 39.53, -75.87, 42.07),
     [(-80.13, 38.11), (-77.07, 38.11), (-77.07, 39.53), (-75.87, 39.53), (-75.87, 42.07),
      (-78.91, 42.07), (-78.91, 40.93), (-80.13, 40.93)]),
], ids=["lonlat-grid", "projected-grid"])
def test_overlapping_multipolygon_parts_give_the_cells_of_their_union(
        catalog: Catalog, layer: str, first: list[tuple[float, float]],
        second: list[tuple[float, float]], union: list[tuple[float, float]]) -> None:
    # Issue #13 item 14: the even-odd rule cancelled the overlap of the two parts.
    parts = ask(catalog, layer, "area", coords=polygon_wkt(first, second))
    single = ask(catalog, layer, "area", coords=polygon_wkt(union))
    for axis in ("rows", "cols", "x", "y", "inside"):
        np.testing.assert_array_equal(getattr(parts.window, axis), getattr(single.window, axis))
    for name, values in single.values.items():
        np.testing.assert_array_equal(parts.values[name], values)
    lon, lat = parts.window.lon, parts.window.lat
    overlap = inside(np.array([*first, first[0]]), lon, lat) & inside(
        np.array([*second, second[0]]), lon, lat)
    assert overlap.sum() > 5 and parts.window.inside[overlap].all()


def test_holes_are_outside(catalog: Catalog, edr_stores: Path) -> None:
    outer, hole = box(-100.13, 29.87, -89.91, 40.21), box(-97.07, 32.13, -92.93, 37.11)
    wkt = polygon_wkt(outer)[:-1] + ", " + polygon_wkt(hole)[len("POLYGON("):]
    answer = ask(catalog, "naefs-mean.QTF", "area", coords=wkt)
    full = cube(edr_stores, "naefs-mean", "QTF")
    lon, lat = np.meshgrid(full["longitude"].values, full["latitude"].values)
    expected = (inside(np.array([*outer, outer[0]]), lon, lat)
                & ~inside(np.array([*hole, hole[0]]), lon, lat))
    rows, cols = answer.window.rows, answer.window.cols
    assert expected.sum() == answer.window.inside.sum() > 50
    np.testing.assert_array_equal(expected[np.ix_(rows, cols)], answer.window.inside)
    assert not answer.window.inside[answer.window.inside.shape[0] // 2,
                                    answer.window.inside.shape[1] // 2]


def test_cube_on_a_lambert_grid_is_a_native_window(catalog: Catalog, edr_stores: Path) -> None:
    answer = ask(catalog, "lambert.lon", "cube", bbox="4,61,8,63", datetime="2026-01-01")
    # The synthetic fields hold each cell's own longitude/latitude (tests/synthetic.py).
    lon = cube(edr_stores, "lambert", "lon").values[0]
    lat = cube(edr_stores, "lambert", "lat").values[0]
    in_box = (lon >= 4) & (lon <= 8) & (lat >= 61) & (lat <= 63)
    rows, cols = np.flatnonzero(in_box.any(axis=1)), np.flatnonzero(in_box.any(axis=0))
    np.testing.assert_array_equal(answer.window.rows, np.arange(rows[0], rows[-1] + 1))
    np.testing.assert_array_equal(answer.window.cols, np.arange(cols[0], cols[-1] + 1))
    window = lon[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    np.testing.assert_array_equal(answer.values["lon"][0, 0], window)  # unmasked corners too
    np.testing.assert_allclose(answer.window.lon, window, atol=1e-4)


@pytest.mark.parametrize(("layer", "kind", "crs84", "latitude_first"), [
    ("naefs-mean.QTF", "area", "POLYGON((-100.13 29.87, -89.91 30.06, -95.03 40.21, "
     "-100.13 29.87))", "POLYGON((29.87 -100.13, 30.06 -89.91, 40.21 -95.03, 29.87 -100.13))"),
    ("marfc-fmat.t", "area", "MULTIPOLYGON(((-80 38, -75 38.5, -77 42, -80 38)))",
     "MULTIPOLYGON(((38 -80, 38.5 -75, 42 -77, 38 -80)))"),
    ("levels.t", "cube", "-10,40,10,50", "40,-10,50,10"),  # across 0° on a 0..355° grid
    ("marfc-fmat.t", "cube", "-78,39,-77,40", "39,-78,40,-77"),
], ids=["polygon-lonlat-grid", "multipolygon-projected-grid", "box-across-0", "box-projected"])
def test_epsg_4326_is_latitude_first_and_selects_the_same_cells(
        catalog: Catalog, layer: str, kind: str, crs84: str, latitude_first: str) -> None:
    where = "coords" if kind == "area" else "bbox"
    lonlat = ask(catalog, layer, kind, **{where: crs84})
    latlon = ask(catalog, layer, kind, crs="EPSG:4326", **{where: latitude_first})
    assert lonlat.window.inside.sum() > 10
    for axis in ("rows", "cols", "x", "y", "inside"):
        np.testing.assert_array_equal(getattr(latlon.window, axis),
                                      getattr(lonlat.window, axis))
    for name, values in lonlat.values.items():
        np.testing.assert_array_equal(latlon.values[name], values)
    # The same values in the answer; only the CRS it names differs.
    ours, theirs = coverage_json(latlon), coverage_json(lonlat)
    assert ours["ranges"] == theirs["ranges"]
    assert ours["domain"]["axes"] == theirs["domain"]["axes"]
    assert coverage_csv(latlon) == coverage_csv(lonlat)


def test_a_listed_level_without_data_is_refused_not_left_out(
        tmp_path_factory: pytest.TempPathFactory) -> None:
    # issue #13 item 7: z=1000,850 answered 1000 alone when 850 held no data in the run.
    stores = tmp_path_factory.mktemp("sparse-levels") / "stores"
    sparse_levels_store(stores / "lv.zarr")
    catalog = Catalog(Settings(stores_dir=stores))
    for listed in ("1000,850", "850", "R2/1000/-150"):
        with pytest.raises(InvalidParameterValue, match="z=850 holds no data in run "
                           "2026-01-01T00:00:00Z; levels holding data: 500,1000"):
            ask(catalog, "lv.t", "position", coords="POINT(0 0)", z=listed)
    ranged = ask(catalog, "lv.t", "position", coords="POINT(0 0)", z="400/900")
    assert ranged.levels is not None and ranged.levels.tolist() == [500.0]
    listed = ask(catalog, "lv.t", "position", coords="POINT(0 0)", z="1000,500")
    assert listed.levels is not None and listed.levels.tolist() == [500.0, 1000.0]
    assert listed.values["t"][0, :, 0, 0].tolist() == [3.0, 1.0]


def test_value_limit_is_checked_before_reading(catalog: Catalog) -> None:
    exact = ask(catalog, "naefs-mean.QPF", "position", max_values=64, coords="POINT(-90 40)")
    assert exact.values["QPF"].size == 64
    with pytest.raises(ResponseTooLarge, match="selects 64 values") as raised:
        ask(catalog, "naefs-mean.QPF", "position", max_values=63, coords="POINT(-90 40)")
    assert raised.value.http_status == 413
    with pytest.raises(ResponseTooLarge, match="at most 1000"):
        ask(catalog, "naefs-mean.QPF", "cube", max_values=1000, bbox="-180,-90,180,90")


@pytest.mark.parametrize(("layer", "kind", "run", "params", "error", "says"), [
    ("naefs-mean.QPF", "position", None, {"coords": "POINT(10 10)"}, InvalidPoint,
     "outside the grid"),
    ("naefs-mean.QPF", "position", None, {"coords": "POINT(-90 40)",
                                          "datetime": "2030-01-01T00:00:00Z"},
     InvalidDimensionValue, "names no valid time of run 2022-08-09T00:00:00Z holding data; "
     "the run holds data at 64 times"),
    ("naefs-mean.QPF", "position", None, {"coords": "POINT(-90 40)", "z": "850"},
     InvalidParameterValue, "no vertical levels"),
    ("levels.t", "position", None, {"coords": "POINT(0 0)", "z": "1/2"},
     InvalidParameterValue, "z selects no level"),
    ("naefs-mean.QPF", "position", None, {"coords": "POINT(-90 40)",
                                          "parameter-name": "QTF"},
     InvalidParameterValue, "parameters: QPF"),
    ("naefs-mean.QPF", "area", None, {"coords": "POLYGON((-90.1 40.1, -90.2 40.1, "
                                                "-90.2 40.2, -90.1 40.1))"},
     InvalidParameterValue, "no cell centre"),
    ("naefs-mean.QPF", "cube", None, {"bbox": "0,0,10,10"}, InvalidParameterValue,
     "no cell centre"),
    ("no-such.layer", "position", None, {"coords": "POINT(0 0)"}, NotFound, "does not exist"),
    ("naefs-mean", "position", None, {"coords": "POINT(0 0)"}, NotFound, "does not exist"),
    ("naefs-mean.QPF", "position", "2022-08-10T00:00:00Z", {"coords": "POINT(-90 40)"},
     NotFound, "no instance"),
    ("naefs-mean.QPF", "position", "yesterday", {"coords": "POINT(-90 40)"}, NotFound,
     "no instance"),
    ("curvilinear.lon", "cube", None, {"bbox": "0,40,20,70"}, OperationNotSupported,
     "curvilinear"),
])
def test_bad_queries_are_refused(catalog: Catalog, layer: str, kind: str, run: str | None,
                                 params: dict[str, str], error: type[FewsmapError],
                                 says: str) -> None:
    query = parse_query(kind, Params.of(params))
    with pytest.raises(error, match=says) as raised:
        answer_query(catalog, layer, run, query, MAX_VALUES)
    assert 400 <= raised.value.http_status < 500


def test_positions_work_on_curvilinear_grids(catalog: Catalog) -> None:
    answer = ask(catalog, "curvilinear.lon", "position", coords="POINT(8 54)")
    assert answer.cell is not None
    assert answer.values["lon"].ravel()[0] == pytest.approx(answer.cell.lon, abs=1e-5)


QUERIES: list[tuple[str, str, dict[str, str]]] = [
    ("naefs-mean.QPF", "position", {"coords": "POINT(-90 40)"}),
    ("ecmwf-ens-gust.fg10_6", "position", {"coords": "POINT(5 50)"}),
    ("levels.t", "position", {"coords": "POINT(5 45)", "z": "500"}),
    ("levels.z", "position", {"coords": "POINT(5 45)"}),
    ("naefs-mean.QTF", "area", {"coords": "POLYGON((-100 30, -90 30, -95 40, -100 30))",
                                "datetime": "2022-08-10"}),
    ("marfc-fmat.t", "cube", {"bbox": "-78,39,-77,40"}),
    ("levels.u", "cube", {"bbox": "-10,40,10,50", "crs": "EPSG:4326"}),
    ("ecmwf-ens-gust.fg10_6", "area", {"coords": "POLYGON((0 50, 2 50, 2 52, 0 50))"}),
]


@pytest.mark.parametrize(("layer", "kind", "params"), QUERIES)
def test_coveragejson_is_valid_and_csv_holds_the_same_values(
        catalog: Catalog, layer: str, kind: str, params: dict[str, str]) -> None:
    answer = ask(catalog, layer, kind, **{k.replace("-", "_"): v for k, v in params.items()})
    document = coverage_json(answer)
    Coverage.model_validate_json(json.dumps(document, allow_nan=False))  # raises if invalid
    rows = list(csv.DictReader(io.StringIO(coverage_csv(answer).decode())))
    inside_cells = int(answer.window.inside.sum())
    levels = 1 if answer.levels is None else answer.levels.size
    assert len(rows) == len(answer.parameters) * answer.times.size * levels * inside_cells
    for parameter in answer.parameters:
        from_json = np.array(document["ranges"][parameter.id]["values"], dtype="float64")
        mine = [r for r in rows if r["parameter"] == parameter.id]
        from_csv = np.array([float(r["value"]) if r["value"] else np.nan for r in mine],
                            dtype=np.float32)
        stored = answer.values[parameter.id][:, :, answer.window.inside]
        np.testing.assert_array_equal(from_csv, stored.ravel())
        np.testing.assert_array_equal(from_json.astype(np.float32),
                                      answer.values[parameter.id].ravel())


def test_coveragejson_domains(catalog: Catalog) -> None:
    point = coverage_json(ask(catalog, "levels.t", "position", coords="POINT(5 45)", z="500"))
    assert point["domain"]["domainType"] == "PointSeries"
    assert point["domain"]["axes"]["z"] == {"values": [500]}
    profile = coverage_json(ask(catalog, "levels.t", "position", coords="POINT(5 45)"))
    assert profile["domain"]["domainType"] == "Grid"
    assert profile["ranges"]["t"]["axisNames"] == ["t", "z", "y", "x"]
    assert profile["ranges"]["t"]["shape"] == [4, 4, 1, 1]
    grid = coverage_json(ask(catalog, "marfc-fmat.t", "cube", bbox="-78,39,-77,40"))
    assert grid["domain"]["referencing"][0]["system"]["type"] == "ProjectedCRS"
    members = coverage_json(ask(catalog, "ecmwf-ens-gust.fg10_6", "position",
                                coords="POINT(5 50)"))
    assert len(members["parameterGroups"][0]["members"]) == 50
    latlon = coverage_json(ask(catalog, "naefs-mean.QPF", "position",
                               coords="POINT(40 -90)", crs="EPSG:4326"))
    assert latlon["domain"]["referencing"][0]["coordinates"] == ["y", "x"]
    assert latlon["domain"]["axes"]["x"]["values"] == [-90.0]


text = st.text(st.characters(codec="ascii"), max_size=30)
number = st.floats(-400, 400, allow_nan=False).map(lambda v: f"{v:g}")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(layer=st.sampled_from(["naefs-mean.QPF", "levels.t", "marfc-fmat.t",
                              "curvilinear.lon"]),
       kind=st.sampled_from(["position", "area", "cube"]),
       params=st.fixed_dictionaries({}, optional={
           "coords": st.one_of(text, st.builds("POINT({} {})".format, number, number),
                               st.builds("POLYGON(({0} {1}, {2} {1}, {2} {3}, {0} {1}))".format,
                                         number, number, number, number)),
           "bbox": st.one_of(text, st.lists(number, min_size=3, max_size=5).map(",".join)),
           "datetime": st.one_of(text, st.sampled_from(["2022-08-10/..", "../2018-11-23",
                                                        "2022-06-01T12Z"])),
           "z": st.one_of(text, number), "parameter-name": text, "crs": text, "f": text}))
def test_any_query_is_answered_or_refused_with_a_client_error(
        catalog: Catalog, layer: str, kind: str, params: dict[str, Any]) -> None:
    try:
        answer = answer_query(catalog, layer, None, parse_query(kind, Params.of(params)),
                              200_000)
        coverage_json(answer)
    except FewsmapError as error:
        assert 400 <= error.http_status < 500, error
