"""A lagged ensemble: every document lists, per run, only the valid times and members holding
data, and defaults point at data (issue #13 item 7).

The store (`tests.synthetic.lagged_ensemble_store`): 8 runs of a 20-step, 28-member cube,
each filling 7 members at 3 steps, and a variable present at one step of each run.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest
from lxml import etree
from PIL import Image

from fewsmap.app.server import create_app
from fewsmap.settings import Settings
from fewsmap.store.run import format_time
from tests.asgi_client import AppClient
from tests.synthetic import (
    LAGGED_MEMBERS,
    LAGGED_RUNS,
    lagged_ensemble_store,
    lagged_members,
    lagged_run_time,
    lagged_steps,
    ragged_members_store,
)

SCHEMAS = Path(__file__).resolve().parent.parent / "schemas" / "ogc"
LAYER = "lagged.t2m"
SNOW = "lagged.snow"
WMS = "{http://www.opengis.net/wms}"
OWS = "{http://www.opengis.net/ows/1.1}"
WMTS = "{http://www.opengis.net/wmts/1.0}"
ALL_RUNS = {"startForecastTime": "1970-01-01T00:00:00Z",
            "endForecastTime": "2100-01-01T00:00:00Z", "forecastCount": "100"}
MAP = {"request": "GetMap", "crs": "CRS:84", "bbox": "0,40,30,60", "width": "30",
       "height": "20", "format": "image/png"}


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> AppClient:
    stores = tmp_path_factory.mktemp("lagged") / "stores"
    lagged_ensemble_store(stores / "lagged.zarr")
    return AppClient(create_app(Settings(stores_dir=stores)))


def held_times(k: int, steps: list[int] | None = None) -> list[str]:
    """The valid times at which run ``k`` holds data."""
    return [format_time(lagged_run_time(k) + np.timedelta64(s, "D"))
            for s in (lagged_steps(k) if steps is None else steps)]


def run_id(layer: str, k: int) -> str:
    return f"{layer}-{format_time(lagged_run_time(k))}"


def member_ids(k: int) -> list[str]:
    return [str(m) for m in lagged_members(k)]


def test_fews_json_lists_each_runs_times_and_members(client: AppClient) -> None:
    layers = {}
    for layer in (LAYER, SNOW):
        body = client.get("/wms", params={"request": "GetCapabilities", "layers": layer,
                                          "format": "application/json", **ALL_RUNS}).json()
        layers.update({entry["name"]: entry for entry in body["layers"]})
    for k in range(LAGGED_RUNS):
        entry = layers[run_id(LAYER, k)]
        assert entry["times"] == held_times(k)
        assert entry["firstValueTime"] == held_times(k)[0]
        assert entry["lastValueTime"] == held_times(k)[-1]
        assert entry["timesDefault"] in held_times(k)
        assert entry["ensembles"][0]["ensembleMemberIds"] == member_ids(k)
        assert [g["ensembleMemberId"] for g in entry["keywordList"]] == member_ids(k)
        assert layers[run_id(SNOW, k)]["times"] == held_times(k, lagged_steps(k)[1:2])
    latest = layers[LAYER]
    assert latest["times"] == held_times(LAGGED_RUNS - 1)
    assert latest["ensembles"][0]["ensembleMemberIds"] == member_ids(LAGGED_RUNS - 1)


def test_wms_xml_lists_each_runs_times_and_members(client: AppClient) -> None:
    dims = {}
    for name in (LAYER, SNOW):
        xml = etree.fromstring(client.get("/wms", params={"request": "GetCapabilities",
                                                          "layers": name, **ALL_RUNS}).content)
        dims.update({layer.findtext(f"{WMS}Name"): {d.get("name"): d for d in
                                                    layer.findall(f"{WMS}Dimension")}
                     for layer in xml.iter(f"{WMS}Layer")})
    for k in range(LAGGED_RUNS):
        own = dims[run_id(LAYER, k)]
        assert own["time"].text == ",".join(held_times(k))
        assert own["time"].get("default") in held_times(k)
        assert own["ensemble_member"].text == ",".join(member_ids(k))
        assert own["ensemble_member"].get("default") == member_ids(k)[0]
        assert dims[run_id(SNOW, k)]["time"].text == held_times(k, lagged_steps(k)[1:2])[0]
    base = dims[LAYER]["ensemble_member"]
    assert base.text == ",".join(member_ids(LAGGED_RUNS - 1))
    assert base.get("default") == member_ids(LAGGED_RUNS - 1)[0]
    plain = etree.fromstring(client.get("/wms", params={"request": "GetCapabilities"}).content)
    latest = next(layer for layer in plain.iter(f"{WMS}Layer")
                  if layer.findtext(f"{WMS}Name") == LAYER)
    time = next(d for d in latest.findall(f"{WMS}Dimension") if d.get("name") == "time")
    assert time.text == ",".join(held_times(LAGGED_RUNS - 1))


def test_wmts_lists_times_and_members_holding_data(client: AppClient) -> None:
    xml = etree.fromstring(client.get("/wmts", params={"service": "WMTS",
                                                       "request": "GetCapabilities"}).content)
    layer = next(node for node in xml.iter(f"{WMTS}Layer")
                 if node.findtext(f"{OWS}Identifier") == LAYER)
    dims = {d.findtext(f"{OWS}Identifier"): d for d in layer.findall(f"{WMTS}Dimension")}
    every = sorted(t for k in range(LAGGED_RUNS) for t in held_times(k))
    assert [v.text for v in dims["Time"].findall(f"{WMTS}Value")] == every
    assert dims["Time"].findtext(f"{WMTS}Default") in held_times(LAGGED_RUNS - 1)
    members = dims["ensemble_member"]
    assert [v.text for v in members.findall(f"{WMTS}Value")] == [
        str(m) for m in range(LAGGED_MEMBERS)]  # 8 runs × 7 members cover all 28
    assert members.findtext(f"{WMTS}Default") == member_ids(LAGGED_RUNS - 1)[0]


def test_tilejson_lists_the_runs_times(client: AppClient) -> None:
    for k in (0, 3):
        body = client.get(f"/tiles/{run_id(LAYER, k)}/tilejson.json").json()
        assert body["fewsmap"]["times"] == held_times(k)


def test_edr_extents_list_times_and_members_holding_data(client: AppClient) -> None:
    collection = client.get(f"/edr/collections/{LAYER}").json()
    every = sorted(t for k in range(LAGGED_RUNS) for t in held_times(k))
    assert collection["extent"]["temporal"]["values"] == every  # irregular: listed
    instances = client.get(f"/edr/collections/{LAYER}/instances").json()["instances"]
    assert len(instances) == LAGGED_RUNS
    for instance in instances:
        k = next(k for k in range(LAGGED_RUNS)
                 if format_time(lagged_run_time(k)) == instance["id"])
        assert instance["extent"]["temporal"]["values"] == [  # 3 days: R3/<first>/P1D
            f"R3/{held_times(k)[0]}/P1D"]
        assert sorted(instance["parameter_names"]) == sorted(
            f"t2m_member_{m}" for m in lagged_members(k))


def test_default_map_of_an_older_run_draws_data(client: AppClient) -> None:
    for k in range(LAGGED_RUNS):
        response = client.get("/wms", params={**MAP, "layers": run_id(LAYER, k)})
        assert response.status_code == 200, response.text
        alpha = np.asarray(Image.open(io.BytesIO(response.content)).convert("RGBA"))[..., 3]
        assert alpha.min() > 0, f"run {k}: the default map is (partly) transparent"


def test_map_without_member_draws_the_lowest_member_holding_data(client: AppClient) -> None:
    k = 5
    when = held_times(k)[1]
    response = client.get("/wms", params={
        "request": "GetFeatureInfo", "layers": run_id(LAYER, k), "query_layers":
        run_id(LAYER, k), "crs": "CRS:84", "bbox": "0,40,30,60", "width": "30",
        "height": "20", "i": "10", "j": "10", "info_format": "application/json",
        "time": when})
    assert response.status_code == 200, response.text
    properties = response.json()["features"][0]["properties"]
    assert properties["member"] == lagged_members(k)[0]
    assert properties["value"] == pytest.approx(lagged_members(k)[0] + lagged_steps(k)[1] / 100)


def test_a_member_without_data_is_refused(client: AppClient) -> None:
    absent = next(m for m in range(LAGGED_MEMBERS) if m not in lagged_members(2))
    response = client.get("/wms", params={**MAP, "layers": run_id(LAYER, 2),
                                          "dim_ensemble_member": str(absent)})
    assert response.status_code == 400
    assert b"InvalidDimensionValue" in response.content
    assert b",".join(s.encode() for s in member_ids(2)) in response.content


def test_time_series_of_all_runs_and_members_leave_out_empty_ones(client: AppClient) -> None:
    response = client.get("/api/timeseries", params={
        "layer": LAYER, "x": "10", "y": "50", "runs": "all", "member": "all"})
    assert response.status_code == 200, response.text
    series = response.json()["series"]
    assert len(series) == LAGGED_RUNS * 7
    for entry in series:
        k = next(k for k in range(LAGGED_RUNS)
                 if format_time(lagged_run_time(k)) == entry["reference_time"])
        assert entry["member"] in lagged_members(k)
        assert entry["times"] == held_times(k)
        assert None not in entry["values"]
    one = client.get("/api/timeseries", params={
        "layer": LAYER, "x": "10", "y": "50", "runs": "all", "member": "3"}).json()["series"]
    assert [s["reference_time"] for s in one] == [
        format_time(lagged_run_time(k)) for k in range(LAGGED_RUNS) if 3 in lagged_members(k)]


def test_series_holding_some_values_keep_the_rest_as_missing(
        tmp_path_factory: pytest.TempPathFactory) -> None:
    stores = tmp_path_factory.mktemp("ragged") / "stores"
    ragged_members_store(stores / "ragged.zarr")
    client = AppClient(create_app(Settings(stores_dir=stores)))
    params = {"layer": "ragged.x", "x": "0", "y": "1", "member": "all"}
    body = client.get("/api/timeseries", params=params).json()
    assert [s["member"] for s in body["series"]] == [0, 1, 3]  # member 2 holds nothing
    assert [s["lead_times"] for s in body["series"]] == [["PT0S", "PT12H"]] * 3  # not 6 h
    assert [s["values"] for s in body["series"]] == [[1.0, None], [1.0, None], [None, 2.0]]
    rows = client.get("/api/timeseries", params={**params, "format": "csv"}).text.splitlines()
    assert rows[2].split(",")[-1] == ""  # member 0 at 12 h: an empty field
    # A map at 12 h without a member draws member 3, the one holding data then.
    info = client.get("/wms", params={
        "request": "GetFeatureInfo", "layers": "ragged.x", "query_layers": "ragged.x",
        "crs": "CRS:84", "bbox": "-0.5,-0.5,1.5,1.5", "width": "2", "height": "2", "i": "0",
        "j": "0", "info_format": "application/json", "time": "2026-01-01T12:00:00Z"}).json()
    assert info["features"][0]["properties"]["member"] == 3
    assert info["features"][0]["properties"]["value"] == 2.0


def test_per_run_dimensions_validate_against_the_ogc_schema(client: AppClient) -> None:
    os.environ["XML_CATALOG_FILES"] = str(SCHEMAS / "catalog.xml")
    schema = etree.XMLSchema(etree.parse(str(SCHEMAS / "sld/1.1.0/sld_capabilities.xsd")))
    document = etree.fromstring(client.get("/wms", params={
        "request": "GetCapabilities", "layers": LAYER, **ALL_RUNS}).content)
    assert schema.validate(document), schema.error_log
