"""Palettes: values to indices to colours, for continuous and class-break styles."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fewsmap.catalog.styles import Style
from fewsmap.errors import StyleNotDefined
from fewsmap.render.colour import TRANSPARENT, palette_for

CLASSES = Style("rain", "Rain", kind="classes", breaks=(0.1, 1.0, 5.0),
                colors=("#ffffff", "#00ff00", "#ff0000"), units="mm")
RAMP = Style("t", "T", colormap="viridis")


def test_class_breaks_colour_from_their_lower_value_and_hide_below_and_missing() -> None:
    palette = palette_for(CLASSES, None, (0.0, 100.0))  # the run's range must not re-spread
    values = np.array([np.nan, 0.0, 0.1, 0.99, 1.0, 4.9, 5.0, 1e6])
    assert palette.indices(values).tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    assert palette.hex_colors() == ["#ffffff", "#00ff00", "#ff0000"]
    rgba = palette.rgba(palette.indices(values))
    assert rgba[0, 3] == 0 and rgba[2].tolist() == [255, 255, 255, 255]


def test_colorscalerange_re_spreads_class_breaks_evenly_as_fews() -> None:
    palette = palette_for(CLASSES, (30.0, 50.0), None)
    assert palette.lower_values.tolist() == [30.0, 40.0, 50.0]


def test_a_continuous_style_needs_a_range() -> None:
    with pytest.raises(StyleNotDefined, match="needs a colour range"):
        palette_for(RAMP, None, None)


@given(st.lists(st.floats(allow_nan=True, allow_infinity=False, width=32), max_size=50),
       st.floats(-1e6, 1e6), st.floats(1e-3, 1e6))
def test_continuous_indices_are_ordered_and_clamped(values: list[float], low: float,
                                                    span: float) -> None:
    palette = palette_for(RAMP, (low, low + span), None)
    array = np.asarray(values, dtype=np.float32)
    indices = palette.indices(array)
    finite = np.isfinite(array)
    assert (indices[~finite] == TRANSPARENT).all()
    assert ((indices[finite] >= 1) & (indices[finite] <= 255)).all()
    order = np.argsort(array[finite], kind="stable")
    assert (np.diff(indices[finite][order].astype(int)) >= 0).all()  # monotonic in value


def test_a_constant_field_still_gets_a_colour() -> None:
    palette = palette_for(RAMP, None, (5.0, 5.0))
    assert palette.indices(np.array([5.0]))[0] != TRANSPARENT
