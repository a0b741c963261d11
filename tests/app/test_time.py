"""TIME, DIM_LEAD_TIME, DIM_REFERENCE_TIME, nearest matching and aggregates, over HTTP."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from lxml import etree

from fewsmap.ingest import ingest
from fewsmap.time.grammar import parse_time
from tests.conftest import sample_paths
from tests.live_server import live_server

WMS = "{http://www.opengis.net/wms}"
CONFIG = """
[service]
compact_time_axes = true

[catalog]
auto_layers = true

[[layers]]
id = "qtf-nearest"
store = "naefs"
variable = "QTF"
time_tolerance = "PT3H"

[[layers]]
id = "qpf-last"
store = "rain"
variable = "QPF"
[layers.defaults]
time = "last"
"""
NAEFS_BBOX = "-125,24,-65,54"


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("time")
    ingest(root / "stores" / "naefs.zarr", sample_paths("naefs"), progress=False)
    ingest(root / "stores" / "rain.zarr", sample_paths("naefs"), progress=False)
    ingest(root / "stores" / "fmat.zarr", sample_paths("fmat"), progress=False)
    (root / "fewsmap.toml").write_text(CONFIG)
    with live_server("--stores", str(root / "stores"), "--config",
                     str(root / "fewsmap.toml")) as base:
        yield f"{base}/wms"


def get_map(url: str, layer: str = "naefs.QPF", bbox: str = NAEFS_BBOX,
            **extra: str) -> httpx.Response:
    params = {"request": "GetMap", "version": "1.3.0", "layers": layer, "crs": "CRS:84",
              "bbox": bbox, "width": "120", "height": "60", **extra}
    return httpx.get(url, params=params, timeout=60)


def served(response: httpx.Response) -> str:
    assert response.status_code == 200, response.text
    return response.headers["x-fewsmap-valid-time"]


def code_of(response: httpx.Response) -> str:
    assert response.status_code == 400, response.text
    report = etree.fromstring(response.content)
    return str(report.find("{http://www.opengis.net/ogc}ServiceException").get("code"))


@pytest.mark.parametrize(("time", "expected"), [
    ("2022-08-09T12:00:00Z", "2022-08-09T12:00:00Z"),
    ("2022-08-09T12:00:00.000Z", "2022-08-09T12:00:00Z"),
    ("2022-08-09T14:00:00+02:00", "2022-08-09T12:00:00Z"),
    ("2022-08-09T12Z", "2022-08-09T12:00:00Z"),  # reduced precision, one step in that hour
    ("current", "2022-08-09T06:00:00Z"),  # the default: the run is in the past
])
def test_one_instant_in_any_form(url: str, time: str, expected: str) -> None:
    assert served(get_map(url, time=time)) == expected


@pytest.mark.parametrize("time", [
    "2022-08-09T06:00:00Z,2022-08-09T12:00:00Z",
    "2022-08-09T06:00:00Z/2022-08-10T00:00:00Z/PT6H",  # a period names its times
])
def test_several_named_times_are_refused_without_a_reducer(url: str, time: str) -> None:
    response = get_map(url, time=time)
    assert code_of(response) == "InvalidDimensionValue"
    assert "REDUCER" in response.text


@pytest.mark.parametrize(("time", "latest", "count"), [
    ("2022-08-09T06:00:00Z/2022-08-10T00:00:00Z", "2022-08-10T00:00:00Z", 4),
    ("2022-08-09", "2022-08-09T18:00:00Z", 3),  # reduced precision: the whole day
])
def test_a_range_without_a_reducer_draws_its_latest_time(url: str, time: str, latest: str,
                                                         count: int) -> None:
    # GeoServer's choice, which QGIS's temporal controller relies on (a frame is a range).
    response = get_map(url, time=time)
    assert served(response) == latest
    assert response.content == get_map(url, time=latest).content
    assert f"99 Latest of {count} valid times in the TIME range used: time={latest}" in \
        response.headers["warning"]


def test_a_range_with_a_reducer_renders_the_aggregate(url: str) -> None:
    window = "2022-08-09T06:00:00Z/2022-08-10T00:00:00Z"
    daily = get_map(url, time=window, reducer="sum")
    assert served(daily) == "2022-08-09T06:00:00Z/2022-08-10T00:00:00Z"
    as_style = get_map(url, time=window, styles="precipitation:sum")
    assert as_style.content == daily.content
    bare_style = get_map(url, time=window, styles="sum")
    assert bare_style.content == daily.content
    single = get_map(url, time="2022-08-09T06:00:00Z")
    assert daily.content != single.content
    periodic = get_map(url, time="2022-08-09T06:00:00Z/2022-08-10T00:00:00Z/PT12H",
                       reducer="max")
    assert served(periodic) == "2022-08-09T06:00:00Z/2022-08-09T18:00:00Z"
    assert code_of(get_map(url, time=window, reducer="median")) == "InvalidParameterValue"


def test_lead_time_and_reference_time_determine_the_valid_time(url: str) -> None:
    assert served(get_map(url, dim_lead_time="PT12H")) == "2022-08-09T12:00:00Z"
    agree = get_map(url, dim_lead_time="P1D", time="2022-08-10T00:00:00Z")
    assert served(agree) == "2022-08-10T00:00:00Z"
    assert code_of(get_map(url, dim_lead_time="P1D", time="2022-08-09T12:00:00Z")) == \
        "InvalidDimensionValue"
    fmat = get_map(url, "fmat.t", "-84,34,-69,46", dim_reference_time="2022-06-01T06:00:00Z",
                   dim_lead_time="PT12H")
    assert served(fmat) == "2022-06-01T18:00:00Z" and fmat.headers["x-fewsmap-run"] == \
        "2022-06-01T06:00:00Z"
    latest = get_map(url, "fmat.t", "-84,34,-69,46", dim_reference_time="current")
    assert latest.headers["x-fewsmap-run"] == "2022-06-01T18:00:00Z"
    assert code_of(get_map(url, dim_lead_time="P1M")) == "InvalidDimensionValue"


def test_nearest_matching_says_what_was_served(url: str) -> None:
    exact = get_map(url, "naefs.QPF", time="2022-08-09T07:00:00Z")
    assert code_of(exact) == "InvalidDimensionValue"  # exact by default
    near = get_map(url, "qtf-nearest", time="2022-08-09T07:00:00Z")
    assert served(near) == "2022-08-09T06:00:00Z"
    assert near.headers["warning"] == "99 Nearest value used: time=2022-08-09T06:00:00Z"
    assert near.content == get_map(url, "qtf-nearest", time="2022-08-09T06:00:00Z").content
    assert served(get_map(url, "qtf-nearest", time="2022-08-09T10:00:00Z")) == \
        "2022-08-09T12:00:00Z"
    assert "warning" not in get_map(url, "qtf-nearest", time="2022-08-09T12:00:00Z").headers
    assert code_of(get_map(url, "qtf-nearest", time="2022-09-01T00:00:00Z")) == \
        "InvalidDimensionValue"


def test_the_default_time_is_configurable_per_layer(url: str) -> None:
    assert served(get_map(url, "qpf-last")) == "2022-08-25T00:00:00Z"
    assert served(get_map(url, "qpf-last", time="current")) == "2022-08-25T00:00:00Z"
    body = httpx.get(url, params={"request": "GetCapabilities", "format": "application/json",
                                  "layers": "qpf-last", "onlyHeaders": "true"}, timeout=60)
    assert body.json()["layers"][0]["timesDefault"] == "2022-08-25T00:00:00Z"


def test_feature_info_says_when_a_nearest_time_was_served(url: str) -> None:
    params = {"request": "GetFeatureInfo", "version": "1.3.0", "layers": "qtf-nearest",
              "query_layers": "qtf-nearest", "crs": "CRS:84", "bbox": NAEFS_BBOX,
              "width": "120", "height": "60", "i": "60", "j": "30",
              "info_format": "application/json", "time": "2022-08-09T13:00:00Z"}
    response = httpx.get(url, params=params, timeout=60)
    assert response.status_code == 200, response.text
    assert response.headers["warning"] == "99 Nearest value used: time=2022-08-09T12:00:00Z"
    feature = response.json()["features"][0]["properties"]
    assert feature["time"] == "2022-08-09T12:00:00Z"  # the JSON echoes what was served


def test_capabilities_describe_the_time_dimension(url: str) -> None:
    xml = etree.fromstring(httpx.get(url, params={"request": "GetCapabilities"},
                                     timeout=60).content)
    dims = {layer.findtext(f"{WMS}Name"): {d.get("name"): d for d in
                                           layer.findall(f"{WMS}Dimension")}
            for layer in xml.iter(f"{WMS}Layer")}
    time = dims["naefs.QPF"]["time"]
    # Regular six-hourly axis, written compactly as configured ([service] compact_time_axes).
    assert time.text == "2022-08-09T06:00:00Z/2022-08-25T00:00:00Z/PT6H"
    assert parse_time(time.text).items[0].period is not None
    assert (time.get("multipleValues"), time.get("current"), time.get("nearestValue")) == \
        ("1", "1", "0")
    assert dims["qtf-nearest"]["time"].get("nearestValue") == "1"
    reference = dims["fmat.t"]["reference_time"]
    assert reference.text.count(",") == 3 and reference.get("default") == "2022-06-01T18:00:00Z"
