"""WMTS GetFeatureInfo of the real service: the WMS GetFeatureInfo of the tile's bbox at pixel
(I, J), by KVP and by the RESTful templates of the capabilities, with OWS errors."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pyproj
import pytest
from lxml import etree
from owslib.wmts import WebMapTileService

from fewsmap.ogc.featureinfo import OFFERED_INFO_FORMATS
from fewsmap.ogc.tiles import TileAddress
from tests.live_server import live_server
from tests.synthetic import T0, lonlat_store

# OWSLib 0.35 tests the truth of lxml elements when it reads <Current> (its bug, not ours).
pytestmark = pytest.mark.filterwarnings("ignore:Truth-testing of elements:FutureWarning")
OWS = "{http://www.opengis.net/ows/1.1}"
XLINK = "{http://www.w3.org/1999/xlink}"
TO_LONLAT = pyproj.Transformer.from_crs("EPSG:3857", "EPSG:4326", always_xy=True)
TILE = TileAddress(4, 8, 5)  # lon 0..22.5, lat 41..55.8: inside the 1° grid -20..40, 30..60
RUN = f"{T0}Z"
LATER = f"{T0 + np.timedelta64(6, 'h')}Z"


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    stores = tmp_path_factory.mktemp("wmts-featureinfo") / "stores"
    lonlat_store(stores / "grid.zarr")
    # Two times of one variable exceed it: the limit of WMS GetFeatureInfo applies too.
    with live_server("--stores", str(stores), env={"FEWSMAP_MAX_POINT_VALUES": "1"}) as base:
        yield base


@pytest.fixture(scope="module")
def wmts(url: str) -> WebMapTileService:
    return WebMapTileService(f"{url}/wmts", timeout=60)


def kvp(url: str, layer: str = "grid.lat", pixel: tuple[str, str] = ("100", "37"),
        infoformat: str = "application/json", **extra: str) -> httpx.Response:
    return httpx.get(f"{url}/wmts", timeout=30, params={
        "service": "WMTS", "request": "GetFeatureInfo", "version": "1.0.0", "layer": layer,
        "style": "default", "format": "image/png", "tilematrixset": "WebMercatorQuad",
        "tilematrix": str(TILE.z), "tilerow": str(TILE.y), "tilecol": str(TILE.x),
        "i": pixel[0], "j": pixel[1], "infoformat": infoformat, **extra})


def wms(url: str, layer: str, pixel: tuple[int, int], **extra: str) -> httpx.Response:
    return httpx.get(f"{url}/wms", timeout=30, params={
        "service": "WMS", "version": "1.3.0", "request": "GetFeatureInfo", "layers": layer,
        "query_layers": layer, "styles": "", "crs": "EPSG:3857",
        "bbox": ",".join(repr(v) for v in TILE.bbox), "width": "256", "height": "256",
        "i": str(pixel[0]), "j": str(pixel[1]), "info_format": "application/json", **extra})


def properties(response: httpx.Response) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    return [feature["properties"] for feature in response.json()["features"]]


def cell_under(pixel: tuple[int, int]) -> tuple[float, float]:
    """Longitude and latitude of the 1° cell under the centre of a pixel of `TILE`."""
    west, south, east, north = TILE.bbox
    x = west + (pixel[0] + 0.5) * (east - west) / 256
    y = north - (pixel[1] + 0.5) * (north - south) / 256
    lon, lat = TO_LONLAT.transform(x, y)
    return float(np.round(lon)), float(np.round(lat))


@pytest.mark.parametrize("pixel", [(0, 0), (255, 255), (100, 37), (17, 200), (255, 0)])
def test_the_value_is_the_wms_featureinfo_and_the_cubes_value(url: str,
                                                               pixel: tuple[int, int]) -> None:
    lon, lat = cell_under(pixel)
    for layer, expected in (("grid.lon", lon), ("grid.lat", lat)):
        [by_wmts] = properties(kvp(url, layer, (str(pixel[0]), str(pixel[1]))))
        [by_wms] = properties(wms(url, layer, pixel))
        assert by_wmts == by_wms
        assert (by_wmts["value"], by_wmts["lon"], by_wmts["lat"]) == (expected, lon, lat)


def test_dimensions_are_those_of_gettile(url: str) -> None:
    [at_time] = properties(kvp(url, Time=LATER, Run=RUN))
    assert (at_time["time"], at_time["reference_time"]) == (LATER, RUN)
    [default] = properties(kvp(url, Time="default", Run="latest"))
    assert default["reference_time"] == RUN


def test_capabilities_offer_featureinfo_and_owslib_reads_them(wmts: WebMapTileService,
                                                               url: str) -> None:
    layer = wmts.contents["grid.lat"]
    assert layer.infoformats == list(OFFERED_INFO_FORMATS)
    templates = {r["format"]: r["template"] for r in layer.resourceURLs
                 if r["resourceType"] == "FeatureInfo"}
    assert set(templates) == set(OFFERED_INFO_FORMATS)
    assert templates["application/json"].endswith(
        "/grid.lat/{Style}/{Time}/{Run}/{TileMatrixSet}/{TileMatrix}/{TileRow}/{TileCol}"
        "/{J}/{I}.json")
    encodings = {get["constraints"][0].values[0]: get["url"]
                 for get in wmts.getOperationByName("GetFeatureInfo").methods}
    assert encodings == {"KVP": f"{url}/wmts?", "RESTful": f"{url}/wmts/1.0.0/"}


@pytest.mark.parametrize("info_format", OFFERED_INFO_FORMATS)
def test_rest_templates_answer_as_kvp(wmts: WebMapTileService, url: str,
                                      info_format: str) -> None:
    [template] = [r["template"] for r in wmts.contents["grid.lat"].resourceURLs
                  if r["resourceType"] == "FeatureInfo" and r["format"] == info_format]
    filled = {"Style": "default", "Time": LATER, "Run": RUN, "TileMatrixSet": "WebMercatorQuad",
              "TileMatrix": str(TILE.z), "TileRow": str(TILE.y), "TileCol": str(TILE.x),
              "J": "37", "I": "100"}
    rest = httpx.get(template.format(**filled), timeout=30)
    by_kvp = kvp(url, infoformat=info_format, Time=LATER, Run=RUN)
    assert rest.status_code == by_kvp.status_code == 200, rest.text
    assert rest.headers["content-type"] == by_kvp.headers["content-type"]
    latitude = cell_under((100, 37))[1]
    assert rest.content == by_kvp.content and f"{latitude:g}".encode() in rest.content


def exception_code(response: httpx.Response) -> str:
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/xml"
    report = etree.fromstring(response.content)
    assert report.tag == f"{OWS}ExceptionReport"
    exception = report.find(f"{OWS}Exception")
    assert len(exception.findtext(f"{OWS}ExceptionText")) > 10
    return str(exception.get("exceptionCode"))


@pytest.mark.parametrize(("pixel", "extra", "code"), [
    (("256", "0"), {}, "PointIJOutOfRange"),
    (("0", "-1"), {}, "PointIJOutOfRange"),
    (("0", "x"), {}, "InvalidParameterValue"),
    (("", "0"), {}, "MissingParameterValue"),
    (("0", "0"), {"infoformat": "image/png"}, "InvalidParameterValue"),
    (("0", "0"), {"infoformat": ""}, "MissingParameterValue"),
    (("0", "0"), {"tilerow": "16"}, "TileOutOfRange"),
    (("0", "0"), {"Time": "all"}, "InvalidParameterValue"),  # 2 values > max_point_values
])
def test_kvp_errors_are_ows_exception_reports(url: str, pixel: tuple[str, str],
                                              extra: dict[str, str], code: str) -> None:
    assert exception_code(kvp(url, pixel=pixel, **extra)) == code


@pytest.mark.parametrize(("path", "code"), [
    ("0/256.json", "PointIJOutOfRange"),
    ("-3/0.json", "PointIJOutOfRange"),
    ("0/0.png", "InvalidParameterValue"),
    ("0/0.csv", "InvalidParameterValue"),
    ("0.json", "InvalidParameterValue"),
])
def test_rest_errors_are_ows_exception_reports(url: str, path: str, code: str) -> None:
    tile = f"{url}/wmts/1.0.0/grid.lat/default/{RUN}/latest/WebMercatorQuad/4/5/8"
    assert exception_code(httpx.get(f"{tile}/{path}", timeout=30)) == code
