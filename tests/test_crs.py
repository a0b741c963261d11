"""WMS offers a projected grid in its own CRS, and honours every CRS it offers (issue #17).

A LAEA Europe grid (EPSG:3035, as EFAS/LISFLOOD files describe it: ESRI WKT or a CF grid
mapping without datum names) is offered and drawn in EPSG:3035; a CRS one layer offers is
not inherited by layers that cannot draw in it.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pyproj
import pytest
from lxml import etree
from owslib.wms import WebMapService
from PIL import Image

from fewsmap.app.server import create_app
from fewsmap.crs import offered_crs
from fewsmap.settings import Settings
from tests.asgi_client import AppClient
from tests.live_server import live_server
from tests.synthetic import LAEA_CF, LAEA_ESRI, LAMBERT, lonlat_store, projected_xy_store

SCHEMAS = Path(__file__).resolve().parent / "schemas" / "ogc"
W = {"w": "http://www.opengis.net/wms"}
LAEA_LAYERS = ("laea_epsg.lon", "laea_esri.lon", "laea_cf.lon")


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> AppClient:
    stores = tmp_path_factory.mktemp("crs-stores")
    projected_xy_store(stores / "laea_epsg.zarr", pyproj.CRS.from_epsg(3035))
    projected_xy_store(stores / "laea_esri.zarr", LAEA_ESRI)
    projected_xy_store(stores / "laea_cf.zarr", pyproj.CRS.from_cf(LAEA_CF))
    lonlat_store(stores / "regular.zarr")
    return AppClient(create_app(Settings(stores_dir=stores)))


def wms(client: AppClient, **params: str) -> bytes:
    response = client.get("/wms", params={"service": "WMS", **params})
    assert response.status_code == 200, response.text[:300]
    return response.content


def near_miss(**change: float) -> str:
    return pyproj.CRS.from_cf({**LAEA_CF, **change}).to_wkt()


@pytest.mark.parametrize(("wkt", "own"), [
    (pyproj.CRS.from_epsg(3035).to_wkt(), "EPSG:3035"),
    (LAEA_ESRI.to_wkt(), "EPSG:3035"),  # pyproj: 50 % confidence
    (pyproj.CRS.from_cf(LAEA_CF).to_wkt(), "EPSG:3035"),  # datum unnamed
    (near_miss(false_easting=4321001.0), None),  # 1 m off: pyproj still says 3035 at 25 %
    (near_miss(semi_major_axis=6371000.0, inverse_flattening=0.0), None),  # a sphere
    (LAMBERT.to_wkt(), None),
    (pyproj.CRS.from_epsg(32632).to_wkt(), "EPSG:32632"),
], ids=["epsg", "esri", "cf", "1m-off", "sphere", "lambert", "utm"])
def test_a_grid_is_offered_in_its_own_epsg_code_when_it_is_that_crs(wkt: str,
                                                                    own: str | None) -> None:
    assert offered_crs(wkt) == ("EPSG:3857", "EPSG:4326", "CRS:84", *([own] if own else []))


def test_capabilities_offer_epsg_3035_for_the_laea_layers_only(client: AppClient) -> None:
    os.environ["XML_CATALOG_FILES"] = str(SCHEMAS / "catalog.xml")
    schema = etree.XMLSchema(etree.parse(str(SCHEMAS / "sld/1.1.0/sld_capabilities.xsd")))
    document = etree.fromstring(wms(client, request="GetCapabilities"))
    assert schema.validate(document), schema.error_log
    for name in LAEA_LAYERS:
        layer = document.xpath(f"//w:Layer[w:Name='{name}']", namespaces=W)[0]
        assert "EPSG:3035" in effective_crs(layer)
        box = layer.xpath("w:BoundingBox[@CRS='EPSG:3035']", namespaces=W)[0]
        # WMS 1.3.0: EPSG:3035 is northing first; the box is the grid's cell edges.
        box_values = [float(box.get(k)) for k in ("minx", "miny", "maxx", "maxy")]
        assert box_values == [2_300_000, 4_000_000, 2_700_000, 4_500_000]
    regular = document.xpath("//w:Layer[w:Name='regular.lon']", namespaces=W)[0]
    assert "EPSG:3035" not in effective_crs(regular)


def test_capabilities_1_1_1_offer_epsg_3035_easting_first(client: AppClient) -> None:
    document = etree.fromstring(wms(client, request="GetCapabilities", version="1.1.1"))
    layer = document.xpath("//Layer[Name='laea_esri.lon']")[0]
    assert "EPSG:3035" in [s.text for s in layer.iterfind("SRS")]
    box = layer.xpath("BoundingBox[@SRS='EPSG:3035']")[0]
    box_values = [float(box.get(k)) for k in ("minx", "miny", "maxx", "maxy")]
    assert box_values == [4_000_000, 2_300_000, 4_500_000, 2_700_000]


QUADRANT = {"x": (4_400_000, 4_800_000), "y": (2_600_000, 3_000_000)}  # 10 km pixels


def opaque(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGBA"))[..., 3] > 0


@pytest.mark.parametrize("layer", LAEA_LAYERS)
@pytest.mark.parametrize("version", ["1.3.0", "1.1.1"])
def test_getmap_in_epsg_3035_draws_the_grid_in_place(client: AppClient, layer: str,
                                                     version: str) -> None:
    (x0, x1), (y0, y1) = QUADRANT["x"], QUADRANT["y"]
    # 1.3.0 takes EPSG:3035 boxes northing first (its axis order), 1.1.1 easting first.
    bbox = f"{y0},{x0},{y1},{x1}" if version == "1.3.0" else f"{x0},{y0},{x1},{y1}"
    crs = {"crs": "EPSG:3035"} if version == "1.3.0" else {"srs": "EPSG:3035"}
    png = wms(client, request="GetMap", version=version, layers=layer, styles="", **crs,
              bbox=bbox, width="40", height="40", format="image/png", transparent="true")
    # The grid ends at x = 4,500 km (column 10) and y = 2,700 km (row 30 from the top).
    expected = np.zeros((40, 40), bool)
    expected[30:, :10] = True
    assert (opaque(png) == expected).all()


@pytest.mark.parametrize("layer", LAEA_LAYERS)
def test_featureinfo_in_epsg_3035_reads_the_cell_at_the_point(client: AppClient,
                                                              layer: str) -> None:
    # 5 km pixels whose centres are the grid's cell centres.
    for variable, expected in (("lon", 4_102_500.0 + 5_000 * 7), ("lat", 2_497_500.0 - 5_000 * 3)):
        name = layer.replace(".lon", f".{variable}")
        body = client.get("/wms", params={
            "service": "WMS", "request": "GetFeatureInfo", "version": "1.3.0",
            "layers": name, "query_layers": name, "crs": "EPSG:3035",
            "bbox": "2400000,4100000,2500000,4200000", "width": "20", "height": "20",
            "i": "7", "j": "3", "info_format": "application/json"}).json()
        assert body["features"][0]["properties"]["value"] == expected


def effective_crs(layer: etree._Element) -> set[str]:
    """The CRSs a 1.3.0 layer offers: its own and those inherited (WMS 1.3.0 §7.2.4.6.7)."""
    own = {c.text for c in layer.iterfind("w:CRS", W) if c.text}
    parent = layer.getparent()
    return own | (effective_crs(parent) if parent is not None and parent.tag.endswith("Layer")
                  else set())


def test_every_layer_draws_in_every_crs_the_capabilities_give_it(client: AppClient) -> None:
    document = etree.fromstring(wms(client, request="GetCapabilities"))
    everywhere = {c.text for c in document.iterfind(".//w:CRS", W)}
    for layer in document.xpath("//w:Layer[w:Name and not(w:Layer)]", namespaces=W):
        name, offered = layer.findtext("w:Name", namespaces=W), effective_crs(layer)
        for crs in offered:
            box = layer.xpath(f"w:BoundingBox[@CRS='{crs}']", namespaces=W)[0]
            bbox = ",".join(box.get(k) for k in ("minx", "miny", "maxx", "maxy"))
            wms(client, request="GetMap", version="1.3.0", layers=name, styles="", crs=crs,
                bbox=bbox, width="8", height="8", format="image/png")
        for crs in everywhere - offered:
            refused = client.get("/wms", params={
                "service": "WMS", "request": "GetMap", "version": "1.3.0", "layers": name,
                "styles": "", "crs": crs, "bbox": "0,0,1,1", "width": "8", "height": "8",
                "format": "image/png"})
            assert refused.status_code == 400 and b"InvalidCRS" in refused.content, (name, crs)


@pytest.mark.slow
@pytest.mark.parametrize("version", ["1.3.0", "1.1.1"])
def test_owslib_sees_and_draws_epsg_3035_where_offered(tmp_path: Path, version: str) -> None:
    stores = tmp_path / "stores"
    projected_xy_store(stores / "laea_esri.zarr", LAEA_ESRI)
    lonlat_store(stores / "regular.zarr")
    with live_server("--stores", str(stores)) as base:
        service = WebMapService(f"{base}/wms", version=version, timeout=60)
        assert "EPSG:3035" in service["laea_esri.lon"].crsOptions
        assert "EPSG:3035" not in service["regular.lon"].crsOptions
        (x0, x1), (y0, y1) = QUADRANT["x"], QUADRANT["y"]
        # OWSLib takes easting first and puts 1.3.0 boxes in EPSG:3035's northing-first order.
        response = service.getmap(layers=["laea_esri.lon"], styles=[""], srs="EPSG:3035",
                                  bbox=(x0, y0, x1, y1), size=(40, 40), format="image/png",
                                  transparent=True)
        expected = np.zeros((40, 40), bool)
        expected[30:, :10] = True
        assert (opaque(response.read()) == expected).all()
