"""Dimension values: the default valid time, member and level dimensions of a layer."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from fewsmap.errors import InvalidDimensionValue, MissingDimensionValue
from fewsmap.products.ensemble import EnsembleStatistic, MemberStatistic, Selector
from fewsmap.store.cube import ForecastStore, RunInfo
from fewsmap.store.layout import MEMBER_DIM

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


REQUIRED = "required"
PRESSURE_UNITS = ("pa", "hpa", "mbar", "millibar", "bar")


LABEL_TOLERANCE = 1e-6  # labels are floats written from text: 850 and 850.0000001 match


@dataclass(frozen=True)
class LabelSpan:
    """One item of a list of dimension values: a value, or a range ``first/last`` meaning
    every label between them (in either order: pressure levels are often given top down)."""

    first: float
    last: float

    @property
    def low(self) -> float:
        """The smaller end."""
        return min(self.first, self.last)

    @property
    def high(self) -> float:
        """The larger end."""
        return max(self.first, self.last)

    def is_value(self) -> bool:
        """Tell whether the item is one value rather than a range."""
        return self.first == self.last

    def __str__(self) -> str:
        return f"{self.first:g}" if self.is_value() else f"{self.first:g}/{self.last:g}"


@dataclass(frozen=True, eq=False)
class LayerDimension:
    """A dimension of a layer besides time and reference time: levels or members.

    ``default`` is the label used when a request gives none; None means the request must
    give one (configured ``required``: MissingDimensionValue otherwise). ``held`` are the
    store indices holding data in the runs the dimension was built for (None: all); only
    they are listed and accepted. ``statistics`` are the ensemble statistics listed beside
    the members (`fewsmap.products.ensemble`); any statistic is accepted along members.
    """

    name: str  # the WMS name: "elevation", "ensemble_member"
    dim: str  # the store dimension
    labels: np.ndarray  # in store order
    units: str
    default: float | None
    held: np.ndarray | None = None
    scope: str = ""  # what ``held`` is about, for messages: " in run <T0>"
    statistics: tuple[str, ...] = ()

    def select(self, wanted: float | EnsembleStatistic | None, layer_id: str) -> Selector:
        """The store index of ``wanted`` (`index`), or a statistic over the members holding
        data.

        Raises
        ------
        InvalidDimensionValue
            If a statistic is asked along a dimension other than the members.
        """
        if not isinstance(wanted, EnsembleStatistic):
            return self.index(wanted, layer_id)
        if self.dim != MEMBER_DIM:
            raise InvalidDimensionValue(f"{self.name}={wanted.label}: statistics are values of "
                                        "the ensemble member dimension")
        members = tuple(int(i) for i in self.sorted_indices())
        if not members:
            raise InvalidDimensionValue(f"{self.name}={wanted.label}: no member of layer "
                                        f"{layer_id!r} holds data{self.scope}")
        return MemberStatistic(wanted, members)

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
                                            atol=LABEL_TOLERANCE))
        if matches.size == 0 or (self.held is not None and matches[0] not in self.held):
            raise InvalidDimensionValue(
                f"{self.name}={wanted:g} is not available for layer {layer_id!r}"
                f"{self.scope}; available: {self.listing()}")
        return int(matches[0])

    def indices_of(self, items: Sequence[LabelSpan], layer_id: str) -> tuple[int, ...]:
        """The store indices of the labels holding data that ``items`` name, by ascending
        label (the order capabilities list them): each value's label, and every label inside
        each range.

        Every item must name a label holding data, as every item of a TIME list must name a
        valid time (`fewsmap.time.axis.refuse_unmatched`): a client that lists a level learns
        that it is not there rather than get an answer without it.

        Raises
        ------
        InvalidDimensionValue
            Naming the first item that names no label, and the labels holding data.
        """
        indices = self.sorted_indices()
        labels = self.labels[indices].astype("float64")
        tolerance = LABEL_TOLERANCE
        chosen = np.zeros(indices.size, dtype=bool)
        for item in items:
            inside = (labels >= item.low - tolerance) & (labels <= item.high + tolerance)
            if not inside.any():
                what = "is not available" if item.is_value() else "holds no level"
                raise InvalidDimensionValue(
                    f"{self.name} value {item} {what} for layer {layer_id!r}{self.scope}; "
                    f"available: {self.listing()}")
            chosen |= inside
        return tuple(int(i) for i in indices[chosen])

    def sorted_indices(self) -> np.ndarray:
        """Store indices of the labels holding data, by ascending label."""
        indices = np.arange(self.labels.size) if self.held is None else self.held
        return indices[np.argsort(self.labels[indices].astype("float64"), kind="stable")]

    def sorted_labels(self) -> list[float]:
        """Labels holding data, in ascending order."""
        return [float(self.labels[i]) for i in self.sorted_indices()]

    def values(self) -> list[str]:
        """Labels holding data, in ascending order, then the statistics offered (none
        where no member holds data: a statistic of nothing draws an empty map)."""
        labels = [f"{v:g}" for v in self.sorted_labels()]
        return [*labels, *self.statistics] if labels else labels

    def listing(self) -> str:
        """Labels and statistics as a comma-separated list (capabilities, messages)."""
        return ",".join(self.values())


def layer_dimensions(store: ForecastStore, variable: str, defaults: Mapping[str, str | float],
                     runs: Sequence[RunInfo] = (),
                     valid_time: np.datetime64 | None = None,
                     statistics: Sequence[str] = ()) -> list[LayerDimension]:
    """The member and level dimensions of ``variable``, in the variable's dimension order.

    With ``runs``, each lists only the labels holding data in any of them (and, with
    ``valid_time``, in the one run at that time). Defaults: the configured value if it holds
    data, ``required``, else the level nearest the surface (the largest pressure, else the
    smallest height or depth) and the lowest member number holding data (the control run
    where there is one). ``statistics`` are listed with the members (`LayerDimension.values`).
    """
    step = runs[0].step_of(valid_time) if valid_time is not None and len(runs) == 1 else None
    key = ("layer_dimensions", variable, tuple(sorted(defaults.items())),
           tuple(run.slot for run in runs), step, tuple(statistics))
    # Every map resolves them: 40 µs of an ensemble tile, fixed per store state.
    return list(store.remembered(key, lambda: _layer_dimensions(
        store, variable, defaults, runs, step, statistics)))


def _layer_dimensions(store: ForecastStore, variable: str, defaults: Mapping[str, str | float],
                      runs: Sequence[RunInfo], step: int | None, statistics: Sequence[str]
                      ) -> tuple[LayerDimension, ...]:
    found = []
    for dim in store.dims(variable)[2:-2]:
        labels = store.labels(dim)
        attrs = store.attributes(dim)
        held = _held(runs, variable, dim, step)
        if held is not None:
            held.flags.writeable = False  # shared by every request of this store state
        candidates = labels if held is None or held.size == 0 else labels[held]
        if dim == MEMBER_DIM:
            name, fallback = "ensemble_member", float(candidates.min())
        else:
            name = "elevation" if attrs.get("axis") == "Z" else dim
            pressure = str(attrs.get("units", "")).lower() in PRESSURE_UNITS
            fallback = float(candidates.max() if pressure else candidates.min())
        configured = defaults.get(name)
        if configured is not None and held is not None and not _among(candidates, configured):
            configured = None  # the configured label holds no data here: defaults point at data
        default = None if configured == REQUIRED else (
            float(configured) if configured is not None else fallback)
        scope = f" in run {runs[0].label}" if len(runs) == 1 else ""
        found.append(LayerDimension(name, dim, labels, str(attrs.get("units", "")), default,
                                    held, scope,
                                    tuple(statistics) if dim == MEMBER_DIM else ()))
    return tuple(found)


def _held(runs: Sequence[RunInfo], variable: str, dim: str, step: int | None
          ) -> np.ndarray | None:
    """Store indices along ``dim`` holding data in any of ``runs`` (None: all of them), at
    ``step`` of the one run when given."""
    found = []
    for run in runs:
        held = run.data_labels(variable, dim, step)
        if held is None:
            return None
        found.append(held)
    return np.unique(np.concatenate(found)) if found else None


def _among(labels: np.ndarray, value: str | float) -> bool:
    if value == REQUIRED:
        return True
    return bool(np.isclose(labels.astype("float64"), float(value), rtol=0,
                               atol=LABEL_TOLERANCE).any())


def single_level(store: ForecastStore, variable: str) -> str | None:
    """The one level ``variable`` holds data on, as ``850 hPa``; None for none or several.

    Layer titles say it (issue #13 item 9): "Geopotential at 850 hPa".
    """
    runs = store.runs_holding([variable])
    for dimension in layer_dimensions(store, variable, {}, runs):
        labels = dimension.sorted_labels()
        if dimension.name == "elevation" and len(labels) == 1:
            return f"{labels[0]:g} {dimension.units}".strip()
    return None
