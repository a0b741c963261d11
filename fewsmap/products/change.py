"""Run change: a run's values minus a baseline run's at the same valid times.

``baseline=<T0>`` names the baseline run, ``baseline=previous`` the run published before the
selected one; the derived layer ``<layer>:change`` is the latest run minus the previous one
(or, with a run selected, that run minus the one before it). Each value is the float32
difference of the two runs' values at the same valid time, member statistic and level:
exactly xarray's ``cube.sel(run=a) - cube.sel(run=b)``. With an ensemble statistic it is the
difference of the two runs' statistics (their members are not paired), with an accumulation
the difference of the two runs' sums. A baseline equal to the run is allowed: its change is
zero wherever the run has a value.

Valid times one of the two runs lacks are refused (naming them): a change needs both.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from fewsmap.errors import InvalidDimensionValue, InvalidParameterValue
from fewsmap.points import GridCell, read_components
from fewsmap.products.accumulate import needed_times, window_sums
from fewsmap.products.ensemble import Selector, reduce_selected
from fewsmap.store.cube import ForecastStore, RunInfo
from fewsmap.time.grammar import format_duration, parse_instant
from fewsmap.time.instants import format_time

CHANGE_SUFFIX = ":change"
PREVIOUS = "previous"
MAX_NAMED_TIMES = 5


@dataclass(frozen=True)
class Baseline:
    """The run a change is taken against: one by its reference time, or (None) the run
    before the selected one."""

    reference_time: np.datetime64 | None = None

    @property
    def label(self) -> str:
        """As requests write it: ``previous`` or the run's ``yyyy-MM-ddTHH:mm:ssZ``."""
        return PREVIOUS if self.reference_time is None else format_time(self.reference_time)


PREVIOUS_RUN = Baseline()


def parse_baseline(text: str | None) -> Baseline | None:
    """The baseline ``text`` names (None when absent).

    Raises
    ------
    InvalidParameterValue
        If it is neither ``previous`` nor an instant.
    """
    if text is None or not text.strip():
        return None
    if text.strip().lower() == PREVIOUS:
        return PREVIOUS_RUN
    try:
        return Baseline(parse_instant(text.strip(), "BASELINE"))
    except InvalidDimensionValue as exc:
        raise InvalidParameterValue(f"BASELINE={text[:40]!r} is neither 'previous' nor a "
                                    f"run's reference time ({exc})") from exc


def select_baseline(runs: Sequence[RunInfo], run: RunInfo, baseline: Baseline,
                    layer_id: str) -> RunInfo:
    """The baseline run of ``run`` among the layer's ``runs`` (oldest first).

    Raises
    ------
    InvalidDimensionValue
        If the layer has no such run, or ``run`` is its first and ``previous`` is asked.
    """
    if baseline.reference_time is None:
        earlier = [r for r in runs if r.reference_time < run.reference_time]
        if not earlier:
            raise InvalidDimensionValue(
                f"BASELINE=previous: run {run.label} is the first run of layer {layer_id!r}; "
                "there is no previous run to take a change against")
        return earlier[-1]
    for candidate in runs:
        if candidate.reference_time == baseline.reference_time:
            return candidate
    listed = ", ".join(r.label for r in runs[-5:])
    raise InvalidDimensionValue(
        f"BASELINE={baseline.label}: layer {layer_id!r} has no such run; runs: {listed}"
        f"{' …' if len(runs) > 5 else ''}")


def shared_times(run: RunInfo, baseline: RunInfo) -> np.ndarray:
    """The valid times both runs hold, ascending."""
    return np.intersect1d(run.valid_times, baseline.valid_times).astype("datetime64[s]")


def check_shared(times: Sequence[np.datetime64] | np.ndarray, run: RunInfo,
                 baseline: RunInfo) -> None:
    """Refuse valid times the baseline run lacks.

    Raises
    ------
    InvalidDimensionValue
        Naming the first few such times and the span the two runs share.
    """
    missing = [t for t in times if not (baseline.valid_times == t).any()]
    if not missing:
        return
    shared = shared_times(run, baseline)
    named = ", ".join(format_time(t) for t in missing[:MAX_NAMED_TIMES])
    more = f" and {len(missing) - MAX_NAMED_TIMES} more" if len(missing) > MAX_NAMED_TIMES \
        else ""
    span = (f"they share {shared.size} valid times, {format_time(shared[0])} .. "
            f"{format_time(shared[-1])}") if shared.size else "they share no valid time"
    raise InvalidDimensionValue(
        f"valid time {named}{more} of run {run.label} is not a valid time of the baseline "
        f"run {baseline.label}; a change needs both runs: {span}")


def difference(values: np.ndarray, base: np.ndarray) -> np.ndarray:
    """The run's values minus the baseline's, float32 (NaN where either has none)."""
    return np.asarray(np.subtract(values, base, dtype=np.float32))


def change_range(run_range: tuple[float, float] | None,
                 base_range: tuple[float, float] | None) -> tuple[float, float] | None:
    """A colour range centred on zero holding every difference of values within the two
    runs' ranges (their statistics, so tiles have no seams): ±(largest - smallest)."""
    if run_range is None or base_range is None:
        return None
    spread = max(run_range[1], base_range[1]) - min(run_range[0], base_range[0])
    spread = max(spread, float(np.finfo(np.float32).tiny) * 1e3)  # two constant runs
    return -spread, spread


Reader = Callable[[RunInfo], tuple[np.ndarray, dict[str, np.ndarray]]]


def changed(read: Reader, run: RunInfo, baseline: RunInfo | None
            ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """``read(run)`` (values and components), minus ``read(baseline)`` when one is given."""
    values, components = read(run)
    if baseline is None:
        return values, components
    base, base_components = read(baseline)
    return difference(values, base), {name: difference(v, base_components[name])
                                      for name, v in components.items()}


class Place(Protocol):
    """Cells a series is read from besides a single grid cell (a catchment's weighted
    cells: `fewsmap.products.catchments.CatchmentCells`)."""

    def read_values(self, store: ForecastStore, variables: Sequence[str], run: RunInfo,
                    valid_times: np.ndarray, labels: Sequence[Sequence[int]],
                    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """The values at ``valid_times`` × ``labels`` of ``run`` (as `read_components`)."""


def point_values(store: ForecastStore, variables: Sequence[str], cell: GridCell | Place,
                 run: RunInfo, times: np.ndarray, lists: Sequence[Sequence[int]],
                 selectors: Sequence[Selector], window: np.timedelta64 | None = None,
                 ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """A layer's values at ``cell`` (or a `Place`) for ``times`` of ``run``: read along
    ``lists`` (store indices per member/level dimension), summed over each time's
    accumulation ``window``, then reduced over the members of any statistic among
    ``selectors`` (a statistic of the members' sums). Axis 0 follows ``times``; a
    statistic's axis keeps length one.

    Raises
    ------
    InvalidDimensionValue
        For a window reaching before the run started or not a whole number of its steps.
    """
    read_times = needed_times(run, times, window) if window is not None else times
    values, components = read_components(store, variables, cell, run, read_times, lists) \
        if isinstance(cell, GridCell) else cell.read_values(store, variables, run, read_times,
                                                            lists)
    if window is not None:
        values = window_sums(values, read_times, times, run, window)
        components = {name: window_sums(v, read_times, times, run, window)
                      for name, v in components.items()}
    return reduce_selected(values, selectors, 1), {
        name: reduce_selected(v, selectors, 1) for name, v in components.items()}


def derived_properties(baseline: RunInfo | None,
                       window: np.timedelta64 | None) -> tuple[tuple[str, str], ...]:
    """What makes values derived, as properties of answers: the baseline run of a change
    (``baseline_reference_time``) and the window of an accumulation (``accumulation``)."""
    found = []
    if baseline is not None:
        found.append(("baseline_reference_time", baseline.label))
    if window is not None:
        found.append(("accumulation", format_duration(window)))
    return tuple(found)
