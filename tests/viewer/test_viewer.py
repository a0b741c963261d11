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
ENSEMBLE_LAYER = "ecmwf-ens-gust.fg10_6"
LAYERS = [ENSEMBLE_LAYER, "marfc-fmat.t", "naefs-mean.QPF", "naefs-mean.QTF",
          LEVELS_LAYER, f"{LEVELS_LAYER}:change"]  # two runs sharing valid times
# Every store is published as configured with zero config; the ensemble layer gets warning
# levels (in its stored units, m s-1), which the threshold selector lists.
CONFIG = f"""
[catalog]
auto_layers = true

[[layers]]
id = "{ENSEMBLE_LAYER}"
title = "Maximum 10 metre wind gust in the last 6 hours [km h-1]"
store = "ecmwf-ens-gust"
variable = "fg10_6"
thresholds = [15, "below:5"]
"""
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
    config = stores.parent / "fewsmap.toml"
    config.write_text(CONFIG)
    with live_server("--stores", str(stores), "--config", str(config)) as url:
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


def legend_graphic(url: str, layer: str, **extra: str) -> Report:
    response = httpx.get(f"{url}/wms", params={
        "request": "GetLegendGraphic", "format": "application/json", "layers": layer, **extra},
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


# ---- forecast products: statistics, exceedance, change, sums (#15) and units (#16) -------------

def shown_legend(graphic: Report) -> list[dict[str, str]]:
    """A GetLegendGraphic JSON answer as the page lists it: highest first, browser colours."""
    return [{"label": entry["label"], "color": css_colour(entry["color"])}
            for entry in reversed(graphic["legend"])]


def assert_legend_is(url: str, step: Report, **selection: str) -> None:
    """The page's legend is the service's legend of the run and selection shown."""
    graphic = legend_graphic(url, f"{step['layer']}-{step['run']}", **selection)
    assert step["legend"]["unit"] == graphic["unit"]
    assert step["legend"]["entries"] == shown_legend(graphic)


def assert_chart_is(url: str, step: Report, **selection: str) -> Report:
    """The hydrograph's main series holds the time-series API's values for the selection,
    labelled with the answer's units; returns the answer."""
    chart = step["hydrograph"]
    assert chart["state"] == "ready", chart
    answer = api_series(url, layer=step["layer"], x=chart["lon"], y=chart["lat"],
                        run=step["run"], **selection)
    series, = answer["series"]
    assert chart["values"] == pytest.approx([v for v in series["values"] if v is not None],
                                            rel=1e-6)
    assert chart["units"] == answer["units"]
    return answer


def catalogue_members(url: str, layer: str) -> list[str]:
    capabilities = httpx.get(f"{url}/wms", params={
        "request": "GetCapabilities", "format": "application/json", "layers": layer},
        timeout=30).json()
    ids: list[str] = capabilities["layers"][0]["ensembles"][0]["ensembleMemberIds"]
    return ids


def test_the_statistic_selector_lists_the_layers_statistics_apart_from_members(
        session: tuple[str, Report]) -> None:
    url, report = session
    offered, chosen = report["steps"]["statistic"]["offered"], report["steps"]["statistic"]
    ids = catalogue_members(url, ENSEMBLE_LAYER)
    statistics = [i for i in ids if i in ("mean", "median", "min", "max", "std")
                  or (i[0] == "p" and i[1:].isdigit())]
    assert statistics[:5] == ["mean", "median", "min", "max", "std"]
    assert offered["statisticVisible"] and offered["memberVisible"]
    assert offered["statistics"] == ["", *statistics, "threshold"]
    assert offered["elevations"] == [""]  # no statistic among the members either
    # A statistic replaces the member: the member selector goes; layers without members
    # offer no statistic.
    assert chosen["member"] == "mean" and not chosen["memberVisible"]
    assert not report["steps"]["units"]["statisticVisible"]
    assert not report["steps"]["tiles"]["statisticVisible"]


def test_the_ensemble_mean_is_drawn_on_the_map_legend_and_hydrograph(
        session: tuple[str, Report]) -> None:
    url, report = session
    step = report["steps"]["statistic"]
    assert step["requests"] == [{"layer": ENSEMBLE_LAYER, "run": step["run"],
                                 "time": step["time"], "member": "mean"}]
    assert "mean of the members" in step["shownText"]
    assert_legend_is(url, step, dim_ensemble_member="mean")
    shot = rgba("data-ensemble-mean.png")
    near = colour_distance(shot, reference_map(url, step, dim_ensemble_member="mean"))
    far = colour_distance(shot, reference_map(url, step, dim_ensemble_member="50"))
    assert near < far / 2, (near, far)
    assert_chart_is(url, step, member="mean")
    chart = step["hydrograph"]
    assert chart["band"] == 1 and "mean of the members" in chart["title"]
    members = {q.get("member") for q in step["api"]}
    assert members == {"mean", "all"}  # the mean, and the members' range around it


def test_a_catchment_chart_shows_the_statistic_chosen(session: tuple[str, Report]) -> None:
    url, report = session
    chart = report["steps"]["statisticCatchment"]
    assert chart["state"] == "ready" and chart["catchment"] == "B04"
    assert {q.get("member") for q in chart["api"]} == {"mean", "all"}
    assert "mean of the members" in chart["title"] and chart["band"] == 1
    answer = httpx.get(f"{url}/api/catchments/demo-basins/B04", timeout=30, params={
        "layer": ENSEMBLE_LAYER, "run": chart["run"], "member": "mean"}).json()
    assert chart["values"] == pytest.approx(answer["series"][0]["values"], rel=1e-6)
    assert chart["units"] == answer["units"]


def test_exceedance_shows_the_configured_thresholds_first(session: tuple[str, Report]) -> None:
    url, report = session
    step = report["steps"]["threshold"]
    listed = [i for i in catalogue_members(url, ENSEMBLE_LAYER) if ":" in i]
    assert listed == ["above:15", "below:5"]  # the configuration's warning levels
    assert step["thresholds"] == [*listed, "other"]
    assert step["thresholdVisible"] and "m s-1" in step["thresholdUnits"]
    assert step["requests"] == [{"layer": ENSEMBLE_LAYER, "run": step["run"],
                                 "time": step["time"], "member": "above:15"}]
    assert step["legend"]["unit"] == "%"
    assert_legend_is(url, step, dim_ensemble_member="above:15")
    shot = rgba("data-ensemble-above-15.png")
    near = colour_distance(shot, reference_map(url, step, dim_ensemble_member="above:15"))
    assert near < 8, near


def test_a_typed_threshold_is_checked_then_shown(session: tuple[str, Report]) -> None:
    url, report = session
    invalid, other = report["steps"]["thresholdInvalid"], report["steps"]["thresholdOther"]
    assert '"12,5" is not a number' in invalid["thresholdProblem"]
    assert invalid["requests"] == [] and invalid["member"] == "above:15"  # nothing sent
    assert other["thresholdProblem"] == ""
    assert other["requests"] == [{"layer": ENSEMBLE_LAYER, "run": other["run"],
                                  "time": other["time"], "member": "below:12.5"}]
    assert_legend_is(url, other, dim_ensemble_member="below:12.5")
    answer = assert_chart_is(url, other, member="below:12.5")
    assert answer["units"] == "%" and other["hydrograph"]["band"] == 0  # no members' range in %


def test_the_url_hash_reopens_the_same_view(session: tuple[str, Report]) -> None:
    _, report = session
    shared, reopened = report["steps"]["thresholdOther"], report["steps"]["hash"]
    assert "member=below%3A12.5" in shared["hash"] and f"layer={ENSEMBLE_LAYER}" in shared["hash"]
    assert reopened["layer"] == ENSEMBLE_LAYER and reopened["member"] == "below:12.5"
    assert (reopened["thresholdValue"], reopened["direction"]) == ("12.5", "below")
    assert reopened["requests"][0]["member"] == "below:12.5"
    assert reopened["hash"] == shared["hash"]
    assert reopened["legend"]["query"] == shared["legend"]["query"]


def test_the_change_view_draws_the_change_since_the_previous_run(
        session: tuple[str, Report]) -> None:
    url, report = session
    step = report["steps"]["change"]
    latest, previous = step["runs"]
    assert step["baselines"] == ["previous"] and step["baselineVisible"]
    assert step["requests"] == [{"layer": LEVELS_LAYER, "run": latest, "time": step["time"],
                                 "baseline": "previous"}]
    # Only the valid times both runs hold are offered (a change needs both).
    older = report["steps"]["changeOldest"]
    assert older["run"] == previous
    assert step["times"] == [t for t in step["runTimes"] if t in older["runTimes"]]
    assert len(step["times"]) < len(step["runTimes"])
    assert f"change since run {previous}" in step["shownText"]
    assert_legend_is(url, step, baseline="previous")
    shot = rgba("data-levels-change.png")
    near = colour_distance(shot, reference_map(url, step, baseline="previous"))
    far = colour_distance(shot, reference_map(url, step))
    assert near < far / 4, (near, far)
    answer = assert_chart_is(url, step, baseline="previous")
    assert answer["series"][0]["baseline_reference_time"] == previous
    assert {q.get("baseline") for q in step["api"]} == {"previous"}
    # The oldest run has nothing earlier: the change goes off and cannot be chosen.
    assert not older["changeChecked"] and older["changeDisabled"]
    assert "baseline" not in older["hash"]


def test_a_catchment_chart_under_the_change_view_shows_the_catchment_s_change(
        session: tuple[str, Report]) -> None:
    url, report = session
    chart = report["steps"]["changeCatchment"]
    assert chart["state"] == "ready" and chart["catchment"] == "B04"
    assert {q.get("baseline") for q in chart["api"]} == {"previous"}
    answer = httpx.get(f"{url}/api/catchments/demo-basins/B04", timeout=30, params={
        "layer": LEVELS_LAYER, "run": report["steps"]["change"]["run"],
        "baseline": "previous"}).json()
    assert answer["series"][0]["baseline_reference_time"]
    assert chart["values"] == pytest.approx(answer["series"][0]["values"], rel=1e-6)


def test_sums_over_24_hours_are_offered_for_precipitation(session: tuple[str, Report]) -> None:
    url, report = session
    step = report["steps"]["accumulate"]
    assert step["perStep"]["accumulateVisible"]
    assert not report["steps"]["tiles"]["accumulateVisible"]  # temperature: no sums
    assert step["requests"] == [{"layer": "naefs-mean.QPF", "run": step["run"],
                                 "time": step["time"], "accumulate": "PT24H"}]
    # The valid times offered are those whose whole window lies in the run.
    run = np.datetime64(step["run"].rstrip("Z"))
    day = np.timedelta64(24, "h")
    held = {np.datetime64(t.rstrip("Z")) for t in step["runTimes"]} | {run}
    assert step["times"] == [t for t in step["runTimes"]
                             if np.datetime64(t.rstrip("Z")) - day in held]
    assert step["time"] == step["times"][0] != step["perStep"]["time"]
    assert_legend_is(url, step, accumulate="PT24H")
    shot = rgba("data-qpf-24h.png")
    near = colour_distance(shot, reference_map(url, step, accumulate="PT24H"))
    assert near < 8, near
    answer = assert_chart_is(url, step, accumulate="PT24H")
    assert answer["series"][0]["accumulation"] in ("PT24H", "P1D")


def test_the_chart_is_labelled_with_the_units_of_its_answer(session: tuple[str, Report]) -> None:
    url, report = session
    step = report["steps"]["units"]
    chart = step["hydrograph"]
    answer = api_series(url, layer=LEVELS_LAYER, x=chart["lon"], y=chart["lat"],
                        run=step["run"])
    assert chart["units"] == answer["units"] != ""


def test_the_chart_of_a_kelvin_layer_states_the_legends_unit(
        session: tuple[str, Report]) -> None:
    _, report = session
    step = report["steps"]["units"]
    assert step["legend"]["unit"] == "degC"
    assert step["hydrograph"]["units"] == step["legend"]["unit"]


def test_a_change_between_runs_sharing_no_time_says_so(session: tuple[str, Report]) -> None:
    _, report = session
    step, picked = report["steps"]["noSharedTime"], report["steps"]["pickedBaseline"]
    latest, *earlier = step["runs"]
    assert step["run"] == latest and len(earlier) == 3
    assert step["baselines"] == ["previous", *earlier[1:]]  # the runs before the one shown
    assert step["times"] == [] and not step["forecastVisible"]
    assert f"shares no valid time with run {earlier[0]}" in step["shownText"]
    assert picked["hash"].endswith(f"baseline={earlier[-1].replace(':', '%3A')}")
    assert picked["requests"] == []  # no tile is asked for that the server would refuse
