"""Run change through the real app (issue #15): ``baseline=`` and the ``<layer>:change`` layer.

Every value equals xarray's difference of the two runs of the cube at the same valid time;
valid times the runs do not share, unknown baselines and hostile values are 400s.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xarray as xr
from lxml import etree
from PIL import Image

from fewsmap import open_cube
from fewsmap.app.maps import maps_cost
from fewsmap.app.server import create_app
from fewsmap.catalog import Catalog
from fewsmap.ogc.getmap import parse_getmap
from fewsmap.params import Params
from fewsmap.resolve.maps import resolve_maps
from fewsmap.settings import Settings
from fewsmap.time.instants import format_time
from tests.asgi_client import AppClient
from tests.edr_answers import edr_grid, edr_json
from tests.synthetic import T0, lonlat_store, six_hourly_runs_store

WMS = "{http://www.opengis.net/wms}"
SCHEMAS = Path(__file__).resolve().parent.parent / "schemas" / "ogc"
LAYER = "runs.rain"
BBOX = "-0.5,44.5,8.5,50.5"  # the whole 6 × 9 grid
RUNS = [T0 + np.timedelta64(6 * k, "h") for k in range(3)]


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("change") / "stores"
    folder.mkdir()
    six_hourly_runs_store(folder / "runs.zarr")
    six_hourly_runs_store(folder / "members.zarr", runs=2, members=5)
    lonlat_store(folder / "single.zarr")  # one run: no change layer
    lonlat_store(folder / "vectors.zarr")  # two runs, with a vector layer u/v
    lonlat_store(folder / "vectors.zarr", T0 + np.timedelta64(6, "h"), offset=1.0)
    return folder


@pytest.fixture(scope="module")
def client(stores: Path) -> AppClient:
    return AppClient(create_app(Settings(stores_dir=stores)))


def cube_field(stores: Path, run: int, valid: np.datetime64, store: str = "runs"
               ) -> xr.DataArray:
    """The stored field of run ``run`` at valid time ``valid`` (xarray, as the cube holds it)."""
    with open_cube(stores / f"{store}.zarr") as cube:
        field = cube["rain"].isel(forecast_reference_time=run)
        step = int(np.flatnonzero(field["valid_time"].values == valid)[0])
        return field.isel(step=step).load()


def export(client: AppClient, tmp_path: Path, layer: str, **params: str) -> xr.DataArray:
    response = client.get("/wms", params={
        "request": "GetMap", "layers": layer, "crs": "CRS:84", "bbox": BBOX, "width": "9",
        "height": "6", "format": "application/x-netcdf", **params})
    assert response.status_code == 200, response.text
    path = tmp_path / "answer.nc"
    path.write_bytes(response.content)
    return xr.load_dataset(path)["rain"]


def test_a_change_equals_xarrays_difference_of_the_two_runs(client: AppClient, stores: Path,
                                                            tmp_path: Path) -> None:
    valid = RUNS[2] + np.timedelta64(12, "h")
    want = cube_field(stores, 2, valid) - cube_field(stores, 1, valid)
    for layer, params in ((LAYER, {"baseline": "previous"}),
                          (LAYER, {"baseline": format_time(RUNS[1])}),
                          (f"{LAYER}:change", {})):
        got = export(client, tmp_path, layer, time=format_time(valid), **params)
        got = got.sel(latitude=want["latitude"], longitude=want["longitude"])
        np.testing.assert_array_equal(got.values, want.values)
        assert np.isnan(got.values[0, 0]) and np.isfinite(got.values[2, 2])
        assert got.attrs["fewsmap:baseline_reference_time"] == format_time(RUNS[1])
    # against an older run, and for a run named by DIM_REFERENCE_TIME
    want = cube_field(stores, 2, valid) - cube_field(stores, 0, valid)
    got = export(client, tmp_path, LAYER, time=format_time(valid),
                 baseline=format_time(RUNS[0]))
    np.testing.assert_array_equal(got.sel(latitude=want["latitude"]).values, want.values)
    valid = RUNS[1] + np.timedelta64(6, "h")
    want = cube_field(stores, 1, valid) - cube_field(stores, 0, valid)
    got = export(client, tmp_path, f"{LAYER}:change", time=format_time(valid),
                 dim_reference_time=format_time(RUNS[1]))
    np.testing.assert_array_equal(got.sel(latitude=want["latitude"]).values, want.values)


def test_a_change_of_an_ensemble_statistic_is_the_difference_of_the_statistics(
        client: AppClient, stores: Path, tmp_path: Path) -> None:
    valid = RUNS[1] + np.timedelta64(6, "h")
    with np.errstate(invalid="ignore"):
        want = (cube_field(stores, 1, valid, "members").mean("realization")
                - cube_field(stores, 0, valid, "members").mean("realization"))
    got = export(client, tmp_path, "members.rain:change", time=format_time(valid),
                 dim_ensemble_member="mean")
    np.testing.assert_allclose(got.sel(latitude=want["latitude"]).values, want.values,
                               rtol=1e-6)
    assert np.isnan(got.values[0, 0])


def test_a_baseline_equal_to_the_run_is_a_change_of_zero(client: AppClient, stores: Path,
                                                         tmp_path: Path) -> None:
    valid = RUNS[2] + np.timedelta64(6, "h")
    got = export(client, tmp_path, LAYER, time=format_time(valid),
                 baseline=format_time(RUNS[2])).values
    held = np.isfinite(cube_field(stores, 2, valid).values)
    assert (got[held] == 0).all() and np.isnan(got[~held]).all()


def getmap(client: AppClient, layer: str, **params: str) -> tuple[int, bytes]:
    response = client.get("/wms", params={
        "request": "GetMap", "layers": layer, "crs": "CRS:84", "bbox": BBOX, "width": "18",
        "height": "12", **params})
    return response.status_code, response.content


def test_valid_times_the_runs_do_not_share_are_refused_naming_them(client: AppClient) -> None:
    last = RUNS[2] + np.timedelta64(42, "h")  # the previous run ends 6 h earlier
    status, body = getmap(client, f"{LAYER}:change", time=format_time(last))
    assert status == 400 and b"InvalidDimensionValue" in body
    assert format_time(last).encode() in body and format_time(RUNS[1]).encode() in body
    response = client.get("/wms", params={
        "request": "GetFeatureInfo", "layers": LAYER, "query_layers": LAYER, "crs": "CRS:84",
        "bbox": BBOX, "width": "9", "height": "6", "i": "4", "j": "3",
        "baseline": "previous", "time": f"{format_time(RUNS[2])}/{format_time(last)}"})
    assert response.status_code == 400 and format_time(last).encode() in response.content


@pytest.mark.parametrize(("params", "code"), [
    ({"baseline": "garbage"}, b"InvalidParameterValue"),
    ({"baseline": "2020-01-01T00:00:00Z"}, b"InvalidDimensionValue"),
    ({"baseline": "previous", "dim_reference_time": format_time(RUNS[0])},
     b"InvalidDimensionValue"),  # the first run has no previous run
    ({"baseline": "9" * 400}, b"InvalidParameterValue"),
    ({"baseline": "previous", "reducer": "sum"}, b"InvalidParameterValue"),
])
def test_a_baseline_that_cannot_be_used_is_a_400(client: AppClient, params: dict[str, str],
                                                code: bytes) -> None:
    status, body = getmap(client, LAYER, **params)
    assert status == 400 and code in body, body[:400]
    assert b"ServiceExceptionReport" in body
    tile = client.get(f"/tiles/{LAYER}/3/4/2.png", params=params)
    assert tile.status_code == 400


def test_a_vector_layer_or_a_layer_of_one_run_has_no_change(client: AppClient) -> None:
    status, body = getmap(client, "vectors.u-v", baseline="previous")
    assert status == 400 and b"vector layer" in body
    status, body = getmap(client, "vectors.lon:change", time=format_time(RUNS[1]))
    assert status == 200, body[:300]
    status, body = getmap(client, "single.lon:change")
    assert status == 400 and b"first run" in body


def test_a_change_is_drawn_and_legended_on_a_scale_centred_on_zero(client: AppClient,
                                                                   stores: Path) -> None:
    status, body = getmap(client, f"{LAYER}:change")
    assert status == 200, body[:300]
    assert Image.open(io.BytesIO(body)).size == (18, 12)
    legend = client.get("/wms", params={"request": "GetLegendGraphic",
                                        "layer": f"{LAYER}:change",
                                        "format": "application/json"})
    assert legend.status_code == 200, legend.text
    body_json = legend.json()
    values = [float(entry["lowerValue"]) for entry in body_json["legend"]
              if "lowerValue" in entry] or [0.0]
    assert min(values) == pytest.approx(-max(values), rel=0.2)
    same = client.get("/wms", params={"request": "GetLegendGraphic", "layer": LAYER,
                                      "baseline": "previous", "format": "application/json"})
    assert same.json() == body_json
    tile = client.get(f"/tiles/{LAYER}:change/3/4/2.png")
    via = client.get(f"/tiles/{LAYER}/3/4/2.png", params={"baseline": "previous"})
    plain = client.get(f"/tiles/{LAYER}/3/4/2.png")
    assert tile.status_code == via.status_code == plain.status_code == 200
    assert tile.content == via.content != plain.content
    tilejson = client.get(f"/tiles/{LAYER}:change/tilejson.json").json()
    low, high = tilejson["fewsmap"]["valueRange"]
    assert low == -high and [round(low, 3)] == [round(float(body_json["legend"][0][
        "lowerValue"]), 3)]
    assert "layer=runs.rain%3Achange" in tilejson["legend"]
    assert client.get(f"/tiles/{LAYER}/tilejson.json", params={"baseline": "previous"}).json(
        )["fewsmap"]["valueRange"] == [low, high]
    wmts = {"service": "WMTS", "request": "GetTile", "version": "1.0.0", "style": "default",
            "format": "image/png", "tilematrixset": "WebMercatorQuad", "tilematrix": "3",
            "tilerow": "2", "tilecol": "4"}
    by_kvp = client.get("/wmts", params={**wmts, "layer": LAYER, "baseline": "previous"})
    derived = client.get("/wmts", params={**wmts, "layer": f"{LAYER}:change"})
    assert by_kvp.status_code == derived.status_code == 200, by_kvp.text
    assert by_kvp.content == derived.content == tile.content


def test_feature_info_and_time_series_give_the_change_at_the_cell(client: AppClient,
                                                                  stores: Path) -> None:
    valid = RUNS[2] + np.timedelta64(18, "h")
    want = cube_field(stores, 2, valid) - cube_field(stores, 1, valid)
    response = client.get("/wms", params={
        "request": "GetFeatureInfo", "layers": f"{LAYER}:change",
        "query_layers": f"{LAYER}:change", "crs": "CRS:84", "bbox": BBOX, "width": "9",
        "height": "6", "i": "4", "j": "3", "info_format": "application/json",
        "time": format_time(valid)})
    assert response.status_code == 200, response.text
    properties = response.json()["features"][0]["properties"]
    cell = want.sel(latitude=properties["lat"], longitude=properties["lon"])
    assert np.float32(properties["value"]) == cell.values
    assert properties["baseline_reference_time"] == format_time(RUNS[1])

    series = client.get("/api/timeseries", params={"layer": LAYER, "x": "4", "y": "47",
                                                   "baseline": "previous"})
    assert series.status_code == 200, series.text
    [entry] = series.json()["series"]
    assert entry["baseline_reference_time"] == format_time(RUNS[1])
    with open_cube(stores / "runs.zarr") as cube:
        rain = cube["rain"].sel(latitude=47.0, longitude=4.0)
        latest, previous = rain.isel(forecast_reference_time=2), rain.isel(
            forecast_reference_time=1)
        # the runs share the latest run's first 7 valid times: previous steps 1..7
        expected = latest.isel(step=slice(0, 7)).values - previous.isel(step=slice(1, 8)).values
        shared = latest["valid_time"].values[:7]
    assert entry["times"] == [format_time(t) for t in shared.astype("datetime64[s]")]
    np.testing.assert_array_equal(np.array(entry["values"], dtype=np.float32), expected)
    derived = client.get("/api/timeseries", params={"layer": f"{LAYER}:change", "x": "4",
                                                    "y": "47"}).json()
    assert derived["series"] == series.json()["series"]
    bad = client.get("/api/timeseries", params={"layer": LAYER, "x": "4", "y": "47",
                                                "baseline": "nonsense"})
    assert bad.status_code == 400


def test_capabilities_list_a_change_layer_with_the_shared_times(client: AppClient,
                                                                stores: Path) -> None:
    root = etree.fromstring(client.get("/wms", params={"request": "GetCapabilities"}).content)
    layers = {layer.findtext(f"{WMS}Name"): layer for layer in root.iter(f"{WMS}Layer")}
    change = layers[f"{LAYER}:change"]
    dims = {d.get("name"): d for d in change.findall(f"{WMS}Dimension")}
    shared = [RUNS[2] + np.timedelta64(6 * k, "h") for k in range(7)]
    assert dims["time"].text.split(",") == [format_time(t) for t in shared]
    assert dims["reference_time"].text.split(",") == [format_time(t) for t in RUNS[1:]]
    assert [s.findtext(f"{WMS}Name") for s in change.findall(f"{WMS}Style")] == ["change"]
    assert "members.rain:change" in layers
    assert "single.lon:change" not in layers and "single.lon" in layers  # one run only
    assert "vectors.lon:change" in layers and "vectors.u-v:change" not in layers

    os.environ["XML_CATALOG_FILES"] = str(SCHEMAS / "catalog.xml")  # the local OGC schemas
    schema = etree.XMLSchema(etree.parse(str(SCHEMAS / "sld/1.1.0/sld_capabilities.xsd")))
    assert schema.validate(root), schema.error_log
    old = client.get("/wms", params={"request": "GetCapabilities", "version": "1.1.1"})
    assert old.status_code == 200 and b"runs.rain:change" in old.content

    fews = client.get("/wms", params={"request": "GetCapabilities",
                                      "format": "application/json"}).json()
    entries = {entry["name"]: entry for entry in fews["layers"]}
    assert entries[f"{LAYER}:change"]["times"] == [format_time(t) for t in shared]
    assert entries[f"{LAYER}:change"]["externalForecastTime"] == format_time(RUNS[2])
    assert "single.lon:change" not in entries


def test_a_change_declares_two_fields_to_the_render_limiter(stores: Path) -> None:
    catalog = Catalog(Settings(stores_dir=stores))

    def cost(**extra: str) -> int:
        params = Params.of({"request": "GetMap", "layers": LAYER, "crs": "EPSG:3857",
                            "bbox": "0,5000000,1000000,6500000", "width": "256",
                            "height": "256", **extra})
        return maps_cost(resolve_maps(catalog, parse_getmap(params, 10**8)))

    assert cost(baseline="previous") == 2 * cost()


def test_real_runs_that_share_no_valid_time_have_no_change(
        tmp_path: Path, ingested: Callable[[str], Path]) -> None:
    """The CNRFC's QPF runs of 1 and 8 December 2022 (6 days each) share no valid time."""
    (tmp_path / "cnrfc.zarr").symlink_to(ingested("cnrfc_qpf"))
    client = AppClient(create_app(Settings(stores_dir=tmp_path)))
    [layer] = [name for name in Catalog(Settings(stores_dir=tmp_path)).layers
               if "QPF" in name]
    response = client.get("/wms", params={
        "request": "GetMap", "layers": layer, "crs": "CRS:84", "bbox": "-126,31,-112,45",
        "width": "32", "height": "32", "baseline": "previous"})
    assert response.status_code == 400 and b"InvalidDimensionValue" in response.content
    assert b"share no valid time" in response.content
    series = client.get("/api/timeseries", params={"layer": layer, "x": "-120", "y": "38",
                                                   "baseline": "previous"})
    assert series.status_code == 400 and "baseline" in series.json()["error"]["message"]
    root = etree.fromstring(client.get("/wms", params={"request": "GetCapabilities"}).content)
    names = [n.text for n in root.iter(f"{WMS}Name")]
    assert layer in names and f"{layer}:change" not in names


def edr(client: AppClient, kind: str, layer: str = LAYER, **params: str) -> dict[str, Any]:
    """An EDR query's CoverageJSON answer (position at 4°E 47°N, area and cube the grid)."""
    where = {"position": {"coords": "POINT(4 47)"}, "cube": {"bbox": BBOX},
             "area": {"coords": "POLYGON((-0.5 44.5, 8.5 44.5, 8.5 50.5, -0.5 50.5, "
                                "-0.5 44.5))"}}[kind]
    return edr_json(client, f"{layer}/{kind}", **where, **params)


@pytest.mark.parametrize("kind", ["position", "area", "cube"])
def test_edr_queries_answer_the_change_from_a_baseline(client: AppClient, stores: Path,
                                                       kind: str) -> None:
    """Every shared valid time of the latest run minus the previous run, as xarray has it;
    a valid time the baseline lacks is left out by default and refused when named."""
    shared = [RUNS[2] + np.timedelta64(6 * k, "h") for k in range(7)]  # 00..36 h of run 2
    for params in ({"baseline": "previous"}, {"baseline": format_time(RUNS[1])}):
        body = edr(client, kind, **params)
        assert body["domain"]["axes"]["t"]["values"] == [format_time(t) for t in shared]
        got = edr_grid(body, "rain")
        assert body["fewsmap:baseline_reference_time"] == format_time(RUNS[1])
        for k, valid in enumerate(shared):
            want = (cube_field(stores, 2, valid) - cube_field(stores, 1, valid)).values
            np.testing.assert_array_equal(got[k].reshape(-1) if kind != "position"
                                          else got[k], want.reshape(-1) if kind != "position"
                                          else want[3, 4])
    named = edr(client, kind, baseline="previous", datetime=format_time(shared[3]))
    assert named["domain"]["axes"]["t"]["values"] == [format_time(shared[3])]
    last = RUNS[2] + np.timedelta64(42, "h")
    response = client.get(f"/edr/collections/{LAYER}/position", params={
        "coords": "POINT(4 47)", "baseline": "previous", "datetime": format_time(last)})
    assert response.status_code == 400 and format_time(last) in response.text
    assert response.json()["code"] == "InvalidDimensionValue"


def test_edr_change_of_an_ensemble_statistic_and_of_an_instance(client: AppClient,
                                                                stores: Path) -> None:
    valid = RUNS[1] + np.timedelta64(6, "h")
    with np.errstate(invalid="ignore"):
        want = (cube_field(stores, 1, valid, "members").mean("realization")
                - cube_field(stores, 0, valid, "members").mean("realization"))
    for kind in ("position", "cube"):
        body = edr(client, kind, "members.rain", baseline="previous",
                   datetime=format_time(valid), **{"parameter-name": "rain_member_mean"})
        got = edr_grid(body, "rain_member_mean")[0]
        np.testing.assert_allclose(got, want.values[3, 4] if kind == "position"
                                   else want.values, rtol=1e-6)
    older = client.get(f"/edr/collections/{LAYER}/instances/{format_time(RUNS[1])}/position",
                       params={"coords": "POINT(4 47)", "baseline": format_time(RUNS[0]),
                               "datetime": format_time(valid)})
    assert older.status_code == 200, older.text
    want = cube_field(stores, 1, valid) - cube_field(stores, 0, valid)
    np.testing.assert_array_equal(edr_grid(older.json(), "rain")[0], want.values[3, 4])


@pytest.mark.parametrize("params", [{"baseline": "garbage"},
                                    {"baseline": "2020-01-01T00:00:00Z"},
                                    {"baseline": "9" * 400}])
def test_an_edr_baseline_that_cannot_be_used_is_a_400(client: AppClient,
                                                      params: dict[str, str]) -> None:
    for kind, where in (("position", {"coords": "POINT(4 47)"}), ("cube", {"bbox": BBOX})):
        response = client.get(f"/edr/collections/{LAYER}/{kind}", params={**where, **params})
        assert response.status_code == 400, response.text
        assert response.json()["code"] in ("InvalidParameterValue", "InvalidDimensionValue")
    first = client.get(f"/edr/collections/{LAYER}/instances/{format_time(RUNS[0])}/cube",
                       params={"bbox": BBOX, "baseline": "previous"})
    assert first.status_code == 400 and "no previous run" in first.text
