"""Which valid times a request means: TIME, DIM_LEAD_TIME, current, nearest matching."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fewsmap.dimensions import REQUIRED, default_time
from fewsmap.errors import InvalidDimensionValue, InvalidParameterValue, MissingDimensionValue
from fewsmap.store.cube import RunInfo
from fewsmap.store.run import format_time
from fewsmap.timespec import TimeInterval, TimeSelection, format_duration

REDUCERS = ("sum", "max", "min", "mean")


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
    within it is served, and the substitution reported.

    Raises
    ------
    MissingDimensionValue
        If TIME is required and absent.
    InvalidDimensionValue
        If nothing matches, or TIME and DIM_LEAD_TIME disagree.
    """
    if lead_time is not None:
        target = (run.reference_time + lead_time).astype("datetime64[s]")
        if selection is not None and not selection.current and \
                not selection.select(np.array([target], dtype="datetime64[s]")).size:
            raise InvalidDimensionValue(
                f"TIME and DIM_LEAD_TIME={format_duration(lead_time)} disagree: run "
                f"{run.label} plus that lead time is {format_time(target)}")
        selection = TimeSelection((TimeInterval(target, target),))
    if selection is None or selection.current:
        if default == REQUIRED:
            raise MissingDimensionValue("TIME is required for this layer (no default is set)")
        return ResolvedTimes((default_time(run, default),))
    exact = selection.select(run.valid_times)
    if tolerance is None or exact.size:
        if not exact.size:
            raise InvalidDimensionValue(_no_match(run))
        return ResolvedTimes(tuple(exact.astype("datetime64[s]")))
    pairs = selection.nearest(run.valid_times, tolerance)
    if not pairs:
        raise InvalidDimensionValue(_no_match(run, tolerance))
    served = tuple(dict.fromkeys(served for _, served in pairs))
    changed = tuple((asked, served) for asked, served in pairs if asked != served)
    return ResolvedTimes(served, changed)


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
    return (f"TIME matches no valid time of run {run.label}{within}; it has "
            f"{len(run.valid_times)} times from {format_time(run.valid_times[0])} to "
            f"{format_time(run.valid_times[-1])}")
