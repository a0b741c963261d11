"""TIME values (WMS 1.3.0 Annex C and D): parse, match against a time axis, format extents.

A request value is parsed once into a `TimeSelection` of `TimeInterval` items; matching
against the times a layer has (`TimeSelection.select`, `TimeSelection.nearest`) and the
capabilities extent (`format_axis`) are plain functions of numpy ``datetime64[s]`` arrays.

The accepted grammar, strict on purpose (nothing invalid accepted, nothing valid refused):

* a value is a keyword (``current``, ``present``, ``now``, ``all``; case-insensitive, only as
  the whole value) or a comma list of at most `MAX_TIME_ITEMS` items, at most
  `MAX_TIME_CHARS` characters in all; whitespace around items is ignored;
* an item is ``instant``, ``start/end`` or ``start/end/period`` (Annex C.2);
* an instant is an ISO 8601 extended-format date-time ``YYYY-MM-DDTHH:MM:SS(.fff)`` followed by
  ``Z``, an offset ``±hh:mm``, ``±hhmm`` or ``±hh``, or nothing (UTC), or one of the reduced
  precisions ``YYYY``, ``YYYY-MM``, ``YYYY-MM-DD`` (no zone), ``YYYY-MM-DDTHH`` and
  ``YYYY-MM-DDTHH:MM`` (zone optional), each meaning its whole unit (Annex D.1);
* ``T`` and ``Z`` may be lower case (RFC 3339 §5.6); a space instead of ``T`` is refused;
* fractional seconds are accepted only when zero: axes are at second resolution and a
  sub-second time is on none of them;
* ``24:00:00`` (ISO 8601:2000 end of day) is the next day's ``00:00:00``; leap seconds
  (``:60``) are refused because no ``datetime64`` axis holds one;
* a period is an ISO 8601 duration ``PnW`` or ``PnDTnHnMnS`` (any non-empty subset, a decimal
  fraction on the last component if the total is whole seconds); years and months are refused
  because they have no fixed length and forecast axes are not calendar based; zero and negative
  periods are refused.

Every refusal is an `InvalidDimensionValue` naming the parameter, the offending fragment
(clipped to 80 characters) and what is allowed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from typing import Any

import numpy as np

from fewsmap.errors import InvalidDimensionValue

MAX_TIME_CHARS = 10_000
MAX_TIME_ITEMS = 1_000
# `nearest` enumerates the period values within tolerance of an available time; a tiny period
# with a wide tolerance could otherwise ask for millions of answers.
MAX_NEAREST_VALUES = 100_000
# Longer than the whole 0000–9999 range an instant can name; any period beyond it is a typo.
MAX_DURATION_SECONDS = 3_652_425 * 86_400
FRAGMENT_CHARS = 80

CURRENT_KEYWORDS = frozenset({"current", "present", "now"})
ALL_KEYWORD = "all"

TIME_FORMS = (
    "allowed: an ISO 8601 instant YYYY-MM-DDTHH:MM:SS[Z|±hh:mm] or a reduced precision "
    "YYYY, YYYY-MM, YYYY-MM-DD, YYYY-MM-DDTHH[Z], YYYY-MM-DDTHH:MM[Z]; start/end; "
    "start/end/period; a comma list of these; or current, present, now, all alone")
INSTANT_FORMS = (
    "allowed: YYYY-MM-DDTHH:MM:SS with Z, ±hh:mm, ±hhmm or no zone (UTC), or a reduced "
    "precision YYYY, YYYY-MM, YYYY-MM-DD, YYYY-MM-DDTHH[Z], YYYY-MM-DDTHH:MM[Z]")
DURATION_FORMS = (
    "allowed: an ISO 8601 duration PnW or PnDTnHnMnS (e.g. PT6H, P1D, P1DT12H, PT30M)")

_SECOND = np.timedelta64(1, "s")
_ZERO = np.timedelta64(0, "s")

_INSTANT = re.compile(
    r"""
    (?P<year>[0-9]{4})
    (?:-(?P<month>[0-9]{2})
      (?:-(?P<day>[0-9]{2})
        (?:[Tt](?P<hour>[0-9]{2})
          (?::(?P<minute>[0-9]{2})
            (?::(?P<second>[0-9]{2})(?:\.(?P<fraction>[0-9]+))?)?
          )?
          (?P<zone>[Zz]|(?P<sign>[+-])(?P<zh>[0-9]{2})(?::?(?P<zm>[0-9]{2}))?)?
        )?
      )?
    )?
    """,
    re.VERBOSE,
)

_NUMBER = r"[0-9]+(?:[.,][0-9]+)?"
_DURATION = re.compile(
    rf"""
    (?P<sign>-)?[Pp]
    (?:(?P<weeks>{_NUMBER})[Ww]
      |(?:(?P<years>{_NUMBER})[Yy])?
       (?:(?P<months>{_NUMBER})[Mm])?
       (?:(?P<days>{_NUMBER})[Dd])?
       (?P<t>[Tt]
         (?:(?P<hours>{_NUMBER})[Hh])?
         (?:(?P<minutes>{_NUMBER})[Mm])?
         (?:(?P<seconds>{_NUMBER})[Ss])?
       )?
    )
    """,
    re.VERBOSE,
)
_UNIT_SECONDS = {"weeks": 604_800, "days": 86_400, "hours": 3_600, "minutes": 60,
                 "seconds": 1}
_COMPONENTS = ("years", "months", "weeks", "days", "hours", "minutes", "seconds")
_MAX_NUMBER_CHARS = 30


@dataclass(frozen=True)
class TimeInterval:
    """Inclusive [start, end] at second resolution (UTC, datetime64[s]); instants: start == end.

    With ``period`` (timedelta64[s]) only start, start+period, … ≤ end are meant; without it
    every time in [start, end]. A reduced-precision value ("2022-08-09", "2022-08-09T06Z") is
    the whole unit: [2022-08-09T00:00:00, 2022-08-09T23:59:59] resp. [06:00:00, 06:59:59].

    Raises
    ------
    ValueError
        If end is before start or the period is not positive (a programming error: parsed
        values never are).
    """

    start: np.datetime64
    end: np.datetime64
    period: np.timedelta64 | None = None

    def __post_init__(self) -> None:
        if np.isnat(self.start) or np.isnat(self.end) or self.end < self.start:
            raise ValueError(f"TimeInterval end {self.end} is before start {self.start}")
        if self.period is not None and not self.period > _ZERO:
            raise ValueError(f"TimeInterval period {self.period} is not positive")

    def is_instant(self) -> bool:
        """Tell whether the interval is one instant (start == end)."""
        return bool(self.start == self.end)

    def contains(self, times: np.ndarray) -> np.ndarray:
        """Mark the ``times`` (datetime64) this interval means.

        Parameters
        ----------
        times
            Any datetime64 array; NaT is never contained.

        Returns
        -------
        numpy.ndarray
            A boolean array of the shape of ``times``.
        """
        inside: np.ndarray = (times >= self.start) & (times <= self.end)
        if self.period is not None:
            inside &= (times - self.start) % self.period == _ZERO
        return inside

    def count(self) -> int | None:
        """Count the times this interval means; None when it is continuous (no period)."""
        if self.period is None:
            return 1 if self.is_instant() else None
        return int((self.end - self.start) // self.period) + 1


@dataclass(frozen=True)
class TimeSelection:
    """A parsed TIME (or DIM_REFERENCE_TIME) value.

    ``items`` is empty when ``current`` (TIME=current / present / now; the caller resolves
    it) or ``all`` (TIME=all: GetFeatureInfo, time series).
    """

    items: tuple[TimeInterval, ...]
    current: bool = False
    all: bool = False

    def __post_init__(self) -> None:
        if (self.current or self.all) and (self.items or (self.current and self.all)):
            raise ValueError("TimeSelection: current and all exclude each other and items")

    def is_single(self) -> bool:
        """Tell whether the selection is exactly one item that is one instant."""
        return (not self.current and not self.all and len(self.items) == 1
                and self.items[0].is_instant())

    def select(self, available: np.ndarray) -> np.ndarray:
        """Return the available times this selection matches exactly, sorted and unique.

        Parameters
        ----------
        available
            The times of an axis (datetime64 of any unit, any order; NaT ignored).

        Returns
        -------
        numpy.ndarray
            datetime64[s]; ``all`` gives every available time, ``current`` none (the caller
            resolves "current" to a time of its choosing).
        """
        times = _axis(available)
        if self.all:
            return np.unique(times)
        mask = np.zeros(times.shape, dtype=bool)
        for item in self.items:
            mask |= item.contains(times)
        return np.unique(times[mask])

    def nearest(self, available: np.ndarray,
                tolerance: np.timedelta64) -> list[tuple[np.datetime64, np.datetime64]]:
        """Pair each requested instant with the closest available time within ``tolerance``.

        Requested instants are the instant items and the values of period items; a plain
        interval (including a reduced-precision value) requests its exact matches (`select`).
        Ties go to the earlier available time; requests with no available time within
        ``tolerance`` (inclusive) are skipped. ``all`` pairs every available time with
        itself, ``current`` gives nothing.

        Parameters
        ----------
        available
            The times of an axis (datetime64 of any unit, any order; NaT ignored).
        tolerance
            The largest distance between a requested and a served time (timedelta64, ≥ 0).

        Returns
        -------
        list of (requested, served)
            Sorted by requested time, one pair per requested time, both datetime64[s].

        Raises
        ------
        ValueError
            If ``tolerance`` is negative or NaT.
        InvalidDimensionValue
            If period items request more than `MAX_NEAREST_VALUES` instants within tolerance.
        """
        tol = _whole_seconds(tolerance, "tolerance")
        if tol < 0:
            raise ValueError(f"tolerance {tolerance} is negative")
        times = np.unique(_axis(available))
        if self.all:
            return [(t, t) for t in times]
        exact: list[np.ndarray] = []
        wanted: list[np.ndarray] = []
        for item in self.items:
            if item.period is None and not item.is_instant():
                exact.append(times[item.contains(times)])
            elif item.period is None:
                wanted.append(np.array([item.start], dtype="datetime64[s]"))
            else:
                wanted.append(_period_values_near(item, times, tol))
        pairs: dict[np.datetime64, np.datetime64] = {}
        for found in exact:
            pairs.update((t, t) for t in found)
        if wanted and times.size:
            requested = np.unique(np.concatenate(wanted))
            served = _closest(requested, times, tol)
            keep = ~np.isnat(served)
            pairs.update(zip(requested[keep], served[keep], strict=True))
        return sorted(pairs.items())

    def unmatched(self, available: np.ndarray,
                  tolerance: np.timedelta64 | None = None) -> TimeInterval | None:
        """Return the first item that matches none of the available times (None: every one does).

        An instant matches its own time or, with ``tolerance``, one within it (`nearest`); a
        range one time inside it; a period one of its values, or one near within
        ``tolerance``. A client that lists a time must learn when there is nothing at it
        rather than get an answer silently without it (issue #13 item 7).

        Parameters
        ----------
        available
            The times of an axis (datetime64 of any unit, any order; NaT ignored).
        tolerance
            The layer's time tolerance, if it has one.
        """
        for item in self.items:
            alone = TimeSelection((item,))
            if alone.select(available).size:
                continue
            if tolerance is not None and alone.nearest(available, tolerance):
                continue
            return item
        return None


def parse_time(text: str, name: str = "TIME") -> TimeSelection:
    """Parse a TIME (or DIM_REFERENCE_TIME) value: keyword, instants, intervals, periods.

    Parameters
    ----------
    text
        The raw parameter value (see the module docstring for the grammar).
    name
        The parameter name used in error messages.

    Returns
    -------
    TimeSelection
        In the order the items were given.

    Raises
    ------
    InvalidDimensionValue
        If any part of ``text`` is not allowed; the message names the fragment.
    """
    if len(text) > MAX_TIME_CHARS:
        raise _invalid(name, text, f"is longer than {MAX_TIME_CHARS} characters; {TIME_FORMS}")
    stripped = text.strip()
    keyword = stripped.lower() if stripped.isascii() else ""
    if keyword in CURRENT_KEYWORDS:
        return TimeSelection((), current=True)
    if keyword == ALL_KEYWORD:
        return TimeSelection((), all=True)
    parts = stripped.split(",")
    if len(parts) > MAX_TIME_ITEMS:
        raise _invalid(name, text, f"has {len(parts)} items; at most {MAX_TIME_ITEMS} are "
                       "allowed")
    return TimeSelection(tuple(_parse_item(part.strip(), text, name) for part in parts))


@lru_cache(maxsize=4096)  # map and tile requests name the same few instants (7 µs each)
def parse_instant_span(text: str, name: str = "TIME") -> TimeInterval:
    """Parse one ISO 8601 instant, full or reduced precision, as the interval it covers (UTC).

    Parameters
    ----------
    text
        An instant without surrounding whitespace.
    name
        The parameter name used in error messages.

    Returns
    -------
    TimeInterval
        start == end for full precision, the whole unit otherwise; no period.

    Raises
    ------
    InvalidDimensionValue
        If ``text`` is not one instant of the accepted forms.
    """
    match = _INSTANT.fullmatch(text)
    if match is None:
        raise _invalid(name, text, f"is not an ISO 8601 instant{_hint(text)}; {INSTANT_FORMS}")
    g = match.groupdict()
    year, month, day = int(g["year"]), _int(g["month"], 1), _int(g["day"], 1)
    hour, minute, second = _int(g["hour"], 0), _int(g["minute"], 0), _int(g["second"], 0)
    if not 1 <= month <= 12:
        raise _invalid(name, text, f"has month {month:02d}; months are 01–12")
    if not 1 <= day <= _days_in_month(year, month):
        raise _invalid(name, text, f"has day {day:02d}; {year:04d}-{month:02d} has days "
                       f"01–{_days_in_month(year, month):02d}")
    if g["fraction"] is not None and g["fraction"].strip("0"):
        raise _invalid(name, text, "has a sub-second time, which is on no axis (axes are "
                       "at whole seconds); allowed: zero fractions such as .000")
    if hour == 24:
        # ISO 8601:2000 (cited by WMS 1.3.0) allows 24:00:00 as the end of the day.
        if g["second"] is None or minute or second:
            raise _invalid(name, text, "has hour 24, allowed only as 24:00:00 (the end of the "
                           "day); hours are 00–23")
    elif hour > 23:
        raise _invalid(name, text, f"has hour {hour:02d}; hours are 00–23")
    if minute > 59:
        raise _invalid(name, text, f"has minute {minute:02d}; minutes are 00–59")
    if second == 60:
        raise _invalid(name, text, "is a leap second, which no axis holds; seconds are 00–59")
    if second > 59:
        raise _invalid(name, text, f"has second {second:02d}; seconds are 00–59")
    offset = 0
    if g["sign"] is not None:
        zone_hours, zone_minutes = int(g["zh"]), _int(g["zm"], 0)
        if zone_hours > 23 or zone_minutes > 59:
            raise _invalid(name, text, f"has UTC offset {g['zone']}; offsets are ±hh:mm with "
                           "hh 00–23 and mm 00–59")
        offset = (1 if g["sign"] == "+" else -1) * (zone_hours * 3600 + zone_minutes * 60)
    month_start = np.datetime64(f"{year:04d}-{month:02d}", "M")
    if g["month"] is None:
        start = month_start.astype("datetime64[s]")
        end = (month_start + 12).astype("datetime64[s]") - _SECOND
        return TimeInterval(start, end)
    if g["day"] is None:
        start = month_start.astype("datetime64[s]")
        end = (month_start + 1).astype("datetime64[s]") - _SECOND
        return TimeInterval(start, end)
    seconds = (day - 1) * 86_400 + hour * 3600 + minute * 60 + second - offset
    start = month_start.astype("datetime64[s]") + np.timedelta64(seconds, "s")
    if g["hour"] is None:
        width = 86_400
    elif g["minute"] is None:
        width = 3_600
    elif g["second"] is None:
        width = 60
    else:
        width = 1
    return TimeInterval(start, start + np.timedelta64(width - 1, "s"))


def parse_duration(text: str, name: str = "period", *, allow_zero: bool = False
                   ) -> np.timedelta64:
    """Parse an ISO 8601 duration (weeks, days, hours, minutes, seconds) as timedelta64[s].

    Designators may be lower case (RFC 3339 Appendix A is case-insensitive); a decimal
    fraction (``.`` or ``,``) is allowed on the last component if the total is whole seconds.

    Parameters
    ----------
    text
        The duration, e.g. ``PT6H``, ``P1D``, ``P1DT12H``, ``P2W``, ``PT1.5H``.
    name
        The parameter name used in error messages.
    allow_zero
        Accept a zero duration (``PT0S``), e.g. for a tolerance; periods must be positive.

    Returns
    -------
    numpy.timedelta64
        In seconds.

    Raises
    ------
    InvalidDimensionValue
        If ``text`` is not such a duration, names years or months, is negative, zero (unless
        ``allow_zero``), sub-second or longer than `MAX_DURATION_SECONDS`.
    """
    match = _DURATION.fullmatch(text)
    if match is None:
        hint = (": weeks cannot be combined with other components (ISO 8601-1)"
                if re.fullmatch(r"[Pp].*[Ww].*", text) and len(text) > 3 else "")
        raise _invalid(name, text, f"is not an ISO 8601 duration{hint}; {DURATION_FORMS}")
    g = match.groupdict()
    if g["sign"] is not None:
        raise _invalid(name, text, f"is negative; {DURATION_FORMS}, greater than zero")
    if g["years"] is not None or g["months"] is not None:
        raise _invalid(name, text, "names years or months, which have no fixed length and "
                       "forecast axes are not calendar based; use days or weeks (P30D, P52W); "
                       + DURATION_FORMS)
    present = [c for c in _COMPONENTS if g[c] is not None]
    if not present or (g["t"] is not None and not any(
            g[c] is not None for c in ("hours", "minutes", "seconds"))):
        raise _invalid(name, text, f"has no component after P or T; {DURATION_FORMS}")
    total = Fraction(0)
    for component in present:
        number = g[component].replace(",", ".")
        whole, _, fraction = number.partition(".")
        if fraction and component != present[-1]:
            raise _invalid(name, text, "has a decimal fraction before its last component; "
                           "only the last may have one")
        if len(whole.lstrip("0")) + len(fraction.rstrip("0")) > _MAX_NUMBER_CHARS:
            raise _invalid(name, text, f"has a number of more than {_MAX_NUMBER_CHARS} "
                           "digits")
        total += Fraction(number) * _UNIT_SECONDS[component]
    if total.denominator != 1:
        raise _invalid(name, text, "is not a whole number of seconds; sub-second periods "
                       "match no axis")
    if total == 0 and not allow_zero:
        raise _invalid(name, text, f"is zero; {DURATION_FORMS}, greater than zero")
    if total > MAX_DURATION_SECONDS:
        raise _invalid(name, text, f"is longer than {MAX_DURATION_SECONDS // 86_400} days "
                       "(the whole range of ISO 8601 years)")
    return np.timedelta64(int(total), "s")


def format_duration(value: np.timedelta64) -> str:
    """Format a non-negative duration as ISO 8601 days, hours, minutes, seconds.

    Parameters
    ----------
    value
        A timedelta64 of whole seconds, e.g. 6 h → ``PT6H``, 30 h → ``P1DT6H``, 0 → ``PT0S``.

    Returns
    -------
    str
        The duration; weeks are written as days (``P7D``).

    Raises
    ------
    ValueError
        If ``value`` is NaT, negative or not whole seconds.
    """
    seconds = _whole_seconds(value, "duration")
    if seconds < 0:
        raise ValueError(f"duration {value} is negative; ISO 8601 durations are not")
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, secs = divmod(rest, 60)
    date_part = f"{days}D" if days else ""
    time_part = "".join(f"{n}{unit}" for n, unit in ((hours, "H"), (minutes, "M"),
                                                       (secs, "S")) if n)
    if not date_part and not time_part:
        return "PT0S"
    return f"P{date_part}{'T' + time_part if time_part else ''}"


def format_instant(value: np.datetime64) -> str:
    """Format a UTC instant as ``yyyy-MM-ddTHH:mm:ssZ``.

    Raises
    ------
    ValueError
        If ``value`` is NaT or outside the years 0000–9999 (not writable in this form).
    """
    text = str(np.asarray(value).astype("datetime64[s]"))
    if np.isnat(value) or not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}", text):
        raise ValueError(f"{value} cannot be written as yyyy-MM-ddTHH:mm:ssZ")
    return text + "Z"


def format_interval(item: TimeInterval) -> str:
    """Format a TIME item as it is written: ``instant``, ``start/end`` or ``start/end/period``."""
    if item.is_instant():
        return format_instant(item.start)
    period = "" if item.period is None else f"/{format_duration(item.period)}"
    return f"{format_instant(item.start)}/{format_instant(item.end)}{period}"


def format_axis(times: np.ndarray) -> str:
    """Format a time axis as a capabilities extent (WMS 1.3.0 Annex C.3).

    Parameters
    ----------
    times
        datetime64 values (any order; duplicates ignored).

    Returns
    -------
    str
        ``start/end/period`` when the sorted unique times are regular with at least three
        values, else a comma list; times as ``yyyy-MM-ddTHH:mm:ssZ``; empty for no times.

    Raises
    ------
    ValueError
        If a time is NaT or cannot be formatted (see `format_instant`).
    """
    values = np.asarray(times).astype("datetime64[s]").ravel()
    if np.isnat(values).any():
        raise ValueError("a time axis holds NaT")
    values = np.unique(values)
    steps = np.diff(values)
    if values.size >= 3 and bool((steps == steps[0]).all()):
        return (f"{format_instant(values[0])}/{format_instant(values[-1])}/"
                f"{format_duration(steps[0])}")
    return ",".join(format_instant(t) for t in values)


def _parse_item(item: str, text: str, name: str) -> TimeInterval:
    if not item:
        what = "is empty" if not text.strip() else "has an empty list item"
        raise _invalid(name, text, f"{what}; {TIME_FORMS}")
    parts = item.split("/")
    if any(p.isascii() and p.lower() in CURRENT_KEYWORDS | {ALL_KEYWORD} for p in parts):
        raise _invalid(name, item, f"uses a keyword, allowed only as the whole value; "
                       f"{TIME_FORMS}")
    if len(parts) > 3:
        raise _invalid(name, item, f"has {len(parts) - 1} '/'; {TIME_FORMS}")
    if any(not part for part in parts):
        raise _invalid(name, item, f"has an empty start, end or period; open intervals are "
                       f"not supported; {TIME_FORMS}")
    if len(parts) == 1:
        if _looks_like_duration(item):
            raise _invalid(name, item, "is a period, allowed only as the third part of "
                           "start/end/period")
        return parse_instant_span(item, name)
    if any(_looks_like_duration(part) for part in parts[:2]):
        raise _invalid(name, item, "combines an instant with a duration; write start/end or "
                       "start/end/period")
    first, last = parse_instant_span(parts[0], name), parse_instant_span(parts[1], name)
    if last.end < first.start:
        raise _invalid(name, item, "ends before it starts; allowed: start/end with end at "
                       "or after start")
    period = parse_duration(parts[2], name) if len(parts) == 3 else None
    return TimeInterval(first.start, last.end, period)


def _looks_like_duration(text: str) -> bool:
    return text[:1] in ("P", "p") or text[:2] in ("-P", "-p")


def _hint(text: str) -> str:
    if " " in text:
        return " (use 'T' between date and time, not a space)"
    if re.fullmatch(r"[0-9]{8}([Tt].*)?", text):
        return " (write the extended format with '-' and ':')"
    return ""


def _invalid(name: str, fragment: str, reason: str) -> InvalidDimensionValue:
    clipped = repr(fragment[:FRAGMENT_CHARS]) + ("…" if len(fragment) > FRAGMENT_CHARS else "")
    return InvalidDimensionValue(f"{name}={clipped} {reason}")


def _int(text: str | None, default: int) -> int:
    return default if text is None else int(text)


def _days_in_month(year: int, month: int) -> int:
    if month == 2:
        leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
        return 29 if leap else 28
    return 30 if month in (4, 6, 9, 11) else 31


def _whole_seconds(value: Any, what: str) -> int:
    delta = np.timedelta64(value)
    if np.isnat(delta):
        raise ValueError(f"{what} is NaT")
    seconds = delta.astype("timedelta64[s]")
    if seconds != delta:
        raise ValueError(f"{what} {value} is not a whole number of seconds")
    return int(seconds.astype(np.int64))


def _axis(available: np.ndarray) -> np.ndarray:
    values = np.asarray(available).astype("datetime64[s]").ravel()
    kept: np.ndarray = values[~np.isnat(values)]
    return kept


def _period_values_near(item: TimeInterval, times: np.ndarray, tol: int) -> np.ndarray:
    """Return the values of a period item within ``tol`` seconds of a sorted unique axis."""
    assert item.period is not None
    if not times.size:
        return np.array([], dtype="datetime64[s]")
    step = _whole_seconds(item.period, "period")
    last = int((item.end - item.start) // item.period)
    offsets = (times - item.start.astype("datetime64[s]")).astype(np.int64)
    low = np.maximum(-((tol - offsets) // step), 0)  # ceil((offset - tol) / step)
    high = np.minimum((offsets + tol) // step, last)
    # The ranges are sorted by both ends (the axis is sorted); count their union only.
    previous = np.concatenate(([-1], np.maximum.accumulate(high)[:-1]))
    low = np.maximum(low, previous + 1)
    counts = np.maximum(high - low + 1, 0)
    total = int(counts.sum())
    if total > MAX_NEAREST_VALUES:
        raise InvalidDimensionValue(
            f"{format_interval(item)} requests {total} times near the axis; at most "
            f"{MAX_NEAREST_VALUES} are allowed (use a longer period or a shorter interval)")
    indices = (np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
               + np.repeat(low, counts))
    values: np.ndarray = item.start.astype("datetime64[s]") + indices * step * _SECOND
    return values


def _closest(requested: np.ndarray, times: np.ndarray, tol: int) -> np.ndarray:
    """Return the closest of the sorted ``times`` for each request (ties: earlier), else NaT."""
    after = np.searchsorted(times, requested, side="left")
    before = np.clip(after - 1, 0, times.size - 1)
    after_c = np.clip(after, 0, times.size - 1)
    to_before = np.where(after > 0, (requested - times[before]).astype(np.int64), np.iinfo(
        np.int64).max)
    to_after = np.where(after < times.size, (times[after_c] - requested).astype(np.int64),
                        np.iinfo(np.int64).max)
    use_after = to_after < to_before
    served = np.where(use_after, times[after_c], times[before])
    distance = np.where(use_after, to_after, to_before)
    return np.where(distance <= tol, served, np.datetime64("NaT", "s"))


def parse_instant(text: str, name: str = "TIME") -> np.datetime64:
    """Parse exactly one instant (a run's reference time, say) as UTC seconds.

    Reduced precision means the start of its unit (``2022-06-01T06Z`` is 06:00:00).

    Raises
    ------
    InvalidDimensionValue
        If ``text`` is not one instant (lists, intervals and keywords are refused).
    """
    stripped = text.strip()
    if "," in stripped or "/" in stripped:
        raise _invalid(name, stripped, "must be one instant, not a list or an interval")
    return parse_instant_span(stripped, name).start
