"""The compiled render loops give exactly the numpy results they replace."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from fewsmap.catalog.styles import Style
from fewsmap.render import kernels
from fewsmap.render.colour import palette_for
from fewsmap.render.regrid import Canvas, SourceWindow, regrid

SMOOTH = Style("t", "T", colormap="viridis")
CLASSES = Style("p", "P", kind="classes", breaks=(0.0, 1.0, 5.0, 10.0, 50.0),
                colors=("#ffffff", "#aaaaff", "#5555ff", "#0000ff", "#ff00ff"))
# Every kind of float32: ordinary, on and around thresholds, huge, tiny, ±inf, NaN.
FIELDS = hnp.arrays(np.float32, hnp.array_shapes(min_dims=1, max_dims=3, max_side=40),
                    elements=st.floats(width=32, allow_nan=True, allow_infinity=True))
RANGES = st.tuples(st.floats(-1e6, 1e6, width=32),
                   st.floats(float(np.float32(1e-3)), 1e6, width=32))


@settings(max_examples=300, deadline=None)
@given(FIELDS, RANGES)
def test_continuous_indices_equal_numpy(field: np.ndarray, low_span: tuple[float, float]
                                        ) -> None:
    low, span = low_span
    palette = palette_for(SMOOTH, (low, low + span), None)
    np.testing.assert_array_equal(palette.indices(field), palette.indices_numpy(field))


@settings(max_examples=300, deadline=None)
@given(FIELDS, st.one_of(st.none(), RANGES))
def test_class_indices_equal_numpy(field: np.ndarray,
                                   low_span: tuple[float, float] | None) -> None:
    value_range = None if low_span is None else (low_span[0], low_span[0] + low_span[1])
    palette = palette_for(CLASSES, value_range, None)
    np.testing.assert_array_equal(palette.indices(field), palette.indices_numpy(field))


@pytest.mark.parametrize("value_range", [(0.0, 1.0), (-40.0, 45.0), (273.1, 273.2)])
def test_every_level_and_both_ends_equal_numpy(value_range: tuple[float, float]) -> None:
    low, high = value_range
    span = high - low
    field = np.linspace(low - span / 10, high + span / 10, 200_001, dtype=np.float32)
    palette = palette_for(SMOOTH, value_range, None)
    indices = palette.indices(field)
    np.testing.assert_array_equal(indices, palette.indices_numpy(field))
    assert set(np.unique(indices).tolist()) == set(range(1, 256))


def test_values_on_the_breaks_take_their_class() -> None:
    field = np.array([[-0.5, 0.0, 0.999, 1.0, 5.0, 49.9, 50.0, 1e30, np.nan]], np.float32)
    palette = palette_for(CLASSES, None, None)
    assert palette.indices(field).tolist() == [[0, 1, 1, 2, 3, 4, 5, 5, 0]]


def test_strided_and_other_typed_fields_are_coloured_alike() -> None:
    field = np.random.default_rng(1).normal(0, 10, (64, 64)).astype(np.float32)
    palette = palette_for(SMOOTH, (-20.0, 20.0), None)
    view = field[::3, 1::2]
    np.testing.assert_array_equal(palette.indices(view), palette.indices_numpy(view))
    as64 = field.astype(np.float64)
    np.testing.assert_array_equal(palette.indices(as64), palette.indices(field))


@settings(max_examples=200, deadline=None)
@given(hnp.arrays(np.float32, st.tuples(st.integers(1, 30), st.integers(1, 30)),
                  elements=st.floats(width=32, allow_nan=True)),
       st.data())
def test_paint_equals_numpy_indexing(values: np.ndarray, data: st.DataObject) -> None:
    ny, nx = values.shape
    rows = np.asarray(data.draw(st.lists(st.integers(-1, ny - 1), min_size=1, max_size=50)))
    cols = np.asarray(data.draw(st.lists(st.integers(-1, nx - 1), min_size=1, max_size=50)))
    expected = values[np.clip(rows, 0, None)[:, None], np.clip(cols, 0, None)[None, :]]
    expected[(rows < 0)[:, None] | (cols < 0)[None, :]] = np.nan
    np.testing.assert_array_equal(kernels.paint(values, rows, cols), expected)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, ">f4"])
def test_zoomed_in_maps_paint_whatever_the_stored_type(dtype: str) -> None:
    values = np.arange(12, dtype=np.float32).reshape(3, 4)
    axis_x, axis_y = np.arange(4.0), np.arange(3.0)
    canvas = Canvas("EPSG:4326", (-0.5, -0.5, 3.5, 2.5), 8, 6)  # two pixels per cell
    field = regrid(SourceWindow(values.astype(dtype), axis_x, axis_y), canvas)
    assert field.dtype == np.float32
    np.testing.assert_array_equal(field, np.repeat(np.repeat(values[::-1], 2, 0), 2, 1))


def cell_means_numpy(values: np.ndarray, xs: np.ndarray, ys: np.ndarray, width: int,
                     height: int) -> np.ndarray:
    """`kernels.cell_means`' rule written plainly: each cell adds its value to every pixel
    of its cover (the one pixel at its break where the cover is empty, unless at the far
    edge); the mean of what each pixel got, NaN where nothing."""
    def cover(breaks: np.ndarray, k: int, pixels: int) -> range:
        low, high = sorted((int(breaks[k]), int(breaks[k + 1])))
        return range(low, high + 1 if low == high and high != pixels else high)

    total = np.zeros((height, width))
    count = np.zeros((height, width), dtype=int)
    for j in range(values.shape[0]):
        for i in range(values.shape[1]):
            if not np.isnan(values[j, i]):
                rows, cols = cover(ys, j, height), cover(xs, i, width)
                total[rows.start:rows.stop, cols.start:cols.stop] += values[j, i]
                count[rows.start:rows.stop, cols.start:cols.stop] += 1
    with np.errstate(invalid="ignore"):
        return (total / count).astype(np.float32)


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 12), st.integers(1, 12), st.integers(1, 20), st.integers(1, 20),
       st.data())
def test_cell_means_equal_each_cell_added_to_its_pixels(ny: int, nx: int, height: int,
                                                        width: int, data: st.DataObject
                                                        ) -> None:
    """Cells smaller and larger than pixels (a cell row spanning many pixel rows keeps
    several rows open at once), breaks clipped at both canvas edges, missing cells."""
    def breaks(cells: int, pixels: int) -> np.ndarray:
        drawn = data.draw(st.lists(st.integers(0, pixels), min_size=cells + 1,
                                   max_size=cells + 1))
        return np.asarray(sorted(drawn), dtype=np.int64)

    xs, ys = breaks(nx, width), breaks(ny, height)
    values = data.draw(hnp.arrays(np.float32, (ny, nx), elements=st.one_of(
        st.just(np.nan), st.floats(-100, 100, width=32))))
    np.testing.assert_allclose(kernels.cell_means(values, xs, ys, width, height),
                               cell_means_numpy(values, xs, ys, width, height),
                               rtol=1e-6, atol=1e-5)


def test_cell_means_refuse_rows_whose_breaks_descend() -> None:
    values = np.ones((2, 2), dtype=np.float32)
    xs = np.array([0, 1, 2], dtype=np.int64)
    with pytest.raises(ValueError, match="ascend"):
        kernels.cell_means(values, xs, np.array([2, 1, 0], dtype=np.int64), 2, 2)


@settings(max_examples=300, deadline=None)
@given(FIELDS, st.lists(st.one_of(st.floats(-1e6, 1e6), st.just(-np.inf), st.just(np.inf)),
                        max_size=40))
def test_class_of_each_value_counts_the_breaks_at_or_below_it(field: np.ndarray,
                                                               breaks: list[float]) -> None:
    """Any ascending breaks: repeated, clustered, a few or many, open-ended (±inf)."""
    lower = np.sort(np.asarray(breaks, dtype=np.float64))
    flat = field.ravel()
    expected = np.where(np.isfinite(flat), np.searchsorted(lower, flat, side="right"), 0)
    np.testing.assert_array_equal(kernels.quantise_breaks(flat, lower), expected)


@pytest.mark.parametrize(("low", "span"), [(0.0, 1.0), (-40.0, 85.0), (273.15, 1e-3),
                                         (1e6, 0.5), (3e4, 1e-9), (-1e-30, 2e-30)])
def test_values_at_and_beside_every_break_take_their_class(low: float, span: float) -> None:
    """Breaks of any width against their magnitude (wide ones answer most values from the
    table without a walk, narrow ones always walk): values on each break and a float32
    step either side of it, and a dense sweep, all counted as numpy counts them."""
    rng = np.random.default_rng(int(span * 1e3) % 97)
    lower = np.sort(np.r_[low, low + span, low + span * rng.random(30)]).astype(np.float64)
    on = lower.astype(np.float32)
    field = np.concatenate([on, np.nextafter(on, np.float32(np.inf)),
                            np.nextafter(on, np.float32(-np.inf)),
                            np.linspace(low - span, low + 2 * span, 100_000, dtype=np.float32)])
    expected = np.searchsorted(lower, field.astype(np.float64), side="right")
    np.testing.assert_array_equal(kernels.quantise_breaks(field, lower), expected)


def _spread(centre: float, width: float, steps: list[float]) -> list[float]:
    return [centre + width * step for step in steps]


def _with_next_float32(quantities: list[float]) -> list[float]:
    """An SLD "values" colour map's breaks: each float32 quantity and the next float32."""
    exact = np.asarray(quantities, dtype=np.float32)
    with np.errstate(over="ignore"):  # (the next after float32's largest: inf)
        after = np.nextafter(exact, np.float32(np.inf))
    return [*exact.tolist(), *after.tolist()]


# Up to 255 ascending breaks of every kind: anywhere in float64 (beyond float32, ±inf),
# clustered around any magnitude at any width (down to none), repeated, float32 pairs.
BREAKS = st.one_of(
    st.lists(st.floats(allow_nan=False), max_size=255),
    st.builds(_spread, st.floats(-1e38, 1e38), st.floats(0.0, 1e38),
              st.lists(st.floats(0.0, 1.0), max_size=255)),
    st.builds(_spread, st.floats(-1e6, 1e6), st.sampled_from([0.0, 1e-300, 1e-12, 1e-7, 1.0]),
              st.lists(st.sampled_from([0.0, 0.25, 0.5, 1.0]), max_size=255)),
    st.lists(st.sampled_from([-np.inf, -1e300, -3.5e38, -1.0, -0.0, 0.0, 1e-45, 1e-38, 0.1,
                              1.0, 3.4e38, 1e300, np.inf]), max_size=255),
    st.builds(_with_next_float32, st.lists(st.floats(width=32, allow_nan=False,
                                                     allow_infinity=False), max_size=127)),
)


@settings(max_examples=300, deadline=None)
@given(BREAKS, hnp.arrays(np.float32, st.integers(0, 100),
                          elements=st.floats(width=32, allow_nan=True, allow_infinity=True)),
       st.integers(0, 3 * kernels.BREAK_BLOCK), st.integers(0, 2**32 - 1))
def test_values_on_beside_and_between_any_breaks_count_as_numpy_counts(
        breaks: list[float], field: np.ndarray, extra: int, seed: int) -> None:
    """Values on every break, a float32 step either side of it and anywhere (NaN, ±inf),
    shuffled over several blocks, classed as numpy's search classes them."""
    lower = np.sort(np.asarray(breaks, dtype=np.float64))
    with np.errstate(over="ignore"):  # breaks beyond float32, and steps beyond its largest
        on = lower.astype(np.float32)
        values = np.concatenate([on, np.nextafter(on, np.float32(np.inf)),
                                 np.nextafter(on, np.float32(-np.inf)), field])
    flat = np.random.default_rng(seed).permutation(np.resize(values, values.size + extra))
    expected = np.where(np.isfinite(flat), np.searchsorted(lower, flat.astype(np.float64),
                                                           side="right"), 0)
    np.testing.assert_array_equal(kernels.quantise_breaks(flat, lower), expected)


@pytest.mark.parametrize("descending", [False, True])
@pytest.mark.parametrize("uneven", [False, True])
def test_fractional_indices_equal_numpy_interpolation(descending: bool, uneven: bool) -> None:
    """Positions along an axis (evenly spaced or not, either direction) to fractional
    indices: ``np.interp`` between centres, extended with the outer spacing beyond them,
    NaN for NaN."""
    rng = np.random.default_rng(int(descending) * 2 + int(uneven))
    steps = rng.uniform(0.5, 3.0, 30) if uneven else np.full(30, 2.5)
    centres = np.concatenate([[100.0], 100.0 + np.cumsum(steps)])
    if descending:
        centres = centres[::-1].copy()
    at = rng.uniform(centres.min() - 20, centres.max() + 20, (7, 9))
    at[0, :3] = centres[:3]  # exactly on centres
    at[1, 1] = np.nan
    index = np.arange(centres.size, dtype=np.float64)
    ascending, order = (centres[::-1], index[::-1]) if descending else (centres, index)
    expected = np.interp(at, ascending, order)
    for beyond, end, inner in ((at < ascending[0], 0, 1), (at > ascending[-1], -1, -2)):
        slope = (order[end] - order[inner]) / (ascending[end] - ascending[inner])
        expected[beyond] = order[end] + (at[beyond] - ascending[end]) * slope
    found = kernels.fractional_index(centres, at)
    np.testing.assert_allclose(found, expected, rtol=0, atol=1e-9)
    assert np.isnan(found[1, 1]) and np.isnan(expected[1, 1])


def test_a_lattice_point_between_pixels_is_interpolated_where_it_lies() -> None:
    # Column 2j at pixel j, known at pixels 0, 1.5 and 3 (a refined lattice's midpoint of
    # a last, odd span lies between two pixels): pixel 1 shows column 2, not 3.
    lattice_j = np.array([0.0, 1.5, 3.0])
    values = np.arange(8, dtype=np.float32).reshape(1, 8)
    rows, cols = np.zeros((2, 3)), np.tile(2 * lattice_j, (2, 1))
    out = kernels.gather_lattice(values, rows, cols, np.array([0.0, 1.0]), lattice_j, 2, 4)
    assert out.tolist() == [[0.0, 2.0, 4.0, 6.0]] * 2


def test_lattice_error_is_the_largest_miss_at_the_midpoints_in_pixels() -> None:
    at = np.arange(5.0)  # a lattice every 2 pixels with its midpoints
    cols = np.tile(3 * at, (5, 1))  # 3 cells a pixel, affine: no error
    rows = np.tile(3 * at[:, None], (1, 5))
    assert kernels.lattice_error(rows, cols, at, at) == 0.0
    bent = cols.copy()
    bent[2, 1] += 0.75  # a quarter of a pixel off at one midpoint
    assert kernels.lattice_error(rows, bent, at, at) == pytest.approx(0.25)
    bent[0, 0] = np.nan
    assert kernels.lattice_error(rows, bent, at, at) == np.inf
