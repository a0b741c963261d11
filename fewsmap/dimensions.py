"""Dimension values: parsing instants, the default valid time, matching a run's times."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from fewsmap.errors import InvalidDimensionValue, MissingDimensionValue
from fewsmap.store.cube import ForecastStore, RunInfo
from fewsmap.store.layout import MEMBER_DIM
from fewsmap.store.run import format_time

TIME_DEFAULTS = ("now", "first", "last")


def default_time(run: RunInfo, policy: str = "now",
                 now: np.datetime64 | None = None) -> np.datetime64:
    """The valid time shown when a request names none, by the layer's policy.

    ``now`` (the default): the run's first step at or after now (to the minute, so that what a
    document built in a minute says stays true all that minute), and a run wholly in the past
    shows its first step; FEWS and GeoServer default to the last step, the least useful one
    for a forecast (reference/peers.md). ``first`` and ``last``: the run's first/last step.
    """
    if policy == "first":
        return np.datetime64(run.valid_times[0], "s")
    if policy == "last":
        return np.datetime64(run.valid_times[-1], "s")
    now = current_minute() if now is None else now
    upcoming = run.valid_times[run.valid_times >= now]
    return np.datetime64(upcoming[0] if upcoming.size else run.valid_times[0], "s")


def current_minute() -> np.datetime64:
    """Now in UTC, to the minute: the clock the ``now`` defaults go by."""
    return np.datetime64(datetime.now(UTC).replace(tzinfo=None, second=0, microsecond=0), "s")


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


REQUIRED = "required"
PRESSURE_UNITS = ("pa", "hpa", "mbar", "millibar", "bar")


@dataclass(frozen=True, eq=False)
class LayerDimension:
    """A dimension of a layer besides time and reference time: levels or members.

    ``default`` is the label used when a request gives none; None means the request must
    give one (configured ``required``: MissingDimensionValue otherwise).
    """

    name: str  # the WMS name: "elevation", "ensemble_member"
    dim: str  # the store dimension
    labels: np.ndarray  # in store order
    units: str
    default: float | None

    def index(self, wanted: float | None, layer_id: str) -> int:
        """The store index of ``wanted`` (or of the default).

        Raises
        ------
        MissingDimensionValue
            If nothing is wanted and there is no default.
        InvalidDimensionValue
            If the label does not exist.
        """
        if wanted is None:
            wanted = self.default
            if wanted is None:
                raise MissingDimensionValue(
                    f"layer {layer_id!r} needs a value for {self.name} (no default); "
                    f"available: {self.listing()}")
        matches = np.flatnonzero(np.isclose(self.labels.astype("float64"), wanted, rtol=0,
                                            atol=1e-6))
        if matches.size == 0:
            raise InvalidDimensionValue(
                f"{self.name}={wanted:g} is not available for layer {layer_id!r}; "
                f"available: {self.listing()}")
        return int(matches[0])

    def sorted_labels(self) -> list[float]:
        """Labels in ascending order."""
        return sorted(float(v) for v in self.labels.tolist())

    def listing(self) -> str:
        """Labels as a comma-separated list (capabilities, messages)."""
        return ",".join(f"{v:g}" for v in self.sorted_labels())


def layer_dimensions(store: ForecastStore, variable: str,
                     defaults: Mapping[str, str | float]) -> list[LayerDimension]:
    """The member and level dimensions of ``variable``, in the variable's dimension order.

    Defaults: the configured value, ``required``, else the level nearest the surface (the
    largest pressure, else the smallest height or depth) and the lowest member number (the
    control run).
    """
    found = []
    for dim in store.dims(variable)[2:-2]:
        labels = store.coordinate(dim)
        attrs = store.attributes(dim)
        if dim == MEMBER_DIM:
            name, fallback = "ensemble_member", float(labels.min())
        else:
            name = "elevation" if attrs.get("axis") == "Z" else dim
            pressure = str(attrs.get("units", "")).lower() in PRESSURE_UNITS
            fallback = float(labels.max() if pressure else labels.min())
        configured = defaults.get(name)
        default = None if configured == REQUIRED else (
            float(configured) if configured is not None else fallback)
        found.append(LayerDimension(name, dim, labels, str(attrs.get("units", "")), default))
    return found
