"""One tolerance decides whether an axis is evenly spaced (issue #13, item 17)."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from fewsmap.store.axes import (
    EVEN_TOLERANCE_CELLS,
    cell_spacings,
    is_evenly_spaced,
    on_regular_axis,
)

spacings = st.floats(1e-3, 1e5)
origins = st.floats(-1e7, 1e7)


@given(origins, spacings, st.integers(3, 500), st.integers(0, 2**32 - 1))
def test_float32_axes_are_evenly_spaced(origin: float, spacing: float, size: int,
                                        seed: int) -> None:
    axis = origin + spacing * np.arange(size)
    stored = axis.astype("float32").astype("float64")
    # The regular axis runs through the first and last centre, which may be off too: a
    # centre can end up twice its own error from it.
    if np.abs(stored - axis).max() <= 0.45 * EVEN_TOLERANCE_CELLS * spacing:
        assert is_evenly_spaced(stored)
    jitter = np.random.default_rng(seed).uniform(-1, 1, size) * 0.45 * EVEN_TOLERANCE_CELLS
    assert is_evenly_spaced(axis + jitter * spacing)


@given(origins, spacings, st.integers(3, 500), st.integers(0, 10**6))
def test_a_cell_off_by_more_than_the_tolerance_is_uneven(origin: float, spacing: float,
                                                         size: int, at: int) -> None:
    axis = origin + spacing * np.arange(size)
    axis[at % (size - 2) + 1] += 1.5 * EVEN_TOLERANCE_CELLS * spacing  # an inner centre
    assert not is_evenly_spaced(axis)


def test_gaussian_latitudes_are_uneven_but_a_mid_latitude_band_is_even() -> None:
    for n in (48, 640):
        sines, _ = np.polynomial.legendre.leggauss(2 * n)
        latitudes = np.degrees(np.arcsin(sines))
        assert not is_evenly_spaced(latitudes)
        assert is_evenly_spaced(latitudes[n // 2:n // 2 + 20])


def test_positions_on_a_rebuilt_axis() -> None:
    x = 5000.0 + 2500.0 * np.arange(4)
    assert on_regular_axis(np.tile(x, (3, 1)), 5000.0, 2500.0)
    assert not on_regular_axis(np.tile(x, (3, 1)), 5100.0, 2500.0)
    assert not on_regular_axis(np.array([np.nan, 7500.0]), 5000.0, 2500.0)
    assert not on_regular_axis(x, 5000.0, 0.0)


def test_an_axis_of_one_cell_takes_the_other_axis_spacing() -> None:
    assert cell_spacings(np.array([52.0]), np.arange(3.0, 8.0, 0.5)) == (0.5, 0.5)
    assert cell_spacings(np.arange(60.0, 50.0, -2.0), np.array([5.0])) == (2.0, 2.0)
    assert cell_spacings(np.array([52.0]), np.array([5.0])) == (1.0, 1.0)
    assert cell_spacings(np.arange(0.0, 30.0, 10.0), np.arange(0.0, 10.0, 2.5)) == (10.0, 2.5)
