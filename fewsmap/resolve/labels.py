"""Member and level labels: the statistics a layer offers, and how answers name what was
read (labels, statistics, lead times).

Every front (GetFeatureInfo, /api/timeseries, EDR) writes a label the same way: a whole
number as an int, a statistic by its label (``mean``, ``above:20``), a lead time as an ISO
8601 duration.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from fewsmap.catalog import Layer
from fewsmap.dimensions import LayerDimension
from fewsmap.errors import InvalidDimensionValue
from fewsmap.products.ensemble import EnsembleStatistic, MemberStatistic, Selector
from fewsmap.time.grammar import format_duration

# Properties of the extra dimensions, by WMS dimension name.
DIMENSION_PROPERTIES = {"ensemble_member": "member", "elevation": "elevation"}


def label_value(label: object) -> float | int:
    """A member or level label as a JSON number: whole numbers as int."""
    number = float(label)  # type: ignore[arg-type]
    return int(number) if number.is_integer() else number


def selector_value(labels: np.ndarray, selector: Selector) -> float | int | str:
    """What a selector names, for answers: a label as a JSON number, or a statistic's label."""
    if isinstance(selector, MemberStatistic):
        return selector.statistic.label
    return label_value(labels[selector])


def lead_time_text(lead: np.timedelta64) -> str:
    """A lead time as an ISO 8601 duration; a valid time before its run gets a minus sign."""
    return duration_text(int(np.timedelta64(lead, "s").astype(np.int64)))


def lead_times_text(times: np.ndarray, reference_time: np.datetime64) -> list[str]:
    """The lead times of valid ``times`` after ``reference_time``, as `lead_time_text`."""
    leads = (times - reference_time).astype("timedelta64[s]").astype(np.int64)
    return [duration_text(seconds) for seconds in leads.tolist()]


@lru_cache(maxsize=4096)
def duration_text(seconds: int) -> str:  # a series repeats the same few lead times
    """A number of seconds as an ISO 8601 duration (``PT6H``, ``-PT6H``)."""
    if seconds < 0:
        return "-" + format_duration(np.timedelta64(-seconds, "s"))
    return format_duration(np.timedelta64(seconds, "s"))


def check_statistic(layer: Layer, member: object, dimensions: list[LayerDimension]) -> None:
    """Refuse an ensemble statistic for a layer without members, or a vector layer.

    Raises
    ------
    InvalidDimensionValue
        Naming what the layer offers instead.
    """
    if not isinstance(member, EnsembleStatistic):
        return
    if not any(d.name == "ensemble_member" for d in dimensions):
        raise InvalidDimensionValue(f"ensemble member {member.label!r}: layer {layer.id!r} has "
                                    "no ensemble dimension to compute statistics over")
    if layer.is_vector:
        raise InvalidDimensionValue(f"ensemble member {member.label!r}: statistics are offered "
                                    f"for scalar layers; {layer.id!r} is a vector layer (ask "
                                    "its u and v layers, or one member)")
