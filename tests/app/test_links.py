"""Links in answers go to the configured public address, whatever Host a client sends."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from fewsmap.app.links import links_with_api_key
from fewsmap.app.server import create_app
from fewsmap.errors import ConfigError
from fewsmap.ingest import ingest
from fewsmap.settings import Settings, load_settings
from tests.asgi_client import AppClient
from tests.forecast_files import forecast_file, run_time

PUBLIC = "https://maps.example.org/fewsmap"
FORGED = {"Host": "evil.example"}
# Every document that carries links to the service, by path and query.
LINKED = [
    ("/wms", {"service": "WMS", "request": "GetCapabilities"}),
    ("/wms", {"service": "WMS", "request": "GetCapabilities", "version": "1.1.1"}),
    ("/FewsWebServices/wms", {"service": "WMS", "request": "GetCapabilities"}),
    ("/wmts", {"service": "WMTS", "request": "GetCapabilities"}),
    ("/wmts/1.0.0/WMTSCapabilities.xml", {}),
    ("/tiles/feed.tp/tilejson.json", {}),
    ("/edr/collections", {}),
    ("/edr/collections/feed.tp/instances", {}),
]
LINK = re.compile(r"https?://[^\s\"'<>?{]+")


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("links")
    ingest(folder / "stores" / "feed.zarr", [forecast_file(folder, run_time(0))],
           progress=False)
    return folder / "stores"


def links(client: AppClient, path: str, query: dict[str, str]) -> set[str]:
    response = client.get(path, params=query, headers=FORGED)
    assert response.status_code == 200, response.text
    return {link for link in LINK.findall(response.text)
            if "opengis.net" not in link and "w3.org" not in link}


@pytest.mark.parametrize(("path", "query"), LINKED)
def test_links_use_the_public_address_not_the_host_header(
        stores: Path, path: str, query: dict[str, str]) -> None:
    client = AppClient(create_app(Settings(stores_dir=stores, public_url=PUBLIC)))
    found = links(client, path, query)
    assert found and all(link.startswith(PUBLIC + "/") for link in found), found


def test_the_wms_address_is_the_path_asked(stores: Path) -> None:
    client = AppClient(create_app(Settings(stores_dir=stores, public_url=PUBLIC)))
    found = links(client, "/FewsWebServices/wms", dict(LINKED[2][1]))
    assert {link.split("?")[0] for link in found} == {PUBLIC + "/FewsWebServices/wms"}


def test_without_a_public_address_links_follow_the_request(stores: Path) -> None:
    client = AppClient(create_app(Settings(stores_dir=stores)))
    tilejson = json.loads(client.get("/tiles/feed.tp/tilejson.json", headers=FORGED).text)
    assert tilejson["tiles"][0].startswith("http://evil.example/tiles/feed.tp/")


@pytest.mark.parametrize("value", ["maps.example.org", "ftp://maps.example.org",
                                   "https://maps.example.org/?a=1", "https://#x"])
def test_a_public_address_must_be_an_http_address(value: str) -> None:
    with pytest.raises(ConfigError, match="public_url"):
        load_settings(environ={"FEWSMAP_PUBLIC_URL": value})
    assert load_settings(environ={"FEWSMAP_PUBLIC_URL": PUBLIC + "/"}).public_url == PUBLIC


@pytest.mark.parametrize(("text", "xml", "expected"), [
    ('"http://h/tiles/a/{z}/{x}/{y}.png"', False, '"http://h/tiles/a/{z}/{x}/{y}.png?api_key=k%2F1"'),
    ('"http://h/wms?request=GetLegendGraphic&layer=a"', False,
     '"http://h/wms?request=GetLegendGraphic&layer=a&api_key=k%2F1"'),
    ('href="http://h/wms?service=WMS&amp;layer=a"', True,
     'href="http://h/wms?service=WMS&amp;layer=a&amp;api_key=k%2F1"'),
    ('href="http://h/wmts?"', True, 'href="http://h/wmts?api_key=k%2F1&amp;"'),
    ('href="http://h/wmts/1.0.0/"', True, 'href="http://h/wmts/1.0.0/"'),  # a path prefix
    ('"http://h/x?API_KEY=other"', False, '"http://h/x?API_KEY=other"'),  # keeps its own key
    ('"http://host.example/x"', False, '"http://host.example/x"'),  # another host
    ("<a>http://h/edr</a>", True, "<a>http://h/edr?api_key=k%2F1</a>"),
])
def test_links_carry_the_api_key(text: str, xml: bool, expected: str) -> None:
    assert links_with_api_key(text, "http://h", "k/1", xml) == expected
