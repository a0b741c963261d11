"""The viewer's page and files as the service serves them: what the page loads is there, nothing
outside the two asset folders is reachable, and a missing build step is explained."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

import anyio
import pytest
from starlette.applications import Starlette
from starlette.types import Message

from fewsmap.app.server import create_app
from fewsmap.app.viewer import ASSETS, VENDOR, VENDOR_FILES, missing_vendor_files, viewer_routes
from fewsmap.settings import Settings
from tests.asgi_client import AppClient

HOSTILE_PATHS = (
    "/viewer/assets/../__init__.py",
    "/viewer/assets/../package.json",
    "/viewer/assets/../../settings.py",
    "/viewer/vendor/../__init__.py",
    "/viewer/vendor/../node_modules/ol/package.json",
    "/viewer/assets/%2e%2e/__init__.py",
    "/viewer/assets/..%2f__init__.py",
    "/viewer/assets/%2e%2e%2f%2e%2e%2fsettings.py",
    "/viewer/assets//etc/passwd",
    "/viewer/assets/%2fetc%2fpasswd",
    "/viewer/assets/..\\__init__.py",
    "/viewer/assets/index.html%00.py",
)


Client = AppClient  # requests straight to the ASGI app, its lifespan run (no server)


@pytest.fixture(scope="module")
def client(demo_stores: Path) -> Client:
    if missing_vendor_files(VENDOR):
        pytest.fail(f"{VENDOR} lacks {missing_vendor_files(VENDOR)}: run `make vendor` (npm)")
    return Client(create_app(Settings(stores_dir=demo_stores)))


def page_references() -> list[str]:
    """Every local URL index.html loads, and the modules its scripts import."""
    html = (ASSETS / "index.html").read_text()
    urls = re.findall(r'(?:src|href)="(/viewer/[^"]+)"', html)
    for script in ASSETS.glob("*.js"):
        urls += [f"/viewer/assets/{name}" for name in
                 re.findall(r"from '\./([\w.-]+)'", script.read_text())]
        urls += re.findall(r"'(/viewer/[\w./-]+)'", script.read_text())
    return sorted(set(urls))


def test_the_page_is_served_at_the_root(client: Client) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert '<div id="map"' in response.text
    assert "cdn" not in response.text.lower()  # every library is served by fewsmap itself


def test_everything_the_page_loads_is_served(client: Client) -> None:
    references = page_references()
    assert {"/viewer/vendor/ol.js", "/viewer/vendor/ol.css", "/viewer/assets/viewer.js",
            "/viewer/assets/api.js", "/viewer/assets/chart.js",
            "/viewer/vendor/countries-110m.json"} <= set(references)
    types = {".js": "javascript", ".css": "text/css", ".json": "application/json"}
    for url in references:
        response = client.get(url)
        assert response.status_code == 200, url
        assert types[Path(url).suffix] in response.headers["content-type"], url
        assert response.content, url
        assert response.headers["cache-control"] == "no-cache", url  # revalidated: no stale JS


@pytest.mark.parametrize("url", ["/", "/viewer/assets/viewer.js", "/viewer/vendor/ol.css"])
def test_byte_ranges_as_the_stores_files(client: Client, url: str) -> None:
    whole = client.get(url).content
    part = client.get(url, headers={"Range": "bytes=0-9"})
    assert part.status_code == 206 and part.content == whole[:10]
    for unusable in ("bytes=abc", "lines=1-2", "bytes=9-3"):  # ignored (RFC 9110 §14.2)
        response = client.get(url, headers={"Range": unusable})
        assert response.status_code == 200 and response.content == whole, unusable
    beyond = client.get(url, headers={"Range": f"bytes={len(whole)}-"})
    assert beyond.status_code == 416
    assert beyond.headers["content-range"] == f"bytes */{len(whole)}"
    assert beyond.json()["error"]["code"] == "RangeNotSatisfiable"


def raw_get(app: Starlette, raw_path: str) -> tuple[int, bytes]:
    """GET ``raw_path`` as written (HTTP clients normalise ``..``), decoded as uvicorn does."""
    # ASGI spec 2.4: responses do not wait on receive() for a disconnect.
    scope = {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.4"},
             "http_version": "1.1", "method": "GET", "scheme": "http",
             "path": unquote(raw_path), "raw_path": raw_path.encode(), "root_path": "",
             "query_string": b"", "headers": [(b"host", b"testserver")],
             "server": ("testserver", 80), "client": ("127.0.0.1", 1234)}
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    anyio.run(app, scope, receive, send)
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    return status, b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")


@pytest.mark.parametrize("path", HOSTILE_PATHS)
def test_nothing_outside_the_asset_folders_is_reachable(client: Client, path: str) -> None:
    status, body = raw_get(client.app, path)
    assert status == 404, f"{path} answered {status}"
    assert b"import" not in body and b"root:" not in body and b"fewsmap" not in body


def test_a_missing_build_step_is_explained(tmp_path: Path) -> None:
    client = Client(Starlette(routes=viewer_routes(vendor=tmp_path / "vendor")))
    page = client.get("/")
    assert page.status_code == 503
    assert "make vendor" in page.text
    assert all(name in page.text for name in VENDOR_FILES)
    assert client.get("/viewer/vendor/ol.js").status_code == 404  # not a crash
    assert client.get("/viewer/assets/viewer.js").status_code == 200
