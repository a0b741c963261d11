"""GetStyles: a layer's styles as SLD 1.0.0 that draws, sent back as SLD_BODY, the same map."""

from __future__ import annotations

import io

import numpy as np
import pytest
from lxml import etree
from PIL import Image

from fewsmap.catalog.sld import parse_sld_body
from tests.asgi_client import AppClient

# One pixel per cell of the grid (1°, longitudes -20..40, latitudes 30..60).
GETMAP = {"service": "WMS", "version": "1.3.0", "request": "GetMap", "crs": "CRS:84",
          "bbox": "-20.5,29.5,40.5,60.5", "width": "61", "height": "31", "format": "image/png"}
SLD = "{http://www.opengis.net/sld}"


@pytest.fixture(scope="module")
def client(configured: AppClient) -> AppClient:
    return configured


def get_styles(client: AppClient, layers: str) -> bytes:
    response = client.get("/wms", params={"service": "WMS", "version": "1.1.1",
                                          "request": "GetStyles", "layers": layers})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/vnd.ogc.sld+xml"
    return response.content


def draw(client: AppClient, **query: str) -> np.ndarray:
    response = client.get("/wms", params={**GETMAP, **query})
    assert response.status_code == 200, response.text
    return np.asarray(Image.open(io.BytesIO(response.content)).convert("RGBA")).astype(int)


def test_each_layer_lists_its_styles_the_first_as_default(client: AppClient) -> None:
    document = etree.fromstring(get_styles(client, "longitude,latitude"))
    assert document.tag == f"{SLD}StyledLayerDescriptor" and document.get("version") == "1.0.0"
    layers = document.findall(f"{SLD}NamedLayer")
    assert [layer.findtext(f"{SLD}Name") for layer in layers] == ["longitude", "latitude"]
    styles = layers[0].findall(f"{SLD}UserStyle")
    assert [s.findtext(f"{SLD}Name") for s in styles] == ["bands", "warm"]
    assert [s.findtext(f"{SLD}IsDefault") for s in styles] == ["1", None]
    assert styles[0].find(f".//{SLD}ColorMap").get("type") == "intervals"  # type: ignore[union-attr]
    assert styles[1].find(f".//{SLD}ColorMap").get("type") == "ramp"  # type: ignore[union-attr]


def test_class_breaks_come_back_as_the_same_map(client: AppClient) -> None:
    body = get_styles(client, "longitude").decode()
    assert parse_sld_body(body, "longitude", "bands").style is not None
    styled = draw(client, layers="longitude", styles="bands", sld_body=body)
    assert np.array_equal(styled, draw(client, layers="longitude", styles="bands"))
    assert styled[:, 0, 3].max() == 0 and styled[:, -1, 3].min() == 255  # below -10: none


@pytest.mark.parametrize(("layer", "style"), [("longitude", "warm"), ("latitude", "")])
def test_continuous_maps_come_back_within_a_few_levels(client: AppClient, layer: str,
                                                       style: str) -> None:
    """A ramp through the legend's 11 entries follows the 255-colour map closely."""
    body = get_styles(client, layer).decode()
    styled = draw(client, layers=layer, styles=style, sld_body=body)
    plain = draw(client, layers=layer, styles=style)
    assert np.abs(styled - plain).max() <= 12
    assert np.abs(styled - plain).mean() <= 3


@pytest.mark.parametrize(("params", "code"), [
    ({}, "MissingParameterValue"),
    ({"layers": "nothing"}, "LayerNotDefined"),
    ({"layers": "longitude", "sld_version": "1.1.0"}, "InvalidParameterValue"),
])
def test_bad_requests_are_refused(client: AppClient, params: dict[str, str],
                                  code: str) -> None:
    response = client.get("/wms", params={"request": "GetStyles", "version": "1.3.0",
                                          **params})
    assert response.status_code == 400
    exception = etree.fromstring(response.content).find(
        "{http://www.opengis.net/ogc}ServiceException")
    assert exception is not None and exception.get("code") == code
