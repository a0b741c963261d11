"""Routing refusals (404, 405, a refused CORS preflight) answer in the format of the endpoint
the path belongs to."""

from __future__ import annotations

import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from lxml import etree

from fewsmap.app.server import create_app
from fewsmap.settings import Settings
from tests.asgi_client import AppClient
from tests.live_server import live_server

# A browser asking whether a page elsewhere may PUT (only GET and HEAD are allowed).
PREFLIGHT = {"Origin": "https://dashboard.example", "Access-Control-Request-Method": "PUT"}


@pytest.fixture(scope="module")
def client(demo_stores: Path) -> AppClient:
    return AppClient(create_app(Settings(stores_dir=demo_stores)))


@pytest.mark.parametrize(("method", "path", "status", "root"), [
    ("GET", "/wms/extra", 404, "{http://www.opengis.net/ogc}ServiceExceptionReport"),
    ("POST", "/FewsWebServices/wms", 405, "{http://www.opengis.net/ogc}ServiceExceptionReport"),
    ("DELETE", "/wmts", 405, "{http://www.opengis.net/ows/1.1}ExceptionReport"),
    ("OPTIONS", "/wms", 400, "{http://www.opengis.net/ogc}ServiceExceptionReport"),
    ("OPTIONS", "/wmts", 400, "{http://www.opengis.net/ows/1.1}ExceptionReport"),
])
def test_ogc_paths_answer_exception_reports(client: AppClient, method: str, path: str,
                                            status: int, root: str) -> None:
    response = client.request(method, path, headers=PREFLIGHT if method == "OPTIONS" else None)
    assert response.status_code == status
    report = etree.fromstring(response.content)
    assert report.tag == root and "".join(report.itertext()).strip()
    if status == 405:
        assert "GET" in response.headers["allow"]


def test_other_paths_answer_json_errors(client: AppClient) -> None:
    missing = client.get("/no/such/thing")
    assert missing.status_code == 404
    assert missing.json()["error"] == {"code": "NotFound",
                                       "message": "no resource at '/no/such/thing'"}
    assert client.get("/viewer/assets/../../settings.py").status_code == 404
    edr = client.request("PUT", "/edr/collections")
    assert edr.status_code == 405 and edr.json()["code"] == "MethodNotAllowed"
    api = client.request("PATCH", "/api/timeseries")
    assert api.status_code == 405 and api.json()["error"]["code"] == "MethodNotAllowed"


@pytest.mark.parametrize("path", ["/wmsx", "/wmts.xml", "/edrs", "/FewsWebServicesX"])
def test_a_path_only_resembling_an_ogc_endpoint_answers_json(client: AppClient,
                                                            path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404 and response.json()["error"]["code"] == "NotFound"


@pytest.mark.parametrize("path", ["/health", "/zarr/naefs-mean/zarr.json", "/viewer/assets/api.js",
                                  "/edr/collections"])
def test_a_refused_preflight_says_why_in_json(client: AppClient, path: str) -> None:
    response = client.request("OPTIONS", path, headers=PREFLIGHT)
    assert response.status_code == 400
    assert response.headers["access-control-allow-methods"] == "GET, HEAD"
    body = response.json()
    error = body.get("error") or {"code": body["code"], "message": body["description"]}  # EDR
    assert error["code"] == "CORSPreflightRefused"
    assert "'PUT'" in error["message"] and "GET, HEAD" in error["message"]
    allowed = client.request("OPTIONS", path, headers={**PREFLIGHT,
                                                       "Access-Control-Request-Method": "GET"})
    assert allowed.status_code == 200


# Issue #13 item 12: an error drawn as an image obeys the map's pixel limit, off the loop.
INIMAGE = {"service": "WMS", "request": "GetMap", "layers": "nope", "crs": "CRS:84",
           "bbox": "0,0,1,1", "exceptions": "INIMAGE"}


@pytest.mark.parametrize("mode", ["INIMAGE", "BLANK"])
def test_error_images_beyond_the_pixel_limit_are_exception_reports(demo_stores: Path,
                                                                   mode: str) -> None:
    app = AppClient(create_app(Settings(stores_dir=demo_stores, max_image_pixels=10_000)))
    within = app.get("/wms", {**INIMAGE, "exceptions": mode, "width": "100", "height": "100"})
    assert within.status_code == 200 and within.headers["content-type"] == "image/png"
    for size in ("101", "4096"):
        beyond = app.get("/wms", {**INIMAGE, "exceptions": mode, "layers": "naefs-mean.QPF",
                                  "width": size, "height": size})
        assert beyond.status_code == 400
        assert beyond.headers["content-type"].startswith("text/xml")
        report = etree.fromstring(beyond.content)
        assert report.tag == "{http://www.opengis.net/ogc}ServiceExceptionReport"
        assert "exceeds the limit of 10000" in "".join(report.itertext())


def test_error_images_are_drawn_off_the_event_loop(demo_stores: Path) -> None:
    big = {**INIMAGE, "width": "1500", "height": "1500"}  # within max_image_pixels
    with live_server("--stores", str(demo_stores)) as url, \
            ThreadPoolExecutor(6) as pool:
        assert httpx.get(url + "/wms", params=big, timeout=30).status_code == 200
        deadline = time.monotonic() + 3
        drawing = [pool.submit(draw_until, url, big, deadline) for _ in range(6)]
        time.sleep(0.3)
        health_s = []
        while time.monotonic() < deadline - 0.3:
            start = time.monotonic()
            assert httpx.get(url + "/health", timeout=30).status_code == 200
            health_s.append(time.monotonic() - start)
            time.sleep(0.05)
        assert sum(future.result() for future in drawing) >= 6
    # Drawn on the event loop, /health waited 0.7 s (median) and up to 1.5 s here.
    assert statistics.median(health_s) < 0.25, health_s
    assert max(health_s) < 0.75, health_s


def draw_until(url: str, params: dict[str, str], deadline: float) -> int:
    """Ask for error images one after the other until ``deadline``; how many came."""
    drawn = 0
    with httpx.Client(timeout=30) as client:
        while time.monotonic() < deadline:
            response = client.get(url + "/wms", params=params)
            assert response.status_code == 200
            assert response.headers["content-type"] == "image/png"
            drawn += 1
    return drawn
