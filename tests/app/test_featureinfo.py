"""GetFeatureInfo of the real service over HTTP: values, pixel convention, formats, errors."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pyproj
import pytest
import xarray as xr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree
from lxml import html as lxml_html

from fewsmap import open_cube
from tests.live_server import live_server

SCHEMAS = Path(__file__).resolve().parent.parent / "schemas" / "ogc"
OGC = "{http://www.opengis.net/ogc}"
WMS = "{http://www.opengis.net/wms}"
GML = "{http://www.opengis.net/gml}"
FEWSMAP = "{urn:fewsmap:featureinfo}"
TO_LONLAT = pyproj.Transformer.from_crs("EPSG:3857", "EPSG:4326", always_xy=True)
TO_MERCATOR = pyproj.Transformer.from_crs("EPSG:4326", "EPSG:3857", always_xy=True)
MERC = 20037508.342789244 / 180
NAEFS_T0 = np.datetime64("2022-08-09T00:00:00", "s")


@pytest.fixture(scope="module")
def stores(point_stores: Path) -> Path:
    return point_stores


@pytest.fixture(scope="module")
def url(stores: Path) -> Iterator[str]:
    with live_server("--stores", str(stores)) as base:
        yield f"{base}/wms"


def get(url: str, **params: str) -> httpx.Response:
    return httpx.get(url, params={"service": "WMS", "request": "GetFeatureInfo", **params},
                     timeout=60)


def feature_info(url: str, layer: str, crs: str, bbox: tuple[float, ...], size: tuple[int, int],
                 pixel: tuple[int, int], version: str = "1.3.0", **extra: str) -> dict[str, Any]:
    """GetFeatureInfo as GeoJSON; 1.1.1 requests use SRS and X/Y."""
    names = ("srs", "x", "y") if version == "1.1.1" else ("crs", "i", "j")
    response = get(url, version=version, layers=layer, query_layers=layer, styles="",
                   bbox=",".join(repr(v) for v in bbox), width=str(size[0]),
                   height=str(size[1]), info_format="application/json",
                   **{names[0]: crs, names[1]: str(pixel[0]), names[2]: str(pixel[1])},
                   **extra)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    body: dict[str, Any] = response.json()
    assert body["type"] == "FeatureCollection"
    return body


def pixel_centre(bbox_east_north: tuple[float, float, float, float], size: tuple[int, int],
                 pixel: tuple[int, int]) -> tuple[float, float]:
    minx, miny, maxx, maxy = bbox_east_north
    return (minx + (pixel[0] + 0.5) * (maxx - minx) / size[0],
            maxy - (pixel[1] + 0.5) * (maxy - miny) / size[1])


def exception_code(response: httpx.Response) -> str:
    assert response.status_code == 400, response.text
    report = etree.fromstring(response.content)
    exception = report.find(f"{OGC}ServiceException")
    if exception is None:  # WMS 1.1.1 reports have no namespace
        exception = report.find("ServiceException")
    assert exception.text and len(exception.text) > 10
    return str(exception.get("code"))


@pytest.fixture(scope="module")
def naefs(ingested: Callable[[str], Path]) -> Iterator[xr.Dataset]:
    with open_cube(ingested("naefs")) as cube:
        yield cube.load()


def naefs_value(cube: xr.Dataset, lon: float, lat: float,
                when: np.datetime64) -> tuple[float, float, float]:
    """The cube's QTF at the cell nearest (lon, lat): value, cell lon, cell lat."""
    col = int(np.argmin(np.abs(cube["longitude"].values - lon)))
    row = int(np.argmin(np.abs(cube["latitude"].values - lat)))
    valid = cube["valid_time"].isel(forecast_reference_time=0).values.astype("datetime64[s]")
    step = int(np.flatnonzero(valid == when)[0])
    field = cube["QTF"].isel(forecast_reference_time=0, step=step)
    return (float(field.values[row, col]), float(cube["longitude"][col]),
            float(cube["latitude"][row]))


# (CRS, version, bbox as sent, bbox east/north); odd sizes keep pixel centres off cell edges.
# NAEFS cell centres: longitude −125..−65, latitude 24..54 (0.5°).
NAEFS_CASES = [
    ("EPSG:4326", "1.3.0", (25.0, -124.0, 53.0, -66.0), (-124.0, 25.0, -66.0, 53.0)),
    ("EPSG:4326", "1.1.1", (-124.0, 25.0, -66.0, 53.0), None),
    ("CRS:84", "1.3.0", (-124.0, 25.0, -66.0, 53.0), None),
    ("EPSG:3857", "1.3.0", (-124 * MERC, 2.9e6, -66 * MERC, 6.9e6), None),
    ("EPSG:3857", "1.1.1", (-124 * MERC, 2.9e6, -66 * MERC, 6.9e6), None),
]


@pytest.mark.parametrize(("crs", "version", "bbox", "east_north"), NAEFS_CASES)
def test_value_is_the_cubes_value_at_the_cell(url: str, naefs: xr.Dataset, crs: str,
                                              version: str, bbox: tuple[float, ...],
                                              east_north: tuple[float, ...] | None) -> None:
    size, when = (97, 53), np.datetime64("2022-08-10T00:00:00", "s")
    for pixel in [(0, 0), (48, 26), (96, 52), (13, 40), (80, 5)]:
        body = feature_info(url, "naefs.QTF", crs, bbox, size, pixel, version,
                            time="2022-08-10T00:00:00Z")
        (feature,) = body["features"]
        x, y = pixel_centre(east_north or bbox, size, pixel)  # type: ignore[arg-type]
        lon, lat = TO_LONLAT.transform(x, y) if crs == "EPSG:3857" else (x, y)
        expected, cell_lon, cell_lat = naefs_value(naefs, lon, lat, when)
        properties = feature["properties"]
        assert np.float32(properties["value"]) == np.float32(expected)
        assert feature["geometry"] == {"type": "Point", "coordinates": [cell_lon, cell_lat]}
        assert (properties["lon"], properties["lat"]) == (cell_lon, cell_lat)
        assert properties["time"] == "2022-08-10T00:00:00Z"
        assert properties["reference_time"] == "2022-08-09T00:00:00Z"
        assert properties["lead_time"] == "P1D"
        assert properties["units"] == "degC" and properties["variable"] == "QTF"
        assert body["query"]["x"] == pytest.approx(x) and body["query"]["y"] == pytest.approx(y)


@pytest.mark.parametrize(("crs", "version", "bbox"), [
    ("CRS:84", "1.3.0", (-20.9, 29.9, 40.1, 60.9)),
    ("EPSG:4326", "1.3.0", (29.9, -20.9, 60.9, 40.1)),  # latitude first
    ("EPSG:4326", "1.1.1", (-20.9, 29.9, 40.1, 60.9)),
])
def test_pixel_origin_is_top_left_and_the_point_is_its_centre(
        url: str, crs: str, version: str, bbox: tuple[float, ...]) -> None:
    """1° pixels offset by 0.9°: pixel (I, J) covers lon −20.9+I.., lat ..60.9−J.

    Its centre (−20.4+I, 60.4−J) lies in the cell (−20+I, 60−J); the pixel's corner would
    give (−21+I, 61−J) and a bottom-left origin latitude 30+J.
    """
    size = (61, 31)
    for i, j in [(0, 0), (60, 30), (1, 0), (0, 1), (25, 12), (60, 0), (0, 30)]:
        for variable, expected in (("lon", -20 + i), ("lat", 60 - j)):
            body = feature_info(url, f"grid.{variable}", crs, bbox, size, (i, j), version)
            (feature,) = body["features"]
            assert feature["properties"]["value"] == expected
            assert feature["properties"]["row"] == j and feature["properties"]["col"] == i


def test_pixel_centre_in_web_mercator(url: str) -> None:
    bbox, size = (-10 * MERC, 4.0e6, 30 * MERC, 8.0e6), (37, 29)
    for pixel in [(0, 0), (36, 28), (17, 9)]:
        x, y = pixel_centre(bbox, size, pixel)
        lon, lat = TO_LONLAT.transform(x, y)
        for variable, expected in (("lon", round(lon)), ("lat", round(lat))):
            body = feature_info(url, f"grid.{variable}", "EPSG:3857", bbox, size, pixel)
            assert body["features"][0]["properties"]["value"] == expected


def test_every_info_format_parses(url: str, naefs: xr.Dataset) -> None:
    params = {"version": "1.3.0", "layers": "naefs.QTF", "query_layers": "naefs.QTF",
              "crs": "CRS:84", "bbox": "-129,21,-61,57", "width": "97", "height": "53",
              "i": "48", "j": "26", "time": "2022-08-10T00:00:00Z"}
    x, y = pixel_centre((-129, 21, -61, 57), (97, 53), (48, 26))
    expected, lon, lat = naefs_value(naefs, x, y, np.datetime64("2022-08-10T00:00", "s"))
    text_value = str(np.float32(expected))  # the shortest decimal that reads back

    plain = get(url, **params)  # text/plain is the default
    assert plain.headers["content-type"] == "text/plain; charset=utf-8"
    lines = plain.text.splitlines()
    assert f"value = {text_value}" in lines and "layer = naefs.QTF" in lines
    assert "time = 2022-08-10T00:00:00Z" in lines

    page = get(url, **params, info_format="text/html")
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    document = etree.fromstring(page.content)  # well-formed XHTML
    cells = document.findall(".//{http://www.w3.org/1999/xhtml}td")
    assert cells[-1].text == text_value and cells[0].text == "2022-08-10T00:00:00Z"
    tree = lxml_html.fromstring(page.content)
    assert tree.xpath("//table//td")[-1].text_content() == text_value

    for info_format, gml3 in (("application/vnd.ogc.gml", False),
                              ("application/vnd.ogc.gml/3.1.1", True),
                              ("text/xml", True)):
        response = get(url, **params, info_format=info_format)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith(info_format)
        root = etree.fromstring(response.content)
        assert root.tag == "{http://www.opengis.net/wfs}FeatureCollection"
        (member,) = root.findall(f"{GML}featureMember")
        feature = member[0]
        assert np.float32(feature.findtext(f"{FEWSMAP}value")) == np.float32(expected)
        assert feature.findtext(f"{FEWSMAP}layer") == "naefs.QTF"
        if gml3:
            assert feature.get(f"{GML}id") == "f1"
            assert feature.findtext(f".//{GML}pos") == f"{lon!r} {lat!r}"
        else:
            assert feature.get("fid") == "f1"
            assert feature.findtext(f".//{GML}coordinates") == f"{lon!r},{lat!r}"

    for info_format in ("application/json", "application/geo+json",
                        "application/json; charset=utf-8"):
        response = get(url, **params, info_format=info_format)
        assert response.headers["content-type"] == info_format.split(";")[0]
        assert np.float32(response.json()["features"][0]["properties"]["value"]) == np.float32(
            expected)


def test_time_all_list_range_and_feature_count(url: str, naefs: xr.Dataset) -> None:
    base = dict(layer="naefs.QTF", crs="CRS:84", bbox=(-129.0, 21.0, -61.0, 57.0),
                size=(97, 53), pixel=(48, 26))
    x, y = pixel_centre((-129, 21, -61, 57), (97, 53), (48, 26))
    valid = naefs["valid_time"].isel(forecast_reference_time=0).values.astype("datetime64[s]")
    body = feature_info(url, **base, time="all")  # type: ignore[arg-type]
    features = body["features"]
    assert len(features) == 64
    for feature, when in zip(features, valid, strict=True):
        assert feature["properties"]["time"] == f"{when}Z"
        expected = naefs_value(naefs, x, y, when)[0]
        assert np.float32(feature["properties"]["value"]) == np.float32(expected)
    assert [f["properties"]["lead_time"] for f in features[:5]] == [
        "PT6H", "PT12H", "PT18H", "P1D", "P1DT6H"]
    assert len({f["id"] for f in features}) == 64

    limited = feature_info(url, **base, time="all", feature_count="5")  # type: ignore[arg-type]
    assert [f["properties"]["time"] for f in limited["features"]] == [
        f"{t}Z" for t in valid[:5]]
    window = feature_info(url, **base,  # type: ignore[arg-type]
                          time="2022-08-10T00:00:00Z/2022-08-11T00:00:00Z")
    assert len(window["features"]) == 5
    listed = feature_info(url, **base,  # type: ignore[arg-type]
                          time="2022-08-12T06:00:00Z,2022-08-10T00:00:00Z")
    assert [f["properties"]["time"] for f in listed["features"]] == [
        "2022-08-10T00:00:00Z", "2022-08-12T06:00:00Z"]
    lead = feature_info(url, **base, dim_lead_time="P1D")  # type: ignore[arg-type]
    assert [f["properties"]["time"] for f in lead["features"]] == ["2022-08-10T00:00:00Z"]
    default = feature_info(url, **base)  # type: ignore[arg-type]
    # The run lies in the past: the default is its first step, as for GetMap.
    assert [f["properties"]["time"] for f in default["features"]] == [f"{valid[0]}Z"]


def test_off_the_grid_and_missing_values_are_null(url: str) -> None:
    body = feature_info(url, "grid.lon", "CRS:84", (-60.0, 0.0, 80.0, 80.0), (140, 80),
                        (2, 2))  # lon −57.5: far west of the grid
    (feature,) = body["features"]
    assert feature["geometry"] is None
    assert feature["properties"]["value"] is None and feature["properties"]["row"] is None
    plain = get(url, version="1.3.0", layers="grid.lon", query_layers="grid.lon",
                crs="CRS:84", bbox="-60,0,80,80", width="140", height="80", i="2", j="2")
    assert "value = no data" in plain.text.splitlines()
    # GEFS downward short-wave radiation has no field at lead time 0 (it is accumulated):
    # capabilities leave that time out, and a time list naming it is refused rather than
    # answered without it in silence (issue #13 item 7); a range takes the times with data.
    listed = get(url, version="1.3.0", layers="gefs.dswrf", query_layers="gefs.dswrf",
                 crs="CRS:84", bbox="-110.75,31.25,-109.25,32.75", width="3", height="3",
                 i="1", j="1", info_format="application/json",
                 time="2019-05-15T00:00:00Z,2019-05-15T03:00:00Z")
    assert listed.status_code == 400
    assert "TIME value 2019-05-15T00:00:00Z names no valid time" in listed.text
    ranged = feature_info(url, "gefs.dswrf", "CRS:84", (-110.75, 31.25, -109.25, 32.75),
                          (3, 3), (1, 1), time="2019-05-15T00:00:00Z/2019-05-15T03:00:00Z")
    assert [f["properties"]["time"] for f in ranged["features"]] == ["2019-05-15T03:00:00Z"]
    assert isinstance(ranged["features"][0]["properties"]["value"], float)


def test_members_levels_vectors_and_runs(url: str, ingested: Callable[[str], Path]) -> None:
    with open_cube(ingested("gefs")) as cube:
        members = list(cube["realization"].values)
        field = cube["t2m"].isel(forecast_reference_time=0, step=4,
                                 realization=members.index(5))
        expected = float(field.sel(latitude=32.0, longitude=-110.0).values)
    body = feature_info(url, "gefs.t2m", "CRS:84", (-110.75, 31.25, -109.25, 32.75),
                        (3, 3), (1, 1), time="2019-05-15T12:00:00Z", dim_ensemble_member="5",
                        useDisplayUnits="false")  # the stored K, not °C
    properties = body["features"][0]["properties"]
    assert properties["member"] == 5 and np.float32(properties["value"]) == np.float32(expected)

    with open_cube(ingested("multi_param")) as cube:
        expected = float(cube["t"].isel(forecast_reference_time=0, step=0).sel(
            isobaricInhPa=500, latitude=50.0, longitude=10.0).values)
    body = feature_info(url, "multi_param.t", "CRS:84", (9.0, 49.0, 11.0, 51.0), (3, 3),
                        (1, 1), elevation="500", time="2018-04-04T12:00:00Z",
                        useDisplayUnits="false")
    properties = body["features"][0]["properties"]
    assert properties["elevation"] == 500 and properties["elevation_units"] == "hPa"
    assert np.float32(properties["value"]) == np.float32(expected)

    body = feature_info(url, "grid.u-v", "CRS:84", (9.5, 44.5, 10.5, 45.5), (1, 1), (0, 0))
    properties = body["features"][0]["properties"]
    assert properties["components"] == {"u": 10.0, "v": 45.0}
    assert properties["value"] == pytest.approx(np.hypot(10.0, 45.0), rel=1e-6)

    run_id = "fmat.t-2022-06-01T06:00:00Z"
    body = feature_info(url, run_id, "CRS:84", (-79.0, 39.0, -77.0, 41.0), (5, 5), (2, 2))
    properties = body["features"][0]["properties"]
    assert properties["layer"] == run_id
    assert properties["reference_time"] == "2022-06-01T06:00:00Z"
    assert properties["time"] == "2022-06-01T18:00:00Z" and properties["lead_time"] == "PT12H"


def test_group_layers_are_queried_by_name(url: str) -> None:
    response = get(url, version="1.3.0", layers="grid", query_layers="grid.lon,grid.lat",
                   crs="CRS:84", bbox="9.5,44.5,10.5,45.5", width="1", height="1", i="0",
                   j="0", info_format="application/json")
    assert response.status_code == 200, response.text
    values = {f["properties"]["layer"]: f["properties"]["value"]
              for f in response.json()["features"]}
    assert values == {"grid.lon": 10.0, "grid.lat": 45.0}
    # A run of the layer drawn may be queried by its per-run id.
    response = get(url, version="1.3.0", layers="fmat.t",
                   query_layers="fmat.t-2022-06-01T12:00:00Z", crs="CRS:84",
                   bbox="-79,39,-77,41", width="5", height="5", i="2", j="2",
                   info_format="application/json")
    assert response.status_code == 200, response.text
    (feature,) = response.json()["features"]
    assert feature["properties"]["reference_time"] == "2022-06-01T12:00:00Z"


def test_fews_path_answers_too(url: str) -> None:
    fews = url.replace("/wms", "/FewsWebServices/wms")
    body = feature_info(fews, "grid.lat", "CRS:84", (9.5, 44.5, 10.5, 45.5), (1, 1), (0, 0))
    assert body["features"][0]["properties"]["value"] == 45.0


BASE = {"version": "1.3.0", "layers": "grid.lon", "query_layers": "grid.lon", "crs": "CRS:84",
        "bbox": "-20,30,40,60", "width": "60", "height": "30", "i": "10", "j": "10"}


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"i": "60"}, "InvalidPoint"),
        ({"j": "-1"}, "InvalidPoint"),
        ({"i": "ten"}, "InvalidPoint"),
        ({"i": "2.5"}, "InvalidPoint"),
        ({"version": "1.1.1", "srs": "CRS:84", "crs": "", "x": "0", "y": "30"}, "InvalidPoint"),
        ({"query_layers": "grid"}, "LayerNotQueryable"),
        ({"layers": "grid", "query_layers": "grid"}, "LayerNotQueryable"),
        ({"query_layers": "nope"}, "LayerNotDefined"),
        ({"query_layers": "grid.lat"}, "LayerNotDefined"),  # not among LAYERS
        ({"layers": "nope", "query_layers": "nope"}, "LayerNotDefined"),
        ({"info_format": "image/png"}, "InvalidFormat"),
        ({"crs": "EPSG:32632"}, "InvalidCRS"),
        ({"version": "1.1.1", "srs": "EPSG:32632", "crs": ""}, "InvalidSRS"),
        ({"styles": "fancy"}, "StyleNotDefined"),
        ({"time": "2026-01-02T00:00:00Z"}, "InvalidDimensionValue"),
        ({"time": "2030-01-01/2030-02-01"}, "InvalidDimensionValue"),
        ({"time": "yesterday"}, "InvalidDimensionValue"),
        ({"externalForecastTime": "2025-01-01T00:00:00Z"}, "InvalidDimensionValue"),
        ({"bbox": "10,0,0,10"}, "InvalidParameterValue"),
        ({"bbox": "-1e308,-1e308,1e308,1e308", "info_format": "application/json"},
         "InvalidParameterValue"),  # a size that overflows
        ({"width": "2000", "height": "1153"}, "InvalidParameterValue"),
        ({"query_layers": ""}, "MissingParameterValue"),
        ({"i": ""}, "MissingParameterValue"),
        ({"bbox": ""}, "MissingParameterValue"),
    ],
)
def test_each_exception_code(url: str, params: dict[str, str], code: str) -> None:
    assert exception_code(get(url, **{**BASE, **params})) == code


def test_capabilities_advertise_queryable_layers_and_the_operation(url: str) -> None:
    os.environ["XML_CATALOG_FILES"] = str(SCHEMAS / "catalog.xml")
    schema = etree.XMLSchema(etree.parse(str(SCHEMAS / "sld/1.1.0/sld_capabilities.xsd")))
    document = etree.fromstring(httpx.get(url, params={"request": "GetCapabilities"},
                                          timeout=60).content)
    assert schema.validate(document), schema.error_log
    request = document.find(f"{WMS}Capability/{WMS}Request")
    assert [child.tag.split("}")[1] for child in request][:3] == [
        "GetCapabilities", "GetMap", "GetFeatureInfo"]
    formats = [f.text for f in request.findall(f"{WMS}GetFeatureInfo/{WMS}Format")]
    assert formats == ["text/plain", "text/html", "application/json",
                       "application/vnd.ogc.gml", "application/vnd.ogc.gml/3.1.1"]
    groups = {"grid", "naefs", "fmat", "gefs", "multi_param"}
    named = 0
    for layer in document.iter(f"{WMS}Layer"):
        name = layer.findtext(f"{WMS}Name")
        if name is None or name in groups:  # the root and the groups are not queryable
            assert layer.get("queryable") is None, name
        else:
            named += 1
            assert layer.get("queryable") == "1", name
    assert named > 20


def test_json_body_is_plain_json(url: str) -> None:
    """No NaN or Infinity tokens, whatever the data (JSON has none)."""
    body = get(url, **{**BASE, "info_format": "application/json", "time": "all"}).text
    json.loads(body, parse_constant=lambda token: pytest.fail(f"non-JSON token {token}"))


HOSTILE_NAMES = ["layers", "query_layers", "styles", "crs", "srs", "bbox", "width", "height",
                 "i", "j", "x", "y", "info_format", "feature_count", "time", "elevation",
                 "dim_ensemble_member", "externalForecastTime", "dim_lead_time", "version",
                 "exceptions", "format"]
HOSTILE_VALUES = ["", "nan", "inf", "-1", "0", "1e309", "9" * 30, "2.5", "grid", "grid.lon",
                  "grid.u-v", "gefs.dswrf", "fmat.t-2022-06-01T06:00:00Z", "multi_param.t",
                  "EPSG:4326", "EPSG:3857", "CRS:84", "EPSG:999999", "-180,-90,180,90",
                  "0,0,0,0", "1,2,3", "all", "current", "2019-05-15T00:00:00Z/P1D",
                  "2022-08-09", "PT6H", "-P1D", "1.1.1", "text/html", "application/json",
                  "application/vnd.ogc.gml", "500", "5", "a" * 300, "\u202e\u0000"]


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(params=st.dictionaries(st.sampled_from(HOSTILE_NAMES),
                              st.one_of(st.sampled_from(HOSTILE_VALUES), st.text(max_size=40)),
                              max_size=6))
def test_no_featureinfo_request_gets_a_server_error(url: str, params: dict[str, str]) -> None:
    response = get(url, **{**BASE, **params})
    assert response.status_code < 500, response.text
    if response.status_code >= 400 and response.headers["content-type"] == "application/json":
        assert response.json()["error"]["message"]  # EXCEPTIONS=…json asked for JSON
    elif response.status_code >= 400:
        report = etree.fromstring(response.content)
        assert report.tag.endswith("ServiceExceptionReport")
