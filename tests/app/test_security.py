"""Security: text from data and configuration is escaped everywhere, no XML parser reads
entities, names are validated, tokens protect layers, CORS is configurable."""

from __future__ import annotations

import ast
import html
import json
import os
import re
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import numpy as np
import pyproj
import pytest
import xarray as xr
from lxml import etree

from fewsmap.app.server import create_app
from fewsmap.catalog import Catalog
from fewsmap.catalog.layers import validate_layer_id, validate_store_name
from fewsmap.client.service import service_error
from fewsmap.errors import ConfigError
from fewsmap.ingest.grids import grid_attrs
from fewsmap.settings import Settings
from fewsmap.store.run import Grid, RunData, SourceFile
from fewsmap.store.writer import append_run
from tests.asgi_client import AppClient
from tests.live_server import live_server
from tests.synthetic import lonlat_store

PACKAGE = Path(__file__).resolve().parents[2] / "fewsmap"
SCHEMAS = Path(__file__).resolve().parents[1] / "schemas" / "ogc"
WMS = "{http://www.opengis.net/wms}"
# Markup, CDATA end, quotes, ampersand, C0 controls, a non-character, right-to-left override.
HOSTILE = '<script>alert("x")</script> ]]> & "q" \'a\' \x01\x1f \ufffe \u202e end'
XML_SAFE = HOSTILE.replace("\x01", "\ufffd").replace("\x1f", "\ufffd").replace("\ufffe", "\ufffd")
LAYER_ID = '<img src=x onerror=alert(1)>&"layer"'
SAFE_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
PASSWD_XXE = (b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
              b"<ServiceExceptionReport><ServiceException>&x;</ServiceException>"
              b"</ServiceExceptionReport>")


def hostile_store(path: Path) -> Path:
    """A 1° lon/lat grid whose variable's units and long name are hostile."""
    lat, lon = np.arange(60.0, 29.5, -1.0), np.arange(-20.0, 40.5, 1.0)
    grid = Grid(("latitude", "longitude"),
                {"latitude": xr.DataArray(lat, dims="latitude"),
                 "longitude": xr.DataArray(lon, dims="longitude")},
                grid_attrs(pyproj.CRS.from_epsg(4326)))
    values = np.stack([np.meshgrid(lon, lat)[0]] * 2).astype("float32")
    step = np.array([0, 6 * 3600], "timedelta64[s]").astype("timedelta64[ns]")
    field = xr.DataArray(values, dims=("step", *grid.dims), coords={"step": step},
                         attrs={"units": HOSTILE, "long_name": HOSTILE})
    run = RunData(np.datetime64("2026-01-01T00:00:00", "s"), {"t": (field,)}, grid,
                  (SourceFile("synthetic", "0" * 64, 0),), "synthetic")
    append_run(path, run, progress=False)
    return path


def toml(text: str) -> str:
    """A TOML basic string (JSON's escapes are TOML's)."""
    return json.dumps(text, ensure_ascii=False)


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> AppClient:
    root = tmp_path_factory.mktemp("hostile")
    hostile_store(root / "stores" / "hostile.zarr")
    config = root / "fewsmap.toml"
    config.write_text(f"""
[service]
title = {toml(HOSTILE)}
[catalog]
auto_layers = true
[[styles]]
id = "s<1>"
title = {toml(HOSTILE)}
units = {toml(HOSTILE)}
colormap = "viridis"
range = [-20, 40]
[[groups]]
id = "g&1"
title = {toml(HOSTILE)}
[[layers]]
id = {toml(LAYER_ID)}
title = {toml(HOSTILE)}
abstract = {toml(HOSTILE)}
store = "hostile"
variable = "t"
group = "g&1"
styles = ["s<1>"]
[layers.keywords]
parameterId = {toml(HOSTILE)}
locationId = "]]>"
""")
    settings = Settings(stores_dir=root / "stores", config_file=config, title=HOSTILE)
    return AppClient(create_app(settings))


def xml(response: httpx.Response) -> etree._Element:
    assert response.status_code < 500, response.text
    return etree.fromstring(response.content, SAFE_PARSER)


def no_script_element(root: etree._Element) -> None:
    assert not [e for e in root.iter() if isinstance(e.tag, str)
                and etree.QName(e).localname.lower() == "script"]


def test_capabilities_xml_escapes_data_and_configuration(hostile: AppClient) -> None:
    os.environ["XML_CATALOG_FILES"] = str(SCHEMAS / "catalog.xml")
    schema = etree.XMLSchema(etree.parse(str(SCHEMAS / "sld/1.1.0/sld_capabilities.xsd")))
    root = xml(hostile.get("/wms", params={"request": "GetCapabilities"}))
    assert schema.validate(root), schema.error_log
    no_script_element(root)
    layer = root.xpath("//w:Layer[w:Name=$name]", name=LAYER_ID,
                       namespaces={"w": WMS[1:-1]})[0]
    assert layer.findtext(f"{WMS}Title") == XML_SAFE
    assert layer.findtext(f"{WMS}Abstract") == XML_SAFE
    keywords = [k.text for k in layer.iter(f"{WMS}Keyword")]
    assert f"parameterId={XML_SAFE}" in keywords and "locationId=]]>" in keywords
    assert root.findtext(f"{WMS}Service/{WMS}Title") == XML_SAFE
    assert XML_SAFE in [s.findtext(f"{WMS}Title") for s in root.iter(f"{WMS}Style")]
    old = xml(hostile.get("/wms", params={"request": "GetCapabilities", "version": "1.1.1"}))
    assert LAYER_ID in [n.text for n in old.iter("Name")]


def test_json_answers_keep_the_text_exactly(hostile: AppClient) -> None:
    body = hostile.get("/wms", params={"request": "GetCapabilities",
                                       "format": "application/json"}).json()
    layer = next(layer for layer in body["layers"] if layer["name"] == LAYER_ID)
    assert layer["title"] == HOSTILE and body["title"] == HOSTILE
    assert layer["keywordList"][0]["parameterId"] == HOSTILE
    legend = hostile.get("/wms", params={"request": "GetLegendGraphic", "layers": LAYER_ID,
                                         "format": "application/json"})
    assert legend.status_code == 200 and legend.json()["unit"] == HOSTILE
    series = hostile.get("/api/timeseries", params={"layer": LAYER_ID, "x": "5", "y": "50"})
    assert series.json()["units"] == HOSTILE


@pytest.mark.parametrize("info_format", ["text/html", "application/vnd.ogc.gml",
                                         "application/vnd.ogc.gml/3.1.1"])
def test_feature_info_markup_escapes_units(hostile: AppClient, info_format: str) -> None:
    response = hostile.get("/wms", params={
        "request": "GetFeatureInfo", "layers": LAYER_ID, "query_layers": LAYER_ID,
        "crs": "CRS:84", "bbox": "0,40,10,50", "width": "10", "height": "10", "i": "5",
        "j": "5", "info_format": info_format})
    root = xml(response)
    no_script_element(root)
    assert XML_SAFE in "".join(root.itertext())


def test_other_xml_and_json_documents_parse(hostile: AppClient) -> None:
    for path, params in [("/wmts", {"request": "GetCapabilities"}),
                         ("/wmts/1.0.0/WMTSCapabilities.xml", {})]:
        no_script_element(xml(hostile.get(path, params=params)))
    for path in ("/edr/collections", f"/edr/collections/{LAYER_ID}",
                 f"/tiles/{LAYER_ID}/tilejson.json", "/health"):
        response = hostile.get(path)
        assert response.status_code == 200, (path, response.text)
        assert response.json()


@pytest.mark.parametrize("name", [HOSTILE, "\x00\x01", "\ufffe\uffff", "]]><!--"])
def test_error_reports_carry_any_requested_name_safely(hostile: AppClient, name: str) -> None:
    for version in ("1.3.0", "1.1.1"):
        report = xml(hostile.get("/wms", params={"request": "GetMap", "layers": name,
                                                 "version": version}))
        assert etree.QName(report).localname == "ServiceExceptionReport"
        no_script_element(report)


def test_no_xml_parser_reads_requests() -> None:
    """The service never parses XML it receives; only the client module parses answers."""
    parsing = {"fromstring", "XML", "parse", "iterparse", "XMLParser", "XMLPullParser",
               "parseString", "make_parser"}
    found = []
    for module in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(module.read_text())):
            if isinstance(node, ast.Attribute) and node.attr in parsing and \
                    isinstance(node.value, ast.Name) and node.value.id in ("ET", "etree",
                                                                           "minidom", "sax"):
                found.append(f"{module.relative_to(PACKAGE)}: {node.value.id}.{node.attr}")
    assert found == ["client/service.py: ET.fromstring"], found


def test_the_client_reads_no_external_entity() -> None:
    error = service_error(httpx.Response(400, content=PASSWD_XXE))
    assert "root:" not in str(error)
    laughs = (b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaaaaaaaa">'
              + b"".join(b'<!ENTITY %s "%s">' % (b"a" * (k + 1), (b"&" + b"a" * k + b";") * 10)
                         for k in range(1, 9))
              + b"]><ServiceExceptionReport><ServiceException>&aaaaaaaaa;</ServiceException>"
                b"</ServiceExceptionReport>")
    assert len(str(service_error(httpx.Response(400, content=laughs)))) < 1000


def test_posted_xml_is_refused_unread(hostile: AppClient) -> None:
    for path in ("/wms", "/api/timeseries", "/edr/collections", "/zarr/hostile/zarr.json"):
        response = hostile.request("POST", path, content=PASSWD_XXE,
                                   headers={"Content-Type": "application/xml"})
        assert response.status_code == 405 and b"root:" not in response.content


@pytest.mark.parametrize("name", ["", "a/b", "a\\b", "..", ".", "tab\there", "x\x7f",
                                  "\ufffe", "a" * 201])
def test_layer_ids_are_validated(name: str) -> None:
    with pytest.raises(ConfigError):
        validate_layer_id(name)


@pytest.mark.parametrize("name", [".hidden", "a/b", "a\\b", "..", "bell\x07", "x" * 101])
def test_store_names_are_validated(name: str) -> None:
    with pytest.raises(ConfigError):
        validate_store_name(name)
    assert validate_store_name("naefs-mean") == "naefs-mean"


def test_a_store_with_a_bad_name_is_skipped(tmp_path: Path, demo_stores: Path) -> None:
    stores = tmp_path / "stores"
    stores.mkdir()
    (stores / "naefs-mean.zarr").symlink_to(demo_stores / "naefs-mean.zarr")
    (stores / "bad\\name.zarr").symlink_to(demo_stores / "marfc-fmat.zarr")
    assert list(Catalog(Settings(stores_dir=stores)).stores) == ["naefs-mean"]


# --- tokens ------------------------------------------------------------------------------

TOKEN_OPS, TOKEN_GUST = "ops-token-0123456789", "gust-token-9876543210"


@pytest.fixture(scope="module")
def secured(demo_stores: Path, tmp_path_factory: pytest.TempPathFactory) -> AppClient:
    config = tmp_path_factory.mktemp("secured") / "fewsmap.toml"
    config.write_text(f"""
[catalog]
auto_layers = true
[[security.tokens]]
name = "operations"
token = "{TOKEN_OPS}"
groups = ["marfc-fmat"]
layers = ["naefs-mean.QPF"]
[[security.tokens]]
name = "gusts"
token_env = "FEWSMAP_TEST_GUST_TOKEN"
layers = ["ecmwf-ens-gust.fg10_6"]
""")
    os.environ["FEWSMAP_TEST_GUST_TOKEN"] = TOKEN_GUST
    return AppClient(create_app(Settings(stores_dir=demo_stores, config_file=config)))


def layer_names(client: AppClient, **auth: str) -> set[str]:
    body = client.get("/wms", params={"request": "GetCapabilities", "format": "json",
                                      **auth}).json()
    return {layer["name"] for layer in body["layers"]}


def bearer(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


def test_protected_layers_are_hidden_from_anonymous_clients(secured: AppClient) -> None:
    anonymous = layer_names(secured)
    assert "naefs-mean.QTF" in anonymous
    assert not {"naefs-mean.QPF", "marfc-fmat.t", "ecmwf-ens-gust.fg10_6"} & anonymous
    xml_names = [n.text for n in xml(secured.get("/wms", params={
        "request": "GetCapabilities"})).iter(f"{WMS}Name")]
    assert "naefs-mean.QTF" in xml_names and "marfc-fmat" not in xml_names
    assert "naefs-mean.QPF" in layer_names(secured, api_key=TOKEN_OPS)
    with_header = secured.get("/wms", params={"request": "GetCapabilities", "format": "json"},
                              headers=bearer(TOKEN_OPS)).json()
    names = {layer["name"] for layer in with_header["layers"]}
    assert {"naefs-mean.QPF", "marfc-fmat.t"} <= names and "ecmwf-ens-gust.fg10_6" not in names
    stores = {s["name"] for s in secured.get("/health").json()["stores"]}
    assert stores == set()  # each demo store holds a protected layer


GETMAP = {"request": "GetMap", "crs": "EPSG:3857", "width": "32", "height": "32",
          "bbox": "-13914936,2875744,-7235766,7170156"}


@pytest.mark.parametrize("layer", ["naefs-mean.QPF", "marfc-fmat", "marfc-fmat.t",
                                   "naefs-mean.QTF,naefs-mean.QPF"])
def test_a_protected_layer_answers_401_without_its_token(secured: AppClient,
                                                         layer: str) -> None:
    response = secured.get("/wms", params={**GETMAP, "layers": layer})
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    code = xml(response).find("{http://www.opengis.net/ogc}ServiceException").get("code")
    assert code == "Unauthorized"
    wrong = secured.get("/wms", params={**GETMAP, "layers": layer}, headers=bearer(TOKEN_GUST))
    # A valid token, for other layers (FEWS answers 401 here too, not 403).
    assert wrong.status_code == 401
    assert 'error="insufficient_scope"' in wrong.headers["www-authenticate"]
    bogus = secured.get("/wms", params={**GETMAP, "layers": layer, "api_key": "nope-nope"})
    assert 'error="invalid_token"' in bogus.headers["www-authenticate"]
    assert secured.get("/wms", params={**GETMAP, "layers": layer},
                       headers=bearer(TOKEN_OPS)).status_code == 200
    assert secured.get("/wms", params={**GETMAP, "layers": layer,
                                       "api_key": TOKEN_OPS}).status_code == 200


def test_every_endpoint_honours_the_tokens(secured: AppClient) -> None:
    anonymous = [secured.get("/api/timeseries", params={"layer": "naefs-mean.QPF", "x": "-90",
                                                        "y": "40"}),
                 secured.get("/tiles/naefs-mean.QPF/3/2/3.png")]
    for response in anonymous:
        assert response.status_code == 401 and response.json()["error"]["code"] == \
            "Unauthorized"
    for raw in ("/zarr/naefs-mean/zarr.json", "/zarr-v2/naefs-mean/.zmetadata",
                "/zarr-v2/naefs-mean/QPF/.zarray"):  # the store as Zarr v3 and as v2
        assert secured.get(raw).status_code == 404, raw
        assert secured.get(raw, headers=bearer(TOKEN_OPS)).status_code == 200, raw
    edr = {c["id"] for c in secured.get("/edr/collections").json()["collections"]}
    assert "naefs-mean.QTF" in edr and "naefs-mean.QPF" not in edr
    gust = secured.get("/api/timeseries", params={"layer": "ecmwf-ens-gust.fg10_6",
                                                  "x": "5", "y": "50", "api_key": TOKEN_GUST})
    assert gust.status_code == 200, gust.text


WMTS_TILE = {"service": "WMTS", "request": "GetTile", "version": "1.0.0", "style": "default",
             "format": "image/png", "tilematrixset": "WebMercatorQuad", "tilematrix": "3",
             "tilerow": "3", "tilecol": "2"}


@pytest.mark.parametrize(("path", "params"), [
    ("/tiles/{layer}/3/2/3.png", {}),
    ("/tiles/{layer}/tilejson.json", {}),
    ("/wms", {**GETMAP, "layers": "{layer}"}),
    ("/wmts", {**WMTS_TILE, "layer": "{layer}"}),
    ("/wmts/1.0.0/WMTSCapabilities.xml", {}),
    ("/api/timeseries", {"layer": "{layer}", "x": "-90", "y": "40"}),
])
def test_what_a_token_unlocks_stays_out_of_shared_caches(secured: AppClient, path: str,
                                                         params: dict[str, str]) -> None:
    protected, public = "naefs-mean.QPF", "naefs-mean.QTF"
    for unlocked in (cache_control(secured, path, params, protected, bearer(TOKEN_OPS)),
                     cache_control(secured, path, params, protected, api_key=TOKEN_OPS)):
        assert unlocked.startswith("private") and "public" not in unlocked
    assert cache_control(secured, path, params, public).startswith("public")


def cache_control(client: AppClient, path: str, params: dict[str, str], layer: str,
                  headers: dict[str, str] | None = None, **extra: str) -> str:
    """Cache-Control of a successful answer about ``layer``, which varies with the token."""
    response = client.get(path.format(layer=layer), headers=headers,
                          params={k: v.format(layer=layer) for k, v in params.items()} | extra)
    assert response.status_code == 200, response.text
    assert "authorization" in response.headers["vary"].lower()
    return response.headers["cache-control"]


def test_a_protected_store_stays_out_of_shared_caches(secured: AppClient) -> None:
    unlocked = secured.get("/zarr/naefs-mean/zarr.json", headers=bearer(TOKEN_OPS))
    assert unlocked.headers["cache-control"] == "private, no-cache"
    assert "authorization" in unlocked.headers["vary"].lower()


def test_tokens_need_a_secret_and_something_to_protect(tmp_path: Path, demo_stores: Path) -> None:
    config = tmp_path / "c.toml"
    for table, says in (('token = "short"\nlayers = ["a"]', "[0]: token (or the variable "
                         "token_env names) must hold at least 8 characters"),
                        (f'token = "{TOKEN_OPS}"', "[0]: protects nothing"),
                        (f'token = "{TOKEN_OPS}"\nlayers = ["a"]\ncolour = "red"',
                         "[0].colour: unknown key")):
        config.write_text(f"[[security.tokens]]\n{table}\n")
        with pytest.raises(ConfigError) as raised:
            create_app(Settings(stores_dir=demo_stores, config_file=config))
        assert str(raised.value).startswith(f"{config}: security.tokens{says}")


# --- CORS ----------------------------------------------------------------------------------


def test_cors_is_public_read_only_by_default_and_configurable(demo_stores: Path) -> None:
    origin = {"Origin": "https://dashboard.example"}
    public = AppClient(create_app(Settings(stores_dir=demo_stores)))
    assert public.get("/health", headers=origin).headers["access-control-allow-origin"] == "*"
    preflight = {**origin, "Access-Control-Request-Method": "DELETE"}
    assert public.request("OPTIONS", "/wms", headers=preflight).status_code == 400
    only = AppClient(create_app(Settings(stores_dir=demo_stores,
                                         cors_origins=("https://dashboard.example",))))
    allowed = only.get("/health", headers=origin)
    assert allowed.headers["access-control-allow-origin"] == "https://dashboard.example"
    other = only.get("/health", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in other.headers


def test_tokens_work_over_real_http(demo_stores: Path, tmp_path: Path) -> None:
    config = tmp_path / "fewsmap.toml"
    config.write_text(f'[[security.tokens]]\ntoken = "{TOKEN_OPS}"\n'
                      'layers = ["naefs-mean.QPF"]\n')
    with live_server("--stores", str(demo_stores), "--config", str(config)) as url:
        params = {**GETMAP, "layers": "naefs-mean.QPF"}
        refused = httpx.get(f"{url}/wms", params=params, timeout=60)
        granted = httpx.get(f"{url}/wms", params=params, headers=bearer(TOKEN_OPS), timeout=60)
    assert refused.status_code == 401 and "Bearer" in refused.headers["www-authenticate"]
    assert granted.status_code == 200 and granted.headers["content-type"] == "image/png"


# --- derived layers: protection follows the data read ---------------------------------------

TOKEN_WINDS, TOKEN_U, TOKEN_OTHER = "winds-token-0123456789", "u-only-token-0123456789", \
    "other-token-0123456789"
VECTOR, GROUP = "grid.u-v", "grid"
PER_RUN = f"{VECTOR}-2026-01-01T00:00:00Z"
DERIVED = {"vector pair": VECTOR, "group": GROUP, "per-run id": PER_RUN}
# A token for other data, one for only one of the two components: neither unlocks the vector.
REFUSED = {"no token": None, "wrong token": TOKEN_OTHER, "u only": TOKEN_U}


@pytest.fixture(scope="module")
def derived(tmp_path_factory: pytest.TempPathFactory) -> AppClient:
    """Zero configuration over a store with u/v (so a vector layer ``grid.u-v``) and public
    lon/lat in the same group; tokens name the components, never the vector."""
    root = tmp_path_factory.mktemp("derived")
    lonlat_store(root / "stores" / "grid.zarr")
    lonlat_store(root / "stores" / "other.zarr", offset=1.0)
    config = root / "fewsmap.toml"
    config.write_text(f"""
[[security.tokens]]
name = "winds"
token = "{TOKEN_WINDS}"
layers = ["grid.u", "grid.v"]
[[security.tokens]]
name = "u only"
token = "{TOKEN_U}"
layers = ["grid.u"]
[[security.tokens]]
name = "other"
token = "{TOKEN_OTHER}"
layers = ["other.lat"]
""")
    return AppClient(create_app(Settings(stores_dir=root / "stores", config_file=config)))


MAP_BOX = {"crs": "CRS:84", "bbox": "-10,35,30,55", "width": "16", "height": "16"}
# Every way to read a derived layer's data or its image, by the kinds it applies to.
SERVING = {
    "GetMap": ("/wms", {"request": "GetMap", **MAP_BOX, "layers": "{name}"}, DERIVED),
    "tile": ("/tiles/{name}/2/2/1.png", {}, DERIVED),
    "GetFeatureInfo": ("/wms", {"request": "GetFeatureInfo", **MAP_BOX, "layers": "{name}",
                                "query_layers": "{query}", "i": "8", "j": "8",
                                "info_format": "application/json"}, DERIVED),
    "animation": ("/wms", {"request": "GetMap", **MAP_BOX, "layers": "{name}",
                           "format": "image/gif",
                           "time": "2026-01-01T00:00:00Z/2026-01-01T06:00:00Z"},
                  ("vector pair", "per-run id")),
    "GeoTIFF export": ("/wms", {"request": "GetMap", **MAP_BOX, "layers": "{name}",
                                "format": "image/tiff;subtype=float32"},
                       ("vector pair", "per-run id")),
    "NetCDF export": ("/wms", {"request": "GetMap", **MAP_BOX, "layers": "{name}",
                               "format": "application/x-netcdf"}, ("vector pair", "per-run id")),
    "legend": ("/wms", {"request": "GetLegendGraphic", "layer": "{name}",
                        "format": "application/json"}, ("vector pair", "per-run id")),
    "time series": ("/api/timeseries", {"layer": "{name}", "x": "5", "y": "50"},
                    ("vector pair", "per-run id")),
    "TileJSON": ("/tiles/{name}/tilejson.json", {}, ("vector pair", "per-run id")),
    "WMTS tile": ("/wmts", {**WMTS_TILE, "tilematrix": "2", "tilerow": "1", "tilecol": "2",
                            "layer": "{name}"}, ("vector pair",)),
    "EDR collection": ("/edr/collections/{name}", {}, ("vector pair",)),
    "EDR position": ("/edr/collections/{name}/position", {"coords": "POINT(5 50)"},
                     ("vector pair",)),
    "EDR instance position": ("/edr/collections/" + VECTOR
                              + "/instances/2026-01-01T00:00:00Z/position",
                              {"coords": "POINT(5 50)"}, ("per-run id",)),
}
MATRIX = [(endpoint, kind) for endpoint, (_, _, kinds) in SERVING.items() for kind in kinds]


def serve(client: AppClient, endpoint: str, kind: str, token: str | None) -> httpx.Response:
    path, params, _ = SERVING[endpoint]
    name = DERIVED[kind]
    query = "grid.u" if kind == "group" else name
    return client.get(path.format(name=name), headers=bearer(token),
                      params={k: v.format(name=name, query=query) for k, v in params.items()})


@pytest.mark.parametrize(("endpoint", "kind"), MATRIX)
@pytest.mark.parametrize("refused", REFUSED)
def test_derived_layers_need_every_token_their_parts_need(derived: AppClient, endpoint: str,
                                                          kind: str, refused: str) -> None:
    response = serve(derived, endpoint, kind, REFUSED[refused])
    assert response.status_code == 401, (response.status_code, response.text[:300])
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert b"-19.5" not in response.content  # no value of the grid (a longitude) leaks


@pytest.mark.parametrize(("endpoint", "kind"), MATRIX)
def test_derived_layers_serve_the_token_that_grants_every_part(derived: AppClient,
                                                               endpoint: str, kind: str) -> None:
    response = serve(derived, endpoint, kind, TOKEN_WINDS)
    assert response.status_code == 200, (response.status_code, response.text[:300])
    assert response.headers["cache-control"].startswith("private")


def visible_names(client: AppClient, token: str | None) -> dict[str, set[str]]:
    """What each listing shows a client holding ``token``."""
    auth = bearer(token)
    xml_names = {n.text for n in xml(client.get("/wms", params={
        "request": "GetCapabilities"}, headers=auth)).iter(f"{WMS}Name")}
    fews = client.get("/wms", params={"request": "GetCapabilities", "format": "json",
                                      "layers": VECTOR,
                                      "startForecastTime": "2026-01-01T00:00:00Z"},
                      headers=auth)
    wmts_root = xml(client.get("/wmts", params={"request": "GetCapabilities"}, headers=auth))
    zarr_status = client.get("/zarr/grid/zarr.json", headers=auth).status_code
    return {
        "WMS XML": xml_names,
        "FEWS JSON": {layer["name"] for layer in fews.json()["layers"]}
        if fews.status_code == 200 else set(),
        "WMTS": {e.text for e in wmts_root.iter("{http://www.opengis.net/ows/1.1}Identifier")},
        "EDR": {c["id"] for c in client.get("/edr/collections", headers=auth).json()[
            "collections"]},
        "health": {s["name"] for s in client.get("/health", headers=auth).json()["stores"]},
        "zarr": {"grid"} if zarr_status == 200 else set(),
    }


@pytest.mark.parametrize("refused", REFUSED)
def test_derived_layers_are_listed_only_for_a_token_granting_every_part(
        derived: AppClient, refused: str) -> None:
    hidden = visible_names(derived, REFUSED[refused])
    assert "grid.lon" in hidden["WMS XML"] and "grid.lon" in hidden["EDR"]
    for listing, names in hidden.items():
        assert not {VECTOR, GROUP, PER_RUN} & names, (listing, names)
    shown = visible_names(derived, TOKEN_WINDS)
    assert {VECTOR, GROUP} <= shown["WMS XML"]
    assert {VECTOR, PER_RUN} <= shown["FEWS JSON"]
    assert VECTOR in shown["WMTS"] and VECTOR in shown["EDR"]
    assert shown["health"] >= {"grid"} and shown["zarr"] == {"grid"}


def test_a_partly_protected_group_stays_a_heading_of_its_public_layers(
        derived: AppClient) -> None:
    """Anonymous clients see the group's public layers under its title, but the group is no
    longer a layer they can request (no Name): drawing it needs every member."""
    root = xml(derived.get("/wms", params={"request": "GetCapabilities"}))
    os.environ["XML_CATALOG_FILES"] = str(SCHEMAS / "catalog.xml")
    schema = etree.XMLSchema(etree.parse(str(SCHEMAS / "sld/1.1.0/sld_capabilities.xsd")))
    assert schema.validate(root), schema.error_log
    heading = next(node for node in root.iter(f"{WMS}Layer")
                   if "grid.lon" in [n.text for n in node.findall(f"{WMS}Layer/{WMS}Name")])
    assert heading.findtext(f"{WMS}Name") is None and heading.findtext(f"{WMS}Title")
    body = derived.get("/wms", params={"request": "GetCapabilities", "format": "json"}).json()
    lon = next(layer for layer in body["layers"] if layer["name"] == "grid.lon")
    assert lon["groupName"] == GROUP



def test_what_a_token_sees_follows_new_stores(tmp_path: Path) -> None:
    """A store landing later is protected by its group at once, derived layers too."""
    stores = tmp_path / "stores"
    lonlat_store(stores / "grid.zarr")
    config = tmp_path / "fewsmap.toml"
    config.write_text(f'[[security.tokens]]\ntoken = "{TOKEN_WINDS}"\ngroups = ["late"]\n')
    client = AppClient(create_app(Settings(stores_dir=stores, config_file=config,
                                           reload_interval_s=0.0)))
    assert VECTOR in layer_names(client)
    lonlat_store(stores / "late.zarr")
    anonymous = layer_names(client)
    assert VECTOR in anonymous and not {n for n in anonymous if n.startswith("late.")}
    assert {"late.lon", "late.u-v"} <= layer_names(client, api_key=TOKEN_WINDS)


# --- links carry the api_key they were asked with --------------------------------------------

BASE = "http://fewsmap.test"
# Values for the placeholders of WMTS resource templates and TileJSON tile URLs.
PLACEHOLDERS = {"{Style}": "default", "{Time}": "default", "{Run}": "latest",
                "{TileMatrixSet}": "WebMercatorQuad", "{TileMatrix}": "0", "{TileRow}": "0",
                "{TileCol}": "0", "{J}": "128", "{I}": "128", "{z}": "0", "{x}": "0", "{y}": "0"}
# Links that name an endpoint and need parameters a client adds (a WMS/WMTS KVP endpoint,
# an EDR query): followed bare they answer 400, never 401.
NEEDS_PARAMETERS = ("/wms", "/wmts", "/position", "/area", "/cube")
DOCUMENTS = [
    ("/tiles/naefs-mean.QPF/tilejson.json", {}),
    ("/tiles/naefs-mean.QPF/tilejson.json", {"style": "default", "colorscalerange": "0,50"}),
    ("/wmts", {"request": "GetCapabilities"}),
    ("/wmts/1.0.0/WMTSCapabilities.xml", {}),
    ("/wms", {"request": "GetCapabilities"}),
    ("/wms", {"request": "GetCapabilities", "version": "1.1.1"}),
    ("/wms", {"request": "GetCapabilities", "format": "application/json"}),
    ("/edr", {}),
    ("/edr/collections", {}),
    ("/edr/collections/naefs-mean.QPF", {}),
    ("/edr/collections/naefs-mean.QPF/instances", {}),
]


def links_in(response: httpx.Response) -> list[str]:
    """Every absolute link to the service in a JSON or XML answer, unescaped."""
    found = re.findall(re.escape(BASE) + r"[^\s\"'<>]*", response.text)
    return sorted({html.unescape(link) for link in found})


def followed(client: AppClient, link: str) -> httpx.Response:
    for placeholder, value in PLACEHOLDERS.items():
        link = link.replace(placeholder, value)
    return client.get(link.removeprefix(BASE))


@pytest.mark.parametrize(("path", "params"), DOCUMENTS)
def test_every_link_of_a_document_asked_with_api_key_carries_it(
        secured: AppClient, path: str, params: dict[str, str]) -> None:
    response = secured.get(path, params={**params, "api_key": TOKEN_OPS})
    assert response.status_code == 200, response.text[:300]
    links = links_in(response)
    lists_layers = path != "/edr" and params.get("format") != "application/json"  # FEWS JSON
    assert any("naefs-mean.QPF" in link for link in links) == lists_layers, links
    for link in links:
        if urlsplit(link).path.endswith("/") and "?" not in link:
            continue  # a path prefix (WMTS RESTful base) a client appends paths to
        assert parse_qs(urlsplit(link).query).get("api_key") == [TOKEN_OPS], link
        answer = followed(secured, link)
        expected = 400 if urlsplit(link).path.endswith(NEEDS_PARAMETERS) and \
            "request=" not in link.lower() else 200
        assert answer.status_code == expected, (link, answer.status_code, answer.text[:200])


def test_a_header_token_is_never_written_into_links(secured: AppClient) -> None:
    for path, params in DOCUMENTS:
        response = secured.get(path, params=params, headers=bearer(TOKEN_OPS))
        assert TOKEN_OPS not in response.text and "api_key" not in response.text, path
