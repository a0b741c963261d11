"""Routing refusals (404, 405, a refused CORS preflight) answer in the format of the endpoint
the path belongs to."""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from fewsmap.app.server import create_app
from fewsmap.settings import Settings
from tests.asgi_client import AppClient

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
