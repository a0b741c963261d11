"""The time-series API of the real service over HTTP: values, plumes, members, formats."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import numpy as np
import pyproj
import pytest
import xarray as xr
from covjson_pydantic.coverage import CoverageCollection
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openapi_spec_validator import validate as validate_openapi

from fewsmap import open_cube
from fewsmap.app.server import create_app
from fewsmap.catalog import Catalog
from fewsmap.errors import InvalidParameterValue
from fewsmap.ogc import timeseries
from fewsmap.params import Params
from fewsmap.resolve.series import INLINE_SERIES_LINES, ReadElsewhere, read_time_series
from fewsmap.settings import Settings
from tests.asgi_client import AppClient
from tests.live_server import live_server
from tests.s3server import S3Server
from tests.synthetic import (
    LAGGED_MEMBERS,
    LAGGED_RUNS,
    T0,
    field_store,
    lagged_ensemble_store,
    lonlat_grid,
)

TO_MERCATOR = pyproj.Transformer.from_crs("EPSG:4326", "EPSG:3857", always_xy=True)


@pytest.fixture(scope="module")
def stores(point_stores: Path) -> Path:
    return point_stores


@pytest.fixture(scope="module")
def base(stores: Path) -> Iterator[str]:
    with live_server("--stores", str(stores)) as url:
        yield url


def series(base: str, **params: str) -> httpx.Response:
    # As a dashboard on another origin asks; a doubled CORS header would fail ok_json.
    params.setdefault("useDisplayUnits", "false")  # the cube's units (display: test_display_units)
    return httpx.get(f"{base}/api/timeseries", params=params, timeout=60,
                     headers={"Origin": "http://dashboard.example"})


def ok_json(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.headers["access-control-allow-origin"] == "*"
    body: dict[str, Any] = response.json()
    return body


def cube_at(path: Path, variable: str, lon: float, lat: float) -> xr.DataArray:
    """The cube's values at the cell nearest (lon, lat) of a lon/lat grid (every run, step)."""
    with open_cube(path) as cube:
        col = int(np.argmin(np.abs(cube["longitude"].values - lon)))
        row = int(np.argmin(np.abs(cube["latitude"].values - lat)))
        return cube[variable].isel(latitude=row, longitude=col).load()


@pytest.fixture(scope="module")
def openapi(base: str) -> dict[str, Any]:
    response = httpx.get(f"{base}/api/openapi.json", timeout=30)
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


def test_openapi_document_is_valid_openapi_3_1(openapi: dict[str, Any]) -> None:
    validate_openapi(openapi)  # raises on any structural error
    assert openapi["openapi"].startswith("3.1")
    operation = openapi["paths"]["/api/timeseries"]["get"]
    names = {p["name"] for p in operation["parameters"]}
    assert names == {"layer", "x", "y", "crs", "run", "runs", "start", "end", "member",
                     "elevation", "baseline", "accumulate", "useDisplayUnits", "format"}
    x = next(p for p in operation["parameters"] if p["name"] == "x")
    assert "longitude" in x["description"]
    assert set(operation["responses"]["200"]["content"]) == {
        "application/json", "application/prs.coverage+json", "text/csv",
        "application/x-netcdf"}


def matches_schema(body: dict[str, Any], openapi: dict[str, Any], name: str) -> None:
    """Validate ``body`` against a schema of the OpenAPI document (JSON Schema 2020-12)."""
    schema = {"$ref": f"#/components/schemas/{name}", "components": openapi["components"]}
    jsonschema.Draft202012Validator(schema).validate(body)


def test_all_64_naefs_leads_equal_the_cube(base: str, ingested: Callable[[str], Path],
                                           openapi: dict[str, Any]) -> None:
    body = ok_json(series(base, layer="naefs.QTF", x="-105.1", y="40.2"))
    matches_schema(body, openapi, "TimeSeries")
    assert body["layer"] == "naefs.QTF" and body["units"] == "degC"
    assert body["cell"] == {"row": 32, "col": 40, "lon": -105.0, "lat": 40.0, "x": -105.0,
                            "y": 40.0, "crs": "EPSG:4326"}
    (only,) = body["series"]
    assert only["reference_time"] == "2022-08-09T00:00:00Z"
    expected = cube_at(ingested("naefs"), "QTF", -105.0, 40.0).isel(forecast_reference_time=0)
    valid = expected["valid_time"].values.astype("datetime64[s]")
    assert len(only["values"]) == len(only["times"]) == len(only["lead_times"]) == 64
    assert only["times"] == [f"{t}Z" for t in valid]
    assert only["lead_times"][:4] == ["PT6H", "PT12H", "PT18H", "P1D"]
    assert only["lead_times"][-1] == "P16D"
    np.testing.assert_array_equal(np.asarray(only["values"], dtype=np.float32),
                                  expected.values)
    # The same cell from Web Mercator, and from the run named explicitly.
    x, y = TO_MERCATOR.transform(-105.1, 40.2)
    mercator = ok_json(series(base, layer="naefs.QTF", x=str(x), y=str(y), crs="EPSG:3857"))
    assert mercator["series"][0]["values"] == only["values"]
    assert mercator["cell"]["crs"] == "EPSG:3857"
    assert mercator["cell"]["x"] == pytest.approx(-105 * 20037508.342789244 / 180)
    named = ok_json(series(base, layer="naefs.QTF", x="-105.1", y="40.2",
                           run="2022-08-09T00:00:00Z"))
    assert named["series"] == body["series"]
    window = ok_json(series(base, layer="naefs.QTF", x="-105.1", y="40.2", run="latest",
                            start="2022-08-10T00:00:00Z", end="2022-08-11T00:00:00Z"))
    assert window["series"][0]["times"] == only["times"][3:8]


def test_fmat_plume_has_the_four_runs_tagged(base: str, ingested: Callable[[str], Path]) -> None:
    lon, lat = -78.0, 40.0
    body = ok_json(series(base, layer="fmat.t", x=str(lon), y=str(lat), runs="all"))
    runs = [s["reference_time"] for s in body["series"]]
    assert runs == ["2022-06-01T00:00:00Z", "2022-06-01T06:00:00Z", "2022-06-01T12:00:00Z",
                    "2022-06-01T18:00:00Z"]
    cell = body["cell"]
    with open_cube(ingested("fmat")) as cube:
        expected = cube["t"].isel(y=cell["row"], x=cell["col"]).load()
    for k, entry in enumerate(body["series"]):
        valid = expected["valid_time"].isel(forecast_reference_time=k).values
        assert entry["times"] == [f"{t}Z" for t in valid.astype("datetime64[s]")]
        assert entry["lead_times"] == ["PT12H"]
        assert np.float32(entry["values"][0]) == expected.isel(forecast_reference_time=k,
                                                              step=0).values
    assert abs(cell["lon"] - lon) < 0.05 and abs(cell["lat"] - lat) < 0.05
    # A valid-time window alone means every run covering it (a forecast plume).
    plume = ok_json(series(base, layer="fmat.t", x=str(lon), y=str(lat),
                           start="2022-06-01T18:00:00Z", end="2022-06-02T00:00:00Z"))
    assert [s["reference_time"] for s in plume["series"]] == runs[1:3]
    latest_two = ok_json(series(base, layer="fmat.t", x=str(lon), y=str(lat), runs="2"))
    assert [s["reference_time"] for s in latest_two["series"]] == runs[2:]
    one = ok_json(series(base, layer="fmat.t-2022-06-01T06:00:00Z", x=str(lon), y=str(lat)))
    assert [s["reference_time"] for s in one["series"]] == runs[1:2]


def test_gefs_gives_21_members(base: str, ingested: Callable[[str], Path],
                               openapi: dict[str, Any]) -> None:
    body = ok_json(series(base, layer="gefs.t2m", x="-110", y="32", member="all"))
    matches_schema(body, openapi, "TimeSeries")
    assert [s["member"] for s in body["series"]] == list(range(21))
    expected = cube_at(ingested("gefs"), "t2m", -110.0, 32.0).isel(forecast_reference_time=0)
    for entry in body["series"]:
        assert len(entry["values"]) == 97
        np.testing.assert_array_equal(
            np.asarray(entry["values"], dtype=np.float32),
            expected.sel(realization=entry["member"]).values)
    single = ok_json(series(base, layer="gefs.t2m", x="-110", y="32", member="7"))
    assert [s["member"] for s in single["series"]] == [7]
    assert single["series"][0]["values"] == body["series"][7]["values"]
    default = ok_json(series(base, layer="gefs.t2m", x="-110", y="32"))
    assert [s["member"] for s in default["series"]] == [0]  # the control member
    # Lead time 0 holds no radiation field at all: that time is left out (issue #13 item 7),
    # never given as a fill value.
    dswrf = ok_json(series(base, layer="gefs.dswrf", x="-110", y="32"))["series"][0]
    assert dswrf["times"] == default["series"][0]["times"][1:]
    assert all(v is not None for v in dswrf["values"])


def test_levels_and_vectors(base: str, ingested: Callable[[str], Path]) -> None:
    body = ok_json(series(base, layer="multi_param.t", x="10", y="50", elevation="all"))
    assert [s["elevation"] for s in body["series"]] == [300, 500, 850, 1000]
    expected = cube_at(ingested("multi_param"), "t", 10.0, 50.0).isel(
        forecast_reference_time=0)
    for entry in body["series"]:
        np.testing.assert_array_equal(
            np.asarray(entry["values"], dtype=np.float32),
            expected.sel(isobaricInhPa=entry["elevation"]).values)
    vector = ok_json(series(base, layer="grid.u-v", x="10", y="45"))
    entry = vector["series"][0]
    assert vector["components"] == ["u", "v"] and vector["variable"] == "u,v"
    assert entry["components"] == {"u": [10.0, 10.0], "v": [45.0, 45.0]}
    assert entry["values"] == pytest.approx([np.hypot(10.0, 45.0)] * 2, rel=1e-6)


def test_csv_parses(base: str, ingested: Callable[[str], Path]) -> None:
    response = series(base, layer="gefs.t2m", x="-110", y="32", member="all", format="csv")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert list(rows[0]) == ["reference_time", "valid_time", "lead_time", "member", "value",
                             "units"]
    assert {row["units"] for row in rows} == {"K"}
    assert len(rows) == 21 * 97
    expected = cube_at(ingested("gefs"), "t2m", -110.0, 32.0).isel(forecast_reference_time=0)
    for row in rows[::50]:
        step = int(np.flatnonzero(expected["valid_time"].values.astype("datetime64[s]")
                                  == np.datetime64(row["valid_time"].rstrip("Z"), "s"))[0])
        assert np.float32(row["value"]) == expected.sel(realization=int(row["member"])).isel(
            step=step).values
        assert row["reference_time"] == "2019-05-15T00:00:00Z"
    levels = series(base, layer="multi_param.t", x="10", y="50", elevation="all", f="csv")
    header, *lines = list(csv.reader(io.StringIO(levels.text)))
    assert header == ["reference_time", "valid_time", "lead_time", "member", "elevation",
                      "value", "units"]
    assert len(lines) == 16 and {line[3] for line in lines} == {""}
    # Lead time 0 holds no radiation field: left out (missing values: test_lagged_ensemble).
    missing = series(base, layer="gefs.dswrf", x="-110", y="32", format="csv")
    first = next(csv.DictReader(io.StringIO(missing.text)))
    assert first["value"] != "" and first["lead_time"] == "PT3H"


def test_coveragejson_validates(base: str) -> None:
    for params in ({"layer": "fmat.t", "x": "-78", "y": "40", "runs": "all"},
                   {"layer": "multi_param.t", "x": "10", "y": "50", "elevation": "all"},
                   {"layer": "gefs.dswrf", "x": "-110", "y": "32", "member": "all"}):
        response = series(base, **params, format="covjson")
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "application/prs.coverage+json"
        collection = CoverageCollection.model_validate_json(response.content)
        assert collection.domainType is not None
        assert collection.domainType.value == "PointSeries"
        body = response.json()
        assert body["coverages"] and all(
            c["domain"]["domainType"] == "PointSeries" for c in body["coverages"])
        for coverage in body["coverages"]:
            (values,) = [r["values"] for r in coverage["ranges"].values()]
            assert len(values) == len(coverage["domain"]["axes"]["t"]["values"])
    plume = series(base, layer="fmat.t", x="-78", y="40", runs="all", format="covjson").json()
    assert [c["fewsmap:reference_time"] for c in plume["coverages"]] == [
        "2022-06-01T00:00:00Z", "2022-06-01T06:00:00Z", "2022-06-01T12:00:00Z",
        "2022-06-01T18:00:00Z"]
    levels = series(base, layer="multi_param.t", x="10", y="50", elevation="all",
                    format="covjson").json()
    assert [c["domain"]["axes"]["z"]["values"] for c in levels["coverages"]] == [
        [300], [500], [850], [1000]]


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({}, "MissingParameterValue"),
        ({"layer": "naefs.QTF", "x": "-105"}, "MissingParameterValue"),
        ({"layer": "nope", "x": "0", "y": "0"}, "LayerNotDefined"),
        ({"layer": "naefs", "x": "-105", "y": "40"}, "LayerNotQueryable"),
        ({"layer": "naefs.QTF", "x": "east", "y": "40"}, "InvalidParameterValue"),
        ({"layer": "naefs.QTF", "x": "inf", "y": "40"}, "InvalidParameterValue"),
        ({"layer": "naefs.QTF", "x": "0", "y": "0"}, "InvalidPoint"),
        ({"layer": "naefs.QTF", "x": "-105", "y": "40", "crs": "EPSG:32632"}, "InvalidCRS"),
        ({"layer": "naefs.QTF", "x": "-105", "y": "40", "format": "xml"}, "InvalidFormat"),
        ({"layer": "naefs.QTF", "x": "-105", "y": "40", "run": "2020-01-01T00:00:00Z"},
         "InvalidDimensionValue"),
        ({"layer": "naefs.QTF", "x": "-105", "y": "40", "run": "soon"},
         "InvalidDimensionValue"),
        ({"layer": "naefs.QTF", "x": "-105", "y": "40", "run": "latest", "runs": "all"},
         "InvalidParameterValue"),
        ({"layer": "naefs.QTF", "x": "-105", "y": "40", "runs": "0"}, "InvalidParameterValue"),
        ({"layer": "fmat.t-2022-06-01T06:00:00Z", "x": "-78", "y": "40", "runs": "all"},
         "InvalidParameterValue"),
        ({"layer": "fmat.t-2022-06-01T06:00:00Z", "x": "-78", "y": "40",
          "run": "2022-06-01T12:00:00Z"}, "InvalidParameterValue"),
        ({"layer": "naefs.QTF", "x": "-105", "y": "40", "start": "2022-08-12T00:00:00Z",
          "end": "2022-08-10T00:00:00Z"}, "InvalidParameterValue"),
        ({"layer": "naefs.QTF", "x": "-105", "y": "40", "start": "2030-01-01T00:00:00Z"},
         "InvalidDimensionValue"),
        ({"layer": "gefs.t2m", "x": "-110", "y": "32", "member": "99"},
         "InvalidDimensionValue"),
        ({"layer": "gefs.t2m", "x": "-110", "y": "32", "member": "some"},
         "InvalidDimensionValue"),
        ({"layer": "multi_param.t", "x": "10", "y": "50", "elevation": "123"},
         "InvalidDimensionValue"),
    ],
)
def test_errors_are_json_4xx(base: str, params: dict[str, str], code: str) -> None:
    response = series(base, **params)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    assert error["code"] == code and len(error["message"]) > 10


def test_value_limit_is_checked_before_reading(stores: Path) -> None:
    # GEFS: 97 steps × 21 members
    catalog = Catalog(Settings(stores_dir=stores, max_point_values=2036))
    params = Params.of({"layer": "gefs.t2m", "x": "-110", "y": "32", "member": "all"})
    with pytest.raises(InvalidParameterValue, match="2037 values; at most 2036"):
        timeseries.time_series(catalog, params)


HOSTILE_NAMES = ["layer", "x", "y", "crs", "run", "runs", "start", "end", "member",
                 "elevation", "format", "f"]
HOSTILE_VALUES = ["", "nan", "inf", "-1", "0", "1e309", "9" * 30, "-110", "32", "all",
                  "latest", "gefs.t2m", "gefs", "grid.u-v", "multi_param.t", "fmat.t",
                  "fmat.t-2022-06-01T06:00:00Z", "EPSG:3857", "CRS:84", "EPSG:999999",
                  "2019-05-15T00:00:00Z", "2022-06-01", "csv", "covjson", "5", "500",
                  "a" * 300, "\u202e\u0000"]


@settings(max_examples=100, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(params=st.dictionaries(st.sampled_from(HOSTILE_NAMES),
                              st.one_of(st.sampled_from(HOSTILE_VALUES), st.text(max_size=40)),
                              max_size=6))
def test_no_request_gets_a_server_error(base: str, params: dict[str, str]) -> None:
    response = series(base, **{"layer": "gefs.t2m", "x": "-110", "y": "32", **params})
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert response.headers["content-type"] == "application/json"
        assert response.json()["error"]["message"]


@pytest.fixture(scope="module")
def copied_stores(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The lagged ensemble with its fields chunked one per step, so with copies."""
    stores = tmp_path_factory.mktemp("inline") / "stores"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("fewsmap.store.layout.SMALL_FIELD_CELLS", 0)
        lagged_ensemble_store(stores / "lagged.zarr")
    lat, lon = np.linspace(60.0, 40.0, 21), np.linspace(0.0, 20.0, 21)
    lon2, lat2 = np.meshgrid(lon, lat)
    for hours in (0, 6):  # two runs with the same lead times: run change has values
        field_store(stores / "two.zarr", lonlat_grid(lat, lon), lon2, lat2,
                    T0 + np.timedelta64(hours, "h"), overviews=False)
    return stores


@pytest.mark.parametrize(("query", "inline"), [
    ({"member": "24"}, True),  # a member of the latest run
    ({"member": "3", "runs": "all"}, True),
    ({"member": "all", "runs": "all"}, False),  # more lines than an inline read takes
    ({"member": "mean", "runs": "all"}, False),
    ({"layer": "two.lon", "runs": "all"}, True),
    ({"layer": "two.lon", "baseline": "previous"}, False),
    ({"member": "24", "accumulate": "P2D"}, False),
    ({"member": "24", "format": "csv"}, False)])
def test_plain_series_of_local_copies_are_read_on_the_event_loop(
        copied_stores: Path, query: dict[str, str], inline: bool) -> None:
    """A series of a few lines of a local store's time-chunked copy is read on the event
    loop (no thread hand-off), as JSON; more lines, statistics, products and other formats
    in a render thread, as with inline renders off; the answer is the same either way."""
    assert LAGGED_RUNS * LAGGED_MEMBERS > INLINE_SERIES_LINES
    here = create_app(Settings(stores_dir=copied_stores))
    threads = create_app(Settings(stores_dir=copied_stores, inline_render_cost=0))
    answers = []
    for app in (here, threads):
        limiter = app.state.service.render_limiter
        before = limiter.inline
        response = AppClient(app).get("/api/timeseries", params={
            "layer": "lagged.t2m", "x": "10", "y": "54", **query})  # query may name a layer
        assert response.status_code == 200, response.text
        answers.append((limiter.inline > before, response.content))
    assert answers[0][0] == inline
    assert not answers[1][0]
    assert answers[0][1] == answers[1][1]


def test_series_of_object_storage_are_never_read_inline(s3_env: S3Server) -> None:
    """Reads from object storage wait on the network: never on the event loop."""
    folder = f"s3://{s3_env.new_bucket()}/stores"
    lat, lon = np.linspace(60.0, 40.0, 21), np.linspace(0.0, 20.0, 21)
    lon2, lat2 = np.meshgrid(lon, lat)
    field_store(f"{folder}/wide.zarr", lonlat_grid(lat, lon), lon2, lat2, overviews=False)
    catalog = Catalog(Settings(stores_dir=folder))
    request = timeseries.parse_timeseries(Params([("layer", "wide.lon"), ("x", "10"),
                                                  ("y", "50")]))
    assert catalog.store(catalog.layers["wide.lon"]).series_copy("lon", 0) == "lon.series"
    assert read_time_series(catalog, request).series[0].values.tolist() == [10.0, 10.0]
    with pytest.raises(ReadElsewhere):
        read_time_series(catalog, request, inline=True)
