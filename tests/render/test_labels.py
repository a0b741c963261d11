"""Legend and contour labels: round values, one readable fixed-point format per legend."""

from __future__ import annotations

import numpy as np
import pytest

from fewsmap.render.labels import format_labels, round_levels


@pytest.mark.parametrize(("low", "high", "labels"), [
    (279.53, 301.2, ["280", "282.5", "285", "287.5", "290", "292.5", "295", "297.5", "300"]),
    (10012.0, 10420.0, ["10050", "10100", "10150", "10200", "10250", "10300", "10350",
                        "10400"]),  # geopotential: never 1.018e+04
    (-20.0, 40.0, ["-20", "-10", "0", "10", "20", "30", "40"]),
    (5.0, 78.0, ["10", "20", "30", "40", "50", "60", "70"]),  # precipitable water
    (0.1, 0.4, ["0.1", "0.15", "0.2", "0.25", "0.3", "0.35", "0.4"]),
])
def test_a_colour_range_is_labelled_at_round_values(low: float, high: float,
                                                    labels: list[str]) -> None:
    levels = round_levels(low, high)
    assert format_labels(levels) == labels
    assert levels.size <= 11 and (levels >= low).all() and (levels <= high).all()


@pytest.mark.parametrize(("values", "labels"), [
    ([0.1, 0.5, 1, 2, 5, 10, 20, 50, 100], ["0.1", "0.5", "1", "2", "5", "10", "20", "50",
                                            "100"]),
    (np.linspace(30, 50, 8), ["30", "32.9", "35.7", "38.6", "41.4", "44.3", "47.1", "50"]),
    ([0.25, 0.5, 0.75], ["0.25", "0.5", "0.75"]),
    ([-0.0001, 0.0, 0.0001], ["-0.0001", "0", "0.0001"]),
    ([101325.0], ["101325"]),
    ([1e-5, 2e-5], ["0.00001", "0.00002"]),
])
def test_labels_share_one_fixed_point_format(values: list[float], labels: list[str]) -> None:
    assert format_labels(values) == labels
