"""Serving stores in object storage: `fewsmap serve --stores s3://…`, many servers on one store,
read-only http(s) stores, and an outage of the storage (a real S3 server, real servers)."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
import xarray as xr

from fewsmap import ForecastStore
from fewsmap.ingest import ingest
from tests.conftest import record_figure
from tests.forecast_files import forecast_file, run_time
from tests.live_server import live_server, stores_of
from tests.s3server import S3Server, s3_server

SHAPE = (300, 400)
RELOAD_S = 2.0  # object_reload_interval_s of the servers here
GETMAP = ("/wms?service=WMS&version=1.3.0&request=GetMap&layers=feed.t2m&styles=&crs=EPSG:4326"
          "&bbox={bbox}&width=256&height=256&format=image/png&time={time}")


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    folder = tmp_path_factory.mktemp("serving-inputs")
    return [forecast_file(folder, run_time(i), steps=3, shape=SHAPE, variables=("t2m",))
            for i in range(3)]


def getmap_path(store: ForecastStore, step: int = 1) -> str:
    """A GetMap of the whole grid at the latest run's valid time number ``step``."""
    run = store.runs[-1]
    lon = store.coordinate("longitude")
    lat = store.coordinate("latitude")
    bbox = f"{lat.min()},{lon.min()},{lat.max()},{lon.max()}"  # 1.3.0: lat/lon order
    return GETMAP.format(bbox=bbox, time=str(run.valid_times[step]) + "Z")


def getmap(url: str, store: ForecastStore) -> httpx.Response:
    return httpx.get(url + getmap_path(store), timeout=30)


def test_a_service_on_s3_answers_as_on_a_local_folder(s3_env: S3Server, inputs: list[Path],
                                                      tmp_path: Path) -> None:
    folder = f"s3://{s3_env.new_bucket()}/stores"
    ingest(f"{folder}/feed.zarr", inputs[:2], progress=False)
    ingest(tmp_path / "feed.zarr", inputs[:2], progress=False)
    local_store = ForecastStore(tmp_path / "feed.zarr")
    with live_server("--stores", folder, env=s3_env.env) as remote, \
            live_server("--stores", str(tmp_path)) as local:
        assert stores_of(remote)["feed"]["runs"] == 2
        maps = [getmap(url, local_store) for url in (remote, local)]
        assert [m.status_code for m in maps] == [200, 200]
        assert maps[0].headers["content-type"] == "image/png"
        assert maps[0].content == maps[1].content  # the same pixels from both stores
        series = [httpx.get(f"{url}/api/timeseries", params={
            "layer": "feed.t2m", "x": "5.1", "y": "51.9"}, timeout=30) for url in (remote, local)]
        assert series[0].status_code == 200 and series[0].json() == series[1].json()
        # the raw Zarr objects are relayed, with validators
        root = httpx.get(f"{remote}/zarr/feed/zarr.json", timeout=30)
        assert root.status_code == 200 and root.json()["attributes"]["fewsmap"]["runs"]
        again = httpx.get(f"{remote}/zarr/feed/zarr.json", timeout=30,
                          headers={"If-None-Match": root.headers["etag"]})
        assert again.status_code == 304
        missing = httpx.get(f"{remote}/zarr/feed/t2m/c/99/0/0/0", timeout=30)
        assert missing.status_code == 404
        hidden = httpx.get(f"{remote}/zarr/feed/.feed.zarr.lock", timeout=30)
        assert hidden.status_code == 404
        # a catchment's change and sums read from S3 as from the folder (every cell of step
        # k of run T0 + h holds h·1000 + 10·k, plus less than 1)
        area = "POLYGON((4.5 51.5, 5.7 51.5, 5.7 52.3, 4.5 52.3, 4.5 51.5))"
        for product, first_value in (({"baseline": "previous"}, 6000 - 20),
                                     ({"accumulate": "PT6H"}, 6010 + 6000)):
            answers = [httpx.get(f"{url}/api/catchments", timeout=30, params={
                "layer": "feed.t2m", "geometry": area, "useDisplayUnits": "false",
                **product}) for url in (remote, local)]
            assert [a.status_code for a in answers] == [200, 200], answers[0].text
            assert answers[0].json() == answers[1].json()
            [entry] = answers[0].json()["series"]
            assert abs(entry["values"][0] - first_value) < 2, (product, entry)
        # and as Zarr v2 (GDAL), the same values from both
        v2 = [xr.open_zarr(f"{url}/zarr-v2/feed", chunks=None) for url in (remote, local)]
        xr.testing.assert_equal(v2[0].load(), v2[1].load())  # the manifests differ in dates


def test_two_servers_on_one_store_see_a_new_run_within_the_interval(
        s3_env: S3Server, inputs: list[Path]) -> None:
    folder = f"s3://{s3_env.new_bucket()}/stores"
    ingest(f"{folder}/feed.zarr", inputs[:1], progress=False)
    env = {**s3_env.env, "FEWSMAP_OBJECT_RELOAD_INTERVAL_S": str(RELOAD_S)}
    # one of them with forked workers: none may inherit the parent's object-store client
    with live_server("--stores", folder, "--workers", "2", env=env) as one, \
            live_server("--stores", folder, env=env) as two:
        assert [stores_of(url)["feed"]["runs"] for url in (one, two)] == [1, 1]
        ingest(f"{folder}/feed.zarr", inputs[1:2], progress=False)  # published by another process
        published = time.monotonic()
        seen_after: dict[str, float] = {}
        while len(seen_after) < 2 and time.monotonic() - published < RELOAD_S + 10:
            for url in (one, two):
                if url not in seen_after and stores_of(url)["feed"]["runs"] == 2:
                    seen_after[url] = time.monotonic() - published
            time.sleep(0.05)
        assert len(seen_after) == 2, "a server never saw the new run"
        slowest = max(seen_after.values())
        assert slowest <= RELOAD_S + 1.0
        record_figure("object storage", f"2 servers on one S3 store saw a run published by an "
                      f"ingest within {slowest:.2f} s (object_reload_interval_s = {RELOAD_S:g})")
        # a new store in the folder appears too
        ingest(f"{folder}/second.zarr", inputs[:1], progress=False)
        deadline = time.monotonic() + RELOAD_S + 10
        while "second" not in stores_of(two) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert "second" in stores_of(two)


def test_an_http_store_is_read_where_it_is_published(inputs: list[Path], tmp_path: Path) -> None:
    ingest(tmp_path / "stores" / "feed.zarr", inputs[:2], progress=False)
    local_store = ForecastStore(tmp_path / "stores" / "feed.zarr")
    with live_server("--stores", str(tmp_path / "stores")) as origin:
        remote = ForecastStore(f"{origin}/zarr/feed")  # another service's raw Zarr endpoint
        run = remote.runs[-1]
        assert [r.label for r in remote.runs] == [r.label for r in local_store.runs]
        assert (remote.read_slice("t2m", run, run.valid_times[0]) ==
                local_store.read_slice("t2m", run, run.valid_times[0])).all()
        config = tmp_path / "config.toml"
        config.write_text(f'[stores]\nfeed = "{origin}/zarr/feed"\n')
        with live_server("--config", str(config), "--stores", str(tmp_path / "empty")) as relay:
            maps = [getmap(url, local_store) for url in (relay, origin)]
            assert [m.status_code for m in maps] == [200, 200]
            assert maps[0].content == maps[1].content


def test_an_outage_of_the_storage_is_a_503_never_a_500(inputs: list[Path],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    with s3_server() as storage:  # a server of its own, stopped in the middle of the test
        folder = f"s3://{storage.new_bucket()}/stores"
        for key, value in storage.env.items():
            monkeypatch.setenv(key, value)
        ingest(f"{folder}/feed.zarr", inputs[:1], progress=False)
        store = ForecastStore(f"{folder}/feed.zarr")
        with live_server("--stores", folder, env=storage.env) as url:
            drawn, unread = url + getmap_path(store, 1), url + getmap_path(store, 2)
            assert httpx.get(drawn, timeout=30).status_code == 200
            storage.stop()
            # published chunks already read are kept (fewsmap/store/chunk_cache.py) …
            assert httpx.get(drawn, timeout=30).status_code == 200
            started = time.monotonic()
            answer = httpx.get(unread, timeout=30)  # … others need the storage
            assert answer.status_code == 503, answer.text
            assert "StorageUnavailable" in answer.text and "Traceback" not in answer.text
            assert time.monotonic() - started < 20  # retries are bounded
            # what needs no storage is still answered from the last published state
            assert httpx.get(f"{url}/wms?service=WMS&request=GetCapabilities",
                             timeout=30).status_code == 200
