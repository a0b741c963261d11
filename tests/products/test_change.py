"""Run change: baselines, shared valid times, differences equal to xarray's, symmetric ranges."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fewsmap import open_cube
from fewsmap.errors import InvalidDimensionValue, InvalidParameterValue
from fewsmap.points import find_cell
from fewsmap.products.change import (
    PREVIOUS_RUN,
    Baseline,
    change_range,
    changed,
    check_shared,
    difference,
    parse_baseline,
    point_values,
    select_baseline,
    shared_times,
)
from fewsmap.products.ensemble import MemberStatistic, parse_statistic
from fewsmap.store.cube import ForecastStore, RunInfo
from fewsmap.time.instants import format_time
from tests.synthetic import T0, six_hourly_runs_store

HOUR = np.timedelta64(1, "h")


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return six_hourly_runs_store(tmp_path_factory.mktemp("change") / "runs.zarr", runs=3,
                                 members=3)


def runs(store: Path) -> list[RunInfo]:
    return ForecastStore(store).runs


@pytest.mark.parametrize(("text", "expected"), [
    ("previous", PREVIOUS_RUN), (" PREVIOUS ", PREVIOUS_RUN), ("", None), (None, None),
    ("2026-01-01T06:00:00Z", Baseline(T0 + 6 * HOUR)),
    ("2026-01-01T06:00Z", Baseline(T0 + 6 * HOUR)),
])
def test_a_baseline_is_previous_or_a_reference_time(text: str | None,
                                                    expected: Baseline | None) -> None:
    assert parse_baseline(text) == expected


@pytest.mark.parametrize("text", ["garbage", "latest", "2026-13-01T00:00:00Z", "P1D",
                                  "2026-01-01T00:00:00Z/2026-01-02T00:00:00Z", "1e309",
                                  "\x00", "9" * 400])
def test_a_baseline_that_names_no_run_time_is_refused(text: str) -> None:
    with pytest.raises(InvalidParameterValue, match="BASELINE"):
        parse_baseline(text)


def test_the_baseline_run_is_the_previous_one_or_the_one_named(store: Path) -> None:
    first, second, third = runs(store)
    assert select_baseline([first, second, third], third, PREVIOUS_RUN, "x") is second
    assert select_baseline([first, second, third], second, PREVIOUS_RUN, "x") is first
    assert select_baseline([first, second, third], third, Baseline(first.reference_time),
                           "x") is first
    assert select_baseline([first, second, third], third, Baseline(third.reference_time),
                           "x") is third  # allowed: a change of zero
    with pytest.raises(InvalidDimensionValue, match="first run"):
        select_baseline([first, second, third], first, PREVIOUS_RUN, "x")
    with pytest.raises(InvalidDimensionValue, match="no such run"):
        select_baseline([first, second, third], third, Baseline(T0 - HOUR), "x")


def test_only_shared_valid_times_have_a_change(store: Path) -> None:
    first, _, third = runs(store)
    shared = shared_times(third, first)  # 12 h apart: 6 of the 8 steps
    assert shared.tolist() == [T0 + (12 + 6 * k) * HOUR for k in range(6)]
    check_shared(shared, third, first)
    last = third.valid_times[-2:]
    with pytest.raises(InvalidDimensionValue) as refused:
        check_shared(third.valid_times, third, first)
    message = str(refused.value)
    assert all(format_time(t) in message for t in last)
    assert f"share 6 valid times, {format_time(shared[0])}" in message


def test_a_point_change_equals_xarrays_difference_of_the_runs(store: Path) -> None:
    cube_store = ForecastStore(store)
    first, second, _ = runs(store)
    cell = find_cell(cube_store, "OGC:CRS84", 4.0, 47.0)
    assert cell is not None
    times = shared_times(second, first)
    mean = parse_statistic("mean")
    assert mean is not None

    def read(run: RunInfo) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        return point_values(cube_store, ("rain",), cell, run, times, [[0, 1, 2]],
                            [MemberStatistic(mean, (0, 1, 2))])

    values, components = changed(read, second, first)
    assert components == {}
    with open_cube(store) as cube:
        rain = cube["rain"].sel(latitude=47.0, longitude=4.0).load()
    latest = rain.isel(forecast_reference_time=1, step=slice(0, 7)).mean("realization")
    previous = rain.isel(forecast_reference_time=0, step=slice(1, 8)).mean("realization")
    # the same valid times: step k of the latest run is step k + 1 of the previous one
    np.testing.assert_allclose(values[:, 0], latest.values - previous.values, rtol=1e-6)


def test_differences_are_float32_and_ranges_centred_on_zero() -> None:
    a = np.array([1.5, np.nan, 3.0], dtype=np.float32)
    b = np.array([0.25, 1.0, np.nan], dtype=np.float32)
    got = difference(a, b)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, np.array([1.25, np.nan, np.nan], dtype=np.float32))
    assert change_range((0.0, 10.0), (2.0, 14.0)) == (-14.0, 14.0)
    assert change_range((280.0, 290.0), (270.0, 285.0)) == (-20.0, 20.0)
    low, high = change_range((5.0, 5.0), (5.0, 5.0)) or (0.0, 0.0)
    assert low == -high and high > 0  # two constant runs still get a usable scale
    assert change_range(None, (0.0, 1.0)) is None
