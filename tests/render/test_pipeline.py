"""The pipeline on a real store: one map, and temporal aggregates of several steps."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from fewsmap.catalog.styles import Style
from fewsmap.render.pipeline import MapSpec, _reduce, render_map
from fewsmap.render.regrid import Canvas, SourceWindow
from fewsmap.store.cube import ForecastStore
from tests.synthetic import lonlat_store

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

