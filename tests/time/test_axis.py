"""resolve_times: which valid times a TIME / DIM_LEAD_TIME value means for one run."""

from __future__ import annotations

import numpy as np
import pytest

from fewsmap.errors import InvalidDimensionValue, MissingDimensionValue
from fewsmap.ingest import ingest
from fewsmap.store.cube import ForecastStore, RunInfo
from fewsmap.time.axis import resolve_times
from fewsmap.time.grammar import parse_duration, parse_time
from tests.conftest import sample_paths


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> RunInfo:
    store = tmp_path_factory.mktemp("axis") / "naefs.zarr"
    ingest(store, sample_paths("naefs"), progress=False)
    return ForecastStore(store).runs[0]  # 2022-08-09T00Z, six-hourly 06Z … 25th 00Z


def t(text: str) -> np.datetime64:
    return np.datetime64(text, "s")


def test_default_is_the_first_step_of_a_past_run(run: RunInfo) -> None:
    assert resolve_times(run, None).times == (t("2022-08-09T06:00:00"),)
    assert resolve_times(run, parse_time("current")).times == (t("2022-08-09T06:00:00"),)
    assert resolve_times(run, None, default="last").times == (t("2022-08-25T00:00:00"),)
    assert resolve_times(run, None, default="first").times == (t("2022-08-09T06:00:00"),)


def test_required_time_without_a_value(run: RunInfo) -> None:
    with pytest.raises(MissingDimensionValue):
        resolve_times(run, None, default="required")


def test_a_range_selects_every_step_inside(run: RunInfo) -> None:
    times = resolve_times(run, parse_time("2022-08-09/2022-08-10T06:00:00Z")).times
    assert times == tuple(t(f"2022-08-{d}") for d in
                          ("09T06:00", "09T12:00", "09T18:00", "10T00:00", "10T06:00"))


def test_lead_time_gives_the_valid_time_and_must_agree_with_time(run: RunInfo) -> None:
    lead = parse_duration("PT18H")
    assert resolve_times(run, None, lead).times == (t("2022-08-09T18:00:00"),)
    assert resolve_times(run, parse_time("2022-08-09T18Z"), lead).times == \
        (t("2022-08-09T18:00:00"),)
    with pytest.raises(InvalidDimensionValue, match="disagree"):
        resolve_times(run, parse_time("2022-08-10T00:00:00Z"), lead)
    with pytest.raises(InvalidDimensionValue, match="matches no valid time"):
        resolve_times(run, None, parse_duration("PT3H"))


def test_nearest_within_tolerance_reports_substitutions(run: RunInfo) -> None:
    tolerance = parse_duration("PT2H")
    resolved = resolve_times(run, parse_time("2022-08-09T13:00:00Z"), tolerance=tolerance)
    assert resolved.times == (t("2022-08-09T12:00:00"),)
    assert resolved.substitutions == ((t("2022-08-09T13:00:00"), t("2022-08-09T12:00:00")),)
    exact = resolve_times(run, parse_time("2022-08-09T12:00:00Z"), tolerance=tolerance)
    assert exact.substitutions == ()
    with pytest.raises(InvalidDimensionValue, match="within PT2H"):
        resolve_times(run, parse_time("2022-08-09T09:00:00Z"), tolerance=tolerance)


def test_outside_the_run_is_refused_naming_its_times(run: RunInfo) -> None:
    with pytest.raises(InvalidDimensionValue, match="64 times: 2022-08-09T06:00:00Z/"
                       "2022-08-25T00:00:00Z/PT6H"):
        resolve_times(run, parse_time("2030-01-01T00:00:00Z"))


@pytest.mark.parametrize("listed", [
    "2022-08-09T12:00:00Z,2022-08-09T13:00:00Z",  # an instant between steps
    "2022-08-09T12:00:00Z,2030-01-01T00:00:00Z",  # an instant after the run
    "2022-08-09T12:00:00Z,2022-08-09T13:00:00Z/2022-08-09T17:00:00Z",  # a range between
    "2022-08-09T12:00:00Z,2022-08-09T07:00:00Z/2022-08-09T11:00:00Z/PT1H",  # a period
])
def test_a_listed_item_matching_nothing_is_refused_not_left_out(run: RunInfo,
                                                                 listed: str) -> None:
    # issue #13 item 7: the answer would otherwise leave the item out without saying so.
    item = listed.split(",")[1]
    with pytest.raises(InvalidDimensionValue, match=f"TIME value {item} names no valid time"):
        resolve_times(run, parse_time(listed))


def test_with_a_tolerance_every_listed_time_gets_its_nearest(run: RunInfo) -> None:
    tolerance = parse_duration("PT2H")
    resolved = resolve_times(run, parse_time("2022-08-09T12:00:00Z,2022-08-09T19:00:00Z"),
                             tolerance=tolerance)
    assert resolved.times == (t("2022-08-09T12:00:00"), t("2022-08-09T18:00:00"))
    assert resolved.substitutions == ((t("2022-08-09T19:00:00"), t("2022-08-09T18:00:00")),)
    with pytest.raises(InvalidDimensionValue, match=r"2022-08-09T09:00:00Z .* within PT2H"):
        resolve_times(run, parse_time("2022-08-09T12:00:00Z,2022-08-09T09:00:00Z"),
                      tolerance=tolerance)


