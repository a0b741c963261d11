"""SLD=<url>: only URLs of the configured allow-list are fetched, and drawn as SLD_BODY."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from fewsmap.app.server import create_app
from fewsmap.errors import ConfigError
from fewsmap.settings import Settings, load_settings
from tests.app.test_sld_maps import DISCRETE, GETMAP, LAYER, LEGEND, VALUES, refusal, sld
from tests.asgi_client import AppClient
from tests.synthetic import field_store, lonlat_grid


class SldServer:
    """A real HTTP server with a few SLD files; it records every path asked for."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self.asked: list[str] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.asked.append(self.path)
                body = files.get(self.path)
                self.send_response(200 if body is not None else 404)
                self.send_header("Content-Type", "application/vnd.ogc.sld+xml")
                self.end_headers()
                self.wfile.write(body or b"not here")

            def log_message(self, *_: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def sld_server() -> Iterator[SldServer]:
    big = sld(DISCRETE).replace("<Title>", "<Title>" + "x" * 70_000)
    server = SldServer({"/discrete.sld": sld(DISCRETE).encode("latin-1"),
                        "/other.sld": sld(DISCRETE).encode(), "/big.sld": big.encode()})
    yield server
    server.close()


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> Path:
    stores = tmp_path_factory.mktemp("sld-urls") / "stores"
    grid = lonlat_grid(np.array([1.0, 0.0]), np.arange(float(len(VALUES))))
    values = np.array([VALUES, VALUES])
    field_store(stores / "known.zarr", grid, values, values)
    return stores


def app(stores: Path, *allowed: str) -> AppClient:
    return AppClient(create_app(Settings(stores_dir=stores, sld_allowed_urls=allowed)))


def test_an_allowed_url_draws_as_its_document_would(stores: Path,
                                                    sld_server: SldServer) -> None:
    url = f"{sld_server.base}/discrete.sld"
    client = app(stores, url)
    by_url = client.get("/wms", params={**GETMAP, "sld": url})
    by_body = client.get("/wms", params={**GETMAP, "sld_body": sld(DISCRETE)})
    assert by_url.status_code == 200, by_url.text
    assert by_url.content == by_body.content
    legend = client.get("/wms", params={**LEGEND, "format": "application/json", "sld": url})
    assert [e["upperValue"] for e in legend.json()["legend"]] == [150, 256]
    tile = client.get(f"/tiles/{LAYER}/4/8/7.png", params={"sld": url})
    assert tile.status_code == 200, tile.text
    assert sld_server.asked.count("/discrete.sld") == 1  # fetched once, then kept


def test_a_url_not_allowed_is_refused_and_never_fetched(stores: Path,
                                                        sld_server: SldServer) -> None:
    client = app(stores, f"{sld_server.base}/discrete.sld")
    for url in (f"{sld_server.base}/other.sld", f"{sld_server.base}/discrete.sld?x=1",
                "http://169.254.169.254/latest/meta-data", "file:///etc/passwd"):
        response = client.get("/wms", params={**GETMAP, "sld": url})
        assert response.status_code == 400
        assert refusal(response)[0] == "InvalidParameterValue"
        assert "sld_allowed_urls" in refusal(response)[1]
        tile = client.get(f"/tiles/{LAYER}/4/8/7.png", params={"sld": url})
        assert tile.status_code == 400 and "sld_allowed_urls" in tile.text
    assert "/other.sld" not in sld_server.asked
    assert not any("x=1" in path for path in sld_server.asked)


def test_without_an_allow_list_sld_by_url_is_not_enabled(stores: Path,
                                                         sld_server: SldServer) -> None:
    response = app(stores).get("/wms", params={**GETMAP,
                                               "sld": f"{sld_server.base}/discrete.sld"})
    assert response.status_code == 400
    assert "SLD by URL is not enabled" in refusal(response)[1]


@pytest.mark.parametrize(("path", "words"), [("/missing.sld", "HTTP 404"),
                                             ("/big.sld", "over 65536 bytes")])
def test_an_allowed_url_that_fails_is_a_400_saying_why(stores: Path, sld_server: SldServer,
                                                       path: str, words: str) -> None:
    url = f"{sld_server.base}{path}"
    response = app(stores, url).get("/wms", params={**GETMAP, "sld": url})
    assert response.status_code == 400
    assert words in refusal(response)[1]


def test_sld_and_sld_body_together_are_refused(stores: Path, sld_server: SldServer) -> None:
    url = f"{sld_server.base}/discrete.sld"
    response = app(stores, url).get("/wms", params={**GETMAP, "sld": url,
                                                   "sld_body": sld(DISCRETE)})
    assert response.status_code == 400
    assert "not both" in refusal(response)[1]


def test_the_allow_list_holds_http_addresses_only() -> None:
    settings = load_settings(environ={"FEWSMAP_SLD_ALLOWED_URLS":
                                      "https://a.example/x.sld, http://b.example/y.sld?v=2"})
    assert settings.sld_allowed_urls == ("https://a.example/x.sld", "http://b.example/y.sld?v=2")
    with pytest.raises(ConfigError, match="sld_allowed_urls"):
        load_settings(environ={"FEWSMAP_SLD_ALLOWED_URLS": "file:///etc/passwd"})
