"""Every kind of grid ingest can produce, served at once (issue #13, item 5).

One service holds a store per grid kind (tests/grid_kinds.py). Every service-wide
document answers 200 and lists every layer; each kind draws a map and a tile and answers
GetFeatureInfo with the value of the cell asked for.
"""

from __future__ import annotations

import io
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import pyproj
import pytest
from lxml import etree
from PIL import Image

from fewsmap import open_cube
from fewsmap.app.server import create_app
from fewsmap.settings import Settings
from tests.asgi_client import AppClient
from tests.grid_kinds import GRID_KINDS, KIND_AXES, grid_kind_stores, regular, unplaced

SCHEMAS = Path(__file__).resolve().parent.parent / "schemas" / "ogc"
WMS_NS = {"w": "http://www.opengis.net/wms"}
WMTS_NS = {"w": "http://www.opengis.net/wmts/1.0", "ows": "http://www.opengis.net/ows/1.1"}
CAPABILITIES = {"service": "WMS", "request": "GetCapabilities"}
ONE_COLUMN = ("single_point", "single_cell_projected")


def layer_of(kind: str) -> str:
    """The layer each kind is tested with: its longitude field (the Gaussian file's t)."""
    return "reduced_gaussian.t" if kind == "reduced_gaussian" else f"{kind}.lon"


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return grid_kind_stores(tmp_path_factory.mktemp("kinds") / "stores")


@pytest.fixture(scope="module")
def client(stores: Path) -> AppClient:
    return AppClient(create_app(Settings(stores_dir=stores)))


def middle_cell(stores: Path, kind: str, east: int = 0) -> tuple[float, float, float]:
    """(longitude, latitude, value of the tested layer) at the grid's middle cell (or the
    cell ``east`` columns east of it)."""
    with open_cube(stores / f"{kind}.zarr") as ds:
        variable = layer_of(kind).split(".")[1]
        field = ds[variable].isel(forecast_reference_time=-1, step=0)
        # The first label of any other dimension (t_n48's single level is kept as one).
        field = field.isel({d: 0 for d in field.dims[:-2]})
        row, column = (size // 2 for size in field.shape[-2:])
        cell = field[..., row, column + east]
        lon = float(cell["longitude"]) if "longitude" in cell.coords else None
        lat = float(cell["latitude"]) if "latitude" in cell.coords else None
        if lon is None or lat is None:  # projected: 1-D x/y, the lon/lat fields hold them
            lon = float(ds["lon"].isel(forecast_reference_time=-1, step=0)[row, column + east])
            lat = float(ds["lat"].isel(forecast_reference_time=-1, step=0)[row, column + east])
        return (lon + 180.0) % 360.0 - 180.0, lat, float(cell)


def all_layer_ids(stores: Path) -> set[str]:
    return {layer_of(kind) for kind in GRID_KINDS} | {
        f"{kind}.lat" for kind in GRID_KINDS if kind != "reduced_gaussian"}


def test_wms_capabilities_list_every_kind_and_validate(client: AppClient, stores: Path) -> None:
    os.environ["XML_CATALOG_FILES"] = str(SCHEMAS / "catalog.xml")
    schema = etree.XMLSchema(etree.parse(str(SCHEMAS / "sld/1.1.0/sld_capabilities.xsd")))
    response = client.get("/wms", params=CAPABILITIES)
    assert response.status_code == 200, response.text
    document = etree.fromstring(response.content)
    assert schema.validate(document), schema.error_log
    names = set(document.xpath("//w:Layer/w:Name/text()", namespaces=WMS_NS))
    assert all_layer_ids(stores) <= names
    legacy = client.get("/wms", params={**CAPABILITIES, "version": "1.1.1"})
    assert legacy.status_code == 200 and b"single_point.lon" in legacy.content


def test_fews_json_capabilities_list_every_kind(client: AppClient, stores: Path) -> None:
    response = client.get("/wms", params={**CAPABILITIES, "format": "application/json"})
    assert response.status_code == 200, response.text
    layers = {entry["name"]: entry for entry in response.json()["layers"]}
    assert all_layer_ids(stores) <= set(layers)
    for name in all_layer_ids(stores):
        box = layers[name]["boundingBox"]
        assert float(box["minx"]) < float(box["maxx"]) and float(box["miny"]) < float(box["maxy"])


def test_wmts_capabilities_list_every_kind(client: AppClient, stores: Path) -> None:
    response = client.get("/wmts", params={"service": "WMTS", "request": "GetCapabilities"})
    assert response.status_code == 200, response.text
    document = etree.fromstring(response.content)
    names = set(document.xpath("//w:Layer/ows:Identifier/text()", namespaces=WMTS_NS))
    assert all_layer_ids(stores) <= names
    rest = client.get("/wmts/1.0.0/WMTSCapabilities.xml")
    assert rest.status_code == 200 and rest.content == response.content


@pytest.mark.parametrize("kind", GRID_KINDS)
def test_tilejson_holds_the_middle_cell(client: AppClient, stores: Path, kind: str) -> None:
    response = client.get(f"/tiles/{layer_of(kind)}/tilejson.json")
    assert response.status_code == 200, response.text
    document = response.json()
    west, south, east, north = document["bounds"]
    lon, lat, _ = middle_cell(stores, kind)
    assert west <= lon <= east and south <= lat <= north
    assert 0 <= document["minzoom"] <= document["maxzoom"] <= 22


@pytest.mark.parametrize("kind", ["rotated_pole", "polar_stereographic", "lambert"])
def test_bounds_cover_the_outer_cells_edges(client: AppClient, kind: str) -> None:
    """Corners of the grid's corner cells (not only their centres) lie within the bounds
    (to 1e-3°, 1 % of these cells: a curvilinear grid's edges are extrapolated)."""
    crs, x, y = KIND_AXES[kind]
    edges_x = (x[0] - (x[1] - x[0]) / 2, x[-1] + (x[-1] - x[-2]) / 2)
    edges_y = (y[0] - (y[1] - y[0]) / 2, y[-1] + (y[-1] - y[-2]) / 2)
    to_lonlat = pyproj.Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
    west, south, east, north = client.get(f"/tiles/{kind}.lon/tilejson.json").json()["bounds"]
    for corner_x in edges_x:
        for corner_y in edges_y:
            lon, lat = to_lonlat.transform(corner_x, corner_y)
            assert west - 1e-3 <= lon <= east + 1e-3 and south - 1e-3 <= lat <= north + 1e-3


def test_edr_documents_list_every_kind(client: AppClient, stores: Path) -> None:
    for path in ("/edr", "/edr/api", "/edr/conformance", "/api/openapi.json", "/health"):
        assert client.get(path).status_code == 200, path
    response = client.get("/edr/collections")
    assert response.status_code == 200, response.text
    ids = {c["id"] for c in response.json()["collections"]}
    assert all_layer_ids(stores) <= ids
    for layer in sorted(all_layer_ids(stores)):
        for path in (f"/edr/collections/{layer}", f"/edr/collections/{layer}/instances"):
            assert client.get(path).status_code == 200, path


def test_health_lists_every_store(client: AppClient) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    assert {s["name"] for s in response.json()["stores"]} == set(GRID_KINDS)


@pytest.mark.parametrize("kind", GRID_KINDS)
def test_getmap_draws_the_middle_cell(client: AppClient, stores: Path, kind: str) -> None:
    lon, lat, _ = middle_cell(stores, kind)
    # 64 px over 0.2°: finer than every grid here, so the middle cell covers the centre; a
    # projected grid of one cell is 1 m wide (fewsmap.store.axes.cell_spacings).
    half = 2e-6 if kind == "single_cell_projected" else 0.1
    image = map_around(client, kind, (lon, lat), half, 64)
    assert image[32, 32, 3] == 255  # the centre pixel is inside the grid: opaque


def map_around(client: AppClient, kind: str, centre: tuple[float, float], half: float,
               size: int) -> np.ndarray:
    """The RGBA pixels of a square GetMap (CRS:84) of ``size`` px around ``centre``."""
    lon, lat = centre
    response = client.get("/wms", params={
        "service": "WMS", "version": "1.3.0", "request": "GetMap", "layers": layer_of(kind),
        "styles": "", "crs": "CRS:84",
        "bbox": f"{lon - half},{lat - half},{lon + half},{lat + half}",
        "width": str(size), "height": str(size), "format": "image/png",
        "transparent": "true"})
    assert response.status_code == 200, response.text
    return np.asarray(Image.open(io.BytesIO(response.content)).convert("RGBA"))


@pytest.mark.parametrize("kind", [k for k in GRID_KINDS if k not in ONE_COLUMN])
def test_a_map_within_one_cell_shows_it(client: AppClient, stores: Path, kind: str) -> None:
    """Zoomed in beyond the cell size, off the cell's centre: no centre lies in the bbox."""
    lon, lat, _ = middle_cell(stores, kind)
    next_lon, next_lat, _ = middle_cell(stores, kind, east=1)
    step_lon, step_lat = (next_lon - lon + 180.0) % 360.0 - 180.0, next_lat - lat
    at_lon, at_lat = lon + 0.3 * step_lon, lat + 0.3 * step_lat  # still the middle cell
    image = map_around(client, kind, (at_lon, at_lat), 0.02 * math.hypot(step_lon, step_lat),
                       16)
    assert (image[..., 3] == 255).all()
    assert len(np.unique(image.reshape(-1, 4), axis=0)) == 1  # one cell: one colour


@pytest.mark.parametrize("kind", GRID_KINDS)
def test_tile_holds_the_middle_cell(client: AppClient, stores: Path, kind: str) -> None:
    lon, lat, _ = middle_cell(stores, kind)
    zoom = 6
    count = 2**zoom
    column = int((lon + 180.0) / 360.0 * count)
    row = int((1.0 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2.0 * count)
    response = client.get(f"/tiles/{layer_of(kind)}/{zoom}/{column}/{row}.png")
    assert response.status_code == 200, response.text
    image = np.asarray(Image.open(io.BytesIO(response.content)).convert("RGBA"))
    assert image[..., 3].any()


@pytest.mark.parametrize("kind", GRID_KINDS)
def test_feature_info_reads_the_middle_cell(client: AppClient, stores: Path,
                                            kind: str) -> None:
    lon, lat, value = middle_cell(stores, kind)
    response = client.get("/wms", params={
        "service": "WMS", "version": "1.3.0", "request": "GetFeatureInfo",
        "layers": layer_of(kind), "query_layers": layer_of(kind), "styles": "",
        "crs": "CRS:84", "bbox": f"{lon - 0.01},{lat - 0.01},{lon + 0.01},{lat + 0.01}",
        "width": "11", "height": "11", "i": "5", "j": "5", "info_format": "application/json",
        "useDisplayUnits": "false"})  # the stored values, as the source file holds them
    assert response.status_code == 200, response.text
    values = feature_values(response.json())
    assert values and values[0] == pytest.approx(value, abs=1e-4)


def feature_values(document: dict[str, Any]) -> list[float]:
    """The values of the first feature's first time series."""
    properties = document["features"][0]["properties"]
    return [float(v) for v in properties.get("values", [properties.get("value")])
            if v is not None]


def test_a_layer_that_cannot_be_described_is_left_out_and_logged(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    stores = tmp_path / "stores"
    regular(stores / "good.zarr")
    unplaced(stores / "unplaced.zarr")
    client = AppClient(create_app(Settings(stores_dir=stores)))
    documents = {
        "WMS capabilities": ("/wms", CAPABILITIES),
        "FEWS capabilities": ("/wms", {**CAPABILITIES, "format": "application/json"}),
        "WMTS capabilities": ("/wmts", {"service": "WMTS", "request": "GetCapabilities"}),
        "EDR collections": ("/edr/collections", None)}
    for name, (path, params) in documents.items():
        caplog.clear()
        response = client.get(path, params=params)
        assert response.status_code == 200, (name, response.text)
        assert b"good.lon" in response.content and b"unplaced.lon" not in response.content
        assert f"{name}: layer 'unplaced.lon' left out" in caplog.text
    assert client.get("/health").status_code == 200
