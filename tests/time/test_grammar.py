"""TIME values: the grammar (every form and every refusal), matching, and property tests."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from fewsmap.errors import InvalidDimensionValue
from fewsmap.time.grammar import (
    MAX_NEAREST_VALUES,
    MAX_TIME_CHARS,
    MAX_TIME_ITEMS,
    TimeInterval,
    TimeSelection,
    format_axis,
    format_duration,
    format_instant,
    format_interval,
    parse_duration,
    parse_time,
)

S = np.timedelta64(1, "s")
H = np.timedelta64(3600, "s")
PROPERTY = settings(max_examples=200, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


def t(text: str) -> np.datetime64:
    return np.datetime64(text, "s")


def times(*texts: str) -> np.ndarray:
    return np.array(texts, dtype="datetime64[s]")


def epoch(seconds: int) -> np.datetime64:
    return np.datetime64(seconds, "s")


def seconds_of(value: np.datetime64) -> int:
    return int(value.astype("datetime64[s]").astype(np.int64))


def only(selection: TimeSelection) -> TimeInterval:
    assert len(selection.items) == 1
    return selection.items[0]


def refusal(text: str, name: str = "TIME") -> str:
    with pytest.raises(InvalidDimensionValue) as caught:
        parse_time(text, name)
    return str(caught.value)


# --- instants --------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "start", "end"), [
    ("2022-08-09T06:00:00Z", "2022-08-09T06:00:00", "2022-08-09T06:00:00"),
    ("2022-08-09T06:00:00", "2022-08-09T06:00:00", "2022-08-09T06:00:00"),
    ("2022-08-09T06:00:00.000Z", "2022-08-09T06:00:00", "2022-08-09T06:00:00"),
    ("2022-08-09T06:00:00.0", "2022-08-09T06:00:00", "2022-08-09T06:00:00"),
    ("2022-08-09T06:00:00+02:00", "2022-08-09T04:00:00", "2022-08-09T04:00:00"),
    ("2022-08-09T06:00:00-0130", "2022-08-09T07:30:00", "2022-08-09T07:30:00"),
    ("2022-08-09T06:00:00+05", "2022-08-09T01:00:00", "2022-08-09T01:00:00"),
    ("2022-08-09T06:00:00-00:00", "2022-08-09T06:00:00", "2022-08-09T06:00:00"),
    ("2022-08-09T01:00:00+02:00", "2022-08-08T23:00:00", "2022-08-08T23:00:00"),
    ("2022-08-09t06:00:00z", "2022-08-09T06:00:00", "2022-08-09T06:00:00"),
    ("2022-12-31T24:00:00Z", "2023-01-01T00:00:00", "2023-01-01T00:00:00"),
    # reduced precision (WMS 1.3.0 Annex D.1): the whole unit
    ("2022", "2022-01-01T00:00:00", "2022-12-31T23:59:59"),
    ("2024-02", "2024-02-01T00:00:00", "2024-02-29T23:59:59"),
    ("2023-02", "2023-02-01T00:00:00", "2023-02-28T23:59:59"),
    ("2022-12", "2022-12-01T00:00:00", "2022-12-31T23:59:59"),
    ("2022-08-09", "2022-08-09T00:00:00", "2022-08-09T23:59:59"),
    ("2022-08-09T06", "2022-08-09T06:00:00", "2022-08-09T06:59:59"),
    ("2022-08-09T06Z", "2022-08-09T06:00:00", "2022-08-09T06:59:59"),
    ("2022-08-09T06+02:00", "2022-08-09T04:00:00", "2022-08-09T04:59:59"),
    ("2022-08-09T06:30", "2022-08-09T06:30:00", "2022-08-09T06:30:59"),
    ("2022-08-09T06:30Z", "2022-08-09T06:30:00", "2022-08-09T06:30:59"),
    ("2022-08-09T06:30-0100", "2022-08-09T07:30:00", "2022-08-09T07:30:59"),
    ("2000-02-29", "2000-02-29T00:00:00", "2000-02-29T23:59:59"),
    ("0000-01-01", "0000-01-01T00:00:00", "0000-01-01T23:59:59"),
    ("9999", "9999-01-01T00:00:00", "9999-12-31T23:59:59"),
    ("  2022-08-09T06Z\t", "2022-08-09T06:00:00", "2022-08-09T06:59:59"),
])
def test_an_instant_is_the_interval_it_covers(text: str, start: str, end: str) -> None:
    assert only(parse_time(text)) == TimeInterval(t(start), t(end))


def test_only_a_full_precision_instant_is_single() -> None:
    assert parse_time("2022-08-09T06:00:00Z").is_single()
    assert parse_time("2022-08-09T06:00:00Z/2022-08-09T06:00:00Z").is_single()
    for text in ("2022-08-09T06:00Z", "2022-08-09", "2022-08-09T06:00:00Z,2022-08-09T07:00:00Z",
                 "2022-08-09T00Z/2022-08-10T00Z/PT6H", "current", "all"):
        assert not parse_time(text).is_single(), text


# --- keywords, lists, intervals, periods -----------------------------------------------------

@pytest.mark.parametrize("text", ["current", "CURRENT", "present", "Present", "now", " NOW "])
def test_current_keywords(text: str) -> None:
    assert parse_time(text) == TimeSelection((), current=True)


@pytest.mark.parametrize("text", ["all", "ALL", " All "])
def test_all_keyword(text: str) -> None:
    assert parse_time(text) == TimeSelection((), all=True)


def test_a_list_keeps_its_order_and_tolerates_spaces_around_items() -> None:
    selection = parse_time(" 2022-08-09T06:00:00Z , 2022-08-09 ,2022-08-08T00Z/2022-08-08T12Z")
    assert selection.items == (
        TimeInterval(t("2022-08-09T06:00:00"), t("2022-08-09T06:00:00")),
        TimeInterval(t("2022-08-09T00:00:00"), t("2022-08-09T23:59:59")),
        TimeInterval(t("2022-08-08T00:00:00"), t("2022-08-08T12:59:59")),
    )


@pytest.mark.parametrize(("text", "expected"), [
    ("2022-08-09T00:00:00Z/2022-08-09T12:00:00Z",
     TimeInterval(t("2022-08-09T00:00:00"), t("2022-08-09T12:00:00"))),
    ("2022-08-09T06:00:00Z/2022-08-09T06:00:00Z",
     TimeInterval(t("2022-08-09T06:00:00"), t("2022-08-09T06:00:00"))),
    ("2022-08-09/2022-08-10",  # reduced-precision ends: from the first unit to the last
     TimeInterval(t("2022-08-09T00:00:00"), t("2022-08-10T23:59:59"))),
    ("2022-08-09T12/2022-08-09",  # overlapping units are not "end before start"
     TimeInterval(t("2022-08-09T12:00:00"), t("2022-08-09T23:59:59"))),
    ("2022-08/2022-08-09T06Z",  # ends inside the first unit: still not "end before start"
     TimeInterval(t("2022-08-01T00:00:00"), t("2022-08-09T06:59:59"))),
    ("2022-08-09T02:00:00+02:00/2022-08-09T01:00:00Z",
     TimeInterval(t("2022-08-09T00:00:00"), t("2022-08-09T01:00:00"))),
    ("2022-08-09T00:00:00Z/2022-08-10T00:00:00Z/PT6H",
     TimeInterval(t("2022-08-09T00:00:00"), t("2022-08-10T00:00:00"), 6 * H)),
    ("2022-08-09T00:00:00Z/2022-08-10T00:00:00Z/P1DT6H",
     TimeInterval(t("2022-08-09T00:00:00"), t("2022-08-10T00:00:00"), 30 * H)),
    ("2022-08-01/2022-08-31/P1W",
     TimeInterval(t("2022-08-01T00:00:00"), t("2022-08-31T23:59:59"), 168 * H)),
])
def test_intervals_and_periods(text: str, expected: TimeInterval) -> None:
    assert only(parse_time(text)) == expected


def test_the_parameter_name_is_in_every_message() -> None:
    message = refusal("2022-13", "DIM_REFERENCE_TIME")
    assert message.startswith("DIM_REFERENCE_TIME='2022-13'")


# --- refusals --------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "fragment", "reason"), [
    ("", "''", "empty"),
    ("   ", "'   '", "empty"),
    ("2022-08-09T06Z,", "'2022-08-09T06Z,'", "empty list item"),
    ("2022,,2023", "'2022,,2023'", "empty list item"),
    ("x,,2023", "'x'", "ISO 8601 instant"),  # items are checked in order
    (",2022", "',2022'", "empty list item"),
    ("2022-08-09 06:00:00Z", "'2022-08-09 06:00:00Z'", "not a space"),
    ("20220809T060000Z", "'20220809T060000Z'", "extended format"),
    ("2022-8-9", "'2022-8-9'", "ISO 8601 instant"),
    ("22-08-09", "'22-08-09'", "ISO 8601 instant"),
    ("+12022-08-09", "'+12022-08-09'", "ISO 8601 instant"),
    ("2022-08-09T06:00:00ZZ", "'2022-08-09T06:00:00ZZ'", "ISO 8601 instant"),
    ("2022-08-09Z", "'2022-08-09Z'", "ISO 8601 instant"),  # no zone on a date
    ("2022-08Z", "'2022-08Z'", "ISO 8601 instant"),
    ("2022-08-09T6:00", "'2022-08-09T6:00'", "ISO 8601 instant"),
    ("2022-08-09T", "'2022-08-09T'", "ISO 8601 instant"),
    ("2022-08-09T06:00:00.Z", "'2022-08-09T06:00:00.Z'", "ISO 8601 instant"),
    ("2022-08-09T06:00:00,000Z", "'000Z'", "ISO 8601 instant"),  # the comma splits a list
    ("2022-08-09T06:00:00+2", "'2022-08-09T06:00:00+2'", "ISO 8601 instant"),
    ("2022-08-09T06:00:00+02:0", "'2022-08-09T06:00:00+02:0'", "ISO 8601 instant"),
    ("2022-08-09T06:00:00.5Z", "'2022-08-09T06:00:00.5Z'", "sub-second"),
    ("2022-08-09T06:00:00.001", "'2022-08-09T06:00:00.001'", "sub-second"),
    ("2022-13", "'2022-13'", "months are 01–12"),
    ("2022-00-01", "'2022-00-01'", "months are 01–12"),
    ("2022-02-29", "'2022-02-29'", "days 01–28"),
    ("1900-02-29", "'1900-02-29'", "days 01–28"),
    ("2022-04-31", "'2022-04-31'", "days 01–30"),
    ("2022-08-00", "'2022-08-00'", "days 01–31"),
    ("2022-08-09T25Z", "'2022-08-09T25Z'", "hours are 00–23"),
    ("2022-08-09T24Z", "'2022-08-09T24Z'", "only as 24:00:00"),
    ("2022-08-09T24:00", "'2022-08-09T24:00'", "only as 24:00:00"),
    ("2022-08-09T24:00:01", "'2022-08-09T24:00:01'", "only as 24:00:00"),
    ("2022-08-09T06:60Z", "'2022-08-09T06:60Z'", "minutes are 00–59"),
    ("2022-08-09T06:00:61Z", "'2022-08-09T06:00:61Z'", "seconds are 00–59"),
    ("2016-12-31T23:59:60Z", "'2016-12-31T23:59:60Z'", "leap second"),
    ("2022-08-09T06:00:00+24:00", "'2022-08-09T06:00:00+24:00'", "offsets are ±hh:mm"),
    ("2022-08-09T06:00:00+02:60", "'2022-08-09T06:00:00+02:60'", "offsets are ±hh:mm"),
    ("２０２２-08-09", "'２０２２-08-09'", "ISO 8601 instant"),  # non-ASCII digits
    ("٢٠٢٢", "'٢٠٢٢'", "ISO 8601 instant"),
    # keywords only alone; nothing but the four
    ("now,2022-08-09", "'now'", "only as the whole value"),
    ("2022-08-09/present", "'2022-08-09/present'", "only as the whole value"),
    ("P1D/PRESENT", "'P1D/PRESENT'", "keyword"),
    ("latest", "'latest'", "ISO 8601 instant"),
    ("today", "'today'", "ISO 8601 instant"),
    ("nowZ", "'nowZ'", "ISO 8601 instant"),
    # intervals
    ("2022-08-10/2022-08-09", "'2022-08-10/2022-08-09'", "ends before it starts"),
    ("2022-08-09T06:00:00Z/2022-08-09T05:59:59Z", "'2022-08-09T06:00:00Z/2022-08-09T05:59:59Z'",
     "ends before it starts"),
    ("2022-08-09T00:00:00Z/2022-08-09T01:00:00+02:00",
     "'2022-08-09T00:00:00Z/2022-08-09T01:00:00+02:00'", "ends before it starts"),
    ("2022-08-09/", "'2022-08-09/'", "empty"),
    ("/2022-08-09", "'/2022-08-09'", "empty"),
    ("2022-08-09/2022-08-10/", "'2022-08-09/2022-08-10/'", "empty"),
    ("2022/2023/PT1H/PT1H", "'2022/2023/PT1H/PT1H'", "'/'"),
    ("2022-08-09/PT6H", "'2022-08-09/PT6H'", "duration"),
    ("PT6H/2022-08-09", "'PT6H/2022-08-09'", "duration"),
    ("PT6H", "'PT6H'", "third part of start/end/period"),
    ("2022-08-09 / 2022-08-10", "'2022-08-09 '", "ISO 8601 instant"),
    # periods
    ("2022/2023/P1Y", "'P1Y'", "years or months"),
    ("2022/2023/P1M", "'P1M'", "years or months"),
    ("2022/2023/P1Y2M3D", "'P1Y2M3D'", "years or months"),
    ("2022/2023/PT0S", "'PT0S'", "zero"),
    ("2022/2023/P0D", "'P0D'", "zero"),
    ("2022/2023/-PT6H", "'-PT6H'", "negative"),
    ("2022/2023/P", "'P'", "ISO 8601 duration"),
    ("2022/2023/PT", "'PT'", "no component"),
    ("2022/2023/P1DT", "'P1DT'", "no component"),
    ("2022/2023/P1W2D", "'P1W2D'", "weeks cannot be combined"),
    ("2022/2023/PT6", "'PT6'", "ISO 8601 duration"),
    ("2022/2023/P6H", "'P6H'", "ISO 8601 duration"),
    ("2022/2023/PT1M1H", "'PT1M1H'", "ISO 8601 duration"),
    ("2022/2023/PT0.5S", "'PT0.5S'", "whole number of seconds"),
    ("2022/2023/PT1.5H30M", "'PT1.5H30M'", "decimal fraction before its last"),
    ("2022/2023/6H", "'6H'", "ISO 8601 duration"),
    ("2022/2023/+PT6H", "'+PT6H'", "ISO 8601 duration"),
    ("2022/2023/P99999999D", "'P99999999D'", "longer than"),
    ("2022/2023/P" + "9" * 5000 + "D", "'P999", "more than 30 digits"),
])
def test_refusals_name_the_fragment_and_the_reason(text: str, fragment: str, reason: str) -> None:
    message = refusal(text)
    assert message.startswith("TIME=")
    assert fragment in message
    assert reason in message


def test_refusals_say_what_is_allowed() -> None:
    for text in ("", "nonsense", "2022-08-09 06:00", "2022/2023/P1M", "PT6H/2022"):
        message = refusal(text)
        assert "allowed" in message or "write start/end" in message, message


def test_a_long_fragment_is_clipped_to_80_characters() -> None:
    message = refusal("x" * 500)
    assert "'" + "x" * 80 + "'…" in message
    assert "x" * 81 not in message


def test_the_list_limit() -> None:
    years = [f"{1900 + i}" for i in range(MAX_TIME_ITEMS + 1)]  # short items: under the length cap
    assert len(parse_time(",".join(years[:MAX_TIME_ITEMS])).items) == MAX_TIME_ITEMS
    message = refusal(",".join(years))
    assert f"has {MAX_TIME_ITEMS + 1} items; at most {MAX_TIME_ITEMS}" in message


def test_the_length_limit() -> None:
    padded = "2022" + " " * (MAX_TIME_CHARS - 4)
    assert len(parse_time(padded).items) == 1
    message = refusal(padded + " ")
    assert f"longer than {MAX_TIME_CHARS} characters" in message


# --- durations -------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "seconds"), [
    ("PT6H", 6 * 3600), ("P1D", 86_400), ("P1DT6H", 30 * 3600), ("PT30M", 1800),
    ("PT1S", 1), ("P2W", 14 * 86_400), ("P1DT1H1M1S", 90_061), ("PT36H", 36 * 3600),
    ("PT1.5H", 5400), ("PT1,5H", 5400), ("P0.5D", 43_200), ("PT0.5M", 30), ("PT1.0S", 1),
    ("pt6h", 6 * 3600), ("p1dt6h", 30 * 3600), ("P0DT6H", 6 * 3600), ("PT0006H", 6 * 3600),
])
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text) == np.timedelta64(seconds, "s")
    assert parse_duration(text).dtype == np.dtype("timedelta64[s]")


def test_a_zero_duration_only_when_allowed() -> None:
    assert parse_duration("PT0S", allow_zero=True) == np.timedelta64(0, "s")
    with pytest.raises(InvalidDimensionValue, match=r"^tolerance='PT0S' is zero"):
        parse_duration("PT0S", "tolerance")


@pytest.mark.parametrize("text", ["", " PT6H", "PT6H ", "P1M", "-P1D", "P1.5DT6H", "T6H", "6H",
                                  "P1H", "PT0.25S", "P1W1D", "PW", "P.5D", "P5.D"])
def test_duration_refusals(text: str) -> None:
    with pytest.raises(InvalidDimensionValue, match=r"^period="):
        parse_duration(text)


@pytest.mark.parametrize(("seconds", "text"), [
    (0, "PT0S"), (1, "PT1S"), (1800, "PT30M"), (6 * 3600, "PT6H"), (86_400, "P1D"),
    (30 * 3600, "P1DT6H"), (7 * 86_400, "P7D"), (90_061, "P1DT1H1M1S"), (86_401, "P1DT1S"),
])
def test_format_duration(seconds: int, text: str) -> None:
    assert format_duration(np.timedelta64(seconds, "s")) == text


def test_format_duration_converts_units_and_refuses_the_unwritable() -> None:
    assert format_duration(np.timedelta64(6, "h")) == "PT6H"
    assert format_duration(np.timedelta64(2_000, "ms")) == "PT2S"
    for bad in (np.timedelta64(-1, "s"), np.timedelta64(1500, "ms"), np.timedelta64("NaT")):
        with pytest.raises(ValueError):
            format_duration(bad)


# --- formatting ------------------------------------------------------------------------------

def test_format_axis_regular_irregular_and_short() -> None:
    regular = np.arange(t("2022-08-09T00:00:00"), t("2022-08-10T00:00:01"), 6 * H)
    assert format_axis(regular) == "2022-08-09T00:00:00Z/2022-08-10T00:00:00Z/PT6H"
    assert format_axis(regular[::-1]) == "2022-08-09T00:00:00Z/2022-08-10T00:00:00Z/PT6H"
    assert format_axis(np.concatenate([regular, regular[:2]])) == format_axis(regular)
    irregular = times("2022-08-09T00:00:00", "2022-08-09T06:00:00", "2022-08-09T18:00:00")
    assert format_axis(irregular) == (
        "2022-08-09T00:00:00Z,2022-08-09T06:00:00Z,2022-08-09T18:00:00Z")
    assert format_axis(regular[:2]) == "2022-08-09T00:00:00Z,2022-08-09T06:00:00Z"
    assert format_axis(regular[:1]) == "2022-08-09T00:00:00Z"
    assert format_axis(np.array([], dtype="datetime64[s]")) == ""
    assert format_axis(regular.astype("datetime64[ns]")) == format_axis(regular)


def test_format_axis_refuses_what_it_cannot_write() -> None:
    for bad in (times("2022-08-09", "NaT"), times("10000-01-01"), times("-0001-01-01")):
        with pytest.raises(ValueError):
            format_axis(bad)


# --- select and nearest ----------------------------------------------------------------------

AXIS = np.arange(t("2022-08-09T00:00:00"), t("2022-08-11T00:00:00"), 3 * H)  # 16 steps


def test_select_interval_period_reduced_and_list() -> None:
    assert parse_time("2022-08-09T06:00:00Z/2022-08-09T12:00:00Z").select(AXIS).tolist() == (
        times("2022-08-09T06", "2022-08-09T09", "2022-08-09T12").tolist())
    assert parse_time("2022-08-09T00Z/2022-08-10T00Z/PT6H").select(AXIS).tolist() == times(
        "2022-08-09T00", "2022-08-09T06", "2022-08-09T12", "2022-08-09T18",
        "2022-08-10T00").tolist()
    assert parse_time("2022-08-10").select(AXIS).tolist() == AXIS[8:].tolist()
    assert list(parse_time("2022-08-09T03Z").select(AXIS)) == [t("2022-08-09T03")]
    assert parse_time("2022-08-09T04Z").select(AXIS).size == 0
    listed = parse_time("2022-08-10T03:00:00Z,2022-08-09T03:00:00Z,2022-08-09T03:00:00Z,"
                        "2022-08-09T02:00:00Z")
    assert listed.select(AXIS).tolist() == times("2022-08-09T03", "2022-08-10T03").tolist()


def test_select_keywords_and_awkward_axes() -> None:
    shuffled = np.concatenate([AXIS[::-1], AXIS[:3], times("NaT")])
    assert parse_time("all").select(shuffled).tolist() == AXIS.tolist()
    assert parse_time("current").select(shuffled).size == 0
    in_ns = AXIS.astype("datetime64[ns]")
    selected = parse_time("2022-08-09").select(in_ns)
    assert selected.dtype == np.dtype("datetime64[s]")
    assert selected.tolist() == AXIS[:8].tolist()
    assert parse_time("2022-08-09").select(np.array([], dtype="datetime64[s]")).size == 0


def test_nearest_snaps_within_tolerance_ties_to_the_earlier() -> None:
    selection = parse_time("2022-08-09T01:00:00Z,2022-08-09T04:30:00Z,2022-08-09T05:00:00Z,"
                           "2022-08-20T00:00:00Z,2022-08-09T06:00:00Z")
    assert selection.nearest(AXIS, H) == [
        (t("2022-08-09T01:00:00"), t("2022-08-09T00:00:00")),
        (t("2022-08-09T05:00:00"), t("2022-08-09T06:00:00")),
        (t("2022-08-09T06:00:00"), t("2022-08-09T06:00:00")),
    ]
    assert selection.nearest(AXIS, 90 * 60 * S)[1] == (t("2022-08-09T04:30:00"),
                                                       t("2022-08-09T03:00:00"))
    assert parse_time("2022-08-09T01:00:00Z").nearest(AXIS, H - S) == []
    assert parse_time("2022-08-09T01:00:00Z").nearest(AXIS, np.timedelta64(0, "s")) == []


def test_nearest_for_periods_plain_intervals_and_keywords() -> None:
    periods = parse_time("2022-08-09T00:00:00Z/2022-08-09T04:00:00Z/PT1H").nearest(AXIS, H)
    assert periods == [(t(f"2022-08-09T0{h}:00:00"), t(f"2022-08-09T0{s}:00:00"))
                       for h, s in [(0, 0), (1, 0), (2, 3), (3, 3), (4, 3)]]
    exact = parse_time("2022-08-09T02Z/2022-08-09T07Z").nearest(AXIS, 6 * H)
    assert exact == [(t("2022-08-09T03:00:00"),) * 2, (t("2022-08-09T06:00:00"),) * 2]
    assert parse_time("2022-08-09T04Z").nearest(AXIS, 6 * H) == []  # a unit is an interval
    assert parse_time("all").nearest(AXIS[:2], H) == [(x, x) for x in AXIS[:2]]
    assert parse_time("now").nearest(AXIS, H) == []
    assert parse_time("2022-08-09T01:00:00Z").nearest(times(), H) == []
    with pytest.raises(ValueError):
        parse_time("2022").nearest(AXIS, -H)


def test_nearest_refuses_an_unbounded_number_of_period_values() -> None:
    wide = parse_time("2022-08-09/2022-08-10/PT1S")
    with pytest.raises(InvalidDimensionValue, match=f"at most {MAX_NEAREST_VALUES}"):
        wide.nearest(AXIS, 12 * H)
    # A period list far longer than the limit is fine when few values are near the axis.
    sparse = parse_time("2000-01-01/2100-01-01/PT1M").nearest(AXIS, np.timedelta64(60, "s"))
    assert [served for _, served in sparse] == [x for x in AXIS for _ in range(3)]


def test_count() -> None:
    assert only(parse_time("2022-08-09T00Z/2022-08-10T00Z/PT6H")).count() == 5
    assert only(parse_time("2022-08-09T00:00:00Z")).count() == 1
    assert only(parse_time("2022-08-09")).count() is None


def test_the_nearest_limit_counts_each_requested_value_once() -> None:
    # 100 axis times a second apart, each with 2001 period values in tolerance: the ranges
    # overlap into 2100 distinct requests, far below the limit their sum would exceed.
    dense = np.arange(t("2022-08-09T00:00:00"), t("2022-08-09T00:01:40"), S)
    pairs = parse_time("2022-08-08/2022-08-10/PT1S").nearest(dense, 1000 * S)
    assert MAX_NEAREST_VALUES < 100 * 2001
    assert len(pairs) == 2100
    assert pairs[0] == (dense[0] - 1000 * S, dense[0])
    assert pairs[-1] == (dense[-1] + 1000 * S, dense[-1])


def test_unmatched_is_the_first_item_matching_no_time() -> None:
    axis = times("2022-08-09T06:00:00", "2022-08-09T12:00:00")
    assert parse_time("2022-08-09T06Z,2022-08-09/2022-08-10").unmatched(axis) is None
    assert parse_time("all").unmatched(axis) is None
    missing = parse_time("2022-08-09T06Z,2022-08-09T07Z/2022-08-09T11Z,2022-08-09T13Z")
    assert missing.unmatched(axis) == missing.items[1]
    period = parse_time("2022-08-09T05:00:00Z/2022-08-09T13:00:00Z/PT4H")  # 05, 09, 13
    assert period.unmatched(axis) == period.items[0]
    assert period.unmatched(axis, H) is None  # 05 is an hour from 06
    assert parse_time("2022-08-09T08:00:00Z").unmatched(axis, H) is not None


def test_format_interval_writes_an_item_as_given() -> None:
    for text in ("2022-08-09T06:00:00Z", "2022-08-09T06:00:00Z/2022-08-10T00:00:00Z",
                 "2022-08-09T06:00:00Z/2022-08-10T00:00:00Z/PT6H"):
        assert format_interval(only(parse_time(text))) == text


def test_time_interval_and_selection_reject_nonsense() -> None:
    with pytest.raises(ValueError):
        TimeInterval(t("2022-08-10"), t("2022-08-09"))
    with pytest.raises(ValueError):
        TimeInterval(t("2022-08-09"), t("2022-08-10"), np.timedelta64(0, "s"))
    with pytest.raises(ValueError):
        TimeSelection((), current=True, all=True)


# --- properties ------------------------------------------------------------------------------

moments = st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2200, 12, 31, 23, 59,
                                                                          59)
                       ).map(lambda d: d.replace(microsecond=0))
offsets_min = st.integers(-(23 * 60 + 59), 23 * 60 + 59)


def as_datetime64(moment: datetime) -> np.datetime64:
    return np.datetime64(moment, "s")


def zone_text(minutes: int, style: str) -> str:
    sign = "-" if minutes < 0 else "+"
    hh, mm = divmod(abs(minutes), 60)
    if style == "colon":
        return f"{sign}{hh:02d}:{mm:02d}"
    if style == "basic":
        return f"{sign}{hh:02d}{mm:02d}"
    return f"{sign}{hh:02d}"


@PROPERTY
@given(moments, offsets_min, st.sampled_from(["Z", "z", "", "colon", "basic", "hours"]),
       st.sampled_from(["", ".0", ".000"]))
def test_instant_round_trip(moment: datetime, offset: int, style: str, fraction: str) -> None:
    if style in ("Z", "z", ""):
        offset, zone = 0, style
    else:
        offset = int(offset / 60) * 60 if style == "hours" else offset
        zone = zone_text(offset, style)
    local = moment + timedelta(minutes=offset)
    text = local.strftime("%Y-%m-%dT%H:%M:%S") + fraction + zone
    selection = parse_time(text)
    assert selection.is_single()
    assert only(selection).start == as_datetime64(moment)
    assert parse_time(format_instant(only(selection).start)) == selection


@PROPERTY
@given(moments, offsets_min, st.sampled_from(["hour", "minute"]))
def test_reduced_precision_time_zones_shift_the_unit(moment: datetime, offset: int,
                                                     precision: str) -> None:
    shape = "%Y-%m-%dT%H" if precision == "hour" else "%Y-%m-%dT%H:%M"
    utc = only(parse_time(moment.strftime(shape) + "Z"))
    shifted = only(parse_time(moment.strftime(shape) + zone_text(offset, "colon")))
    assert shifted.start == utc.start - np.timedelta64(offset, "m")
    assert shifted.end - shifted.start == utc.end - utc.start


def unit_bounds(moment: datetime, precision: str) -> tuple[datetime, datetime]:
    if precision == "year":
        first = datetime(moment.year, 1, 1)
        return first, datetime(moment.year + 1, 1, 1)
    if precision == "month":
        first = datetime(moment.year, moment.month, 1)
        after = datetime(moment.year + moment.month // 12, moment.month % 12 + 1, 1)
        return first, after
    size = {"day": timedelta(days=1), "hour": timedelta(hours=1),
            "minute": timedelta(minutes=1)}[precision]
    first = datetime.min + (moment - datetime.min) // size * size
    return first, first + size


SHAPES = {"year": "%Y", "month": "%Y-%m", "day": "%Y-%m-%d", "hour": "%Y-%m-%dT%H",
          "minute": "%Y-%m-%dT%H:%M"}


@PROPERTY
@given(moments.filter(lambda d: d.year < 2200), st.sampled_from(list(SHAPES)))
def test_reduced_precision_covers_exactly_its_unit(moment: datetime, precision: str) -> None:
    first, after = unit_bounds(moment, precision)
    interval = only(parse_time(moment.strftime(SHAPES[precision])))
    assert interval.start == as_datetime64(first)
    assert interval.end == as_datetime64(after) - S
    start, end = as_datetime64(first), as_datetime64(after) - S
    probe = np.array([start - S, start, as_datetime64(moment), end, end + S])
    assert list(parse_time(moment.strftime(SHAPES[precision])).select(probe)) == sorted(
        {start, as_datetime64(moment), end})


@PROPERTY
@given(st.integers(1, 400 * 366 * 86_400))
def test_duration_round_trip(seconds: int) -> None:
    value = np.timedelta64(seconds, "s")
    assert parse_duration(format_duration(value)) == value


@PROPERTY
@given(st.one_of(
    st.builds(lambda w: ({"W": w},), st.integers(0, 500)),
    st.builds(lambda *c: (dict(zip("DHMS", c, strict=True)),),
              *[st.one_of(st.none(), st.integers(0, 10_000))] * 4),
))
def test_any_subset_of_components(components: tuple[dict[str, int | None]]) -> None:
    parts = {k: v for k, v in components[0].items() if v is not None}
    unit = {"W": 604_800, "D": 86_400, "H": 3600, "M": 60, "S": 1}
    date = "".join(f"{parts[k]}{k}" for k in "WD" if k in parts)
    time = "".join(f"{parts[k]}{k}" for k in "HMS" if k in parts)
    text = "P" + date + ("T" + time if time else "")
    total = sum(v * unit[k] for k, v in parts.items())
    if total == 0:
        with pytest.raises(InvalidDimensionValue):
            parse_duration(text)
    else:
        assert parse_duration(text) == np.timedelta64(total, "s")


BASE = seconds_of(t("1950-01-01"))


@st.composite
def regular_axes(draw: st.DrawFn) -> tuple[int, int, int]:
    step = draw(st.sampled_from([1, 60, 900, 3600, 3 * 3600, 6 * 3600, 86_400])
                | st.integers(1, 3 * 86_400))
    start = BASE + draw(st.integers(0, 150 * 365 * 86_400))
    return start, step, draw(st.integers(0, 60))


@PROPERTY
@given(regular_axes(), st.data())
def test_intervals_and_periods_select_exactly_their_subset(
        axis_spec: tuple[int, int, int], data: st.DataObject) -> None:
    start, step, count = axis_spec
    axis = [start + i * step for i in range(count)]
    span = max(count, 1) * step
    low = start + data.draw(st.integers(-2 * step, span + step))
    high = low + data.draw(st.integers(0, span + 2 * step))
    period = data.draw(st.none() | st.integers(1, 4).map(lambda k: k * step)
                       | st.integers(1, 5 * step))
    text = f"{format_instant(epoch(low))}/{format_instant(epoch(high))}"
    if period is not None:
        text += "/" + format_duration(np.timedelta64(period, "s"))
    expected = [x for x in axis
                if low <= x <= high and (period is None or (x - low) % period == 0)]
    got = parse_time(text).select(np.array(axis[::-1], dtype="datetime64[s]"))
    assert [seconds_of(x) for x in got] == expected


@PROPERTY
@given(regular_axes())
def test_format_axis_parses_back_to_a_regular_axis(axis_spec: tuple[int, int, int]) -> None:
    start, step, count = axis_spec
    axis = np.array([start + i * step for i in range(count)], dtype="datetime64[s]")
    extent = format_axis(axis)
    if count >= 3:
        assert extent.count("/") == 2 and "," not in extent
    if count:
        assert parse_time(extent).select(axis).tolist() == axis.tolist()


@PROPERTY
@given(st.lists(st.integers(0, 150 * 365 * 86_400), min_size=1, max_size=80))
def test_format_axis_parses_back_to_an_irregular_axis(offsets: list[int]) -> None:
    axis = np.array([BASE + o for o in offsets], dtype="datetime64[s]")
    extent = format_axis(axis)
    # A dense probe (the axis plus every second either side) still selects only the axis.
    probe = np.concatenate([axis, axis - S, axis + S])
    assert parse_time(extent).select(probe).tolist() == sorted(set(axis.tolist()))


def brute_nearest(requested: list[int], available: list[int], tol: int) -> list[tuple[int, int]]:
    found = {}
    for r in requested:
        near = [a for a in available if abs(a - r) <= tol]
        if near:
            found[r] = min(near, key=lambda a: (abs(a - r), a))
    return sorted(found.items())


@PROPERTY
@given(st.lists(st.integers(0, 200), max_size=20), st.lists(st.integers(0, 200), max_size=12),
       st.integers(0, 40), st.none() | st.tuples(st.integers(0, 200), st.integers(0, 100),
                                                 st.integers(1, 30)))
def test_nearest_matches_a_brute_force_search(available: list[int], instants: list[int],
                                              tol: int,
                                              periodic: tuple[int, int, int] | None) -> None:
    unit = 60  # minutes, so the values are whole seconds on any formatting
    items = [format_instant(epoch(BASE + i * unit)) for i in instants]
    requested = list(instants)
    if periodic is not None:
        first, length, step = periodic
        items.append(f"{format_instant(epoch(BASE + first * unit))}/"
                     f"{format_instant(epoch(BASE + (first + length) * unit))}/"
                     f"{format_duration(np.timedelta64(step * unit, 's'))}")
        requested += list(range(first, first + length + 1, step))
    if not items:
        return
    axis = np.array([BASE + a * unit for a in available], dtype="datetime64[s]")
    got = parse_time(",".join(items)).nearest(axis, np.timedelta64(tol * unit, "s"))
    expected = brute_nearest(requested, available, tol)
    assert [((seconds_of(r) - BASE) // unit, (seconds_of(s) - BASE) // unit)
            for r, s in got] == expected


ALPHABET = "0123456789-:TtZz+/,.PpWDHMSYwdhmsy \t\n٣２ÿ"


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=ALPHABET, max_size=60) | st.text(max_size=60))
@example("9999-12-31T23:59:59-23:59/9999/PT1S")
@example("0000-01-01T00:00:00+23:59")
@example("2022/2023/P" + "9" * 4400 + "D")
@example("2022/2023/PT0." + "0" * 4400 + "1S")
def test_fuzz_only_invalid_dimension_value(text: str) -> None:
    try:
        selection = parse_time(text)
    except InvalidDimensionValue as exc:
        assert str(exc).startswith("TIME=")
        return
    assert np.isin(selection.select(AXIS), AXIS).all()
    try:
        pairs = selection.nearest(AXIS, H)
    except InvalidDimensionValue as exc:  # too many period values near the axis
        assert f"at most {MAX_NEAREST_VALUES}" in str(exc)
        return
    assert all(abs(requested - served) <= H for requested, served in pairs)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=ALPHABET, max_size=30) | st.text(max_size=30))
def test_fuzz_durations(text: str) -> None:
    try:
        value = parse_duration(text)
    except InvalidDimensionValue as exc:
        assert str(exc).startswith("period=")
        return
    assert value > np.timedelta64(0, "s")



def test_parse_instant_reads_exactly_one_instant() -> None:
    from fewsmap.time.grammar import parse_instant

    assert parse_instant("2022-06-01T06:00:00.000Z") == np.datetime64("2022-06-01T06:00:00")
    assert parse_instant(" 2022-06-01T08:00:00+02:00 ") == np.datetime64("2022-06-01T06:00:00")
    assert parse_instant("2022-06-01T06Z") == np.datetime64("2022-06-01T06:00:00")
    for text in ("2022-06-01,2022-06-02", "2022-06-01/2022-06-02", "current", "soon", ""):
        with pytest.raises(InvalidDimensionValue, match="run="):
            parse_instant(text, "run")
