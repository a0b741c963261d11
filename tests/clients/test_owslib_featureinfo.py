"""OWSLib's getfeatureinfo against the real service, in WMS 1.3.0 (I/J) and 1.1.1 (X/Y)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyproj
import pytest
import xarray as xr
from lxml import etree
from owslib.map.wms111 import WebMapService_1_1_1
from owslib.util import ServiceException
from owslib.wms import WebMapService

from fewsmap import open_cube

TIME = "2022-08-10T00:00:00Z"
LAYER = "naefs-mean.QTF"
SIZE = (97, 53)
BBOX = (-124.0, 25.0, -66.0, 53.0)  # lon/lat inside the NAEFS grid, as OWSLib takes it
TO_LONLAT = pyproj.Transformer.from_crs("EPSG:3857", "EPSG:4326", always_xy=True)
TO_MERCATOR = pyproj.Transformer.from_crs("EPSG:4326", "EPSG:3857", always_xy=True)


@pytest.fixture(scope="module")
def wms(base_url: str) -> WebMapService:
    return WebMapService(f"{base_url}/wms", version="1.3.0", timeout=60)


@pytest.fixture(scope="module")
def wms_111(base_url: str) -> WebMapService_1_1_1:
    # OWSLib's 1.1.1 client reads fewsmap's own 1.1.1 capabilities (VERSION=1.1.1).
    return WebMapService_1_1_1(f"{base_url}/wms", version="1.1.1", timeout=60)


@pytest.fixture(scope="module")
def naefs(demo_stores: Path) -> Iterator[xr.DataArray]:
    with open_cube(demo_stores / "naefs-mean.zarr") as cube:
        valid = cube["valid_time"].isel(forecast_reference_time=0).values.astype(
            "datetime64[s]")
        step = int(np.flatnonzero(valid == np.datetime64(TIME.rstrip("Z"), "s"))[0])
        yield cube["QTF"].isel(forecast_reference_time=0, step=step).load()


def expected_at(field: xr.DataArray, lon: float, lat: float) -> tuple[float, float, float]:
    col = int(np.argmin(np.abs(field["longitude"].values - lon)))
    row = int(np.argmin(np.abs(field["latitude"].values - lat)))
    return (float(field.values[row, col]), float(field["longitude"][col]),
            float(field["latitude"][row]))


def centre(bbox: tuple[float, float, float, float], pixel: tuple[int, int]) -> tuple[float, float]:
    minx, miny, maxx, maxy = bbox
    return (minx + (pixel[0] + 0.5) * (maxx - minx) / SIZE[0],
            maxy - (pixel[1] + 0.5) * (maxy - miny) / SIZE[1])


def test_capabilities_say_queryable_and_list_the_formats(wms: WebMapService) -> None:
    assert wms[LAYER].queryable == 1
    operation = wms.getOperationByName("GetFeatureInfo")
    assert {"text/plain", "text/html", "application/json", "application/vnd.ogc.gml",
            "application/vnd.ogc.gml/3.1.1"} <= set(operation.formatOptions)
    assert operation.methods[0]["url"].endswith("/wms")


@pytest.mark.parametrize("srs", ["EPSG:4326", "CRS:84", "EPSG:3857"])
def test_getfeatureinfo_1_3_0(wms: WebMapService, naefs: xr.DataArray, srs: str) -> None:
    bbox = BBOX
    if srs == "EPSG:3857":
        (minx, maxx), (miny, maxy) = TO_MERCATOR.transform([BBOX[0], BBOX[2]],
                                                           [BBOX[1], BBOX[3]])
        bbox = (minx, miny, maxx, maxy)
    for pixel in [(0, 0), (48, 26), (96, 52), (70, 10)]:
        response = wms.getfeatureinfo(
            layers=[LAYER], styles=[""], srs=srs, bbox=bbox, size=SIZE, format="image/png",
            xy=pixel, info_format="application/json", time=TIME)
        assert "&i=" in wms.request and "&j=" in wms.request  # WMS 1.3.0 names
        assert response.info()["Content-Type"] == "application/json"
        (feature,) = json.loads(response.read())["features"]
        x, y = centre(bbox, pixel)
        lon, lat = TO_LONLAT.transform(x, y) if srs == "EPSG:3857" else (x, y)
        value, cell_lon, cell_lat = expected_at(naefs, lon, lat)
        assert np.float32(feature["properties"]["value"]) == np.float32(value)
        assert feature["geometry"]["coordinates"] == [cell_lon, cell_lat]
        assert feature["properties"]["time"] == TIME


def test_getfeatureinfo_1_1_1(wms_111: WebMapService_1_1_1, naefs: xr.DataArray) -> None:
    for pixel in [(0, 0), (48, 26), (96, 52)]:
        response = wms_111.getfeatureinfo(
            layers=[LAYER], styles=[""], srs="EPSG:4326", bbox=BBOX, size=SIZE,
            format="image/png", xy=pixel, info_format="application/json", time=TIME)
        assert "&x=" in wms_111.request and "&srs=" in wms_111.request  # WMS 1.1.1 names
        (feature,) = json.loads(response.read())["features"]
        value = expected_at(naefs, *centre(BBOX, pixel))[0]
        assert np.float32(feature["properties"]["value"]) == np.float32(value)
    text = wms_111.getfeatureinfo(layers=[LAYER], styles=[""], srs="EPSG:4326", bbox=BBOX,
                                  size=SIZE, format="image/png", xy=(48, 26),
                                  info_format="text/plain", time=TIME).read().decode()
    value = np.float32(expected_at(naefs, *centre(BBOX, (48, 26)))[0])
    assert f"value = {value!s}" in text.splitlines() and "pixel X=48, Y=26" in text


def test_gml_and_html_through_owslib(wms: WebMapService) -> None:
    for info_format in ("application/vnd.ogc.gml", "application/vnd.ogc.gml/3.1.1",
                        "text/html"):
        response = wms.getfeatureinfo(layers=[LAYER], styles=[""], srs="CRS:84", bbox=BBOX,
                                      size=SIZE, format="image/png", xy=(48, 26),
                                      info_format=info_format, time=TIME)
        assert response.info()["Content-Type"].startswith(info_format)
        etree.fromstring(response.read())  # well-formed


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"xy": (97, 10)}, "InvalidPoint"),
        ({"layers": ["naefs-mean"], "query_layers": ["naefs-mean"]}, "LayerNotQueryable"),
        ({"query_layers": ["naefs-mean.QPF"]}, "LayerNotDefined"),
        ({"info_format": "image/png"}, "InvalidFormat"),
        ({"srs": "EPSG:32632"}, "InvalidCRS"),
        ({"time": "2030-01-01T00:00:00Z"}, "InvalidDimensionValue"),
    ],
)
def test_errors_raise_service_exception(wms: WebMapService, change: dict[str, object],
                                        code: str) -> None:
    request: dict[str, object] = {
        "layers": [LAYER], "styles": [""], "srs": "CRS:84", "bbox": BBOX, "size": SIZE,
        "format": "image/png", "xy": (10, 10), "info_format": "application/json"}
    with pytest.raises(ServiceException) as raised:
        wms.getfeatureinfo(**{**request, **change})
    assert f'code="{code}"' in str(raised.value)
