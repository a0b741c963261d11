"""A variable on a single level says its level: in the title and as an ELEVATION dimension
with its one value, in every document, and GetMap takes ELEVATION (issue #13 item 9).

Stores: ``upper`` — IFS geopotential at 850 hPa, a GRIB of that level only (cfgrib gives
``isobaricInhPa = 850`` as a scalar coordinate); ``n48`` — the real ECMWF temperature at
1000 hPa on a reduced Gaussian grid; ``both`` — files of 850 and 500 hPa, one each.
"""

from __future__ import annotations

import pytest
from lxml import etree

from fewsmap.app.server import create_app
from fewsmap.ingest import ingest
from fewsmap.settings import Settings
from tests.asgi_client import AppClient
from tests.conftest import sample_paths
from tests.forecast_files import single_level_grib

WMS = "{http://www.opengis.net/wms}"
OWS = "{http://www.opengis.net/ows/1.1}"
WMTS = "{http://www.opengis.net/wmts/1.0}"
MAP = {"request": "GetMap", "layers": "upper.z", "crs": "CRS:84", "bbox": "-20,30,40,70",
       "width": "30", "height": "20", "format": "image/png"}


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> AppClient:
    root = tmp_path_factory.mktemp("single")
    stores = root / "stores"
    ingest(stores / "upper.zarr", [single_level_grib(root, 850)], progress=False)
    ingest(stores / "n48.zarr", sample_paths("t_n48"), progress=False)
    ingest(stores / "both.zarr", [single_level_grib(root, 850), single_level_grib(root, 500)],
           progress=False)
    return AppClient(create_app(Settings(stores_dir=stores)))


def test_fews_json_says_the_level(client: AppClient) -> None:
    body = client.get("/wms", params={"request": "GetCapabilities",
                                      "format": "application/json"}).json()
    layers = {entry["name"]: entry for entry in body["layers"]}
    assert layers["upper.z"]["title"] == "Geopotential at 850 hPa [dam]"
    assert layers["upper.z"]["elevation"] == {
        "units": "hPa", "unitSymbol": "hPa", "lowerValue": 850.0, "upperValue": 850.0,
        "irregularTicks": [850.0]}
    assert layers["n48.t"]["title"] == "Temperature at 1000 hPa [degC]"
    assert layers["both.z"]["title"] == "Geopotential [dam]"  # two levels: a dimension
    assert layers["both.z"]["elevation"]["irregularTicks"] == [500.0, 850.0]


def test_wms_xml_says_the_level(client: AppClient) -> None:
    xml = etree.fromstring(client.get("/wms", params={"request": "GetCapabilities"}).content)
    layer = next(node for node in xml.iter(f"{WMS}Layer")
                 if node.findtext(f"{WMS}Name") == "upper.z")
    assert layer.findtext(f"{WMS}Title") == "Geopotential at 850 hPa [dam]"
    elevation = next(d for d in layer.findall(f"{WMS}Dimension")
                     if d.get("name") == "elevation")
    assert elevation.text == "850" and elevation.get("default") == "850"
    assert elevation.get("units") == elevation.get("unitSymbol") == "hPa"


def test_wmts_and_edr_say_the_level(client: AppClient) -> None:
    xml = etree.fromstring(client.get("/wmts", params={"service": "WMTS",
                                                       "request": "GetCapabilities"}).content)
    layer = next(node for node in xml.iter(f"{WMTS}Layer")
                 if node.findtext(f"{OWS}Identifier") == "upper.z")
    assert layer.findtext(f"{OWS}Title") == "Geopotential at 850 hPa [dam]"
    elevation = next(d for d in layer.findall(f"{WMTS}Dimension")
                     if d.findtext(f"{OWS}Identifier") == "elevation")
    assert [v.text for v in elevation.findall(f"{WMTS}Value")] == ["850"]
    assert elevation.findtext(f"{WMTS}Default") == "850"
    collection = client.get("/edr/collections/upper.z").json()
    assert collection["title"] == "Geopotential at 850 hPa [dam]"
    assert collection["extent"]["vertical"]["values"] == ["850"]
    assert collection["extent"]["vertical"]["interval"] == [["850", "850"]]


def test_getmap_takes_the_level_and_refuses_another(client: AppClient) -> None:
    for extra in ({}, {"elevation": "850"}):
        response = client.get("/wms", params={**MAP, **extra})
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "image/png"
    refused = client.get("/wms", params={**MAP, "elevation": "500"})
    assert refused.status_code == 400
    report = etree.fromstring(refused.content)
    exception = report.find("{http://www.opengis.net/ogc}ServiceException")
    assert exception is not None and exception.get("code") == "InvalidDimensionValue"
    assert "available: 850" in (exception.text or "")
