"""Animations on a real store: each frame is the map of its time, in every format."""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageSequence

from fewsmap.catalog.styles import Style
from fewsmap.render.animate import APNG, GIF, WEBP, caption, render_animation
from fewsmap.render.pipeline import MapSpec, render_map
from fewsmap.render.regrid import Canvas
from fewsmap.store.cube import ForecastStore

RAMP = Style("ramp", "ramp", colormap="RdYlBu_r", value_range=(0.0, 45.0))
CLASSES = Style("warm", "warm", kind="classes", breaks=(10.0, 20.0, 30.0),
                colors=("#2c7bb6", "#fdae61", "#d7191c"))
# Wider than the NAEFS grid (-125..-65, 24..54): the margin is no data.
CANVAS = Canvas("OGC:CRS84", (-130.0, 20.0, -60.0, 58.0), 140, 76)
FORMATS = (GIF, APNG, WEBP)


@pytest.fixture(scope="module")
def qtf(ingested: Callable[[str], Path]) -> MapSpec:
    """The first step of the NAEFS temperature run, in the continuous style."""
    store = ForecastStore(ingested("naefs"))
    run = store.runs[-1]
    return MapSpec(store, ("QTF",), run, run.valid_times[0], (), CANVAS, RAMP)


def frames_of(spec: MapSpec, steps: int) -> list[MapSpec]:
    return [replace(spec, valid_time=t) for t in spec.run.valid_times[:steps]]


def decoded(image: bytes) -> list[np.ndarray]:
    """Every frame as a viewer shows it, RGBA; the colour of transparent pixels set to 0."""
    frames = []
    for frame in ImageSequence.Iterator(Image.open(io.BytesIO(image))):
        rgba = np.asarray(frame.convert("RGBA")).copy()
        rgba[rgba[..., 3] == 0] = 0
        frames.append(rgba)
    return frames


def png_pixels(spec: MapSpec) -> np.ndarray:
    return decoded(render_map(spec))[0]


@pytest.mark.parametrize("image_format", FORMATS)
def test_each_frame_is_the_map_of_its_time(qtf: MapSpec, image_format: str) -> None:
    specs = frames_of(qtf, 3)
    frames = decoded(render_animation([[s] for s in specs], image_format, 250))
    assert len(frames) == 3
    for spec, frame in zip(specs, frames, strict=True):
        np.testing.assert_array_equal(frame, png_pixels(spec))  # exact, no data included
    assert (frames[0][..., 3] == 0).any() and (frames[0][..., 3] == 255).any()
    assert not np.array_equal(frames[0], frames[1]) and not np.array_equal(frames[1], frames[2])


@pytest.mark.parametrize("image_format", FORMATS)
def test_frames_show_for_the_asked_duration(qtf: MapSpec, image_format: str) -> None:
    image = render_animation([[s] for s in frames_of(qtf, 2)], image_format, 340)
    durations = []
    for frame in ImageSequence.Iterator(Image.open(io.BytesIO(image))):
        frame.load()  # WebP reads the duration with the frame
        durations.append(frame.info["duration"])
    assert durations == [340, 340]


@pytest.mark.parametrize("style", [RAMP, CLASSES], ids=["full-palette", "free-entries"])
def test_the_timestamp_is_drawn_in_the_corner_only_when_asked(qtf: MapSpec,
                                                              style: Style) -> None:
    specs = [[s] for s in frames_of(replace(qtf, style=style), 2)]
    plain = decoded(render_animation(specs, GIF, 250))
    stamped = decoded(render_animation(specs, GIF, 250, timestamp=True))
    height, width = CANVAS.height, CANVAS.width
    for spec, without, with_stamp in zip(specs, plain, stamped, strict=True):
        np.testing.assert_array_equal(without, png_pixels(spec[0]))
        changed = np.argwhere((without != with_stamp).any(axis=-1))
        assert changed.size, "no timestamp drawn"
        rows, columns = changed[:, 0], changed[:, 1]
        # A label anchored in the bottom-left corner, in the lower half of the map.
        assert rows.max() == height - 1 and columns.min() == 0 and rows.min() >= height // 2
        assert columns.max() < width - 1
        corner = with_stamp[rows.min():, : columns.max() + 1]
        assert len(np.unique(corner.reshape(-1, 4), axis=0)) >= 2  # text on its box
    assert not np.array_equal(stamped[0], stamped[1])  # the times differ


def test_the_caption_names_valid_time_run_and_lead_time(qtf: MapSpec) -> None:
    spec = replace(qtf, valid_time=qtf.run.valid_times[2])
    assert caption(spec) == "2022-08-09 18:00 UTC\nrun 2022-08-09 00:00 +18h"


@pytest.mark.parametrize("image_format", [APNG, WEBP])
def test_contour_frames_are_exact_in_apng_and_webp(qtf: MapSpec, image_format: str) -> None:
    specs = frames_of(replace(qtf, show_contours=True), 2)
    frames = decoded(render_animation([[s] for s in specs], image_format, 250))
    for spec, frame in zip(specs, frames, strict=True):
        np.testing.assert_array_equal(frame, png_pixels(spec))


def test_opaque_frames_get_an_exact_gif_palette(qtf: MapSpec) -> None:
    """Over a background (TRANSPARENT=FALSE) the frames are RGBA with at most 256 colours:
    the GIF palette is built from them, not quantised."""
    specs = frames_of(replace(qtf, transparent=False, bgcolor=(10, 20, 30)), 2)
    frames = decoded(render_animation([[s] for s in specs], GIF, 250))
    for spec, frame in zip(specs, frames, strict=True):
        np.testing.assert_array_equal(frame, png_pixels(spec))


def test_contour_frames_in_gif_are_close(qtf: MapSpec) -> None:
    """GIF has 256 colours and binary transparency: anti-aliased contours are quantised.
    Tolerance: opaque pixels within 40 per channel, 2 on average; alpha cut at 128."""
    specs = frames_of(replace(qtf, show_contours=True), 2)
    frames = decoded(render_animation([[s] for s in specs], GIF, 250))
    for spec, frame in zip(specs, frames, strict=True):
        expected = png_pixels(spec)
        assert ((frame[..., 3] == 255) == (expected[..., 3] >= 128)).all()
        opaque = frame[..., 3] == 255
        error = np.abs(frame[opaque, :3].astype(int) - expected[opaque, :3])
        assert error.max() <= 40 and error.mean() <= 2
