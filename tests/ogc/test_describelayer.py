"""DescribeLayer through the real app: one LayerDescription per layer, valid per the DTD."""

from __future__ import annotations

import os
from io import StringIO
from pathlib import Path

import pytest
from lxml import etree

from tests.asgi_client import AppClient

SCHEMAS = Path(__file__).resolve().parent.parent / "schemas" / "ogc"
# WMS_DescribeLayerResponse.dtd as the SLD 1.0.0 profile of WMS 1.1.1 gives it (no copy is
# among the offline schemas): its structure, checked by lxml.
DESCRIBE_LAYER_DTD = """
<!ELEMENT WMS_DescribeLayerResponse (LayerDescription)*>
<!ATTLIST WMS_DescribeLayerResponse version CDATA #FIXED "1.1.1">
<!ELEMENT LayerDescription (Query)*>
<!ATTLIST LayerDescription name CDATA #REQUIRED wfs CDATA #IMPLIED
          owsType (WFS | WCS) #IMPLIED owsURL CDATA #IMPLIED>
<!ELEMENT Query EMPTY>
<!ATTLIST Query typeName CDATA #REQUIRED>
"""
RUN = "2026-01-01T00:00:00Z"
OGC = "{http://www.opengis.net/ogc}"


@pytest.fixture(scope="module")
def client(configured: AppClient) -> AppClient:
    return configured


def describe(client: AppClient, **params: str) -> etree._Element:
    response = client.get("/wms", params={"service": "WMS", "request": "DescribeLayer",
                                          **params})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/xml")
    document = etree.fromstring(response.content)
    dtd = etree.DTD(StringIO(DESCRIBE_LAYER_DTD))
    assert dtd.validate(document), dtd.error_log
    assert b"<!DOCTYPE WMS_DescribeLayerResponse SYSTEM" in response.content
    return document


@pytest.mark.parametrize("version", ["1.1.1", "1.3.0"])
def test_each_layer_is_described_as_a_coverage_without_a_wfs_or_wcs(client: AppClient,
                                                                     version: str) -> None:
    document = describe(client, version=version, layers=f"latitude,longitude-{RUN}")
    descriptions = document.findall("LayerDescription")
    assert [d.get("name") for d in descriptions] == ["latitude", f"longitude-{RUN}"]
    assert [d.find("Query").get("typeName") for d in descriptions] == [  # type: ignore[union-attr]
        "latitude", f"longitude-{RUN}"]
    assert all(d.get("owsType") is None and d.get("owsURL") is None for d in descriptions)


def test_a_group_is_described_by_its_layers(client: AppClient) -> None:
    document = describe(client, version="1.1.1", layers="coordinates")
    assert [d.get("name") for d in document.findall("LayerDescription")] == [
        "longitude", "latitude"]


def test_json_as_geoserver_writes_it(client: AppClient) -> None:
    response = client.get("/wms", params={"request": "DescribeLayer", "layers": "latitude",
                                          "outputFormat": "application/json"})
    assert response.status_code == 200, response.text
    assert response.json() == {"version": "1.1.1", "layerDescriptions": [
        {"layerName": "latitude", "typeName": "latitude"}]}


@pytest.mark.parametrize(("params", "code"), [
    ({}, "MissingParameterValue"),
    ({"layers": "latitude,nothing"}, "LayerNotDefined"),
    ({"layers": "latitude", "outputFormat": "image/png"}, "InvalidFormat"),
])
def test_bad_requests_are_refused(client: AppClient, params: dict[str, str],
                                  code: str) -> None:
    response = client.get("/wms", params={"request": "DescribeLayer", "version": "1.3.0",
                                          **params})
    assert response.status_code == 400
    exception = etree.fromstring(response.content).find(f"{OGC}ServiceException")
    assert exception is not None and exception.get("code") == code


def test_capabilities_list_describe_layer_and_stay_valid(client: AppClient) -> None:
    os.environ["XML_CATALOG_FILES"] = str(SCHEMAS / "catalog.xml")
    schema = etree.XMLSchema(etree.parse(str(SCHEMAS / "sld/1.1.0/sld_capabilities.xsd")))
    response = client.get("/wms", params={"request": "GetCapabilities", "version": "1.3.0"})
    document = etree.fromstring(response.content)
    assert schema.validate(document), schema.error_log
    request = document.find("{http://www.opengis.net/wms}Capability/"
                            "{http://www.opengis.net/wms}Request")
    assert request is not None
    assert "{http://www.opengis.net/sld}DescribeLayer" in [e.tag for e in request]
    old = etree.fromstring(client.get("/wms", params={"request": "GetCapabilities",
                                                      "version": "1.1.1"}).content)
    operations = [e.tag for e in old.find("Capability/Request")]  # type: ignore[union-attr]
    # WMS 1.1.1's DTD: GetFeatureInfo?, DescribeLayer?, GetLegendGraphic? in this order.
    assert operations.index("DescribeLayer") + 1 == operations.index("GetLegendGraphic")
