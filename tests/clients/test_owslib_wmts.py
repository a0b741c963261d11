"""OWSLib's WMTS client reads fewsmap's WMTS 1.0.0 capabilities and fetches tiles (KVP, REST)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from lxml import etree
from owslib.wmts import WebMapTileService

from tests.clients.conftest import DATA_LAYERS, latest_valid_times, run_times

# OWSLib 0.35 tests the truth of lxml elements when it reads <Current> (its bug, not ours).
pytestmark = pytest.mark.filterwarnings("ignore:Truth-testing of elements:FutureWarning")
OWS = "{http://www.opengis.net/ows/1.1}"
XLINK = "{http://www.w3.org/1999/xlink}"
GUST = "ecmwf-ens-gust.fg10_6"


@pytest.fixture(scope="module")
def wmts(base_url: str) -> WebMapTileService:
    return WebMapTileService(f"{base_url}/wmts", timeout=60)


def test_layers_dimensions_and_tile_matrix_set(wmts: WebMapTileService,
                                               demo_stores: Path) -> None:
    assert set(DATA_LAYERS) <= set(wmts.contents)
    matrices = wmts.tilematrixsets["WebMercatorQuad"].tilematrix
    assert len(matrices) == 25 and matrices["0"].matrixwidth == 1
    assert matrices["5"].scaledenominator == pytest.approx(559082264.028717 / 32)
    fmat = wmts.contents["marfc-fmat.t"]
    assert fmat.dimensions["Run"]["values"] == ["latest", *run_times(demo_stores, "marfc-fmat")]
    assert set(latest_valid_times(demo_stores, "marfc-fmat")) <= set(
        fmat.dimensions["Time"]["values"])
    gust = wmts.contents[GUST]
    assert gust.dimensions["ensemble_member"]["values"][:3] == ["1", "2", "3"]
    assert "{ensemble_member}" in gust.resourceURLs[0]["template"]
    limits = gust.tilematrixsetlinks["WebMercatorQuad"].tilematrixlimits["3"]
    assert (limits.mintilecol, limits.maxtilecol) == (3, 4)  # -20.5..30.5 east


def test_kvp_and_rest_tiles_are_the_xyz_tile(wmts: WebMapTileService, base_url: str,
                                             demo_stores: Path) -> None:
    time = latest_valid_times(demo_stores, "ecmwf-ens-gust")[1]
    run = run_times(demo_stores, "ecmwf-ens-gust")[-1]
    kvp = wmts.gettile(layer=GUST, tilematrixset="WebMercatorQuad", tilematrix="3", row=2,
                       column=4, format="image/png", Time=time, ensemble_member="5").read()
    rest_url = wmts.buildTileResource(layer=GUST, tilematrixset="WebMercatorQuad",
                                      tilematrix="3", row=2, column=4, Time=time, Run=run,
                                      ensemble_member="5")
    rest = httpx.get(rest_url, timeout=30)
    xyz = httpx.get(f"{base_url}/tiles/{GUST}/3/4/2.png",
                    params={"time": time, "member": "5"}, timeout=30)
    assert kvp[:8] == b"\x89PNG\r\n\x1a\n"
    assert kvp == rest.content == xyz.content
    assert rest.headers["cache-control"].endswith("immutable")  # run and time are named
    other_member = httpx.get(rest_url.replace("/5/WebMercatorQuad", "/7/WebMercatorQuad"),
                             timeout=30)
    assert other_member.status_code == 200 and other_member.content != rest.content


@pytest.mark.parametrize(("query", "code"), [
    ("request=GetTile&layer=naefs-mean.QTF&tilematrixset=WebMercatorQuad&tilematrix=2"
     "&tilerow=9&tilecol=0", "TileOutOfRange"),
    ("request=GetTile&layer=naefs-mean.QTF&tilematrixset=WGS84&tilematrix=2&tilerow=0"
     "&tilecol=0", "InvalidParameterValue"),
    ("request=GetTile&layer=naefs-mean.QTF&tilematrixset=WebMercatorQuad&tilematrix=2"
     "&tilerow=0", "MissingParameterValue"),
    ("request=GetTile&layer=nothing&tilematrixset=WebMercatorQuad&tilematrix=2&tilerow=0"
     "&tilecol=0", "InvalidParameterValue"),  # OWS has no LayerNotDefined: locator="layer"
    ("request=DescribeDomains", "OperationNotSupported"),
])
def test_errors_are_ows_exception_reports(base_url: str, query: str, code: str) -> None:
    response = httpx.get(f"{base_url}/wmts?service=WMTS&version=1.0.0&{query}", timeout=30)
    assert response.status_code == 400
    report = etree.fromstring(response.content)
    assert report.tag == f"{OWS}ExceptionReport"
    assert report.find(f"{OWS}Exception").get("exceptionCode") == code


def test_rest_capabilities_equal_kvp(base_url: str) -> None:
    """Both encodings are offered, each at its own address, with the same document."""
    kvp = httpx.get(f"{base_url}/wmts?service=WMTS&request=GetCapabilities", timeout=30)
    offered = {(get.findtext(f"{OWS}Constraint/{OWS}AllowedValues/{OWS}Value"),
                get.get(f"{XLINK}href")) for get in etree.fromstring(kvp.content).iter(f"{OWS}Get")}
    assert offered == {("KVP", f"{base_url}/wmts?"), ("RESTful", f"{base_url}/wmts/1.0.0/")}
    rest = httpx.get(f"{base_url}/wmts/1.0.0/WMTSCapabilities.xml", timeout=30)
    assert rest.content == kvp.content


def test_featureinfo_takes_the_dimensions_of_gettile(wmts: WebMapTileService, base_url: str,
                                                     demo_stores: Path) -> None:
    """QGIS "identify" on a WMTS layer: KVP and the RESTful FeatureInfo template agree, and
    the member chosen is the member read."""
    time = latest_valid_times(demo_stores, "ecmwf-ens-gust")[1]
    run = run_times(demo_stores, "ecmwf-ens-gust")[-1]
    assert "GetFeatureInfo" in [operation.name for operation in wmts.operations]
    [template] = [r["template"] for r in wmts.contents[GUST].resourceURLs
                  if r["resourceType"] == "FeatureInfo" and r["format"] == "application/json"]
    rest = httpx.get(template.format(
        Style="default", Time=time, Run=run, ensemble_member="5",
        TileMatrixSet="WebMercatorQuad", TileMatrix="3", TileRow="2", TileCol="4", J="70",
        I="30"), timeout=30)
    kvp = httpx.get(f"{base_url}/wmts", timeout=30, params={
        "service": "WMTS", "request": "GetFeatureInfo", "version": "1.0.0", "layer": GUST,
        "style": "default", "format": "image/png", "tilematrixset": "WebMercatorQuad",
        "tilematrix": "3", "tilerow": "2", "tilecol": "4", "j": "70", "i": "30",
        "infoformat": "application/json", "Time": time, "Run": run, "ensemble_member": "5"})
    assert rest.status_code == kvp.status_code == 200, rest.text
    assert rest.json() == kvp.json()
    [feature] = kvp.json()["features"]
    assert feature["properties"]["member"] == 5 and feature["properties"]["time"] == time
    assert isinstance(feature["properties"]["value"], float)
