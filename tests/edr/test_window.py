"""Cells of a region: the even-odd rule, longitude wrapping (fewsmap/edr/window.py)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from matplotlib.path import Path as PolygonPath

from fewsmap.edr.window import Region, even_odd, shift_longitudes, wrap_longitudes

vertex = st.tuples(st.integers(-50, 50), st.integers(-50, 50))


@settings(max_examples=60, deadline=None)
@given(st.lists(vertex, min_size=3, max_size=9))
def test_even_odd_agrees_with_matplotlib(vertices: list[tuple[int, int]]) -> None:
    ring = np.array([*vertices, vertices[0]], dtype="float64")
    # Irrational offsets from the integer vertices: no centre lies on an edge, where the
    # two rules may differ.
    x, y = np.meshgrid(np.arange(-55.0, 56.0) + np.sqrt(2) / 10,
                       np.arange(-55.0, 56.0) + np.sqrt(3) / 10)
    expected = PolygonPath(ring, closed=True).contains_points(
        np.column_stack([x.ravel(), y.ravel()])).reshape(x.shape)
    np.testing.assert_array_equal(even_odd(x, y, (ring,)), expected)


def test_a_hole_is_outside() -> None:
    outer = np.array([[0, 0], [10, 0], [10, 10], [0, 10], [0, 0]], dtype="float64")
    hole = np.array([[4, 4], [6, 4], [6, 6], [4, 6], [4, 4]], dtype="float64")
    inside = even_odd(np.array([1.0, 5.0, 11.0]), np.array([1.0, 5.0, 5.0]), (outer, hole))
    assert inside.tolist() == [True, False, False]


def test_longitudes_move_by_whole_turns_only_when_needed() -> None:
    lon = np.array([-125.25, 0.0, 175.0, 185.0, 350.0, 359.5])
    np.testing.assert_array_equal(shift_longitudes(lon, -130.0), [-125.25, 0, 175, 185, -10,
                                                                  -0.5])
    np.testing.assert_array_equal(shift_longitudes(lon, 170.0), [234.75, 360, 175, 185, 350,
                                                                 359.5])
    np.testing.assert_array_equal(wrap_longitudes(np.array([190.0, -180.0, 359.5])),
                                  [-170.0, -180.0, -0.5])


def test_a_box_contains_centres_on_its_edges_and_across_180() -> None:
    box = Region.box(170.0, -10.0, -170.0, 10.0)
    lon = np.array([170.0, 180.0, -175.0, -170.0, -169.0, 0.0])
    lat = np.array([10.0, 0.0, -10.0, 0.0, 0.0, 0.0])
    assert box.contains(lon, lat).tolist() == [True, True, True, True, False, False]
