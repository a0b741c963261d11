"""One error table: every error kind has its answer there, and every front answers from it."""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

import pytest
from lxml import etree

import fewsmap
from fewsmap.app.server import create_app
from fewsmap.errors import ERRORS, FewsmapError, InvalidCRS, LayerNotDefined
from fewsmap.settings import Settings
from tests.asgi_client import AppClient

OWS = "{http://www.opengis.net/ows/1.1}"
# Codes fewsmap sets at run time rather than per class: HTTP refusals and a service's own.
DYNAMIC = ("HTTPError", "ServiceError")
LAYER = "naefs-mean.QTF"  # a demo layer (the demo stores of tests/conftest.py)


def error_kinds() -> list[type[FewsmapError]]:
    """Every FewsmapError subclass of the package, its modules all imported."""
    for module in pkgutil.walk_packages(fewsmap.__path__, "fewsmap."):
        importlib.import_module(module.name)
    kinds, todo = [], [FewsmapError]
    while todo:
        kind = todo.pop()
        kinds.append(kind)
        todo += kind.__subclasses__()
    return [kind for kind in kinds if kind.__name__ not in DYNAMIC]


@pytest.fixture(scope="module")
def client(demo_stores: Path) -> AppClient:
    return AppClient(create_app(Settings(stores_dir=demo_stores)))


@pytest.mark.parametrize("kind", error_kinds(), ids=lambda kind: kind.__name__)
def test_every_error_kind_answers_from_the_table(kind: type[FewsmapError]) -> None:
    assert kind.ogc_code in ERRORS, f"{kind.__name__}: add {kind.ogc_code!r} to ERRORS"
    assert kind.http_status == ERRORS[kind.ogc_code].status


def test_the_table_is_used_by_status() -> None:
    assert LayerNotDefined("x").http_status == 400 and InvalidCRS("x").answer.wms_1_1_1


def test_a_refused_crs_is_named_by_the_version_asked(client: AppClient) -> None:
    base = (f"/wms?service=WMS&request=GetMap&layers={LAYER}&styles=&format=image/png"
            "&width=10&height=10&bbox=0,0,1,1")
    for version, crs_name, code in (("1.3.0", "crs", "InvalidCRS"),
                                    ("1.1.1", "srs", "InvalidSRS")):
        response = client.get(f"{base}&version={version}&{crs_name}=EPSG:2056")
        assert response.status_code == 400
        report = etree.fromstring(response.content)
        assert report.find("{*}ServiceException").get("code") == code


def test_wmts_speaks_ows_codes_with_the_parameter_at_fault(client: AppClient) -> None:
    """OWS Common has no LayerNotDefined: an unknown layer is an InvalidParameterValue whose
    locator names the parameter (WMTS 1.0.0 Table 28), as GeoWebCache answers it."""
    response = client.get("/wmts?service=WMTS&version=1.0.0&request=GetTile&layer=nothing"
                          "&style=default&format=image/png&tilematrixset=WebMercatorQuad"
                          "&tilematrix=2&tilerow=0&tilecol=0")
    assert response.status_code == 400
    exception = etree.fromstring(response.content).find(f"{OWS}Exception")
    assert (exception.get("exceptionCode"), exception.get("locator")) == (
        "InvalidParameterValue", "layer")


def test_json_fronts_carry_the_code_itself(client: AppClient) -> None:
    response = client.get("/api/timeseries?layer=nothing&x=0&y=0")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "LayerNotDefined"
    edr = client.get("/edr/collections/nothing")
    assert edr.status_code == 404 and edr.json()["code"] == "NotFound"
