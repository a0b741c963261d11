"""The pipeline on a real store: one map, and temporal aggregates of several steps."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from fewsmap.catalog.styles import AUTO_RANGE, Style
from fewsmap.render.pipeline import (
    MapSpec,
    _reduce,
    automatic_range,
    render_map,
    round_range,
)
from fewsmap.render.regrid import Canvas, SourceWindow
from fewsmap.store.cube import ForecastStore
from fewsmap.store.retention import RetentionPolicy, prune
from tests.catalog.test_styles import constant_halves
from tests.synthetic import T0, lonlat_store

RAMP = Style("ramp", "ramp", colormap="viridis", value_range=(0.0, 10.0))


def test_reducers_ignore_missing_values_and_keep_all_missing_cells_missing() -> None:
    axis = np.arange(3.0)
    a = SourceWindow(np.array([[1, np.nan, np.nan]] * 3, np.float32), axis, axis)
    b = SourceWindow(np.array([[3, 4, np.nan]] * 3, np.float32), axis, axis)
    expected = {"sum": [4, 4], "mean": [2, 4], "max": [3, 4], "min": [1, 4]}
    for reducer, (first, second) in expected.items():
        reduced = _reduce([a, b], reducer)
        assert reduced is not None
        assert reduced.values[0, :2].tolist() == [first, second]
        assert np.isnan(reduced.values[0, 2])


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> ForecastStore:
    path = lonlat_store(tmp_path_factory.mktemp("pipe") / "grid.zarr")
    return ForecastStore(path)


def indices(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)))


def test_an_aggregate_of_equal_steps_is_their_sum_or_mean(store: ForecastStore) -> None:
    run = store.runs[0]
    canvas = Canvas("OGC:CRS84", (-20.0, 30.0, 40.0, 60.0), 60, 30)
    style = Style("ramp", "ramp", colormap="viridis", value_range=(0.0, 200.0))
    base = MapSpec(store, ("lat",), run, run.valid_times[0], (), canvas, style)
    both = tuple(run.valid_times[:2])
    single = indices(render_map(base))
    mean = indices(render_map(MapSpec(store, ("lat",), run, both[0], (), canvas, style,
                                      aggregate=both, reducer="mean")))
    total = indices(render_map(MapSpec(store, ("lat",), run, both[0], (), canvas, style,
                                       aggregate=both, reducer="sum")))
    assert (mean == single).all()  # both steps hold the same field
    drawn = single > 0
    # 255 colours over 0..200: latitude L is index ~1.275 L, its double ~2.55 L.
    assert np.abs(total[drawn] - np.clip(2 * single[drawn].astype(int), 1, 255)).max() <= 2


def test_render_is_deterministic(store: ForecastStore) -> None:
    run = store.runs[0]
    spec = MapSpec(store, ("lon",), run, run.valid_times[0], (),
                   Canvas("EPSG:3857", (0.0, 4e6, 2e6, 6e6), 64, 64), RAMP, show_contours=True)
    assert render_map(spec) == render_map(spec)



# One colour scale across runs (issue #16): the automatic range is the smallest range of
# round numbers holding every run, and a run inside it leaves it as it is.
# Fields are float32: a span below a millionth of the values is a constant field.
finite_ranges = st.tuples(st.floats(-1e6, 1e6), st.floats(1e-6, 1e6)).map(
    lambda start_span: (start_span[0], start_span[0] + start_span[1]
                        * max(1.0, abs(start_span[0]))))


@settings(max_examples=500)
@given(finite_ranges, st.floats(0, 1), st.floats(0, 1))
def test_a_run_within_the_rounded_range_leaves_it_unchanged(
        raw: tuple[float, float], below: float, above: float) -> None:
    low, high = round_range(*raw)
    assert low <= raw[0] and raw[1] <= high
    assert round_range(low, high) == (low, high)  # rounding a rounded range keeps it
    # a new run reaching anywhere inside the rounded range, up to its very ends
    widened = (raw[0] - below * (raw[0] - low), raw[1] + above * (high - raw[1]))
    assert round_range(*widened) == (low, high)


@pytest.mark.parametrize(("raw", "rounded"), [
    ((5.85, 31.65), (5.0, 35.0)),  # legends read 5 … 35 °C
    ((2.5, 12.4), (2.5, 12.5)),  # 2 … 13 before, which a run of 2 … 13 widened to 2 … 14
    ((2.0, 13.0), (2.0, 13.0)),  # and now keeps
    ((0.0, 7.3), (0.0, 7.5)),
    ((960.1, 1043.2), (960.0, 1045.0)),
    ((-40.0, 70.0), (-40.0, 70.0)),
    ((-0.0123, 0.0456), (-0.015, 0.05)),
    ((3.0, 3.0), (3.0, 3.0)),  # a constant field is left to the palette
])
def test_automatic_ranges_are_round(raw: tuple[float, float],
                                    rounded: tuple[float, float]) -> None:
    assert round_range(*raw) == rounded


def runs_store(path: Path, ranges: list[tuple[float, float]]) -> ForecastStore:
    """A store whose run k holds a field of ``ranges[k]``'s two values (west, east)."""
    for k, (low, high) in enumerate(ranges):
        constant_halves(path, "x", {"units": "furlong"}, low, high,
                        T0 + np.timedelta64(6 * k, "h"))
    return ForecastStore(path)


def test_the_range_of_a_layer_is_stable_as_runs_arrive_within_it(tmp_path: Path) -> None:
    unstyled = Style("plain", "plain")
    first = runs_store(tmp_path / "a.zarr", [(2.5, 12.4)])
    before = automatic_range(first, first.runs[-1], ("x",), unstyled)
    assert before is not None
    # a second run reaching both ends of that range (with 1-2-5 steps: 2 … 13, then 2 … 14)
    within = runs_store(tmp_path / "b.zarr", [(2.5, 12.4), before])
    assert automatic_range(within, within.runs[-1], ("x",), unstyled) == before
    assert automatic_range(within, within.runs[0], ("x",), unstyled) == before
    # a third beyond it widens it by whole steps, for every run
    beyond = runs_store(tmp_path / "c.zarr", [(2.5, 12.4), before, (-1.0, 13.2)])
    assert automatic_range(beyond, beyond.runs[0], ("x",), unstyled) == (-1.0, 14.0)
    # COLORSCALERANGE=auto: the drawn run's own range, rounded alike
    assert automatic_range(beyond, beyond.runs[0], ("x",), unstyled, AUTO_RANGE) == before


def test_a_configured_range_pins_the_automatic_range(tmp_path: Path) -> None:
    store = runs_store(tmp_path / "a.zarr", [(2.5, 12.4), (-40.0, 70.0)])
    pinned = Style("pinned", "pinned", value_range=(0.0, 20.0))
    for run in store.runs:
        assert automatic_range(store, run, ("x",), pinned) == (0.0, 20.0)
    # COLORSCALERANGE=auto still asks for the drawn run's own range, as ncWMS does
    assert automatic_range(store, store.runs[1], ("x",), pinned, AUTO_RANGE) == (-40.0, 70.0)


def test_retention_dropping_the_extreme_run_narrows_the_range(tmp_path: Path) -> None:
    """The range describes the runs the service holds, not runs that are gone."""
    plain = Style("plain", "plain")
    path = tmp_path / "a.zarr"
    runs_store(path, [(-40.0, 70.0), (2.5, 12.4), (2.0, 13.0)])
    held = ForecastStore(path)
    assert automatic_range(held, held.runs[-1], ("x",), plain) == (-40.0, 70.0)
    prune(path, RetentionPolicy(keep_runs=2))
    kept = ForecastStore(path)
    assert automatic_range(kept, kept.runs[-1], ("x",), plain) == (2.0, 13.0)
