"""Which valid times a request means: TIME, DIM_LEAD_TIME, current, nearest matching."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fewsmap.dimensions import REQUIRED, default_time
from fewsmap.errors import InvalidDimensionValue, InvalidParameterValue, MissingDimensionValue
from fewsmap.store.cube import RunInfo
from fewsmap.time.grammar import (
    TimeInterval,
    TimeSelection,
    format_axis,
    format_duration,
    format_interval,
)
from fewsmap.time.instants import format_time

REDUCERS = ("sum", "max", "min", "mean")
LISTED_TIMES = 12  # times named in a refusal before "…"


@dataclass(frozen=True)
class ResolvedTimes:
    """The valid times a request is served, and where nearest matching changed one."""

    times: tuple[np.datetime64, ...]
    substitutions: tuple[tuple[np.datetime64, np.datetime64], ...] = ()  # (asked, served)


def resolve_times(run: RunInfo, selection: TimeSelection | None,
                  lead_time: np.timedelta64 | None = None,
                  tolerance: np.timedelta64 | None = None,
                  default: str = "now") -> ResolvedTimes:
    """Resolve TIME (and/or DIM_LEAD_TIME) against a run's valid times.

    Any two of reference time (the run), lead time and valid time determine the third.
    Without TIME, or with ``current``, the layer's ``default`` policy chooses (``now``,
    ``first``, ``last``; ``required`` refuses). With a ``tolerance`` the nearest valid time
    within it is served, and the substitution reported. Every item TIME lists must match a
    valid time of the run (`refuse_unmatched`); a range takes the times inside it.

    Raises
    ------
    MissingDimensionValue
        If TIME is required and absent.
    InvalidDimensionValue
        If an item matches nothing, or TIME and DIM_LEAD_TIME disagree.
    """
    if lead_time is not None:
        target = (run.reference_time + lead_time).astype("datetime64[s]")
        if selection is not None and not selection.current and \
                not selection.select(np.array([target], dtype="datetime64[s]")).size:
            raise InvalidDimensionValue(
                f"TIME and DIM_LEAD_TIME={format_duration(lead_time)} disagree: run "
                f"{run.label} plus that lead time is {format_time(target)}")
        selection = TimeSelection((TimeInterval(target, target),))
    elif selection is not None:
        refuse_unmatched(run, selection, tolerance)
    if selection is None or selection.current:
        if default == REQUIRED:
            raise MissingDimensionValue("TIME is required for this layer (no default is set)")
        return ResolvedTimes((default_time(run, default),))
    if tolerance is None:
        exact = selection.select(run.valid_times)
        if not exact.size:
            raise InvalidDimensionValue(_no_match(run))
        return ResolvedTimes(tuple(exact.astype("datetime64[s]")))
    # Every listed time is served its nearest, also when another one matches exactly.
    pairs = selection.nearest(run.valid_times, tolerance)
    if not pairs:
        raise InvalidDimensionValue(_no_match(run, tolerance))
    served = tuple(dict.fromkeys(served for _, served in pairs))
    changed = tuple((asked, served) for asked, served in pairs if asked != served)
    return ResolvedTimes(served, changed)


def refuse_unmatched(run: RunInfo, selection: TimeSelection,
                     tolerance: np.timedelta64 | None = None, name: str = "TIME") -> None:
    """Refuse a listed instant, range or period that matches no valid time of ``run``.

    ``run`` lists only the valid times holding data (`fewsmap.catalog.Catalog.runs`), so a
    time absent from the run and a time at which it holds no data (a lagged ensemble's
    empty steps) are refused alike, never left out of the answer in silence (issue #13
    item 7). The instants of a range that hold no data are left out: a range asks for
    whatever lies inside it.

    Raises
    ------
    InvalidDimensionValue
        Naming the item and the times the run holds data at.
    """
    item = selection.unmatched(run.valid_times, tolerance)
    if item is None:
        return
    within = "" if tolerance is None else (
        f" (nor one within {format_duration(tolerance)}, the layer's time tolerance)")
    raise InvalidDimensionValue(
        f"{name} value {format_interval(item)} names no valid time of run {run.label} "
        f"holding data{within}; {held_times(run)}")


def held_times(run: RunInfo) -> str:
    """Say which valid times ``run`` holds data at, for a refusal (the first `LISTED_TIMES`)."""
    times = run.valid_times
    listing = format_axis(times)
    if times.size > LISTED_TIMES and "," in listing:
        listing = (",".join(format_time(t) for t in times[:LISTED_TIMES])
                   + f",… {format_time(times[-1])}")
    return f"the run holds data at {times.size} time{'s' * (times.size != 1)}: {listing}"


def limit_times(selection: TimeSelection | None, resolved: int, limit: int) -> None:
    """Refuse a TIME naming more than ``limit`` values (``max_time_values``) before any read.

    Both the list items as given and the valid times they resolve to count: a short range
    can name many steps.

    Raises
    ------
    InvalidParameterValue
        Naming the count and the limit.
    """
    count = max(resolved, len(selection.items) if selection is not None else 0)
    if count > limit:
        raise InvalidParameterValue(f"TIME names {count} values; at most {limit} are allowed "
                                    "(max_time_values): ask for fewer times")


def _no_match(run: RunInfo, tolerance: np.timedelta64 | None = None) -> str:
    within = f" within {format_duration(tolerance)}" if tolerance is not None else ""
    return f"TIME matches no valid time of run {run.label}{within}; {held_times(run)}"
