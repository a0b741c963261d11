"""Capabilities are built once per catalog snapshot and revalidated by ETag.

A second identical GetCapabilities is answered from the cache; a run landing, another
service URL or another token's view gets its own document; a client holding the current
document gets a 304.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from lxml import etree

from fewsmap.app.documents import Document, DocumentCache
from fewsmap.app.server import create_app
from fewsmap.dimensions import current_minute
from fewsmap.ingest import ingest
from fewsmap.settings import Settings
from tests.asgi_client import AppClient
from tests.forecast_files import STEP_HOURS, forecast_file, run_time

LAYER = "feed.tp"
STEPS = 4  # forecast_file's default
CAPABILITIES = {"request": "GetCapabilities", "service": "WMS"}
JSON = {**CAPABILITIES, "format": "application/json"}
WMTS = {"service": "WMTS", "request": "GetCapabilities"}


@pytest.fixture
def feed(tmp_path: Path) -> tuple[AppClient, Path]:
    """A service over one store with one run, noticing new runs at once."""
    stores = tmp_path / "stores"
    stores.mkdir()
    ingest(stores / "feed.zarr", [forecast_file(tmp_path, run_time(0))], progress=False)
    client = AppClient(create_app(Settings(stores_dir=stores, reload_interval_s=0)))
    return client, tmp_path


def cache_of(client: AppClient) -> DocumentCache:
    return client.app.state.service.documents  # type: ignore[attr-defined, no-any-return]


def run_names(client: AppClient) -> list[str]:
    """The runs listed for the layer in a FEWS forecast period covering all time."""
    layers = client.get("/wms", params={
        **JSON, "layers": LAYER, "startForecastTime": "1970-01-01T00:00:00Z",
        "endForecastTime": "2100-01-01T00:00:00Z", "forecastCount": "100"}).json()["layers"]
    return [entry["name"] for entry in layers if entry["name"].startswith(f"{LAYER}-")]


def test_repeated_capabilities_come_from_the_cache(feed: tuple[AppClient, Path]) -> None:
    client, _ = feed
    for params in (CAPABILITIES, JSON, {**CAPABILITIES, "version": "1.1.1"}):
        first = client.get("/wms", params=params)
        again = client.get("/wms", params=params)
        assert first.status_code == again.status_code == 200
        assert again.content == first.content and again.headers["etag"] == first.headers["etag"]
    assert (cache_of(client).misses, cache_of(client).hits) == (3, 3)


@pytest.mark.parametrize(("path", "params"), [("/wms", CAPABILITIES), ("/wms", JSON),
                                              ("/wmts", WMTS)])
def test_a_client_holding_the_document_gets_304_until_a_run_lands(
        feed: tuple[AppClient, Path], path: str, params: dict[str, str]) -> None:
    client, folder = feed
    first = client.get(path, params=params)
    etag = first.headers["etag"]
    assert "no-cache" in first.headers["cache-control"] or path == "/wmts"
    unchanged = client.get(path, params=params, headers={"If-None-Match": etag})
    assert unchanged.status_code == 304 and unchanged.content == b""

    ingest(folder / "stores" / "feed.zarr", [forecast_file(folder, run_time(1))],
           progress=False)
    landed = client.get(path, params=params, headers={"If-None-Match": etag})
    assert landed.status_code == 200 and landed.headers["etag"] != etag
    last_step = f"{run_time(1) + np.timedelta64(STEPS * STEP_HOURS, 'h')}Z".encode()
    assert last_step in landed.content and last_step not in first.content


def test_a_new_run_is_listed_at_once(feed: tuple[AppClient, Path]) -> None:
    client, folder = feed
    assert run_names(client) == [f"{LAYER}-{run_time(0)}Z"]
    ingest(folder / "stores" / "feed.zarr", [forecast_file(folder, run_time(1))],
           progress=False)
    assert run_names(client) == [f"{LAYER}-{run_time(0)}Z", f"{LAYER}-{run_time(1)}Z"]


def test_each_service_url_keeps_its_own_links(feed: tuple[AppClient, Path]) -> None:
    client, _ = feed
    for host in ("maps.example.org", "internal:8080", "maps.example.org"):
        xml = client.get("/wms", params=CAPABILITIES, headers={"Host": host}).content
        links = {a.split("?")[0] for a in etree.fromstring(xml).xpath(
            "//@*[local-name()='href']")}
        assert links == {f"http://{host}/wms"}


def test_the_cache_keeps_recent_documents_within_its_budget() -> None:
    cache = DocumentCache(max_bytes=100)
    built: list[str] = []

    def builder(key: str, size: int) -> Document:
        built.append(key)
        return Document.of(key.encode() * size, "text/plain")

    for key in ("a", "b", "a", "c"):  # 40 bytes each: "b" is the least recently used
        cache.get(key, lambda key=key: builder(key, 40))  # type: ignore[misc]
    assert built == ["a", "b", "c"]
    cache.get("a", lambda: builder("a", 40))
    cache.get("b", lambda: builder("b", 40))
    assert built == ["a", "b", "c", "b"]
    cache.get("huge", lambda: builder("huge", 100))  # more than the budget: never kept
    cache.get("huge", lambda: builder("huge", 100))
    assert built[-2:] == ["huge", "huge"]


def test_the_now_default_goes_by_the_minute() -> None:
    """Documents are kept for a minute at most, so the clock they show moves by minutes."""
    minute = current_minute()
    assert minute.astype("datetime64[m]") == minute and minute.dtype == np.dtype("M8[s]")
    assert np.datetime64("now", "s") - minute < np.timedelta64(61, "s")
