"""Cells of a region: polygons, their union and validity, longitude wrapping
(fewsmap/edr/window.py)."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from matplotlib.path import Path as PolygonPath

from fewsmap.edr.window import Region, shift_longitudes, wrap_longitudes
from fewsmap.errors import InvalidParameterValue

# Radii at distinct fractions of a turn: sorted by angle they make a simple polygon.
spokes = st.lists(st.tuples(st.floats(0.0, 1.0, exclude_max=True), st.floats(5.0, 50.0)),
                  min_size=3, max_size=12, unique_by=lambda spoke: round(spoke[0], 3))
# Irrational offsets from the grid: no centre lies on an edge, where rules may differ.
X, Y = np.meshgrid(np.arange(-55.0, 56.0) + np.sqrt(2) / 10,
                   np.arange(-55.0, 56.0) + np.sqrt(3) / 10)


def star(centre: tuple[float, float], spokes: list[tuple[float, float]]) -> np.ndarray:
    turns, radii = np.array(sorted(spokes)).T
    ring = np.column_stack([centre[0] + radii * np.cos(2 * np.pi * turns),
                            centre[1] + radii * np.sin(2 * np.pi * turns)])
    return np.vstack([ring, ring[:1]])


def matplotlib_inside(ring: np.ndarray) -> np.ndarray:
    points = np.column_stack([X.ravel(), Y.ravel()])
    return PolygonPath(ring, closed=True).contains_points(points).reshape(X.shape)


@settings(max_examples=60, deadline=None)
@given(spokes, spokes)
def test_polygon_cells_agree_with_matplotlib_and_parts_unite(
        first: list[tuple[float, float]], second: list[tuple[float, float]]) -> None:
    a, b = star((-10.0, 0.0), first), star((10.0, 5.0), second)
    assume(shapely.Polygon(a).is_valid and shapely.Polygon(b).is_valid)
    single = Region.polygon(shapely.Polygon(a))
    np.testing.assert_array_equal(single.contains(X, Y), matplotlib_inside(a))
    # Issue #13 item 14: overlapping parts cover their union (the even-odd rule cancelled it).
    both = Region.polygon(shapely.MultiPolygon([shapely.Polygon(a), shapely.Polygon(b)]))
    np.testing.assert_array_equal(both.contains(X, Y), matplotlib_inside(a) | matplotlib_inside(b))


def test_a_hole_is_outside_unless_another_part_fills_it() -> None:
    outer = np.array([[0, 0], [10, 0], [10, 10], [0, 10], [0, 0]], dtype="float64")
    hole = np.array([[4, 4], [6, 4], [6, 6], [4, 6], [4, 4]], dtype="float64")
    lon, lat = np.array([1.0, 5.0, 11.0]), np.array([1.0, 5.0, 5.0])
    holed = shapely.Polygon(outer, [hole])
    assert Region.polygon(holed).contains(lon, lat).tolist() == [True, False, False]
    filled = Region.polygon(shapely.MultiPolygon([holed, shapely.Polygon(hole)]))
    assert filled.contains(lon, lat).tolist() == [True, True, False]


def test_a_bow_tie_is_refused() -> None:
    bow_tie = np.array([[0, 0], [10, 10], [10, 0], [0, 10], [0, 0]], dtype="float64")
    with pytest.raises(InvalidParameterValue, match="Self-intersection at 5 5"):
        Region.polygon(shapely.Polygon(bow_tie))


def test_centres_on_an_edge_are_inside_as_for_boxes() -> None:
    square = np.array([[0, 0], [10, 0], [10, 10], [0, 10], [0, 0]], dtype="float64")
    polygon = Region.polygon(shapely.Polygon(square))
    lon, lat = np.array([0.0, 10.0, 5.0, 10.5]), np.array([5.0, 10.0, 0.0, 5.0])
    assert polygon.contains(lon, lat).tolist() == [True, True, True, False]
    assert Region.box(0, 0, 10, 10).contains(lon, lat).tolist() == [True, True, True, False]


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
