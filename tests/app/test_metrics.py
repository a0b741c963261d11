"""/metrics in the Prometheus text format, and the orchestrators' /health/live and
/health/ready: the real app in process, and the real server with two workers over HTTP."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qsl

import httpx
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette

from fewsmap.app.limits import POINT_COST
from fewsmap.app.metrics import WMS_OPERATIONS, endpoint_of
from fewsmap.app.server import create_app
from fewsmap.errors import ServiceUnavailable
from fewsmap.settings import Settings
from tests.asgi_client import AppClient
from tests.live_server import live_server
from tests.synthetic import T0, lonlat_store

GETMAP = {"service": "WMS", "request": "GetMap", "version": "1.3.0", "layers": "grid.lon",
          "styles": "", "crs": "EPSG:4326", "bbox": "30,-20,60,40", "width": "64",
          "height": "64", "format": "image/png"}
POSITION = "/edr/collections/grid.lon/position"
TOKEN = "metrics-token-0123456789"


def metric(text: str, name: str, **labels: str) -> float:
    """The value of sample ``name`` with exactly ``labels`` in an exposition (0 if absent)."""
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return float(sample.value)
    return 0.0


def label_values(text: str, label: str) -> set[str]:
    """Every value ``label`` takes in an exposition."""
    return {sample.labels[label] for family in text_string_to_metric_families(text)
            for sample in family.samples if label in sample.labels}


def scrape(client: AppClient) -> str:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return response.text


@pytest.fixture
def stores(tmp_path: Path) -> Path:
    lonlat_store(tmp_path / "stores" / "grid.zarr")
    return tmp_path / "stores"


@pytest.fixture
def app(stores: Path) -> Starlette:
    # Maps go to the light lane (small ones are drawn on the event loop by default).
    return create_app(Settings(stores_dir=stores, reload_interval_s=0.0, inline_render_cost=0,
                               max_concurrent_renders=1, render_queue_timeout_s=0.2))


def test_a_getmap_counts_under_wms_getmap_with_its_status(app: Starlette) -> None:
    client = AppClient(app)
    before = scrape(client)
    assert client.get("/wms", params=GETMAP).status_code == 200
    assert client.get("/wms", params={**GETMAP, "layers": "nothing"}).status_code == 400
    after = scrape(client)
    for status, added in (("200", 1), ("400", 1), ("500", 0)):
        labels = {"endpoint": "wms GetMap", "status": status}
        assert metric(after, "fewsmap_requests_total", **labels) == \
            metric(before, "fewsmap_requests_total", **labels) + added
        assert metric(after, "fewsmap_request_duration_seconds_count", **labels) == \
            metric(before, "fewsmap_request_duration_seconds_count", **labels) + added
    took = metric(after, "fewsmap_request_duration_seconds_sum", endpoint="wms GetMap",
                  status="200")
    assert 0 < took < 60
    # The scrape before is counted by the one after.
    assert metric(after, "fewsmap_requests_total", endpoint="metrics", status="200") == 1


def test_labels_never_carry_what_the_client_sent(app: Starlette) -> None:
    client = AppClient(app)
    for path, params in (("/tiles/secret-layer/3/1/2.png", {}), ("/wms", {"request": "Secret"}),
                         ("/secret/path", {}), ("/edr/collections/secret/secret", {}),
                         ("/wmts", {"request": "SecretTile"}), ("/zarr/secret/.zattrs", {}),
                         ("/api/secret", {}), ("/health/secret", {})):
        client.get(path, params=params)
    text = scrape(client)
    assert "secret" not in text.lower()
    assert label_values(text, "endpoint") <= {  # health: the client waits for ready
        "tiles", "wms other", "other", "edr metadata", "wmts other", "zarr", "metrics",
        "health"}


@pytest.mark.parametrize(("path", "query", "endpoint"), [
    ("/wms", b"SERVICE=WMS&REQUEST=getmap", "wms GetMap"),
    ("/FewsWebServices/wms", b"request=GetCapabilities", "wms GetCapabilities"),
    ("/wms", b"request=GetLegendGraphic", "wms GetLegendGraphic"),
    ("/wms", b"", "wms other"),
    ("/wms", b"layers=a&%52equest=Get%4Dap", "wms GetMap"),  # as parse_qsl decodes them
    ("/wms", b"requests=GetMap&request+=GetMap", "wms other"),
    ("/wms", b"request=&REQUEST=GetMap", "wms GetMap"),
    ("/wms", b"a=request%3DGetMap&request=GetLegend%47raphic", "wms GetLegendGraphic"),
    ("/wmts", b"Request=GetTile", "wmts GetTile"),
    ("/wmts/1.0.0/WMTSCapabilities.xml", b"", "wmts GetCapabilities"),
    ("/wmts/1.0.0/a/default/x/WebMercatorQuad/0/0/0.png", b"", "wmts rest"),
    ("/tiles/a/1/2/3.png", b"", "tiles"),
    ("/tiles/a/tilejson.json", b"", "tilejson"),
    ("/edr/collections/a/position", b"coords=POINT(1 2)", "edr position"),
    ("/edr/collections/a/instances/r/cube", b"", "edr cube"),
    ("/edr/collections/a", b"", "edr metadata"),
    ("/edr/collections/position", b"", "edr metadata"),
    ("/api/timeseries", b"", "api timeseries"),
    ("/zarr/a/b/c/0.0.0", b"", "zarr"), ("/zarr-v2/a/.zmetadata", b"", "zarr-v2"),
    ("/health", b"", "health"), ("/health/live", b"", "health live"),
    ("/health/ready", b"", "health ready"), ("/metrics", b"", "metrics"),
    ("/", b"", "viewer"), ("/viewer/assets/app.js", b"", "viewer"),
    ("/metrics/x", b"", "other"), ("/wms/x", b"", "other"), ("/favicon.ico", b"", "other"),
])
def test_each_request_is_named_by_its_route_and_operation(path: str, query: bytes,
                                                          endpoint: str) -> None:
    assert endpoint_of(path, query) == endpoint


PARTS = st.text(alphabet="reqRQuEst%52+=&GetMap;a", max_size=12)


@given(st.lists(st.tuples(st.sampled_from(["request", "REQUEST", "%52equest", "request+",
                                           "layers", ""]), PARTS), max_size=5), PARTS)
def test_the_operation_is_read_as_parse_qsl_reads_it(pairs: list[tuple[str, str]],
                                                     tail: str) -> None:
    query = "&".join(f"{name}={value}" for name, value in pairs) + tail
    found = [v.lower() for n, v in parse_qsl(query) if n.lower() == "request"]
    expected = "wms " + WMS_OPERATIONS.get(found[0], "other") if found else "wms other"
    assert endpoint_of("/wms", query.encode()) == expected


def test_a_refused_render_counts_its_reason_and_a_waiting_one_is_queued(
        app: Starlette) -> None:
    light = app.state.service.render_limiter.light
    transport = AppClient(app).transport()  # the lifespan started, outside the loop below

    async def scenario() -> tuple[str, str, httpx.Response, str]:
        await light.acquire(POINT_COST)  # the only light slot is taken
        async with httpx.AsyncClient(transport=transport,
                                     base_url="http://fewsmap.test") as client:
            held = (await client.get("/metrics")).text
            waiting = asyncio.ensure_future(client.get("/wms", params=GETMAP))
            while not light.queued:
                await asyncio.sleep(0.01)
            queued = (await client.get("/metrics")).text
            refused = await waiting
            light.release(POINT_COST)
            return held, queued, refused, (await client.get("/metrics")).text

    held, queued, refused, after = asyncio.run(scenario())
    assert metric(held, "fewsmap_renders_running", lane="light") == 1
    assert metric(held, "fewsmap_renders_cost", lane="light") == POINT_COST
    assert metric(queued, "fewsmap_renders_queued", lane="light") == 1
    assert refused.status_code == 503 and refused.headers["Retry-After"]
    assert metric(held, "fewsmap_refusals_total", reason="light_queue") == 0
    assert metric(after, "fewsmap_refusals_total", reason="light_queue") == 1
    assert metric(after, "fewsmap_requests_total", endpoint="wms GetMap", status="503") == 1
    assert metric(after, "fewsmap_renders_running", lane="light") == 0
    assert metric(after, "fewsmap_renders_queued", lane="light") == 0


def test_a_render_past_its_time_limit_counts_as_refused(stores: Path) -> None:
    app = create_app(Settings(stores_dir=stores, render_timeout_s=0.05))
    with pytest.raises(ServiceUnavailable, match="render_timeout_s"):
        asyncio.run(app.state.service.render_limiter.run(POINT_COST, time.sleep, 0.5))
    text = scrape(AppClient(app))
    assert metric(text, "fewsmap_refusals_total", reason="render_timeout") == 1
    assert metric(text, "fewsmap_refusals_total", reason="light_queue") == 0


def test_bytes_in_flight_and_their_refusals(app: Starlette) -> None:
    client = AppClient(app)
    budget = app.state.service.send_budget
    held = budget.hold(budget.max_bytes)  # an answer being sent holds the whole budget
    try:
        text = scrape(client)
        assert metric(text, "fewsmap_bytes_in_flight") == budget.max_bytes
        answer = client.get(POSITION, params={"coords": "POINT(10 45)"})
        assert answer.status_code == 503
    finally:
        held.release()
    text = scrape(client)
    assert metric(text, "fewsmap_refusals_total", reason="bytes_in_flight") == 1
    assert metric(text, "fewsmap_requests_total", endpoint="edr position", status="503") == 1
    assert metric(text, "fewsmap_bytes_in_flight") == 0
    assert client.get(POSITION, params={"coords": "POINT(10 45)"}).status_code == 200


def test_runs_per_store_and_the_catalog_age_follow_new_runs(app: Starlette,
                                                            stores: Path) -> None:
    client = AppClient(app)
    first = scrape(client)
    assert metric(first, "fewsmap_store_runs", store="grid") == 1
    latest = metric(first, "fewsmap_store_latest_run_timestamp_seconds", store="grid")
    assert latest == T0.astype("datetime64[s]").astype(int)
    time.sleep(0.3)
    aged = scrape(client)
    assert metric(aged, "fewsmap_catalog_snapshot_age_seconds") >= 0.3
    assert metric(aged, "fewsmap_catalog_check_age_seconds") < 0.3  # checked for the scrape
    lonlat_store(stores / "grid.zarr", t0=T0 + np.timedelta64(6, "h"))
    landed = scrape(client)
    assert metric(landed, "fewsmap_store_runs", store="grid") == 2
    assert metric(landed, "fewsmap_store_latest_run_timestamp_seconds", store="grid") == \
        latest + 6 * 3600
    assert metric(landed, "fewsmap_catalog_snapshot_age_seconds") < 0.3


def test_stores_with_protected_data_are_left_out(tmp_path: Path, stores: Path) -> None:
    lonlat_store(stores / "private.zarr")
    config = tmp_path / "fewsmap.toml"
    config.write_text(f'[[security.tokens]]\ntoken = "{TOKEN}"\nlayers = ["private.lat"]\n')
    client = AppClient(create_app(Settings(stores_dir=stores, config_file=config)))
    for auth in ({}, {"Authorization": f"Bearer {TOKEN}"}):
        text = client.get("/metrics", headers=auth).text
        assert metric(text, "fewsmap_store_runs", store="grid") == 1
        assert label_values(text, "store") == {"grid"}
        assert "private" not in text and TOKEN not in text and str(stores) not in text


def test_many_apps_in_one_process_count_apart(stores: Path) -> None:
    one, two = (AppClient(create_app(Settings(stores_dir=stores))) for _ in range(2))
    one.get("/health/live")
    one.get("/health/live")
    two.get("/health/live")
    assert metric(scrape(one), "fewsmap_requests_total", endpoint="health live",
                  status="200") == 2
    assert metric(scrape(two), "fewsmap_requests_total", endpoint="health live",
                  status="200") == 1


def test_live_answers_while_ready_waits_for_the_warm_up(app: Starlette) -> None:
    client = AppClient(app)
    client.get("/health/live")  # the lifespan has run its warm-up: warm up once more
    readiness = app.state.service.readiness
    readiness.begin()  # as the lifespan does when the worker starts
    live, ready = client.get("/health/live"), client.get("/health/ready")
    assert live.status_code == 200 and live.json() == {"status": "alive"}
    assert ready.status_code == 503 and ready.headers["Retry-After"] == "1"
    assert ready.json()["ready"] is False
    assert ready.json()["reasons"] == ["warming up: 0 of 1 workers are warm"]
    assert metric(scrape(client), "fewsmap_workers", state="warm") == 0
    readiness.end()
    ready = client.get("/health/ready")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "ready": True, "reasons": []}
    assert client.get("/health").json()["ready"] is True  # /health as before
    assert metric(scrape(client), "fewsmap_workers", state="warm") == 1


def test_ready_is_503_while_the_catalog_cannot_be_refreshed(tmp_path: Path,
                                                            stores: Path) -> None:
    """A layer of the configuration with an unknown style is found broken only when its store
    lands: the catalog keeps its last snapshot and the service says it is not ready."""
    config = tmp_path / "fewsmap.toml"
    config.write_text('[catalog]\nauto_layers = true\n[[layers]]\nid = "late"\n'
                      'store = "late"\nvariable = "lon"\nstyles = ["missing"]\n')
    client = AppClient(create_app(Settings(stores_dir=stores, config_file=config,
                                           reload_interval_s=0.0)))
    assert client.get("/health/ready").status_code == 200
    lonlat_store(stores / "late.zarr")
    ready = client.get("/health/ready")
    assert ready.status_code == 503
    assert ready.json()["reasons"] == [
        "the catalog cannot be refreshed from the stores (ConfigError); the server log has "
        "the details"]
    assert client.get("/health/live").status_code == 200
    assert client.get("/wms", params=GETMAP).status_code == 200  # the last catalog serves
    text = scrape(client)
    assert "late" not in label_values(text, "store")
    assert metric(text, "fewsmap_catalog_check_age_seconds") > 0


# --- the real server, two workers -----------------------------------------------------------

@pytest.fixture
def two_workers(stores: Path, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    with live_server("--stores", str(stores), "--workers", "2",
                     env={"TMPDIR": str(temporary)}) as url:
        yield url, temporary
    # The workers' metric files go with the service.
    assert not list(temporary.iterdir())


def test_two_workers_count_together(two_workers: tuple[str, Path]) -> None:
    url, temporary = two_workers
    requests = 24
    for _ in range(requests):  # one connection each: the kernel spreads them over the workers
        assert httpx.get(f"{url}/wms", params=GETMAP, timeout=30).status_code == 200
    # Both workers counted (one file of counters each, named by its process id) ...
    counters = list(temporary.glob("fewsmap-metrics-*/counter_*.db"))
    assert len(counters) == 2
    # ... and whichever worker answers a scrape sums them.
    for _ in range(6):
        text = httpx.get(f"{url}/metrics", timeout=30).text
        assert metric(text, "fewsmap_requests_total", endpoint="wms GetMap",
                      status="200") == requests
        assert metric(text, "fewsmap_request_duration_seconds_count", endpoint="wms GetMap",
                      status="200") == requests
        assert metric(text, "fewsmap_renders_running", lane="light") == 0
        assert metric(text, "fewsmap_workers", state="warm") == 2
        assert metric(text, "fewsmap_store_runs", store="grid") == 1
    assert httpx.get(f"{url}/health/ready", timeout=30).json()["ready"] is True
