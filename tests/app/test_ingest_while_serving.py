"""Readers during ingest and retention: a running ``fewsmap serve`` while runs come and go.

A separate process appends runs with ``fewsmap ingest`` (retention ``keep_runs = 3``
configured, so each ingest also prunes) while concurrent clients ask for capabilities,
GetMap and time series. Every answer must succeed, and a run must appear whole: once
capabilities list it, GetMap draws it with no cell missing and its time series is
complete, value by value.
"""

from __future__ import annotations

import asyncio
import io
import math
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image

from fewsmap import ForecastStore
from fewsmap.catalog.styles import PRECIPITATION_BREAKS
from fewsmap.ingest import ingest
from fewsmap.time.instants import parse_stamp
from tests.conftest import ROOT, record_figure
from tests.forecast_files import STEP_HOURS, expected_value, forecast_file, run_time
from tests.live_server import live_server

RUNS = 6
KEEP_RUNS = 3
STEPS = 4
READERS = 6
LAYER = "feed.tp"
INSIDE_THE_GRID = "50,0,55.9,7.9"  # lat/lon (WMS 1.3.0 EPSG:4326) within the cell centres
FOREVER = {"startForecastTime": "1970-01-01T00:00:00Z",
           "endForecastTime": "2100-01-01T00:00:00Z", "forecastCount": "1000"}
pytestmark = pytest.mark.slow


def check_series(series: dict[str, Any]) -> None:
    """A run's time series is complete: every step, each with that run's values."""
    t0 = parse_stamp(series["reference_time"])
    assert len(series["values"]) == STEPS, f"run {series['reference_time']} is partial"
    for index, value in enumerate(series["values"]):
        assert math.floor(value) == expected_value(t0, index)


def check_map(getmap: httpx.Response) -> None:
    """A run's map has every cell: all opaque where its values reach the precipitation
    style's first class (a missing chunk would be transparent)."""
    t0 = parse_stamp(getmap.headers["x-fewsmap-run"])
    valid = parse_stamp(getmap.headers["x-fewsmap-valid-time"])
    step = int((valid - t0) // np.timedelta64(STEP_HOURS, "h")) - 1  # steps start at +3 h
    if expected_value(t0, step) < PRECIPITATION_BREAKS[0]:
        return  # some cells are below the first class, and transparent by design
    alpha = np.asarray(Image.open(io.BytesIO(getmap.content)).convert("RGBA"))[..., 3]
    assert alpha.min() == 255, f"run {t0} drawn with missing cells"


async def published_runs(client: httpx.AsyncClient) -> list[str]:
    """The run labels capabilities list for the layer (FEWS forecast period)."""
    answer = await client.get("/wms", params={"request": "GetCapabilities",
                                              "format": "application/json",
                                              "layers": LAYER, **FOREVER})
    assert answer.status_code == 200, answer.text
    prefix = f"{LAYER}-"
    return sorted(entry["name"].removeprefix(prefix) for entry in answer.json()["layers"]
                  if entry["name"].startswith(prefix))


async def read_once(client: httpx.AsyncClient, seen: set[str]) -> int:
    """One round of a reader: the newest listed run must be whole everywhere."""
    runs = await published_runs(client)
    newest = runs[-1]
    seen.add(newest)
    getmap = await client.get("/wms", params={
        "request": "GetMap", "layers": LAYER, "crs": "EPSG:4326", "bbox": INSIDE_THE_GRID,
        "width": "256", "height": "256", "format": "image/png",
        "dim_reference_time": newest})
    assert getmap.status_code == 200, getmap.text
    assert getmap.headers["x-fewsmap-run"] == newest
    check_map(getmap)
    one = await client.get("/api/timeseries", params={"layer": LAYER, "x": "3", "y": "52",
                                                      "run": newest})
    assert one.status_code == 200, one.text
    [series] = one.json()["series"]
    check_series(series)
    every = await client.get("/api/timeseries", params={"layer": LAYER, "x": "3", "y": "52",
                                                        "runs": "all"})
    assert every.status_code == 200, every.text
    for series in every.json()["series"]:
        check_series(series)
    return 4


async def readers(url: str, writer_done: threading.Event) -> tuple[int, set[str]]:
    """Read until the writer is done (and one round after); return requests and runs seen."""
    seen: set[str] = set()

    async def reader() -> int:
        count = 0
        async with httpx.AsyncClient(base_url=url, timeout=60) as client:
            while not writer_done.is_set():
                count += await read_once(client, seen)
            count += await read_once(client, seen)
        return count

    counts = await asyncio.gather(*(reader() for _ in range(READERS)))
    return sum(counts), seen


def test_runs_appear_whole_and_old_ones_go_while_clients_read(tmp_path: Path) -> None:
    inputs = [forecast_file(tmp_path / "in", run_time(i), steps=STEPS, shape=(60, 80))
              for i in range(RUNS)]
    store = tmp_path / "stores" / "feed.zarr"
    ingest(store, inputs[:1], progress=False)
    config = tmp_path / "fewsmap.toml"
    config.write_text(f"[stores.feed]\nkeep_runs = {KEEP_RUNS}\n")
    writer_done = threading.Event()
    failures: list[str] = []

    def writer() -> None:
        try:
            for path in inputs[1:]:
                result = subprocess.run(
                    [sys.executable, "-m", "fewsmap.cli", "ingest", "--quiet", "--config",
                     str(config), "--store", str(store), str(path)],
                    capture_output=True, text=True, cwd=ROOT, timeout=120)
                if result.returncode != 0:
                    failures.append(result.stderr)
        finally:
            writer_done.set()

    with live_server("--stores", str(store.parent),
                     env={"FEWSMAP_RELOAD_INTERVAL_S": "0.2"}) as url:
        thread = threading.Thread(target=writer)
        thread.start()
        try:
            requests, seen = asyncio.run(readers(url, writer_done))
        finally:
            writer_done.set()
            thread.join()
        assert failures == []
        final = asyncio.run(final_state(url))

    labels = [str(run_time(i)) + "Z" for i in range(RUNS)]
    record_figure("readers during ingest",
                  f"{requests} requests by {READERS} clients, 0 failed; {len(seen)} newest "
                  f"runs seen while {RUNS - 1} runs were ingested")
    assert len(seen) >= 3, "the readers hardly overlapped the ingests"
    # Retention: the last KEEP_RUNS runs are published; the pruned ones are gone.
    runs, pruned_getmap = final
    assert runs == labels[-KEEP_RUNS:]
    assert pruned_getmap.status_code == 400
    assert 'code="InvalidDimensionValue"' in pruned_getmap.text
    assert [r.label for r in ForecastStore(store).runs] == labels[-KEEP_RUNS:]
    # Still on disk for readers that opened the store before (grace period).
    retired = {e["reference_time"] for e in ForecastStore(store).attrs["retired"]}
    assert retired == set(labels[:-KEEP_RUNS])


async def final_state(url: str) -> tuple[list[str], httpx.Response]:
    """Once the catalog has seen the last publish: the run list, and a pruned run's GetMap."""
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        await asyncio.sleep(0.5)  # two reload intervals
        runs = await published_runs(client)
        pruned = await client.get("/wms", params={
            "request": "GetMap", "layers": LAYER, "crs": "EPSG:4326", "bbox": "50,0,56,8",
            "width": "64", "height": "64", "format": "image/png",
            "dim_reference_time": str(run_time(0)) + "Z"})
    return runs, pruned

