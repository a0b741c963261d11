"""Levels, members and required dimensions through GetMap and capabilities, over HTTP."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from lxml import etree

from fewsmap.ingest import ingest
from tests.conftest import sample_paths
from tests.live_server import live_server

WMS = "{http://www.opengis.net/wms}"
CONFIG = """
[catalog]
auto_layers = true

[[layers]]
id = "t-pick-a-level"
store = "ifs"
variable = "t"
[layers.defaults]
elevation = "required"
time = "required"

[[layers]]
id = "t-500"
store = "ifs"
variable = "t"
[layers.defaults]
elevation = 500
"""


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("dims")
    ingest(root / "stores" / "ifs.zarr", sample_paths("multi_param"), progress=False)
    ingest(root / "stores" / "ens.zarr", sample_paths("wgust"), progress=False)
    (root / "fewsmap.toml").write_text(CONFIG)
    with live_server("--stores", str(root / "stores"), "--config",
                     str(root / "fewsmap.toml")) as base:
        yield f"{base}/wms"


def get_map(url: str, layer: str, **extra: str) -> httpx.Response:
    params = {"request": "GetMap", "layers": layer, "crs": "CRS:84", "bbox": "-20,30,40,70",
              "width": "60", "height": "40", **extra}
    return httpx.get(url, params=params, timeout=60)


def code_of(response: httpx.Response) -> str:
    report = etree.fromstring(response.content)
    return str(report.find("{http://www.opengis.net/ogc}ServiceException").get("code"))


def test_capabilities_list_levels_and_members(url: str) -> None:
    body = httpx.get(url, params={"request": "GetCapabilities", "format": "application/json"},
                     timeout=60).json()
    layers = {layer["name"]: layer for layer in body["layers"]}
    assert "ifs.t" not in layers  # configured layers replace the automatic one
    assert layers["ifs.z"]["elevation"] == {
        "units": "hPa", "unitSymbol": "hPa", "lowerValue": 300.0, "upperValue": 1000.0,
        "irregularTicks": [300.0, 500.0, 850.0, 1000.0]}
    assert layers["ens.fg10_6"]["ensembles"][0]["ensembleMemberIds"][:3] == ["1", "2", "3"]
    xml = etree.fromstring(httpx.get(url, params={"request": "GetCapabilities"},
                                     timeout=60).content)
    dims = {layer.findtext(f"{WMS}Name"): {d.get("name"): d for d in
                                           layer.findall(f"{WMS}Dimension")}
            for layer in xml.iter(f"{WMS}Layer")}
    elevation = dims["ifs.z"]["elevation"]
    assert elevation.text == "300,500,850,1000" and elevation.get("default") == "1000"
    assert dims["t-500"]["elevation"].get("default") == "500"
    assert dims["t-pick-a-level"]["elevation"].get("default") is None
    assert dims["ens.fg10_6"]["ensemble_member"].get("default") == "1"


def test_elevation_selects_the_level(url: str) -> None:
    surface, upper = get_map(url, "ifs.z"), get_map(url, "ifs.z", elevation="300")
    assert surface.status_code == upper.status_code == 200
    assert surface.content != upper.content
    assert get_map(url, "ifs.z", elevation="1000").content == surface.content  # the default
    first_step = "2018-04-04T12:00:00Z"
    assert get_map(url, "t-500").content == get_map(
        url, "t-pick-a-level", elevation="500", time=first_step).content


@pytest.mark.parametrize("selector", [{"dim_ensemble_member": "fg10_6_7"},
                                      {"ensembleId": "fg10_6", "ensembleMemberId": "7"},
                                      {"dim_realization": "7"}])
def test_members_by_every_fews_and_ogc_spelling(url: str, selector: dict[str, str]) -> None:
    member_7 = get_map(url, "ens.fg10_6", **selector)
    assert member_7.status_code == 200
    assert member_7.content != get_map(url, "ens.fg10_6").content  # default: member 1
    assert member_7.content == get_map(url, "ens.fg10_6", dim_ensemble_member="x_7").content


@pytest.mark.parametrize(
    ("layer", "extra", "code"),
    [
        ("ifs.z", {"elevation": "700"}, "InvalidDimensionValue"),
        ("ifs.z", {"elevation": "high"}, "InvalidDimensionValue"),
        ("ens.fg10_6", {"dim_ensemble_member": "fg10_6_99"}, "InvalidDimensionValue"),
        ("ens.fg10_6", {"dim_ensemble_member": "fg10_6_x"}, "InvalidDimensionValue"),
        ("t-pick-a-level", {"time": "2018-04-04T12:00:00Z"}, "MissingDimensionValue"),
        ("t-pick-a-level", {"elevation": "850"}, "MissingDimensionValue"),
    ],
)
def test_dimension_errors(url: str, layer: str, extra: dict[str, str], code: str) -> None:
    response = get_map(url, layer, **extra)
    assert response.status_code == 400
    assert code_of(response) == code


def test_a_required_dimension_given_renders(url: str) -> None:
    response = get_map(url, "t-pick-a-level", elevation="850", time="2018-04-05T00:00:00Z")
    assert response.status_code == 200 and response.headers["x-fewsmap-valid-time"] == \
        "2018-04-05T00:00:00Z"


def test_ensemble_keywords_repeat_per_member_as_fews_does(url: str) -> None:
    body = httpx.get(url, params={"request": "GetCapabilities", "format": "application/json",
                                  "layers": "ens.fg10_6"}, timeout=60).json()
    groups = body["layers"][0]["keywordList"]
    assert [g["ensembleMemberId"] for g in groups] == [str(m) for m in range(1, 51)]
    assert {g["ensembleId"] for g in groups} == {"fg10_6"}
    assert all(g["parameterId"] == "fg10_6" and g["forecastTime"] for g in groups)
    xml = etree.fromstring(httpx.get(url, params={"request": "GetCapabilities",
                                                  "layers": "ens.fg10_6"}, timeout=60).content)
    words = [k.text for k in xml.iter(f"{WMS}Keyword")]
    assert words[:6] == ["parameterId=fg10_6", "locationId=ens", "moduleInstanceId=fewsmap",
                         "timeSeriesType=EXTERNAL_FORECASTING", "ensembleId=fg10_6",
                         "ensembleMemberId=1"]
    assert words.count("parameterId=fg10_6") == 50


def test_a_dimension_the_layer_lacks_is_ignored(url: str) -> None:
    # WMS 1.3.0 Annex C.4.1: a request naming a dimension the layer does not have is served
    # as if it had not named it (it was a 400 "not a number" for a value like this one).
    plain = get_map(url, "ens.fg10_6")
    for extra in ({"dim_scenario": "worst"}, {"dim_scenario": "3"}, {"DIM_FOO": "x"}):
        response = get_map(url, "ens.fg10_6", **extra)
        assert response.status_code == 200, response.text
        assert response.content == plain.content
