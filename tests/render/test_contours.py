"""Contours: at the style's class breaks (or configured levels), labelled, and no zero
contour ringing every cell of a field bounded by zero (precipitation, cloud cover)."""

from __future__ import annotations

import numpy as np
import pytest

from fewsmap.catalog.styles import PRECIPITATION_BREAKS, PRECIPITATION_COLORS, Style
from fewsmap.render.colour import palette_for
from fewsmap.render.contours import contour_levels, contour_overlay, label_places
from fewsmap.render.regrid import Canvas, SourceWindow

CLASSES = Style("bands", "Bands", kind="classes", breaks=(-10.0, 0.0, 5.0, 20.0),
                colors=("#ffffff", "#99f3ff", "#0080ff", "#ff00ff"))
RAIN = Style("rain", "Rain", kind="classes", breaks=(0.0, *PRECIPITATION_BREAKS),
             colors=("#ffffff", *PRECIPITATION_COLORS))
RAMP = Style("ramp", "Ramp", colormap="viridis")


def levels(style: Style, data_range: tuple[float, float],
           color_range: tuple[float, float] | None = None) -> list[float]:
    palette = palette_for(style, color_range, data_range)
    return contour_levels(style, palette, data_range[0]).tolist()


def test_contours_lie_on_the_class_breaks() -> None:
    assert levels(CLASSES, (-20.0, 40.0)) == [-10.0, 0.0, 5.0, 20.0]


def test_contours_follow_breaks_re_spread_by_colorscalerange() -> None:
    assert levels(CLASSES, (-20.0, 40.0), (0.0, 30.0)) == [0.0, 10.0, 20.0, 30.0]


def test_configured_levels_win() -> None:
    configured = Style("set", "Set", kind="classes", breaks=CLASSES.breaks,
                       colors=CLASSES.colors, contour_levels=(-5.0, 15.0))
    assert levels(configured, (-20.0, 40.0)) == [-5.0, 15.0]


def test_a_continuous_style_has_contours_at_round_values_of_its_range() -> None:
    assert levels(RAMP, (279.53, 301.2)) == [280, 282.5, 285, 287.5, 290, 292.5, 295,
                                             297.5, 300]


def test_no_zero_contour_where_the_lowest_break_is_zero() -> None:
    assert levels(RAIN, (-0.0001, 80.0)) == list(PRECIPITATION_BREAKS)


def test_no_zero_contour_where_the_data_are_never_negative() -> None:
    assert 0.0 not in levels(RAMP, (0.0, 100.0))
    assert 0.0 not in levels(CLASSES, (0.0, 100.0))
    assert 0.0 in levels(CLASSES, (-20.0, 40.0))  # a field that crosses zero keeps it


def ink(overlay: np.ndarray) -> np.ndarray:
    return overlay[..., 3] > 64


def test_contours_are_labelled_with_their_levels() -> None:
    """Labels are dark digits over a light halo on the lines: the labelled overlay has
    both where the plain one has nothing."""
    x = np.linspace(0.0, 100.0, 101)
    window = SourceWindow((np.add.outer(x, x) / 2).astype(np.float32), x, x)
    canvas = Canvas("EPSG:3857", (0.0, 0.0, 100.0, 100.0), 256, 256)
    marks = np.array([25.0, 50.0, 75.0])
    labelled = contour_overlay(window, canvas, marks)
    plain = ink(contour_overlay(window, canvas, marks, labels=False))
    added = ink(labelled) & ~plain
    light = labelled[..., :3].min(axis=-1) > 200
    assert (added & ~light).sum() > 30  # the digits of "25", "50", "75"
    assert (added & light).sum() > 30  # their halo


def horizontal(y: float, start: float = -50.0, end: float = 250.0) -> np.ndarray:
    return np.column_stack([np.linspace(start, end, 61), np.full(61, y)])


def test_each_level_is_labelled_once_per_cell_on_its_middle_column() -> None:
    """A 200-pixel canvas of 100 units: lattice cells of 256 px are 128 units wide, their
    middle columns at x = 64, 192 …"""
    canvas = Canvas("EPSG:3857", (0.0, 0.0, 100.0, 100.0), 200, 200)
    places = label_places([[horizontal(50.0), horizontal(60.0)],  # 60 is nearer the middle
                           [horizontal(75.0)],
                           [horizontal(5.0)],  # too near the cell's bottom
                           [horizontal(57.0)]],  # too near a more central label
                          canvas)
    assert [(level, x, y) for level, x, y, _ in places] == [(0, 64.0, 60.0), (1, 64.0, 75.0),
                                                            (0, 192.0, 60.0),
                                                            (1, 192.0, 75.0)]
    assert all(angle == 0 for *_, angle in places)
    steep = np.column_stack([np.linspace(100.0, 0.0, 50), np.linspace(100.0, 0.0, 50)])
    ((_, _, _, angle),) = label_places([[steep]], canvas)[:1]
    assert angle == 45  # upright, whichever way the line runs


def test_labels_do_not_depend_on_the_extent_drawn() -> None:
    """Two adjacent tiles and one map of both label the same places (no seams)."""
    lines = [[horizontal(y, -300.0, 600.0) for y in (40.0, 90.0, 130.0)],
             [np.column_stack([np.linspace(-300, 600, 200), np.linspace(0, 200, 200)])]]
    left = label_places(lines, Canvas("EPSG:3857", (0.0, 0.0, 128.0, 128.0), 256, 256))
    right = label_places(lines, Canvas("EPSG:3857", (128.0, 0.0, 256.0, 128.0), 256, 256))
    both = label_places(lines, Canvas("EPSG:3857", (0.0, 0.0, 256.0, 128.0), 512, 256))
    assert sorted(left) == sorted(right) == sorted(both)  # one lattice, wherever drawn
    assert {x for _, x, _, _ in both} >= {64.0, 192.0}


@pytest.mark.parametrize("shape", [(1, 5), (5, 1), (0, 0)])
def test_too_small_a_window_draws_nothing(shape: tuple[int, int]) -> None:
    window = SourceWindow(np.ones(shape, np.float32), np.arange(shape[1], dtype=float),
                          np.arange(shape[0], dtype=float))
    overlay = contour_overlay(window, Canvas("EPSG:3857", (0.0, 0.0, 4.0, 4.0), 8, 8),
                              np.array([1.0]))
    assert not overlay[..., 3].any()
