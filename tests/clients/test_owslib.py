"""OWSLib, the Python OGC client, reads fewsmap's WMS 1.3.0 capabilities and maps."""

from __future__ import annotations

import io
from pathlib import Path

import httpx
import numpy as np
import pyproj
import pytest
from owslib.util import ServiceException
from owslib.wms import WebMapService
from PIL import Image

from tests.clients.conftest import DATA_LAYERS, NAEFS_EDGES, latest_valid_times

MERCATOR = pyproj.Transformer.from_crs("EPSG:3857", "EPSG:4326", always_xy=True)
SIZE = (280, 160)
TIME = "2022-08-10T00:00:00Z"


@pytest.fixture(scope="module")
def wms(base_url: str) -> WebMapService:
    return WebMapService(f"{base_url}/wms", version="1.3.0", timeout=60)


def get_map(wms: WebMapService, srs: str, bbox: tuple[float, float, float, float],
            **extra: object) -> tuple[np.ndarray, dict[str, str]]:
    """OWSLib's getmap of naefs-mean.QTF as RGBA pixels, plus the response headers."""
    response = wms.getmap(layers=["naefs-mean.QTF"], styles=[""], srs=srs, bbox=bbox,
                          size=SIZE, format="image/png", **extra)
    headers = dict(response.info())
    assert headers["content-type"] == "image/png"
    image = Image.open(io.BytesIO(response.read()))
    assert image.size == SIZE
    return np.asarray(image.convert("RGBA")), headers


def pixel_centres(bbox: tuple[float, float, float, float]) -> tuple[np.ndarray, np.ndarray]:
    """x and y of every pixel centre of a SIZE image of bbox (east/north order)."""
    width, height = SIZE
    minx, miny, maxx, maxy = bbox
    x = minx + (np.arange(width) + 0.5) * (maxx - minx) / width
    y = maxy - (np.arange(height) + 0.5) * (maxy - miny) / height
    xx, yy = np.meshgrid(x, y)
    return xx, yy


def assert_data_exactly_on_the_grid(alpha: np.ndarray, lon: np.ndarray, lat: np.ndarray,
                                    margin: float) -> None:
    """Opaque on the naefs grid, transparent off it (margin: a pixel plus rounding, degrees)."""
    west, south, east, north = NAEFS_EDGES
    inside = (lon > west + margin) & (lon < east - margin) & (lat > south + margin) & (
        lat < north - margin)
    outside = (lon < west - margin) | (lon > east + margin) | (lat < south - margin) | (
        lat > north + margin)
    assert inside.mean() > 0.3 and outside.mean() > 0.1  # the test itself is meaningful
    assert (alpha[inside] == 255).all(), "every pixel on the grid shows data"
    assert (alpha[outside] == 0).all(), "every pixel off the grid is transparent"


def test_service_and_operations(wms: WebMapService) -> None:
    assert wms.identification.type == "WMS" and wms.identification.version == "1.3.0"
    assert wms.identification.title
    operations = {op.name for op in wms.operations}
    assert {"GetCapabilities", "GetMap"} <= operations
    assert "image/png" in wms.getOperationByName("GetMap").formatOptions
    get_map_url = wms.getOperationByName("GetMap").methods[0]["url"]
    assert get_map_url.endswith("/wms")


def test_layers_crs_and_bounding_boxes(wms: WebMapService) -> None:
    assert set(DATA_LAYERS) <= set(wms.contents)
    for name in DATA_LAYERS:
        layer = wms[name]
        assert layer.title
        assert {"EPSG:3857", "EPSG:4326", "CRS:84"} <= set(layer.crsOptions)
        west, south, east, north = layer.boundingBoxWGS84
        assert -180 <= west < east <= 180 and -90 <= south < north <= 90
        # OWSLib turns the EPSG:4326 box back to east/north: it must equal the CRS:84 box,
        # which holds only if the server wrote it latitude first (WMS 1.3.0 axis order).
        boxes = {box[4]: box[:4] for box in layer.crs_list}
        assert boxes["EPSG:4326"] == pytest.approx(boxes["CRS:84"])
        assert boxes["CRS:84"] == pytest.approx(layer.boundingBoxWGS84)
    assert wms["naefs-mean.QTF"].boundingBoxWGS84 == pytest.approx(NAEFS_EDGES)


def test_time_dimension(wms: WebMapService, demo_stores: Path) -> None:
    for name, store in (("naefs-mean.QPF", "naefs-mean"), ("marfc-fmat.t", "marfc-fmat"),
                        ("ecmwf-ens-gust.fg10_6", "ecmwf-ens-gust")):
        layer = wms[name]
        time = layer.dimensions["time"]
        assert time["units"] == "ISO8601"
        expected = latest_valid_times(demo_stores, store)
        assert time["values"] == expected  # an explicit list, as FEWS writes it
        assert layer.timepositions == expected
        assert time["default"] in expected
        assert layer.defaulttimeposition == time["default"]
    assert len(wms["naefs-mean.QPF"].timepositions) == 64


def test_styles_have_legends_of_the_advertised_size(wms: WebMapService) -> None:
    for name in DATA_LAYERS:
        styles = wms[name].styles
        assert styles, f"{name} has no style"
        for style in styles.values():
            assert style["title"] and style["legend_format"] == "image/png"
            response = httpx.get(style["legend"], timeout=30)
            assert response.status_code == 200, response.text
            assert response.headers["content-type"] == "image/png"
            size = Image.open(io.BytesIO(response.content)).size
            assert size == (int(style["legend_width"]), int(style["legend_height"]))


def test_getmap_web_mercator(wms: WebMapService) -> None:
    bbox = (-15_000_000.0, 2_000_000.0, -6_000_000.0, 8_000_000.0)
    pixels, headers = get_map(wms, "EPSG:3857", bbox, transparent=True, time=TIME)
    assert headers["x-fewsmap-valid-time"] == TIME
    lon, lat = MERCATOR.transform(*pixel_centres(bbox))
    assert_data_exactly_on_the_grid(pixels[..., 3], np.asarray(lon), np.asarray(lat),
                                    margin=0.5)


def test_getmap_epsg4326_with_owslib_axis_swap(wms: WebMapService) -> None:
    bbox = (-130.0, 20.0, -60.0, 60.0)  # OWSLib takes lon/lat and sends lat,lon for 4326
    pixels, headers = get_map(wms, "EPSG:4326", bbox, transparent=True, time=TIME)
    assert headers["x-fewsmap-valid-time"] == TIME
    lon, lat = pixel_centres(bbox)
    assert_data_exactly_on_the_grid(pixels[..., 3], lon, lat, margin=0.3)
    same, _ = get_map(wms, "CRS:84", bbox, transparent=True, time=TIME)
    np.testing.assert_array_equal(pixels, same)


def test_getmap_time_default_and_owslib_defaults(wms: WebMapService) -> None:
    """Without TIME the advertised default is used; OWSLib's TRANSPARENT=FALSE is honoured."""
    bbox = (-130.0, 20.0, -60.0, 60.0)
    pixels, headers = get_map(wms, "EPSG:4326", bbox)  # transparent=FALSE, bgcolor white
    assert headers["x-fewsmap-valid-time"] == wms["naefs-mean.QTF"].defaulttimeposition
    assert (pixels[..., 3] == 255).all()
    lon, lat = pixel_centres(bbox)
    off_grid = (lon < -126) | (lat > 55) | (lat < 23)
    assert (pixels[off_grid][:, :3] == 255).all(), "background is BGCOLOR white"
    later, _ = get_map(wms, "EPSG:4326", bbox, time="2022-08-20T12:00:00Z")
    assert not np.array_equal(pixels, later), "another time gives another map"


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"layers": ["no-such-layer"]}, "LayerNotDefined"),
        ({"time": "2030-01-01T00:00:00Z"}, "InvalidDimensionValue"),
        ({"styles": ["no-such-style"]}, "StyleNotDefined"),
        ({"srs": "EPSG:32632"}, "InvalidCRS"),
    ],
)
def test_errors_raise_service_exception(wms: WebMapService, change: dict[str, object],
                                        code: str) -> None:
    request: dict[str, object] = {
        "layers": ["naefs-mean.QTF"], "styles": [""], "srs": "EPSG:3857",
        "bbox": (-14e6, 2e6, -7e6, 8e6), "size": (64, 64), "format": "image/png"}
    with pytest.raises(ServiceException) as raised:
        wms.getmap(**{**request, **change})
    assert f'code="{code}"' in str(raised.value)


def test_owslib_getmap_of_a_list_of_layers_draws_the_last_on_top(wms: WebMapService) -> None:
    # Around the naefs grid: the MARFC grid (mid-Atlantic) drawn over part of it.
    bbox, size = (-130.0, 20.0, -60.0, 58.0), (140, 76)

    def rgba(layers: list[str], styles: list[str]) -> np.ndarray:
        response = wms.getmap(layers=layers, styles=styles, srs="CRS:84", bbox=bbox,
                              size=size, format="image/png", transparent=True)
        assert response.info()["content-type"] == "image/png"
        return np.asarray(Image.open(io.BytesIO(response.read())).convert("RGBA"))

    marfc, temperature = rgba(["marfc-fmat.t"], [""]), rgba(["naefs-mean.QTF"], [""])
    stacked = rgba(["naefs-mean.QTF", "marfc-fmat.t"], ["", ""])
    on_top, see_through = marfc[..., 3] == 255, marfc[..., 3] == 0
    assert on_top.any() and (see_through & (temperature[..., 3] == 255)).any()
    assert (stacked[on_top] == marfc[on_top]).all()
    assert (stacked[see_through] == temperature[see_through]).all()
