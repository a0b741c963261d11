"""Accumulations: windows of whole steps, sums equal to xarray's, de-accumulation at ingest."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from fewsmap import open_cube
from fewsmap.errors import InvalidDimensionValue, InvalidParameterValue
from fewsmap.ingest import ingest
from fewsmap.products.accumulate import (
    MAX_STEPS,
    PER_STEP,
    StepSum,
    deaccumulate,
    most_steps,
    parse_window,
    per_step_pieces,
    step_sum,
    summed_range,
    window_sums,
    window_times,
)
from fewsmap.products.ensemble import read_window
from fewsmap.store.cube import ForecastStore, RunInfo
from fewsmap.store.run import ACCUMULATION_ATTR, START_STEPS_ATTR
from tests.synthetic import T0, six_hourly_runs_store

HOUR = np.timedelta64(1, "h")
ALR = Path("/work/shared/data/usace-cumulus/ALR_QPF_SFC_2022040100_006.grb")


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return six_hourly_runs_store(tmp_path_factory.mktemp("acc") / "runs.zarr", runs=2,
                                 members=3)


def latest(store: Path) -> RunInfo:
    return ForecastStore(store).runs[-1]


@pytest.mark.parametrize("text", ["P1000Y", "PT0S", "-PT6H", "P1M", "PT6", "garbage",
                                  "P32D", "P5W", "PT0.5S", "", "P" + "9" * 500 + "D"])
def test_a_window_that_is_not_a_positive_duration_of_at_most_31_days_is_refused(
        text: str) -> None:
    if not text:
        assert parse_window(text) is None
        return
    with pytest.raises(InvalidParameterValue, match="ACCUMULATE"):
        parse_window(text)


def test_windows_are_whole_steps_within_the_run(store: Path) -> None:
    assert parse_window("PT24H") == np.timedelta64(24 * 3600, "s")
    run = latest(store)  # 6-hourly, valid times t0 .. t0 + 42 h
    t0 = run.reference_time
    times = window_times(run, t0 + 30 * HOUR, np.timedelta64(24, "h"))
    assert times.tolist() == [t0 + k * HOUR for k in (12, 18, 24, 30)]
    # a window starting at the run's start: the steps after it (not the step at t0)
    assert window_times(run, t0 + 12 * HOUR, np.timedelta64(12, "h")).tolist() == [
        t0 + 6 * HOUR, t0 + 12 * HOUR]
    with pytest.raises(InvalidDimensionValue, match=r"before run .* started"):
        window_times(run, t0 + 12 * HOUR, np.timedelta64(18, "h"))
    with pytest.raises(InvalidDimensionValue, match="whole number of its steps"):
        window_times(run, t0 + 30 * HOUR, np.timedelta64(5, "h"))
    assert step_sum(run, t0 + 30 * HOUR, np.timedelta64(12, "h")) == StepSum((4, 5))
    assert most_steps(run, np.timedelta64(24, "h")) == 4


def test_a_window_of_more_than_the_most_steps_is_refused() -> None:
    hours = np.arange(1, MAX_STEPS + 2)
    run = RunInfo(T0, 0, np.arange(hours.size), T0 + hours * HOUR, {})
    with pytest.raises(InvalidDimensionValue, match=f"at most {MAX_STEPS}"):
        window_times(run, run.valid_times[-1], (MAX_STEPS + 1) * HOUR)


def test_a_summed_window_equals_xarrays_sum_over_the_steps(store: Path) -> None:
    run = latest(store)
    with open_cube(store) as cube:
        rain = cube["rain"].isel(forecast_reference_time=-1).load()
    cube_store = ForecastStore(store)
    rows, cols = np.arange(6), np.arange(9)
    for end in (4, 7):
        steps = step_sum(run, run.valid_times[end], np.timedelta64(24, "h"))
        for member in range(3):
            got = read_window(cube_store, "rain", (run.slot, steps, member), rows, cols)
            want = rain.isel(step=slice(end - 3, end + 1), realization=member).sum(
                "step", skipna=False)
            np.testing.assert_array_equal(got, want.values)
            # missing everywhere; missing at step 2 only (inside the first window)
            assert np.isnan(got[0, 0]) and np.isnan(got[1, 1]) == (end == 4)


def test_point_sums_equal_the_window_reads(store: Path) -> None:
    run = latest(store)
    with open_cube(store) as cube:
        rain = cube["rain"].isel(forecast_reference_time=-1, realization=0).values
    wanted = run.valid_times[4:]
    got = window_sums(rain, run.valid_times, wanted, run, np.timedelta64(12, "h"))
    want = np.stack([rain[k - 1] + rain[k] for k in range(4, 8)])
    np.testing.assert_array_equal(got, want)


def test_colour_ranges_scale_by_the_steps_summed() -> None:
    assert summed_range((0.0, 5.0), 4) == (0.0, 20.0)
    assert summed_range((-2.0, 3.0), 2) == (-4.0, 6.0)
    assert summed_range((1.0, 3.0), 1) == (1.0, 3.0)
    assert summed_range(None, 4) is None


def accumulated(values: np.ndarray, hours: list[int]) -> xr.DataArray:
    steps = (np.array(hours) * 3600).astype("timedelta64[s]").astype("timedelta64[ns]")
    return xr.DataArray(values.astype(np.float32), dims=("step", "y", "x"),
                        coords={"step": steps},
                        attrs={"GRIB_stepType": "accum", START_STEPS_ATTR: [0], "units": "m"})


def test_deaccumulation_gives_each_steps_amount_as_xarrays_diff() -> None:
    rng = np.random.default_rng(3)
    totals = np.cumsum(rng.gamma(1.0, 1.0, (5, 2, 3)), axis=0)
    field = accumulated(totals, [6, 12, 18, 24, 30])
    amounts = deaccumulate(field, "since the start")
    np.testing.assert_array_equal(amounts.values[0], field.values[0])
    np.testing.assert_array_equal(amounts.values[1:], field.diff("step").values)
    assert amounts.attrs[ACCUMULATION_ATTR] == PER_STEP and amounts.dtype == np.float32
    # one file per step: the pieces are joined, each step minus the step before
    pieces = [field.isel(step=[k]) for k in (2, 0, 4, 1, 3)]
    [joined] = per_step_pieces(pieces)
    np.testing.assert_array_equal(joined.values, amounts.values)
    # buckets (amounts per period) and other step types stay as they are
    bucket = field.assign_attrs({START_STEPS_ATTR: [0, 6, 12, 18, 24]})
    assert per_step_pieces([bucket])[0] is bucket
    maximum = field.assign_attrs(GRIB_stepType="max")
    assert per_step_pieces([maximum])[0] is maximum


def write_steps(source: Path, folder: Path, factors: dict[int, float]) -> list[Path]:
    """Copies of a real 0-6 h GRIB accumulation as further steps 0-N h of the same run, one
    file per step as the RFCs publish them: the 6 h field times a growing factor."""
    import eccodes

    paths = []
    with source.open("rb") as f:
        handle = eccodes.codes_grib_new_from_file(f)
    try:
        values = eccodes.codes_get_values(handle)
        for hours, factor in factors.items():
            clone = eccodes.codes_clone(handle)
            try:
                eccodes.codes_set(clone, "endStep", hours)
                eccodes.codes_set_values(clone, values * factor)
                path = folder / f"ALR_QPF_SFC_2022040100_{hours:03d}.grb"
                with path.open("wb") as out:
                    eccodes.codes_write(clone, out)
                paths.append(path)
            finally:
                eccodes.codes_release(clone)
    finally:
        eccodes.codes_release(handle)
    return paths


def test_a_real_grib_accumulation_is_stored_per_step_and_recorded(tmp_path: Path) -> None:
    """The SERFC's 6-hour QPF (tp, GRIB stepType accum from step 0) and two later steps of
    the same run: the cube holds each step's amount, xarray's diff of the files' totals."""
    paths = [ALR, *write_steps(ALR, tmp_path, {12: 1.75, 18: 2.5})]
    ingest(tmp_path / "qpf.zarr", paths, progress=False)
    totals = xr.concat([xr.open_dataset(p, engine="cfgrib", backend_kwargs={
        "indexpath": ""})["tp"].load() for p in paths], dim="step", coords="minimal",
        compat="override")
    with open_cube(tmp_path / "qpf.zarr") as cube:
        stored = cube["tp"].isel(forecast_reference_time=0).load()
        assert stored.attrs[ACCUMULATION_ATTR] == PER_STEP
    np.testing.assert_array_equal(stored.values[0], totals.values[0])
    np.testing.assert_array_equal(stored.values[1:], totals.diff("step").values)
    record = ForecastStore(tmp_path / "qpf.zarr").runs[0].record
    assert record["accumulation"]["tp"]["stored"] == PER_STEP
    assert "since the run started" in record["accumulation"]["tp"]["original"]
