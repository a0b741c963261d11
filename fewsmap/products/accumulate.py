"""Accumulations: the sum of a run's per-step amounts over a window ending at a valid time.

``accumulate=PT24H`` at valid time t is the sum of the run's fields at its valid times in
(t - PT24H, t]: each field holds the amount of its step (the time since the run's previous
valid time, or since the run started for its first), as precipitation in NWP output does
once de-accumulated (`deaccumulate`, applied at ingest: docs/design/accumulations.md). The
window must be a whole number of the run's steps: t - window is a valid time of the run, or
the run's start (its reference time); a window reaching before the run started is refused.

Sums are float32, added step after step in valid-time order: exactly what numpy (and
xarray, ``sum(skipna=False)``) gives over the stacked steps; a cell missing at any step of
the window has no sum (a sum over part of a window is not the window's amount). A window
holds at most `MAX_WINDOW` and `MAX_STEPS` steps, so a map reads a bounded number of fields.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import xarray as xr

from fewsmap.cancel import checkpoint
from fewsmap.errors import FewsmapError, InvalidDimensionValue, InvalidParameterValue
from fewsmap.store.cube import RunInfo
from fewsmap.store.run import ACCUMULATION_ATTR, ORIGINAL_ATTR, START_STEPS_ATTR
from fewsmap.time.grammar import format_duration, parse_duration
from fewsmap.time.instants import format_time

MAX_WINDOW = np.timedelta64(31 * 86400, "s")
MAX_STEPS = 248  # 31 days of 3-hourly steps; an hourly run sums at most ~10 days
PER_STEP = "per step"
SINCE_START = ("accumulated since the run started (GRIB stepType accum, every message from "
               "startStep 0); stored as the amount of each step: the first step as it was, "
               "every later one minus the step before")


@dataclass(frozen=True)
class StepSum:
    """The store step indices whose fields are summed, in valid-time order: what a request
    reads along the step dimension in place of one step's index."""

    steps: tuple[int, ...]

    @property
    def relative_cost(self) -> float:
        """Fields read relative to one step's."""
        return float(len(self.steps))


StepSelector = int | StepSum


def parse_window(text: str | None) -> np.timedelta64 | None:
    """The accumulation window ``text`` names (an ISO 8601 duration), None when absent.

    Raises
    ------
    InvalidParameterValue
        For anything but a positive duration of at most `MAX_WINDOW`.
    """
    if text is None or not text.strip():
        return None
    try:
        window = parse_duration(text.strip(), "ACCUMULATE")
    except FewsmapError as exc:
        raise InvalidParameterValue(str(exc)) from exc
    if window > MAX_WINDOW:
        raise InvalidParameterValue(
            f"ACCUMULATE={text[:40]!r} is longer than the {format_duration(MAX_WINDOW)} an "
            "accumulation may span")
    return window


def window_times(run: RunInfo, valid_time: np.datetime64,
                 window: np.timedelta64) -> np.ndarray:
    """The run's valid times in (valid_time - window, valid_time], ascending.

    Raises
    ------
    InvalidDimensionValue
        If the window reaches before the run started, does not begin at one of its valid
        times (it is not a whole number of steps), or holds more than `MAX_STEPS` steps.
    """
    start = valid_time - window
    said = f"ACCUMULATE={format_duration(window)} at {format_time(valid_time)}"
    if start < run.reference_time:
        raise InvalidDimensionValue(
            f"{said} reaches back to {format_time(start)}, before run {run.label} started; "
            f"its first whole window ends at {format_time(run.reference_time + window)}")
    if start != run.reference_time and not (run.valid_times == start).any():
        raise InvalidDimensionValue(
            f"{said} begins at {format_time(start)}, which is not a valid time of run "
            f"{run.label}: the window must be a whole number of its steps "
            f"({_steps_text(run, valid_time)})")
    inside = run.valid_times[(run.valid_times > start) & (run.valid_times <= valid_time)]
    if inside.size > MAX_STEPS:
        raise InvalidDimensionValue(f"{said} sums {inside.size} steps; at most {MAX_STEPS}")
    return inside


def _steps_text(run: RunInfo, valid_time: np.datetime64) -> str:
    before = run.valid_times[run.valid_times <= valid_time][-4:]
    return "valid times up to it: " + ", ".join(format_time(t) for t in before)


def step_sum(run: RunInfo, valid_time: np.datetime64, window: np.timedelta64) -> StepSum:
    """The store steps `window_times` names, as a selector.

    Raises
    ------
    InvalidDimensionValue
        As `window_times`.
    """
    times = window_times(run, valid_time, window)
    return StepSum(tuple(int(run.step_slots[np.flatnonzero(run.valid_times == t)[0]])
                         for t in times))


def complete_times(run: RunInfo, times: np.ndarray, window: np.timedelta64) -> np.ndarray:
    """Those of ``times`` whose window lies within the run (a series lists only them)."""
    keep = []
    for when in times:
        try:
            window_times(run, when, window)
        except InvalidDimensionValue:
            continue
        keep.append(when)
    return np.array(keep, dtype="datetime64[s]")


def read_sum(read: Callable[[int], np.ndarray], steps: StepSelector) -> np.ndarray:
    """Read one step's field (``read(step)``), or the float32 sum of several read in turn
    (one field held beside the sum; a cancelled render stops between reads)."""
    if not isinstance(steps, StepSum):
        return read(steps)
    total: np.ndarray | None = None
    for step in steps.steps:
        checkpoint()
        values = read(step)
        total = values.astype(np.float32) if total is None else np.add(total, values,
                                                                       dtype=np.float32)
    assert total is not None, "a window holds at least one step"
    return total


def window_sums(values: np.ndarray, times: np.ndarray, wanted: np.ndarray,
                run: RunInfo, window: np.timedelta64) -> np.ndarray:
    """Sum ``values`` (read at ``times`` along axis 0) over the window ending at each of
    ``wanted``: float32, axis 0 then follows ``wanted``.

    Raises
    ------
    InvalidDimensionValue
        As `window_times`.
    """
    out = np.empty((len(wanted), *values.shape[1:]), dtype=np.float32)
    for k, when in enumerate(wanted):
        rows = np.searchsorted(times, window_times(run, when, window))
        total = values[rows[0]].astype(np.float32)
        for row in rows[1:]:
            total = np.add(total, values[row], dtype=np.float32)
        out[k] = total
    return out


def needed_times(run: RunInfo, wanted: Sequence[np.datetime64] | np.ndarray,
                 window: np.timedelta64) -> np.ndarray:
    """Every valid time the windows ending at ``wanted`` read, ascending.

    Raises
    ------
    InvalidDimensionValue
        As `window_times`.
    """
    found = [window_times(run, when, window) for when in wanted]
    return np.unique(np.concatenate(found)).astype("datetime64[s]") if found else \
        np.array([], dtype="datetime64[s]")


def most_steps(run: RunInfo, window: np.timedelta64) -> int:
    """The most steps any whole window of the run sums (at least 1): colour ranges scale by
    it, so that every valid time of the run is drawn (and legended) on one scale."""
    ends = run.valid_times[run.valid_times >= run.reference_time + window]
    starts = ends - window
    counts = np.searchsorted(run.valid_times, ends, "right") - np.searchsorted(
        run.valid_times, starts, "right")
    return int(max(1, counts.max(initial=1)))


def summed_range(value_range: tuple[float, float] | None,
                 steps: int) -> tuple[float, float] | None:
    """The colour range of sums of ``steps`` values each within ``value_range`` (the run's
    range: the same for every tile, so tiles have no seams)."""
    if value_range is None or steps <= 1:
        return value_range
    low, high = value_range
    return min(low, low * steps), max(high, high * steps)


def accumulated_since_start(field: xr.DataArray) -> bool:
    """Whether ``field`` holds GRIB accumulations since the run started: every message of
    its parameter accumulates from step 0 (ECMWF's ``tp``), not over each step's period
    (buckets, already amounts per period)."""
    return (field.attrs.get("GRIB_stepType") == "accum"
            and list(field.attrs.get(START_STEPS_ATTR, ())) == [0])


def per_step_pieces(pieces: Sequence[xr.DataArray]) -> tuple[xr.DataArray, ...]:
    """A run's pieces of one variable, turned into per-step amounts where they are
    accumulations since the run started (`accumulated_since_start`).

    A step's amount needs the step before it, which may be in another piece (one file per
    step, as the RFCs publish QPF): such pieces are joined (lazily, missing fields NaN) into
    one and de-accumulated along ``step`` (`deaccumulate`). Other pieces are left as they are.
    """
    if not pieces or not all(accumulated_since_start(p) for p in pieces):
        return tuple(pieces)
    joined = pieces[0] if len(pieces) == 1 else xr.merge(
        [p.rename("field") for p in pieces], join="outer", compat="no_conflicts",
        combine_attrs="override")["field"]
    joined.encoding = dict(pieces[0].encoding)
    return (deaccumulate(joined, SINCE_START),)


def deaccumulate(field: xr.DataArray, since: str) -> xr.DataArray:
    """Per-step amounts of a field accumulated from a fixed start over its steps: the first
    step as it is (the amount since the start), every later one minus the step before
    (float32, as xarray's ``diff``), recorded in the attributes.

    ``since`` says what the original values were, for `ORIGINAL_ATTR`.
    """
    ordered = field.sortby("step")
    first = ordered.isel(step=[0])
    rest = ordered.diff("step", label="upper")
    amounts = xr.concat([first, rest], dim="step").astype(np.float32)
    amounts.attrs = {**field.attrs, ACCUMULATION_ATTR: PER_STEP, ORIGINAL_ATTR: since}
    amounts.encoding = dict(field.encoding)
    return amounts.transpose(*field.dims)
