"""The viewer in a real browser: Debian's headless Chromium against ``fewsmap serve`` (the demo
stores and a small synthetic store with pressure levels and overlapping runs).

The browser is driven by ``browse.mjs`` with playwright-core (npm, pinned by package-lock.json;
it drives the system Chromium and downloads no browser of its own). Node rather than Python's
``playwright`` package: that wheel carries a Node runtime and driver of its own, while the
project already uses Node and npm-pinned packages (the viewer's libraries, the FEWS client
test). The script plays a forecaster's session once (one browser, one server) and reports JSON;
these tests judge it against the service's own answers (GetMap, the time-series API).
Screenshots are left in ``tests/viewer/artifacts/`` for a person to look at.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image

from fewsmap.app.viewer import VENDOR, missing_vendor_files
from tests.live_server import live_server
from tests.viewer.levels_store import levels_store

HERE = Path(__file__).resolve().parent
ARTIFACTS = HERE / "artifacts"
PLAYWRIGHT = HERE / "node_modules" / "playwright-core" / "package.json"
CHROMIUM = Path(os.environ.get("FEWSMAP_CHROMIUM", "/usr/bin/chromium"))
LEVELS_STORE = "synthetic-levels"
LEVELS_LAYER = f"{LEVELS_STORE}.t"  # browse.mjs names it too
LAYERS = ["ecmwf-ens-gust.fg10_6", "marfc-fmat.t", "naefs-mean.QPF", "naefs-mean.QTF",
          LEVELS_LAYER, f"{LEVELS_LAYER}:change"]  # two runs sharing valid times
# The base map's country outline and land colours (viewer.js).
OUTLINE, LAND = np.array([0x8A, 0x8A, 0x8A]), np.array([0xF4, 0xF1, 0xEA])
pytestmark = pytest.mark.slow

Report = dict[str, Any]


def browser_tools() -> str:
    """The node executable, once Chromium, playwright-core and the vendored assets are there."""
    if not CHROMIUM.is_file():
        pytest.fail(f"Chromium is not installed at {CHROMIUM}: `make browser` installs it "
                    "(apt-get install chromium); FEWSMAP_CHROMIUM names another binary")
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not on PATH: the viewer's browser tests need Node >= 20 and npm")
    if not PLAYWRIGHT.is_file():
        pytest.fail(f"{PLAYWRIGHT.parent} is missing: run `npm ci --prefix tests/viewer` "
                    "(`make test` does)")
    if missing_vendor_files(VENDOR):
        pytest.fail(f"the viewer's libraries are missing from {VENDOR}: run `make vendor`")
    return node


@pytest.fixture(scope="module")
def stores(demo_stores: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo stores (linked: they are shared, read-only) and the levels store."""
    folder = tmp_path_factory.mktemp("viewer") / "stores"
    folder.mkdir()
    for store in [*demo_stores.glob("*.zarr"), demo_stores / "catchments"]:
        (folder / store.name).symlink_to(store)
    levels_store(folder / f"{LEVELS_STORE}.zarr")
    return folder


@pytest.fixture(scope="module")
def session(stores: Path) -> Iterator[tuple[str, Report]]:
    """Base URL of the live service and what the browser session reported."""
    node = browser_tools()
    ARTIFACTS.mkdir(exist_ok=True)
    for old in ARTIFACTS.glob("*.png"):
        old.unlink()
    with live_server("--stores", str(stores)) as url:
        done = subprocess.run([node, str(HERE / "browse.mjs"), url, str(ARTIFACTS)],
                              capture_output=True, text=True, timeout=300, check=False,
                              env={**os.environ, "FEWSMAP_CHROMIUM": str(CHROMIUM)})
        if done.returncode != 0:
            pytest.fail(f"browse.mjs failed ({done.returncode}):\n{done.stderr[-3000:]}")
        report: Report = json.loads(done.stdout)
        if "failure" in report:
            pytest.fail(f"the browser session stopped: {report['failure']}\nconsole: "
                        f"{report['console']}\nsee {ARTIFACTS / 'failure.png'}")
        yield url, report


def rgba(name: str) -> np.ndarray:
    return np.asarray(Image.open(ARTIFACTS / name).convert("RGBA")).astype(np.int16)


def data_mask(image: np.ndarray) -> np.ndarray:
    return image[..., 3] > 0


def changed_fraction(a: np.ndarray, b: np.ndarray) -> float:
    """Share of the pixels holding data in either image whose colour differs visibly."""
    both = data_mask(a) | data_mask(b)
    differs = np.abs(a - b).max(axis=-1) > 8
    return float((differs & both).sum() / both.sum())


def colour_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Mean colour difference over the pixels holding data in both images (alpha aside)."""
    both = data_mask(a) & data_mask(b)
    return float(np.abs(a[..., :3] - b[..., :3]).max(axis=-1)[both].mean())


def reference_map(url: str, step: Report, **extra: str) -> np.ndarray:
    """The same view as a WMS GetMap of the same layer, run and time (the service's own map)."""
    width, height = step["mapSize"]
    response = httpx.get(f"{url}/wms", params={
        "service": "WMS", "version": "1.3.0", "request": "GetMap", "layers": step["layer"],
        "styles": "", "crs": "EPSG:3857", "bbox": ",".join(f"{v:.6f}" for v in step["extent3857"]),
        "width": str(width), "height": str(height), "format": "image/png", "transparent": "true",
        "time": step["time"], "dim_reference_time": step["run"], **extra}, timeout=60)
    assert response.status_code == 200, response.text
    return np.asarray(Image.open(io.BytesIO(response.content)).convert("RGBA")).astype(np.int16)


def css_colour(hex_colour: str) -> str:
    """``#rrggbb`` as the browser reports a colour: ``rgb(r, g, b)``."""
    assert len(hex_colour) == 7, hex_colour
    return "rgb({}, {}, {})".format(*bytes.fromhex(hex_colour[1:]))


def legend_graphic(url: str, layer: str) -> Report:
    response = httpx.get(f"{url}/wms", params={
        "request": "GetLegendGraphic", "format": "application/json", "layers": layer},
        timeout=30)
    assert response.status_code == 200, response.text
    body: Report = response.json()
    return body


def value_axis(chart: Report) -> tuple[float, float]:
    """Value per pixel (down) and value at y = 0 of the chart's value axis as labelled: the
    grid lines' positions and their numbers."""
    ticks = np.array(chart["valueTicks"], dtype=float)
    slope, offset = np.polyfit(ticks[:, 0], ticks[:, 1], 1)
    return float(slope), float(offset)


def drawn_band(chart: Report) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The members' band as drawn: x of each time, its high and its low value."""
    slope, offset = value_axis(chart)
    points = np.array(chart["bandPoints"], dtype=float)
    upper, lower = np.split(points, 2)  # the upper edge left to right, then the lower back
    lower = lower[::-1]
    assert np.array_equal(upper[:, 0], lower[:, 0])
    return upper[:, 0], slope * upper[:, 1] + offset, slope * lower[:, 1] + offset


def api_series(url: str, **params: str) -> Report:
    response = httpx.get(f"{url}/api/timeseries", params=params, timeout=30)
    assert response.status_code == 200, response.text
    body: Report = response.json()
    return body


def test_the_browser_tools_are_installed() -> None:
    browser_tools()  # fails (never skips) saying what is missing and how to install it
    version = subprocess.run([str(CHROMIUM), "--version"], capture_output=True, text=True,
                             timeout=60, check=False)
    assert "Chromium" in version.stdout, version.stderr


def test_the_page_loads_without_console_errors(session: tuple[str, Report]) -> None:
    url, report = session
    # Only the deliberately refused requests may log an error.
    refusals = ("tileRefused", "refused")
    unexpected = [m for m in report["console"] + report["pageErrors"]
                  if m["phase"] not in refusals]
    assert unexpected == []
    assert [r for r in report["failedRequests"] if r["phase"] not in refusals] == []
    load = report["steps"]["load"]
    capabilities = httpx.get(f"{url}/wms", params={
        "request": "GetCapabilities", "format": "application/json"}, timeout=30).json()
    assert load["layers"] == [layer["name"] for layer in capabilities["layers"]] == LAYERS
    assert load["groups"] == [group["title"] for group in capabilities["groups"]]
    assert capabilities["title"] in load["title"]
    first = capabilities["layers"][0]
    assert load["layer"] == first["name"]
    assert load["shownRun"] == first["externalForecastTime"]
    assert load["shownValidTime"] in first["times"]
    assert load["legendEntries"] > 1
    assert load["error"] is None


def test_every_request_goes_to_fewsmap_and_is_answered(session: tuple[str, Report]) -> None:
    _, report = session
    # Scripts, styles, the base map, capabilities, legends, tiles and time series: no CDN.
    assert report["requestCount"] > 100
    assert report["offServer"] == []
    assert report["networkFailures"] == []


def test_tiles_render_the_data_where_the_data_are(session: tuple[str, Report]) -> None:
    url, report = session
    step = report["steps"]["tiles"]
    assert step["requests"][-1] == {"layer": "naefs-mean.QTF", "run": step["run"],
                                    "time": step["time"]}
    assert (step["shownRun"], step["shownValidTime"]) == (step["run"], step["time"])
    shot = data_mask(rgba("data-naefs-qtf-first.png"))
    reference = data_mask(reference_map(url, step))
    assert shot.shape == reference.shape
    assert reference.mean() > 0.3  # the layer fills much of the view
    overlap = (shot & reference).sum() / (shot | reference).sum()
    assert overlap > 0.97, (f"overlap {overlap:.3f}: the tiles cover {shot.mean():.3f} of the "
                            f"view, the GetMap {reference.mean():.3f}")


def test_moving_the_time_slider_changes_the_time_and_the_image(
        session: tuple[str, Report]) -> None:
    _, report = session
    tiles, slider, step = (report["steps"][k] for k in ("tiles", "slider", "step"))
    times = tiles["times"]
    assert tiles["time"] != times[8]
    assert [r["time"] for r in slider["requests"]] == [times[8]]
    assert slider["shownValidTime"] == times[8]
    assert [r["time"] for r in step["requests"]] == [times[9]]  # the step button
    assert step["shownValidTime"] == times[9]
    before, after = rgba("data-naefs-qtf-first.png"), rgba("data-naefs-qtf-slider.png")
    assert data_mask(after).mean() > 0.3
    assert changed_fraction(before, after) > 0.2


def test_play_steps_through_the_times_and_pause_stops(session: tuple[str, Report]) -> None:
    _, report = session
    times, play = report["steps"]["tiles"]["times"], report["steps"]["play"]
    assert [r["time"] for r in play["requests"]] == times[10:12]  # on from the step's time
    assert play["paused"] == play["later"] == times[11]


def test_picking_another_run_changes_the_tiles(session: tuple[str, Report]) -> None:
    # MARFC's runs share no valid time, so the time changes with the run here; the levels
    # layer's test keeps the time and changes the run alone.
    _, report = session
    latest, older = report["steps"]["latestRun"], report["steps"]["olderRun"]
    assert latest["runs"] == sorted(latest["runs"], reverse=True) and len(latest["runs"]) == 4
    assert latest["run"] == latest["runs"][0] == latest["shownRun"]
    picked = latest["runs"][2]
    assert [(r["run"], r["time"]) for r in older["requests"]] == [(picked, older["time"])]
    assert older["shownRun"] == picked and older["time"] in older["times"]
    before, after = rgba("data-marfc-latest-run.png"), rgba("data-marfc-older-run.png")
    assert data_mask(before).mean() > 0.1 and data_mask(after).mean() > 0.1
    assert changed_fraction(before, after) > 0.2


def test_choosing_another_elevation_changes_the_tiles(session: tuple[str, Report]) -> None:
    url, report = session
    levels, chosen = report["steps"]["levels"], report["steps"]["elevation"]
    capabilities = httpx.get(f"{url}/wms", params={
        "request": "GetCapabilities", "format": "application/json", "layers": LEVELS_LAYER},
        timeout=30).json()
    ticks = capabilities["layers"][0]["elevation"]["irregularTicks"]
    assert levels["elevationVisible"] and not report["steps"]["ensemble"]["elevationVisible"]
    assert levels["elevations"] == ["", *(f"{v:g}" for v in ticks)]  # "" = the layer default
    assert all("elevation" not in r for r in levels["requests"])
    assert chosen["requests"] == [{"layer": LEVELS_LAYER, "run": levels["run"],
                                   "time": levels["time"], "elevation": "500"}]
    assert (chosen["shownRun"], chosen["shownValidTime"]) == (levels["run"], levels["time"])
    default, at_500 = rgba("data-levels-default.png"), rgba("data-levels-500hpa.png")
    assert data_mask(at_500).mean() > 0.3
    assert changed_fraction(default, at_500) > 0.5
    # The tiles draw the 500 hPa field: much nearer the service's GetMap at 500 hPa than
    # at the default level (the view is resampled, so not equal to it).
    near = colour_distance(at_500, reference_map(url, chosen, elevation="500"))
    far = colour_distance(at_500, reference_map(url, chosen))
    assert near < far / 4, (near, far)


def test_picking_another_run_keeps_the_time_and_changes_the_tiles(
        session: tuple[str, Report]) -> None:
    _, report = session
    latest, older = report["steps"]["elevation"], report["steps"]["levelsOlderRun"]
    picked = latest["runs"][1]
    assert picked != latest["run"] and latest["time"] in older["times"]  # a shared time
    assert older["time"] == latest["time"]
    assert older["requests"] == [{"layer": LEVELS_LAYER, "run": picked, "time": latest["time"],
                                  "elevation": "500"}]
    assert (older["shownRun"], older["shownValidTime"]) == (picked, latest["time"])
    before, after = rgba("data-levels-500hpa.png"), rgba("data-levels-older-run.png")
    assert data_mask(after).mean() > 0.3
    assert changed_fraction(before, after) > 0.3  # one colour scale: only changed values recolour


def test_the_legend_is_the_runs_legend_graphic(session: tuple[str, Report]) -> None:
    url, report = session
    shown = [report["steps"][k] for k in ("levels", "levelsOlderRun")]
    for step in shown:
        layer = f"{step['layer']}-{step['run']}"
        graphic = legend_graphic(url, layer)
        assert step["legend"]["layer"] == layer
        assert step["legend"]["unit"] == graphic["unit"]
        assert step["legend"]["entries"] == [  # highest first, as on a map's key
            {"label": entry["label"], "color": css_colour(entry["color"])}
            for entry in reversed(graphic["legend"])]
    assert shown[0]["legend"]["entries"] == shown[1]["legend"]["entries"]  # one scale for all


def test_opacity_fades_the_forecast_over_the_base_map(session: tuple[str, Report]) -> None:
    _, report = session
    assert report["steps"]["levelsOlderRun"]["layer"] == LEVELS_LAYER
    full, faded = rgba("data-levels-older-run.png"), rgba("data-levels-opacity-30.png")
    data = data_mask(full)
    assert np.median(full[..., 3][data]) == pytest.approx(0.8 * 255, abs=3)  # the default
    assert np.median(faded[..., 3][data]) == pytest.approx(0.3 * 255, abs=3)
    assert colour_distance(full, faded) < 4  # the same colours, fainter
    # At opacity 0 only the base map is left where the forecast was: outlines and land.
    base = rgba("07-base-map-at-opacity-0.png")
    drawn = base[..., 3] > 0
    colours = base[..., :3]
    assert (colours.max(axis=-1) - colours.min(axis=-1))[drawn].max() < 16  # no forecast hue
    outline = drawn & (np.abs(colours - OUTLINE).max(axis=-1) < 12)
    land = drawn & (np.abs(colours - LAND).max(axis=-1) < 4)
    assert outline[data].sum() > 1000 and land[data].mean() > 0.2


def test_a_refused_map_tile_is_shown_to_the_user(session: tuple[str, Report]) -> None:
    _, report = session
    refused = report["steps"]["tileRefused"]
    answer = httpx.get(refused["refusedTile"], timeout=30)
    assert refused["status"] == answer.status_code == 400
    error = answer.json()["error"]
    assert error["code"] == "InvalidDimensionValue"
    assert refused["error"] == f"Map tile failed (HTTP 400): {error['code']}: {error['message']}"
    # The page says the map is not shown, and no longer shows the previous level's tiles.
    assert refused["shownRefused"] and not refused["forecastVisible"]
    assert refused["shownText"].endswith(f"not shown ({error['code']}: {error['message']})")
    assert report["steps"]["refused"]["forecastVisible"]  # back once a level is served


def test_clicking_the_map_opens_a_hydrograph_of_the_run(session: tuple[str, Report]) -> None:
    url, report = session
    chart = report["steps"]["hydrograph"]
    assert chart["state"] == "ready"
    series = api_series(url, layer="naefs-mean.QTF", x=chart["lon"], y=chart["lat"],
                        run=chart["run"])["series"]
    assert len(series) == 1 and len(series[0]["times"]) > 1
    assert chart["dataPoints"] == len(series[0]["times"])
    assert chart["points"] == sum(v is not None for v in series[0]["values"])


def test_the_hydrograph_shows_other_runs_and_members(session: tuple[str, Report]) -> None:
    url, report = session
    older = report["steps"]["olderRun"]
    chart = report["steps"]["runHydrograph"]
    assert chart["state"] == "ready" and chart["run"] == older["run"]
    plume = api_series(url, layer="marfc-fmat.t", x=chart["lon"], y=chart["lat"], runs="all",
                       start=older["run"], end=older["times"][-1])["series"]
    others = [s["reference_time"] for s in plume if s["reference_time"] != older["run"]]
    assert others and chart["plumeRuns"] == others
    ensemble = report["steps"]["ensemble"]
    assert ensemble["memberVisible"]
    assert ensemble["requests"][-1]["member"] == "7"
    members = api_series(url, layer=ensemble["layer"],
                         x=ensemble["hydrograph"]["lon"], y=ensemble["hydrograph"]["lat"],
                         run=ensemble["run"], member="all")["series"]
    assert len(members) > 1
    chart = ensemble["hydrograph"]
    assert chart["band"] == 1
    assert chart["points"] == len(members[0]["times"])
    values = np.array([m["values"] for m in members], dtype=float)  # None → NaN
    assert not np.isnan(values).any()
    xs, high, low = drawn_band(chart)
    assert xs == pytest.approx(chart["pointXs"], abs=0.06)  # one band point per time
    pixel = abs(value_axis(chart)[0])  # the points are drawn to 0.1 px
    assert high == pytest.approx(values.max(axis=0), abs=0.06 * pixel)
    assert low == pytest.approx(values.min(axis=0), abs=0.06 * pixel)


def test_clicking_a_catchment_draws_its_mean_and_the_members_band(
        session: tuple[str, Report]) -> None:
    url, report = session
    chart = report["steps"]["catchment"]
    assert chart["state"] == "ready" and chart["catchment"] == "B04", chart
    assert chart["outlines"] == 12 and "mean over B04" in chart["title"]
    answer = httpx.get(f"{url}/api/catchments/demo-basins/B04", timeout=30, params={
        "layer": "ecmwf-ens-gust.fg10_6", "run": chart["run"], "member": "7"}).json()
    assert chart["values"] == pytest.approx(answer["series"][0]["values"], rel=1e-6)
    assert chart["points"] == 3 and chart["band"] == 1


def test_a_refused_request_is_shown_to_the_user(session: tuple[str, Report]) -> None:
    url, report = session
    refused = report["steps"]["refused"]
    assert refused["hydrograph"]["state"] == "error"
    answer = httpx.get(f"{url}/api/timeseries", params={
        "layer": refused["layer"], "x": refused["hydrograph"]["lon"],
        "y": refused["hydrograph"]["lat"], "run": refused["run"]}, timeout=30)
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["code"] in refused["error"] and error["message"] in refused["error"]
