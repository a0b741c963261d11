"""Legends: round labels, UDUNITS units, a title, and the contours the map draws."""

from __future__ import annotations

import numpy as np

from fewsmap.catalog.styles import PRECIPITATION_BREAKS, PRECIPITATION_COLORS, Style
from fewsmap.render.colour import palette_for
from fewsmap.render.legend import (
    CONTOUR_RGBA,
    ROW_HEIGHT_PX,
    LegendText,
    legend_entries,
    legend_image,
    legend_json,
    legend_size,
)

RAMP = Style("ramp", "Ramp", colormap="viridis")
RAIN = Style("rain", "Rain", kind="classes", breaks=PRECIPITATION_BREAKS,
             colors=PRECIPITATION_COLORS)


def test_a_continuous_legend_shows_round_values_in_their_colours() -> None:
    palette = palette_for(RAMP, None, (279.53, 301.2))
    entries = legend_entries(palette)
    assert [e["label"] for e in entries] == ["280", "282.5", "285", "287.5", "290", "292.5",
                                             "295", "297.5", "300"]
    values = np.array([e["lowerValue"] for e in entries], dtype=np.float32)
    drawn = palette.rgba(palette.indices(values))
    assert [e["color"] for e in entries] == ["#{:02x}{:02x}{:02x}".format(*p[:3])
                                             for p in drawn]


def test_geopotential_reads_as_whole_numbers() -> None:
    labels = [e["label"] for e in legend_entries(palette_for(RAMP, None, (10012.0, 10420.0)))]
    assert labels[0] == "10050" and not any("e" in label for label in labels)


def test_class_breaks_share_one_format() -> None:
    labels = [e["label"] for e in legend_entries(palette_for(RAIN, None, None))]
    assert labels == [">= 0.1", ">= 0.5", ">= 1", ">= 2", ">= 5", ">= 10", ">= 15", ">= 20",
                      ">= 30", ">= 50", ">= 75", ">= 100", ">= 150", ">= 200"]
    spread = legend_entries(palette_for(RAIN, (0.0, 10.0), None))  # 14 classes over 0..10
    assert [e["label"] for e in spread][:4] == [">= 0", ">= 0.77", ">= 1.54", ">= 2.31"]


def test_json_units_are_in_udunits_form_and_contours_listed_when_drawn() -> None:
    palette = palette_for(RAIN, None, None)
    plain = legend_json(palette, LegendText("Total precipitation", "kg m**-2"))
    assert plain == {"legend": legend_entries(palette), "unit": "kg m-2"}  # FEWS fields
    contoured = legend_json(palette, LegendText("Rain", "mm", np.array([1.0, 2.5, 10.0])))
    assert contoured["contours"] == {"levels": [1.0, 2.5, 10.0], "labels": ["1", "2.5", "10"],
                                     "color": "#1a1a1a"}


def rows_of(image: np.ndarray) -> list[np.ndarray]:
    return [image[top:top + ROW_HEIGHT_PX] for top in range(0, image.shape[0], ROW_HEIGHT_PX)]


def test_a_png_legend_has_a_title_row_then_the_units() -> None:
    palette = palette_for(RAIN, None, None)
    first = np.asarray(legend_image(palette, LegendText("First", "kg m**-2"), None, None))
    second = np.asarray(legend_image(palette, LegendText("Second", "kg m**-2"), None, None))
    assert first.shape[:2] == (ROW_HEIGHT_PX * (len(RAIN.breaks) + 2), 150)
    assert legend_size(RAIN, "kg m**-2") == (first.shape[1], first.shape[0])
    title, units, *_ = rows_of(first)
    assert title[..., 3].any() and units[..., 3].any()
    assert (first[:ROW_HEIGHT_PX] != second[:ROW_HEIGHT_PX]).any()  # the titles differ
    assert (first[ROW_HEIGHT_PX:] == second[ROW_HEIGHT_PX:]).all()  # nothing else does
    raw = np.asarray(legend_image(palette, LegendText("First", "kg m-2"), None, None))
    assert (raw == first).all()  # units are written in UDUNITS form


def test_a_png_legend_of_a_contoured_map_ends_with_a_line_sample() -> None:
    palette = palette_for(RAIN, None, None)
    text = LegendText("Rain", "mm", np.array([1.0, 5.0, 20.0]))
    image = np.asarray(legend_image(palette, text, None, None))
    plain = np.asarray(legend_image(palette, LegendText("Rain", "mm"), None, None))
    assert image.shape[0] == plain.shape[0] + ROW_HEIGHT_PX
    assert legend_size(RAIN, "mm", contours=True)[1] == image.shape[0]
    assert (image[:plain.shape[0]] == plain).all()
    sample = rows_of(image)[-1][:, 2:25]
    line = (sample == CONTOUR_RGBA).all(axis=-1)
    assert line.any(axis=1).sum() == 1 and line.all(axis=1).any()  # one row across
