"""Stored instants in their one canonical form: UTC seconds, written ``yyyy-MM-ddTHH:mm:ssZ``.

Request text goes through `fewsmap.time.grammar` (lists, intervals, reduced precision, clear
errors); these are for the service's own stamps (run records, layer ids, file names).
"""

from __future__ import annotations

from typing import Any, cast

import numpy as np


def format_time(t: np.datetime64) -> str:
    """Format a UTC instant as ``yyyy-MM-ddTHH:mm:ssZ``."""
    return str(as_seconds(t)) + "Z"


def format_times(times: np.ndarray) -> list[str]:
    """`format_time` of every instant of an array, at once."""
    text = np.datetime_as_string(np.asarray(times, dtype="datetime64[s]").ravel(), unit="s")
    return [f"{t}Z" for t in text.tolist()]


def as_seconds(t: Any) -> np.datetime64:
    """Return an instant (datetime64 of any unit, ISO text, seconds since 1970) in seconds."""
    return cast(np.datetime64, np.asarray(t, dtype="datetime64[s]")[()])


def parse_stamp(text: str) -> np.datetime64:
    """Parse a stamp the service wrote (ISO 8601 UTC, trailing ``Z`` optional) to datetime64[s]."""
    return np.datetime64(text.removesuffix("Z"), "s")
