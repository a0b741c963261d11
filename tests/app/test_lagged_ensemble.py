"""A lagged ensemble: every document lists, per run, only the valid times and members holding
data, and defaults point at data (issue #13 item 7).

The store (`tests.synthetic.lagged_ensemble_store`): 8 runs of a 20-step, 28-member cube,
each filling 7 members at 3 steps, and a variable present at one step of each run.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import httpx
import numpy as np
import pytest
from lxml import etree
from PIL import Image

from fewsmap.app.server import create_app
from fewsmap.products.ensemble import listed_statistics
from fewsmap.settings import Settings
from fewsmap.time.instants import format_time
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


def member_values(k: int) -> list[str]:
    """What capabilities list as ensemble member values: the run's members, then the
    ensemble statistics over them (issue #15)."""
    return [*member_ids(k), *listed_statistics()]


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
        assert entry["ensembles"][0]["ensembleMemberIds"] == member_values(k)
        assert [g["ensembleMemberId"] for g in entry["keywordList"]] == member_ids(k)
        assert layers[run_id(SNOW, k)]["times"] == held_times(k, lagged_steps(k)[1:2])
    latest = layers[LAYER]
    assert latest["times"] == held_times(LAGGED_RUNS - 1)
    assert latest["ensembles"][0]["ensembleMemberIds"] == member_values(LAGGED_RUNS - 1)


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
        assert own["ensemble_member"].text == ",".join(member_values(k))
        assert own["ensemble_member"].get("default") == member_ids(k)[0]
        assert dims[run_id(SNOW, k)]["time"].text == held_times(k, lagged_steps(k)[1:2])[0]
    base = dims[LAYER]["ensemble_member"]
    assert base.text == ",".join(member_values(LAGGED_RUNS - 1))
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
        *(str(m) for m in range(LAGGED_MEMBERS)),  # 8 runs × 7 members cover all 28
        *listed_statistics()]
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
            f"t2m_member_{m}" for m in [*lagged_members(k), *listed_statistics()])


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
    assert rows[2].split(",")[-2:] == ["", "1"]  # member 0 at 12 h: an empty value field
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


# --- TIME lists and ranges against the times holding data ------------------------------
RUN = 2  # holds data at steps 4, 5 and 6; step 0 (its own reference time) is empty
POSITION = f"/edr/collections/{LAYER}/instances/{format_time(lagged_run_time(RUN))}/position"
FRONTS = {  # every entry point taking a TIME list or range: (path, params, TIME's name)
    "getmap-reducer": ("/wms", {**MAP, "layers": run_id(LAYER, RUN), "reducer": "sum"}, "time"),
    "animation": ("/wms", {**MAP, "layers": run_id(LAYER, RUN), "format": "image/gif"},
                  "time"),
    "featureinfo": ("/wms", {
        "request": "GetFeatureInfo", "layers": run_id(LAYER, RUN),
        "query_layers": run_id(LAYER, RUN), "crs": "CRS:84", "bbox": "0,40,30,60",
        "width": "30", "height": "20", "i": "10", "j": "10",
        "info_format": "application/json"}, "time"),
    "tile-reducer": (f"/tiles/{run_id(LAYER, RUN)}/3/4/2.png", {"reducer": "sum"}, "time"),
    "edr-position": (POSITION, {"coords": "POINT(10 50)"}, "datetime"),
}


def served_times(front: str, response: httpx.Response) -> list[str]:
    """The valid times an answer of ``front`` covers, as it tells them."""
    assert response.status_code == 200, response.text
    if front == "featureinfo":
        return [f["properties"]["time"] for f in response.json()["features"]]
    if front == "edr-position":
        return list(response.json()["domain"]["axes"]["t"]["values"])
    return response.headers["x-fewsmap-valid-time"].replace("/", ",").split(",")


@pytest.mark.parametrize("front", FRONTS)
def test_a_listed_time_without_data_is_refused_naming_the_times_holding_data(
        client: AppClient, front: str) -> None:
    path, params, name = FRONTS[front]
    held, empty = held_times(RUN), held_times(RUN, [0])[0]
    for listed in (f"{held[0]},{empty}", f"{empty},{held[1]}", empty):
        response = client.get(path, params={**params, name: listed})
        assert response.status_code == 400, f"{front} {name}={listed}: {response.text[:200]}"
        assert b"InvalidDimensionValue" in response.content
        assert empty.encode() in response.content
        assert f"{held[0]}/{held[-1]}/P1D".encode() in response.content  # what holds data
    listed = ",".join(held[:2])
    assert served_times(front, client.get(path, params={**params, name: listed})) == held[:2]


@pytest.mark.parametrize("front", FRONTS)
def test_a_range_takes_the_times_holding_data_and_one_holding_none_is_refused(
        client: AppClient, front: str) -> None:
    path, params, name = FRONTS[front]
    held, cube = held_times(RUN), held_times(RUN, list(range(20)))
    response = client.get(path, params={**params, name: f"{cube[0]}/{cube[-1]}"})
    expected = [held[0], held[-1]] if front.endswith("reducer") else held
    assert served_times(front, response) == expected
    for empty in (f"{cube[0]}/{cube[3]}", f"{held[0]},{cube[8]}/{cube[-1]}"):
        response = client.get(path, params={**params, name: empty})
        assert response.status_code == 400, f"{front} {name}={empty}: {response.text[:200]}"
        assert b"InvalidDimensionValue" in response.content
        assert empty.split(",")[-1].encode() in response.content


def test_time_series_windows_take_the_times_holding_data(client: AppClient) -> None:
    cube = held_times(RUN, list(range(20)))
    params = {"layer": run_id(LAYER, RUN), "x": "10", "y": "50"}
    body = client.get("/api/timeseries", params={**params, "start": cube[0], "end": cube[-1]})
    assert body.status_code == 200, body.text
    assert [s["times"] for s in body.json()["series"]] == [held_times(RUN)]
    empty = client.get("/api/timeseries", params={**params, "start": cube[0], "end": cube[3]})
    assert empty.status_code == 400
    assert empty.json()["error"]["code"] == "InvalidDimensionValue"


def test_a_variable_at_one_step_refuses_the_other_listed_steps(client: AppClient) -> None:
    snow = held_times(RUN, lagged_steps(RUN)[1:2])[0]
    other = held_times(RUN)[0]  # t2m holds data then, snow does not
    response = client.get("/wms", params={**MAP, "layers": run_id(SNOW, RUN),
                                          "reducer": "max", "time": f"{snow},{other}"})
    assert response.status_code == 400
    assert f"TIME value {other} names no valid time".encode() in response.content
    assert f"holds data at 1 time: {snow}".encode() in response.content
