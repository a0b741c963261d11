"""Routing refusals (404, 405, a refused CORS preflight) answer in the format of the endpoint
the path belongs to."""

from __future__ import annotations

import importlib
import json
import pkgutil
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from http import HTTPStatus
from pathlib import Path

import httpx
import pytest
from lxml import etree

import fewsmap
from fewsmap.app.api import api_error
from fewsmap.app.edr import edr_error
from fewsmap.app.files import UnsatisfiableRange
from fewsmap.app.http_errors import HTTPError
from fewsmap.app.server import create_app, error_response
from fewsmap.errors import FewsmapError, InternalError, ServiceUnavailable
from fewsmap.ogc.exceptions import json_error
from fewsmap.params import Params
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


# --- every error has a code (issue #13 item 6) ----------------------------------------------


def error_classes() -> list[type[FewsmapError]]:
    """Every FewsmapError subclass of the package (all modules imported)."""
    for module in pkgutil.walk_packages(fewsmap.__path__, "fewsmap."):
        if not module.name.startswith("fewsmap.demo"):
            importlib.import_module(module.name)
    found: list[type[FewsmapError]] = []
    pending: list[type[FewsmapError]] = [FewsmapError]
    while pending:
        cls = pending.pop()
        found.append(cls)
        pending.extend(cls.__subclasses__())
    return found


def instance(cls: type[FewsmapError]) -> FewsmapError:
    """An instance of ``cls`` built the way its constructor wants."""
    if cls is HTTPError:
        return HTTPError(418, "a refusal", None)
    if cls is ServiceUnavailable:
        return ServiceUnavailable("busy", 1)
    if cls is UnsatisfiableRange:
        return UnsatisfiableRange("bytes=9-", 1)
    return cls("a message")


def json_bodies(error: Exception) -> list[dict[str, str]]:
    """The JSON error objects every JSON route renders ``error`` as."""
    params = Params([("request", "GetMap"), ("format", "application/json")])
    responses = [api_error(error), edr_error(error),
                 error_response(error, params, Settings().max_image_pixels)]
    bodies = [json.loads(bytes(r.body)) for r in responses]
    return [body.get("error") or body for body in bodies]


def test_every_error_class_has_a_code() -> None:
    classes = error_classes()
    assert len(classes) > 20 and InternalError in classes
    for cls in classes:
        assert isinstance(cls.ogc_code, str) and cls.ogc_code, cls


@pytest.mark.parametrize("error", [
    *[pytest.param(cls, id=cls.__name__) for cls in error_classes()],
    pytest.param(RuntimeError, id="unexpected exception"),
    pytest.param(ValueError, id="unexpected ValueError"),
])
def test_every_json_error_body_has_a_string_code(error: type[Exception]) -> None:
    raised = instance(error) if issubclass(error, FewsmapError) else error("boom /secret/path")
    for body in json_bodies(raised):
        assert isinstance(body["code"], str) and body["code"], body
        assert "/secret/path" not in json.dumps(body)


@pytest.mark.parametrize("status", [*(s for s in HTTPStatus if s >= 400), 499])
def test_every_routing_refusal_has_a_code(status: int) -> None:
    error = HTTPError(status, "refused", None)
    assert isinstance(error.ogc_code, str) and error.ogc_code.isalnum()
    assert json.loads(json_error(error))["error"]["code"] == error.ogc_code


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
