"""No request, however malformed, gets a 5xx: every refusal is a well-formed OGC report."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from tests.live_server import live_server

NAMES = ["request", "service", "version", "layers", "layer", "styles", "style", "crs", "srs",
         "bbox", "width", "height", "format", "time", "elevation", "externalForecastTime",
         "dim_ensemble_member", "ensembleMemberId", "colorscalerange", "showContours",
         "transparent", "bgcolor", "exceptions", "onlyHeaders", "startForecastTime",
         "endForecastTime", "forecastCount", "convertUVtoRG", "dim_reference_time"]
REQUESTS = ["GetMap", "GetCapabilities", "GetLegendGraphic", "getmap", "GETMAP", "", "x"]
NASTY = ["", "nan", "inf", "-inf", "1e309", "-0", "9" * 40, "0x", "../../etc/passwd", "%00",
         "\u202e\u0000", "1,2,3", "1,2,3,4", "4,3,2,1", "-180,-90,180,90", "0,0,0,0",
         "EPSG:4326", "EPSG:999999", "CRS:84", "EPSG:3857", "naefs-mean.QPF",
         "marfc-fmat.t-2022-06-01T06:00:00Z", "marfc-fmat.t-2099-01-01T00:00:00Z",
         "2022-06-01T18:00:00Z", "2022-06-01T18:00:00.000Z", "2022-06-01", "current",
         "1/2/3", "true", "false", "image/png", "image/tiff", "application/json", "INIMAGE",
         "BLANK", "1000000", "2000", "1", "0", "-5", "ensemble_999", "0xZZZZZZ", "a" * 300]
values = st.one_of(st.sampled_from(NASTY), st.text(max_size=60))


@pytest.fixture(scope="module")
def client(demo_stores: Path) -> Iterator[httpx.Client]:
    with live_server("--stores", str(demo_stores)) as url, \
            httpx.Client(base_url=url, timeout=60) as http:
        yield http


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(request=st.sampled_from(REQUESTS),
       params=st.dictionaries(st.sampled_from(NAMES + [n.upper() for n in NAMES]), values,
                              max_size=10),
       path=st.sampled_from(["/wms", "/FewsWebServices/wms"]))
def test_no_request_gets_a_server_error(client: httpx.Client, request: str,
                                        params: dict[str, str], path: str) -> None:
    response = client.get(path, params={"request": request, **params})
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        media_type = response.headers["content-type"]
        if media_type.startswith("application/json"):
            assert response.json()["error"]["message"]
        else:
            report = etree.fromstring(response.content)
            assert report.tag.endswith("ServiceExceptionReport")
            assert "Traceback" not in response.text
