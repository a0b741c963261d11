"""Animated GetMap over HTTP against the real ``fewsmap serve``: GIF, APNG and WebP."""

from __future__ import annotations

import io
import itertools
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pyproj
import pytest
import xarray as xr
from lxml import etree
from PIL import Image, ImageSequence

from fewsmap.errors import ConfigError
from fewsmap.ingest import ingest
from fewsmap.ingest.grids import grid_attrs
from fewsmap.settings import load_settings
from fewsmap.store.run import Grid, RunData, SourceFile
from fewsmap.store.writer import append_run
from tests.conftest import sample_paths
from tests.live_server import live_server

NAEFS_BBOX = "-125,24,-65,54"
GRID_BBOX = "-20,30,40,60"
RUNS = ("2026-01-01T00:00:00Z", "2026-01-01T06:00:00Z")
CONFIG = """
[catalog]
auto_layers = true

[[layers]]
id = "grid-nearest"
store = "grid"
variable = "t"
time_tolerance = "PT3H"
"""
# Small limits so that refusals are cheap to provoke: 40 frames, 40 frames of 100 × 100.
LIMITS = {"FEWSMAP_MAX_ANIMATION_FRAMES": "40", "FEWSMAP_MAX_ANIMATION_PIXELS": "400000"}
OGC = "{http://www.opengis.net/ogc}"


def two_run_store(path: Path) -> None:
    """Two runs, 6 h apart, with steps +0/+6/+12 h; value = longitude + lead hours + run
    hours, so every frame of every run differs."""
    lat, lon = np.arange(60.0, 29.5, -1.0), np.arange(-20.0, 40.5, 1.0)
    grid = Grid(("latitude", "longitude"),
                {"latitude": xr.DataArray(lat, dims="latitude"),
                 "longitude": xr.DataArray(lon, dims="longitude")},
                grid_attrs(pyproj.CRS.from_epsg(4326)))
    longitude = np.broadcast_to(lon, (lat.size, lon.size))
    leads = np.array([0, 6, 12], "timedelta64[h]")
    for run_hours, label in zip((0, 6), RUNS, strict=True):
        values = np.stack([longitude + 3 * int(h / np.timedelta64(1, "h")) + run_hours
                           for h in leads]).astype("float32")
        field = xr.DataArray(values, dims=("step", *grid.dims),
                             coords={"step": leads.astype("timedelta64[ns]")},
                             attrs={"units": "degC"})  # in K all below -72 °C
        reference = np.datetime64(label.rstrip("Z"), "s")
        append_run(path, RunData(reference, {"t": (field,)}, grid,
                                 (SourceFile("synthetic", "0" * 64, 0),), "synthetic"),
                   progress=False)


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("animation")
    ingest(root / "stores" / "naefs.zarr", sample_paths("naefs"), progress=False)
    two_run_store(root / "stores" / "grid.zarr")
    (root / "fewsmap.toml").write_text(CONFIG)
    with live_server("--stores", str(root / "stores"), "--config",
                     str(root / "fewsmap.toml"), env=LIMITS) as base:
        yield f"{base}/wms"


def get_map(url: str, layer: str = "naefs.QTF", bbox: str = NAEFS_BBOX,
            **extra: str) -> httpx.Response:
    params = {"request": "GetMap", "version": "1.3.0", "layers": layer, "crs": "CRS:84",
              "bbox": bbox, "width": "100", "height": "50", **extra}
    return httpx.get(url, params=params, timeout=60)


def frames_of(response: httpx.Response) -> list[np.ndarray]:
    """Each frame as shown, RGBA; the colour of transparent pixels set to 0."""
    assert response.status_code == 200, response.text
    frames = []
    for frame in ImageSequence.Iterator(Image.open(io.BytesIO(response.content))):
        rgba = np.asarray(frame.convert("RGBA")).copy()
        rgba[rgba[..., 3] == 0] = 0
        frames.append(rgba)
    return frames


def code_of(response: httpx.Response) -> str:
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("text/xml")
    report = etree.fromstring(response.content)
    return str(report.find(f"{OGC}ServiceException").get("code"))


@pytest.mark.parametrize(("image_format", "media_type", "time", "expected"), [
    ("image/gif", "image/gif", "2022-08-09T06:00:00Z,2022-08-09T18:00:00Z,2022-08-10T12:00:00Z",
     ["2022-08-09T06", "2022-08-09T18", "2022-08-10T12"]),  # a FEWS/ncWMS list
    ("image/apng", "image/apng", "2022-08-09T06:00:00Z/2022-08-10T06:00:00Z/PT12H",
     ["2022-08-09T06", "2022-08-09T18", "2022-08-10T06"]),
    ("image/png;mode=animated", "image/apng", "2022-08-09T06:00:00Z/2022-08-09T18:00:00Z",
     ["2022-08-09T06", "2022-08-09T12", "2022-08-09T18"]),
    ("image/webp", "image/webp", "2022-08-10", ["2022-08-10T00", "2022-08-10T06",
                                                "2022-08-10T12", "2022-08-10T18"]),
])
def test_each_frame_is_the_single_time_map(url: str, image_format: str, media_type: str,
                                           time: str, expected: list[str]) -> None:
    response = get_map(url, format=image_format, time=time)
    frames = frames_of(response)
    times = [f"{hour}:00:00Z" for hour in expected]
    assert response.headers["content-type"] == media_type
    assert response.headers["x-fewsmap-valid-time"] == ",".join(times)
    assert len(frames) == len(times)
    for when, frame in zip(times, frames, strict=True):
        single = frames_of(get_map(url, time=when))[0]  # the PNG GetMap of that time
        np.testing.assert_array_equal(frame, single)
    assert all(not np.array_equal(a, b) for a, b in itertools.pairwise(frames))


def test_the_run_is_the_latest_or_the_one_named(url: str) -> None:
    latest = get_map(url, "grid-nearest", GRID_BBOX, format="image/gif", time="all")
    assert latest.headers["x-fewsmap-run"] == RUNS[1]
    assert latest.headers["x-fewsmap-valid-time"] == (
        "2026-01-01T06:00:00Z,2026-01-01T12:00:00Z,2026-01-01T18:00:00Z")
    named = get_map(url, "grid-nearest", GRID_BBOX, format="image/gif", time="all",
                    dim_reference_time=RUNS[0])
    assert named.headers["x-fewsmap-run"] == RUNS[0]
    times = named.headers["x-fewsmap-valid-time"].split(",")
    assert times == ["2026-01-01T00:00:00Z", "2026-01-01T06:00:00Z", "2026-01-01T12:00:00Z"]
    for when, frame in zip(times, frames_of(named), strict=True):
        single = get_map(url, "grid-nearest", GRID_BBOX, time=when,
                         dim_reference_time=RUNS[0])
        np.testing.assert_array_equal(frame, frames_of(single)[0])
    # The same valid time in the other run is another map.
    assert not np.array_equal(frames_of(named)[1], frames_of(latest)[0])


def test_without_time_the_default_time_is_one_frame(url: str) -> None:
    response = get_map(url, format="image/gif")
    frames = frames_of(response)
    assert len(frames) == 1 and response.headers["x-fewsmap-valid-time"] == \
        "2022-08-09T06:00:00Z"
    np.testing.assert_array_equal(frames[0], frames_of(get_map(url))[0])


def test_contours_and_styles_are_drawn_as_in_getmap(url: str) -> None:
    times = "2022-08-09T06:00:00Z,2022-08-09T12:00:00Z"
    response = get_map(url, format="image/apng", time=times, showContours="true",
                       colorscalerange="10,30")
    for when, frame in zip(times.split(","), frames_of(response), strict=True):
        single = get_map(url, time=when, showContours="true", colorscalerange="10,30")
        np.testing.assert_array_equal(frame, frames_of(single)[0])


def test_timestamps_are_drawn_in_a_corner_only_when_asked(url: str) -> None:
    times = "2022-08-09T06:00:00Z,2022-08-09T12:00:00Z"
    plain = frames_of(get_map(url, format="image/gif", time=times, height="100"))
    stamped = frames_of(get_map(url, format="image/gif", time=times, height="100",
                                animation_timestamp="true"))
    off = frames_of(get_map(url, format="image/gif", time=times, height="100",
                            animation_timestamp="false"))
    assert all(np.array_equal(a, b) for a, b in zip(plain, off, strict=True))
    for without, with_stamp in zip(plain, stamped, strict=True):
        changed = np.argwhere((without != with_stamp).any(axis=-1))
        assert changed.size
        assert changed[:, 0].max() == 99 and changed[:, 0].min() >= 50  # bottom
        assert changed[:, 1].min() == 0  # left
    corner = (slice(50, 100), slice(0, 100))
    assert not np.array_equal(stamped[0][corner], stamped[1][corner])  # another time


def test_frame_duration_is_honoured(url: str) -> None:
    response = get_map(url, format="image/gif", frame_duration="150",
                       time="2022-08-09T06:00:00Z,2022-08-09T12:00:00Z")
    image = Image.open(io.BytesIO(response.content))
    assert [frame.info["duration"] for frame in ImageSequence.Iterator(image)] == [150, 150]
    default = get_map(url, format="image/gif", time="2022-08-09T06:00:00Z,2022-08-09T12:00:00Z")
    assert Image.open(io.BytesIO(default.content)).info["duration"] == 500


def test_nearest_times_follow_the_layer_tolerance(url: str) -> None:
    response = get_map(url, "grid-nearest", GRID_BBOX, format="image/gif",
                       time="2026-01-01T07:00:00Z,2026-01-01T13:00:00Z")
    assert len(frames_of(response)) == 2
    assert response.headers["x-fewsmap-valid-time"] == \
        "2026-01-01T06:00:00Z,2026-01-01T12:00:00Z"
    assert "99 Nearest value used: time=2026-01-01T06:00:00Z" in response.headers["warning"]
    far = get_map(url, "grid-nearest", GRID_BBOX, format="image/gif",
                  time="2026-01-01T06:00:00Z,2026-01-02T06:00:00Z")
    assert code_of(far) == "InvalidDimensionValue" and "tolerance" in far.text


def test_identical_requests_are_cacheable(url: str) -> None:
    params = {"format": "image/webp", "time": "2022-08-09T06:00:00Z/2022-08-09T12:00:00Z",
              "dim_reference_time": "2022-08-09T00:00:00Z"}
    first = get_map(url, **params)
    assert first.headers["cache-control"] == "public, max-age=31536000, immutable"
    again = httpx.get(first.request.url, headers={"If-None-Match": first.headers["etag"]},
                      timeout=60)
    assert again.status_code == 304 and again.headers["etag"] == first.headers["etag"]


def test_frame_and_pixel_limits_are_refused_with_a_clear_report(url: str) -> None:
    too_many = get_map(url, format="image/gif", time="all")  # 64 steps, limit 40
    assert code_of(too_many) == "InvalidParameterValue"
    assert "64 frames" in too_many.text and "max_animation_frames" in too_many.text
    too_big = get_map(url, format="image/gif", width="400", height="100",
                      time="2022-08-09T06:00:00Z/2022-08-11T18:00:00Z")  # 11 × 40,000 px
    assert code_of(too_big) == "InvalidParameterValue"
    assert "max_animation_pixels" in too_big.text
    at_limit = get_map(url, format="image/gif", width="100", height="100",
                       time="2022-08-09T06:00:00Z/2022-08-19T00:00:00Z")
    assert len(frames_of(at_limit)) == 40


HOURLY = ",".join(f"2022-08-{9 + h // 24:02d}T{h % 24:02d}:00:00Z" for h in range(300))


@pytest.mark.parametrize(("params", "code"), [
    ({"time": "2022-08-09T06:00:00Z/2022-08-10T00:00:00Z/PT0S"}, "InvalidDimensionValue"),
    ({"time": "2022-08-09T06:00:00Z/2022-08-10T00:00:00Z/-PT6H"}, "InvalidDimensionValue"),
    ({"time": "2022-08-10T00:00:00Z/2022-08-09T06:00:00Z"}, "InvalidDimensionValue"),
    ({"time": "2022-08-09T00:00:00Z/2022-08-25T00:00:00Z/PT1S"}, "InvalidParameterValue"),
    ({"time": HOURLY}, "InvalidDimensionValue"),  # 300 listed, most not steps
    ({"time": ",".join(["2022-08-09T06:00:00Z"] * 600)}, "InvalidParameterValue"),  # too long
    ({"time": "2022-08-09T06:00:00Z,2022-08-09T07:00:00Z"}, "InvalidDimensionValue"),
    ({"time": "2030-01-01T00:00:00Z/2030-01-02T00:00:00Z"}, "InvalidDimensionValue"),
    ({"time": "all", "reducer": "sum"}, "InvalidParameterValue"),
    ({"time": "all", "styles": "default:max"}, "InvalidParameterValue"),
    ({"frame_duration": "0"}, "InvalidParameterValue"),
    ({"frame_duration": "-40"}, "InvalidParameterValue"),
    ({"frame_duration": "fast"}, "InvalidParameterValue"),
    ({"frame_duration": "1" * 400}, "InvalidParameterValue"),
    ({"animation_timestamp": "maybe"}, "InvalidParameterValue"),
    ({"layers": "naefs"}, "InvalidParameterValue"),  # a group
    ({"layers": "nope.QTF"}, "LayerNotDefined"),
    ({"width": "100000"}, "InvalidParameterValue"),
    ({"dim_reference_time": "2019-01-01T00:00:00Z"}, "InvalidDimensionValue"),
    ({"format": "image/gif;mode=unknown"}, "InvalidFormat"),
])
def test_hostile_requests_get_ogc_reports(url: str, params: dict[str, str],
                                          code: str) -> None:
    query = {"format": "image/gif", "time": "2022-08-09T06:00:00Z,2022-08-09T12:00:00Z",
             **params}
    assert code_of(get_map(url, **query)) == code


def test_capabilities_offer_the_animation_formats(url: str) -> None:
    response = httpx.get(url, params={"request": "GetCapabilities"}, timeout=60)
    formats = etree.fromstring(response.content).findall(
        ".//{http://www.opengis.net/wms}GetMap/{http://www.opengis.net/wms}Format")
    assert {"image/gif", "image/apng", "image/webp"} <= {f.text for f in formats}


def test_the_limits_are_settings() -> None:
    settings = load_settings(environ={"FEWSMAP_MAX_ANIMATION_FRAMES": "12",
                                      "FEWSMAP_MAX_ANIMATION_PIXELS": "5000000"})
    assert (settings.max_animation_frames, settings.max_animation_pixels) == (12, 5_000_000)
    for value in ("0", "-1", "many"):
        with pytest.raises(ConfigError, match="max_animation_frames"):
            load_settings(environ={"FEWSMAP_MAX_ANIMATION_FRAMES": value})
