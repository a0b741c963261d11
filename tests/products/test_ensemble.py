"""Ensemble statistics: by hand, as numpy's nan-functions, in bounded and cancellable reads."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from hypothesis import given
from hypothesis import strategies as st

from fewsmap.cancel import CancelToken
from fewsmap.errors import InvalidDimensionValue, RenderCancelled
from fewsmap.products import ensemble
from fewsmap.products.ensemble import (
    EnsembleStatistic,
    MemberStatistic,
    parse_statistic,
    read_window,
    reduce_selected,
)
from fewsmap.store.cube import ForecastStore
from fewsmap.store.run import RunData, SourceFile
from fewsmap.store.writer import append_run
from tests.synthetic import T0, lonlat_grid

NAN = np.nan
# Three members at four cells: all present; one missing; one member only; none.
MEMBERS = np.array([[1.0, 2.0, NAN, NAN],
                    [4.0, NAN, NAN, NAN],
                    [7.0, 6.0, 5.0, NAN]], dtype=np.float32)


def statistic(label: str) -> EnsembleStatistic:
    found = parse_statistic(label)
    assert found is not None
    return found


@pytest.mark.parametrize(("label", "expected"), [
    ("mean", [4.0, 4.0, 5.0, NAN]),
    ("median", [4.0, 4.0, 5.0, NAN]),
    ("min", [1.0, 2.0, 5.0, NAN]),
    ("max", [7.0, 6.0, 5.0, NAN]),
    ("std", [np.sqrt(6.0), 2.0, 0.0, NAN]),
    ("p25", [2.5, 3.0, 5.0, NAN]),  # linear: 1 + (4 - 1) * 0.5; 2 + (6 - 2) * 0.25
    ("p90", [6.4, 5.6, 5.0, NAN]),
    ("above:4", [100 / 3, 50.0, 100.0, NAN]),  # strictly above; of the members with data
    ("below:4", [100 / 3, 50.0, 0.0, NAN]),
    ("above:-1e9", [100.0, 100.0, 100.0, NAN]),
])
def test_statistics_of_a_small_ensemble_by_hand(label: str, expected: list[float]) -> None:
    got = statistic(label).reduce(MEMBERS, axis=0)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, np.array(expected, dtype=np.float32), rtol=1e-6)


def ragged_members(seed: int, shape: tuple[int, ...] = (51, 40, 37)) -> np.ndarray:
    """Gust-like members with a fifth of the values missing, a cell missing in every member
    and cells holding one member only."""
    rng = np.random.default_rng(seed)
    values = rng.gamma(2.0, 4.0, size=shape).astype(np.float32)
    values[rng.random(shape) < 0.2] = np.nan
    values[:, 0, 0] = np.nan
    values[1:, 1, :4] = np.nan
    return values


NUMPY = {
    "mean": lambda v: np.nanmean(v, axis=0),
    "median": lambda v: np.nanmedian(v, axis=0),
    "min": lambda v: np.nanmin(v, axis=0),
    "max": lambda v: np.nanmax(v, axis=0),
    "std": lambda v: np.nanstd(v, axis=0),
    "p1": lambda v: np.nanpercentile(v, 1, axis=0),
    "p37": lambda v: np.nanpercentile(v, 37, axis=0),
    "p90": lambda v: np.nanpercentile(v, 90, axis=0),
    "p99": lambda v: np.nanpercentile(v, 99, axis=0),
}


@pytest.mark.filterwarnings("ignore:All-NaN slice:RuntimeWarning")
@pytest.mark.filterwarnings("ignore:Mean of empty slice:RuntimeWarning")
@pytest.mark.filterwarnings("ignore:Degrees of freedom <= 0:RuntimeWarning")
@pytest.mark.parametrize("label", list(NUMPY))
@pytest.mark.parametrize("seed", [0, 1])
def test_each_statistic_equals_numpys_nan_function_exactly(label: str, seed: int) -> None:
    values = ragged_members(seed)
    expected = NUMPY[label](values).astype(np.float32)
    np.testing.assert_array_equal(statistic(label).reduce(values, axis=0), expected)
    every_cell = values[:, 2:, 1:]  # missing members, but every cell holds some
    assert (~np.isnan(every_cell)).any(axis=0).all()
    np.testing.assert_array_equal(statistic(label).reduce(every_cell, axis=0),
                                  NUMPY[label](every_cell).astype(np.float32))
    full = np.nan_to_num(values, nan=3.0)  # every member present: numpy's fast path
    np.testing.assert_array_equal(statistic(label).reduce(full, axis=0),
                                  NUMPY[label](full).astype(np.float32))
    sea = full.copy()  # missing in every member (sea), in some (a few cells), in none
    sea[:, :6] = np.nan
    sea[::3, 10:12] = np.nan
    np.testing.assert_array_equal(statistic(label).reduce(sea, axis=0),
                                  NUMPY[label](sea).astype(np.float32))


def test_a_probability_counts_only_members_with_a_value() -> None:
    values = ragged_members(2)
    held = (~np.isnan(values)).sum(axis=0)
    above = (values > 8.0).sum(axis=0)
    expected = np.where(held > 0, 100.0 * above / np.maximum(held, 1), np.nan)
    np.testing.assert_array_equal(statistic("above:8").reduce(values, axis=0),
                                  expected.astype(np.float32))


def test_the_member_axis_may_be_any_axis() -> None:
    values = ragged_members(3, (4, 51, 6, 5))
    got = statistic("p75").reduce(values, axis=1)
    for step in range(4):
        np.testing.assert_array_equal(got[step], statistic("p75").reduce(values[step], 0))


@pytest.mark.parametrize(("text", "expected"), [
    ("mean", EnsembleStatistic("mean")), ("MEDIAN", EnsembleStatistic("median")),
    (" std ", EnsembleStatistic("std")), ("p5", EnsembleStatistic("percentile", 5.0)),
    ("p99", EnsembleStatistic("percentile", 99.0)),
    ("above:20", EnsembleStatistic("above", 20.0)),
    ("below:-2.5", EnsembleStatistic("below", -2.5)),
    ("above:1e1", EnsembleStatistic("above", 10.0)),
    ("3", None), ("-1", None), ("7.0", None),
])
def test_statistics_parse(text: str, expected: EnsembleStatistic | None) -> None:
    assert parse_statistic(text) == expected


@pytest.mark.parametrize("text", ["p0", "p100", "p", "p-5", "p5.5", "above:", "above:x",
                                  "above:nan", "above:inf", "below:1e40", "average", "mean:2",
                                  "above20", "ens_mean"])
def test_malformed_statistics_are_refused(text: str) -> None:
    with pytest.raises(InvalidDimensionValue, match="ensemble member"):
        parse_statistic(text)


def test_labels_name_what_parses_back() -> None:
    for text in ("mean", "p7", "above:12.5", "below:-3", "above:12.345678", "below:1e+30"):
        assert statistic(text).label == text
        assert parse_statistic(statistic(text).label) == statistic(text)


def test_colour_ranges() -> None:
    assert statistic("above:3").value_range((250.0, 300.0)) == (0.0, 100.0)
    assert statistic("std").value_range((250.0, 300.0)) == (0.0, 25.0)
    assert statistic("p90").value_range((250.0, 300.0)) == (250.0, 300.0)
    assert statistic("below:3").units("K") == "%" and statistic("mean").units("K") == "K"


def test_reduce_selected_keeps_the_shape_of_one_member() -> None:
    values = ragged_members(4, (5, 51, 1, 1))  # times × members × cell
    chosen = MemberStatistic(statistic("mean"), tuple(range(51)))
    reduced = reduce_selected(values, [chosen], 1)
    assert reduced.shape == (5, 1, 1, 1)
    np.testing.assert_array_equal(reduced[:, 0], statistic("mean").reduce(values, 1))
    assert reduce_selected(values, [3], 1) is values  # a member index: nothing to reduce


@pytest.fixture(scope="module")
def members_store(tmp_path_factory: pytest.TempPathFactory) -> tuple[ForecastStore, np.ndarray]:
    """A cube of 51 members (one step) on a 30 × 40 grid, with missing values."""
    values = ragged_members(5, (1, 51, 30, 40))
    grid = lonlat_grid(np.linspace(60.0, 31.0, 30), np.linspace(-10.0, 29.0, 40))
    field = xr.DataArray(values, dims=("step", "realization", *grid.dims), coords={
        "step": np.array([0], "timedelta64[ns]"), "realization": np.arange(51)},
        attrs={"units": "m s-1"})
    path = Path(tmp_path_factory.mktemp("members")) / "members.zarr"
    append_run(path, RunData(T0, {"gust": (field,)}, grid,
                             (SourceFile("synthetic", "0" * 64, 0),), "synthetic"),
               progress=False)
    return ForecastStore(path), values[0]


@pytest.mark.parametrize("label", ["mean", "min", "max", "above:9", "below:3.5", "std", "p37",
                                   "median"])
def test_a_window_of_a_statistic_equals_it_over_the_stacked_members(
        members_store: tuple[ForecastStore, np.ndarray], label: str) -> None:
    """Means, extremes and probabilities are accumulated member by member; the others
    reduce the stack: both equal numpy's nan-functions over the stack exactly."""
    store, values = members_store
    rows, cols = np.arange(29, -1, -1), np.arange(40)
    chosen = MemberStatistic(statistic(label), tuple(range(51)))
    got = read_window(store, "gust", (0, 0, chosen), rows, cols)
    stacked = values[:, rows]
    np.testing.assert_array_equal(got, statistic(label).reduce(stacked, 0))
    if label in NUMPY:
        np.testing.assert_array_equal(got, NUMPY[label](stacked).astype(np.float32))


def test_a_window_read_in_bands_equals_one_read(members_store: tuple[ForecastStore, np.ndarray],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    store, values = members_store
    rows, cols = np.arange(29, 2, -1), np.arange(5, 38)  # north-up order, as maps read
    chosen = MemberStatistic(statistic("p90"), tuple(range(51)))
    whole = read_window(store, "gust", (0, 0, chosen), rows, cols)
    np.testing.assert_array_equal(whole, statistic("p90").reduce(values[:, rows][:, :, cols], 0))
    monkeypatch.setattr(ensemble, "MAX_HELD_VALUES", 51 * cols.size * 4)  # bands of 4 rows
    np.testing.assert_array_equal(read_window(store, "gust", (0, 0, chosen), rows, cols), whole)


def test_a_cancelled_statistic_stops_between_member_reads(
        members_store: tuple[ForecastStore, np.ndarray]) -> None:
    store, _ = members_store
    chosen = MemberStatistic(statistic("mean"), tuple(range(51)))
    token = CancelToken()
    token.cancel("client disconnected")
    raised: list[BaseException] = []

    def render() -> None:  # in a thread of its own, as renders run, with its own context
        token.install()
        try:
            read_window(store, "gust", (0, 0, chosen), np.arange(30), np.arange(40))
        except RenderCancelled as exc:
            raised.append(exc)

    thread = threading.Thread(target=render)
    thread.start()
    thread.join()
    assert raised and "client disconnected" in str(raised[0])


@given(st.text(max_size=30))
def test_any_member_text_is_a_number_a_statistic_or_a_clear_refusal(text: str) -> None:
    try:
        found = parse_statistic(text)
    except InvalidDimensionValue as exc:
        assert "ensemble member" in str(exc)
        return
    if found is None:
        float(text)  # a member label
    else:
        assert parse_statistic(found.label) == found


@given(st.floats(min_value=-1e30, max_value=1e30), st.sampled_from(["above", "below"]))
def test_thresholds_round_trip_through_their_labels(value: float, kind: str) -> None:
    found = statistic(f"{kind}:{value!r}")
    assert found.kind == kind and found.parameter == value
    assert parse_statistic(found.label) == found
