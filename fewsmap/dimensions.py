"""Dimension values: parsing instants, the default valid time, matching a run's times."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd

from fewsmap.errors import InvalidDimensionValue
from fewsmap.store.cube import RunInfo
from fewsmap.store.run import format_time


def parse_instant(text: str, name: str = "TIME") -> np.datetime64:
    """Parse one ISO 8601 instant (``Z``, offsets and milliseconds accepted) as UTC seconds.

    Raises
    ------
    InvalidDimensionValue
        If ``text`` is not one instant.
    """
    if "," in text or "/" in text:
        raise InvalidDimensionValue(
            f"{name}={text[:80]!r}: one instant per request (lists and ranges are not "
            "accepted here)")
    try:
        stamp = pd.Timestamp(text.strip())
    except (ValueError, TypeError, OverflowError) as exc:
        raise InvalidDimensionValue(f"{name}={text[:80]!r} is not an ISO 8601 instant") from exc
    if stamp is pd.NaT:
        raise InvalidDimensionValue(f"{name}={text[:80]!r} is not an ISO 8601 instant")
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert("UTC").tz_localize(None)
    return np.datetime64(stamp.to_datetime64(), "s")


def default_time(run: RunInfo, now: np.datetime64 | None = None) -> np.datetime64:
    """The valid time shown when a request names none: the run's first step at or after now.

    FEWS and GeoServer default to the last step, the least useful one for a forecast
    (reference/peers.md); a run wholly in the past shows its first step.
    """
    now = np.datetime64(datetime.now(UTC).replace(tzinfo=None), "s") if now is None else now
    upcoming = run.valid_times[run.valid_times >= now]
    return np.datetime64(upcoming[0] if upcoming.size else run.valid_times[0], "s")


def match_time(run: RunInfo, when: np.datetime64) -> np.datetime64:
    """Return ``when`` if ``run`` has that valid time.

    Raises
    ------
    InvalidDimensionValue
        Naming the run's available times.
    """
    if not np.any(run.valid_times == when):
        raise InvalidDimensionValue(
            f"TIME={format_time(when)} is not a valid time of run {run.label}; it has "
            f"{len(run.valid_times)} times from {format_time(run.valid_times[0])} "
            f"to {format_time(run.valid_times[-1])}")
    return when
