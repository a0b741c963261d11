"""End to end: the real ``fewsmap serve`` on 127.0.0.1, driven over HTTP."""

from __future__ import annotations

import io
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from lxml import etree
from PIL import Image

from fewsmap.products.ensemble import listed_statistics
from tests.conftest import sample_paths
from tests.live_server import live_server, stores_of

WMS = "{http://www.opengis.net/wms}"
OGC = "{http://www.opengis.net/ogc}"


@pytest.fixture(scope="module")
def demo_url(demo_stores: Path) -> Iterator[str]:
    with live_server("--stores", str(demo_stores)) as url:
        yield url


def capabilities(url: str, **params: str) -> httpx.Response:
    return httpx.get(f"{url}/wms", params={"request": "GetCapabilities", **params}, timeout=30)


def exception_code(response: httpx.Response) -> str | None:
    if response.headers["content-type"] == "application/json":  # JSON was asked for
        return str(response.json()["error"]["code"])
    assert response.headers["content-type"].startswith("text/xml")  # WMS 1.3.0 §7.3.3.11
    report = etree.fromstring(response.content)
    assert report.tag == f"{OGC}ServiceExceptionReport"
    return report.find(f"{OGC}ServiceException").get("code")


def test_serve_builds_the_demo_on_first_start(tmp_path: Path) -> None:
    with live_server("--stores", str(tmp_path / "stores"), timeout_s=120) as url:
        stores = stores_of(url)
    assert sorted(stores) == ["ecmwf-ens-gust", "marfc-fmat", "naefs-mean"]
    assert stores["marfc-fmat"]["runs"] == 4
    assert stores["naefs-mean"]["latest_run"] == "2022-08-09T00:00:00Z"


def test_fews_json_capabilities(demo_url: str) -> None:
    body = capabilities(demo_url, format="application/json").json()
    layers = {layer["name"]: layer for layer in body["layers"]}
    qpf = layers["naefs-mean.QPF"]
    assert qpf["externalForecastTime"] == "2022-08-09T00:00:00Z"
    assert len(qpf["times"]) == 64 and qpf["times"][0] == "2022-08-09T06:00:00Z"
    assert qpf["firstValueTime"] == "2022-08-09T06:00:00Z"
    assert qpf["lastValueTime"] == "2022-08-25T00:00:00Z"
    # The run lies in the past, so the default is its first step, not its last (peers' pain).
    assert qpf["timesDefault"] == "2022-08-09T06:00:00Z"
    assert qpf["groupName"] == "naefs-mean" and qpf["path"] == ["naefs-mean"]
    assert qpf["completelyMissing"] is False and qpf["onlyGrids"] is True
    bbox = qpf["boundingBox"]
    assert bbox["crs"] == "EPSG:3857" and all(isinstance(v, str) for v in bbox.values())
    assert float(bbox["minx"]) == pytest.approx(-125.25 * 20037508.342789244 / 180, rel=1e-9)
    gust = layers["ecmwf-ens-gust.fg10_6"]
    assert gust["ensembles"][0]["ensembleMemberIds"] == [
        *(str(m) for m in range(1, 51)), *listed_statistics()]  # members, then statistics
    assert {g["name"] for g in body["groups"]} == {"naefs-mean", "marfc-fmat", "ecmwf-ens-gust"}


def test_only_headers_leaves_out_times(demo_url: str) -> None:
    body = capabilities(demo_url, format="application/json", onlyHeaders="true").json()
    assert body["layers"] and all("times" not in layer for layer in body["layers"])


def test_forecast_period_lists_runs_as_child_layers(demo_url: str) -> None:
    body = capabilities(demo_url, format="application/json", layers="marfc-fmat.t",
                        startForecastTime="2022-06-01T00:00:00Z",
                        endForecastTime="2022-06-01T12:00:00.000Z", forecastCount="2").json()
    names = [layer["name"] for layer in body["layers"]]
    assert names == ["marfc-fmat.t", "marfc-fmat.t-2022-06-01T06:00:00Z",
                     "marfc-fmat.t-2022-06-01T12:00:00Z"]
    child = body["layers"][2]
    assert child["title"] == "2022-06-01T12:00:00Z"
    assert child["externalForecastTime"] == "2022-06-01T12:00:00Z"
    assert child["times"] == ["2022-06-02T00:00:00Z"]
    # The same period written with a time zone offset (found by the fuzzer: it was a 500).
    offset = capabilities(demo_url, format="application/json", layers="marfc-fmat.t",
                          startForecastTime="2022-06-01T02:00:00+02:00",
                          endForecastTime="2022-06-01T14:00+02:00", forecastCount="2").json()
    assert [layer["name"] for layer in offset["layers"]] == names


def test_drop_in_fews_path_and_case_insensitive_names(demo_url: str) -> None:
    response = httpx.get(f"{demo_url}/FewsWebServices/wms",
                         params={"REQUEST": "GetCapabilities", "FORMAT": "application/json",
                                 "Version": "1.3", "uppercase": "false"}, timeout=30)
    assert response.status_code == 200
    assert {layer["name"] for layer in response.json()["layers"]} >= {"marfc-fmat.t"}


def test_xml_capabilities_layer_tree(demo_url: str) -> None:
    response = capabilities(demo_url)
    assert response.headers["content-type"].startswith("text/xml")
    root = etree.fromstring(response.content)
    assert root.get("version") == "1.3.0"
    groups = root.findall(f"{WMS}Capability/{WMS}Layer/{WMS}Layer")
    assert {g.findtext(f"{WMS}Name") for g in groups} == {
        "naefs-mean", "marfc-fmat", "ecmwf-ens-gust"}
    fmat = next(layer for layer in root.iter(f"{WMS}Layer")
                if layer.findtext(f"{WMS}Name") == "marfc-fmat.t")
    time_dim = fmat.find(f"{WMS}Dimension")
    assert time_dim.get("name") == "time" and time_dim.get("units") == "ISO8601"
    assert time_dim.text == "2022-06-02T06:00:00Z"  # the latest run's only step
    assert "parameterId=t" in [k.text for k in fmat.iter(f"{WMS}Keyword")]


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"request": "GetFeatureInfoX"}, "OperationNotSupported"),
        ({"service": "WMS"}, "MissingParameterValue"),
        ({"request": "GetCapabilities", "layers": "nope"}, "LayerNotDefined"),
        ({"request": "GetCapabilities", "format": "application/json",
          "startForecastTime": "2022-06-01T00:00:00Z"}, "MissingParameterValue"),
        ({"request": "GetCapabilities", "format": "application/json", "layers": "marfc-fmat.t",
          "startForecastTime": "yesterday"}, "InvalidParameterValue"),
        ({"request": "GetCapabilities", "onlyHeaders": "perhaps"}, "InvalidParameterValue"),
        ({"request": "GetCapabilities", "layers": "x" * 20_000}, "InvalidParameterValue"),
    ],
)
def test_bad_requests_get_an_ogc_exception_report(
    demo_url: str, params: dict[str, str], code: str
) -> None:
    response = httpx.get(f"{demo_url}/wms", params=params, timeout=30)
    assert response.status_code == 400
    assert exception_code(response) == code


def test_a_published_run_appears_without_a_restart(tmp_path: Path) -> None:
    stores = tmp_path / "stores"
    fmat = sample_paths("fmat")
    subprocess.run([sys.executable, "-m", "fewsmap.cli", "ingest", "--quiet",
                    "--store", str(stores / "fmat.zarr"), *map(str, fmat[:2])], check=True)
    with live_server("--stores", str(stores)) as url:
        assert stores_of(url)["fmat"]["runs"] == 2
        subprocess.run([sys.executable, "-m", "fewsmap.cli", "ingest", "--quiet",
                        "--store", str(stores / "fmat.zarr"), str(fmat[3])], check=True)
        deadline = time.monotonic() + 10
        while stores_of(url)["fmat"]["runs"] != 3 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert stores_of(url)["fmat"]["latest_run"] == "2022-06-01T18:00:00Z"


def test_workers_answer_keep_alive_requests_without_delayed_ack_stalls(
    demo_stores: Path,
) -> None:
    # uvicorn --workers leaves TCP_NODELAY off: every keep-alive answer then waits ~40 ms
    # for the client's delayed ACK. Our workers must not (a cheap /health takes ~1 ms).
    with live_server("--stores", str(demo_stores), "--workers", "2") as url, \
            httpx.Client(base_url=url, timeout=10) as client:
        for _ in range(5):
            client.get("/health")
        times = []
        for _ in range(30):
            start = time.perf_counter()
            assert client.get("/health").status_code == 200
            times.append(time.perf_counter() - start)
    assert statistics.median(times) < 0.030


def test_a_named_group_draws_its_layers_in_order(demo_url: str) -> None:
    params = {"service": "WMS", "version": "1.3.0", "request": "GetMap", "crs": "CRS:84",
              "bbox": "-125,24,-65,54", "width": "120", "height": "60"}

    def rgba(layers: str) -> np.ndarray:
        response = httpx.get(f"{demo_url}/wms", params={**params, "layers": layers},
                             timeout=30)
        assert response.status_code == 200, response.text
        return np.asarray(Image.open(io.BytesIO(response.content)).convert("RGBA"))

    group, rain, temperature = rgba("naefs-mean"), rgba("naefs-mean.QPF"), rgba("naefs-mean.QTF")
    opaque = temperature[..., 3] == 255  # QTF is drawn last and covers the domain
    assert opaque.mean() > 0.9
    assert (group[opaque] == temperature[opaque]).all()
    assert (group[~opaque] == rain[~opaque]).all()
    styled = httpx.get(f"{demo_url}/wms", params={**params, "layers": "naefs-mean",
                                                 "styles": "wind"}, timeout=30)
    assert styled.status_code == 400 and b"StyleNotDefined" in styled.content


def test_answers_allow_any_origin_for_browser_dashboards(demo_url: str) -> None:
    response = httpx.get(f"{demo_url}/wms", params={
        "request": "GetCapabilities", "format": "application/json", "onlyHeaders": "true"},
        headers={"Origin": "http://dashboard.example"}, timeout=30)
    assert response.headers["access-control-allow-origin"] == "*"
    exposed = response.headers["access-control-expose-headers"].lower()
    assert "x-fewsmap-run" in exposed and "warning" in exposed


def test_wms_1_1_1_capabilities(demo_url: str) -> None:
    response = capabilities(demo_url, version="1.1.1")
    assert response.headers["content-type"].startswith("application/vnd.ogc.wms_xml")
    assert b"<!DOCTYPE WMT_MS_Capabilities" in response.content
    root = etree.fromstring(response.content)
    assert root.tag == "WMT_MS_Capabilities" and root.get("version") == "1.1.1"
    formats = [f.text for f in root.find("Capability/Request/GetCapabilities")]
    assert "application/vnd.ogc.wms_xml" in formats
    layer = next(node for node in root.iter("Layer") if node.findtext("Name") == "naefs-mean.QTF")
    tags = [child.tag for child in layer]
    assert "CRS" not in tags and "EX_GeographicBoundingBox" not in tags
    assert tags.index("LatLonBoundingBox") < tags.index("BoundingBox")
    assert tags.index("Extent") > max(i for i, t in enumerate(tags) if t == "Dimension")
    boxes = {box.get("SRS"): box for box in layer.findall("BoundingBox")}
    assert float(boxes["EPSG:4326"].get("minx")) == pytest.approx(-125.25)  # longitude first
    assert "CRS:84" not in boxes
    time = next(e for e in layer.findall("Extent") if e.get("name") == "time")
    assert time.get("default") == "2022-08-09T06:00:00Z" and time.text.count(",") == 63
