"""A layer's values at one point: which runs, times, members and levels a request names,
read at the grid cell holding the point (DESIGN.md §7: resolution in one place).

The core of ``/api/timeseries`` and of EDR position queries: `fewsmap.ogc.timeseries` and
`fewsmap.edr.data` parse their queries into a `TimeSeriesRequest` and encode the
`TimeSeries` this returns, so both fronts answer the same values, times, members,
statistics, changes, sums and units for the same point and run
(tests/resolve/test_series.py).

Selections: one run (``reference_time``, default the latest), several (``all_runs`` or the
``latest_runs``), or a valid-time window (``start``/``end``), and of those only ``times``
when given (EDR's ``datetime``). ``member`` and ``elevation`` take a label, `ALL`, None
(the layer's default) or several labels; ``member`` also an ensemble statistic, or several
labels and statistics (EDR parameters). Values are in display units unless
``display_units`` is false (`fewsmap.resolve.units`).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from fewsmap.catalog import Catalog, Layer
from fewsmap.catalog.extent import lonlat_bbox
from fewsmap.crs import check_offered, offered_crs
from fewsmap.dimensions import LayerDimension, layer_dimensions
from fewsmap.errors import (
    InvalidDimensionValue,
    InvalidParameterValue,
    InvalidPoint,
    LayerNotQueryable,
)
from fewsmap.formats.media import JSON
from fewsmap.points import GridCell, find_cell, layer_values, read_components, step_slots
from fewsmap.products.accumulate import complete_times, needed_times
from fewsmap.products.change import (
    Baseline,
    Place,
    changed,
    check_shared,
    derived_properties,
    point_values,
    select_baseline,
    shared_times,
)
from fewsmap.products.ensemble import (
    EnsembleStatistic,
    MemberStatistic,
    Selector,
    label_lists,
    reduce_selected,
)
from fewsmap.resolve.labels import DIMENSION_PROPERTIES, check_statistic, selector_value
from fewsmap.resolve.layers import resolve_layer
from fewsmap.resolve.units import ShownUnits, shown_units
from fewsmap.store.cube import ForecastStore, RunInfo
from fewsmap.store.reads import read_cell_runs
from fewsmap.time.instants import format_time

ALL = "all"
LATEST = "latest"
DEFAULT_CRS = "EPSG:4326"
# The most lines of a time-chunked copy an inline read (`read_time_series`) reads: 10-20 µs
# each, so the event loop is held well under a millisecond.
INLINE_SERIES_LINES = 32

# Values read at a cell, unreduced, by run slot, member/level indices and valid times.
ReadCache = dict[tuple[int, tuple[tuple[int, ...], ...], bytes],
                 tuple[np.ndarray, dict[str, np.ndarray]]]
# One member or level (a label), all, the default (None), or several labels; a member also
# an ensemble statistic, and several members labels and statistics.
Label = float | str | None | tuple[float, ...]
MemberChoice = float | str | EnsembleStatistic | None | tuple[float | EnsembleStatistic, ...]


@dataclass(frozen=True)
class TimeSeriesRequest:
    """A checked time-series query; ``x``/``y`` east/north in ``crs`` whatever its axis order.

    Runs: ``reference_time`` names one; else ``all_runs`` or ``latest_runs`` (the last n);
    else the latest run. ``start``/``end`` limit valid times (inclusive). ``member`` and
    ``elevation`` are a label, None (the default), `ALL` or several labels; ``member`` also
    a statistic, or several labels and statistics. ``times`` keeps only those valid times.
    """

    layer: str
    x: float
    y: float
    crs: str = DEFAULT_CRS
    reference_time: np.datetime64 | None = None
    all_runs: bool = False
    latest_runs: int | None = None
    runs_given: bool = False  # runs=… was given (not only implied by start/end)
    start: np.datetime64 | None = None
    end: np.datetime64 | None = None
    member: MemberChoice = None
    elevation: Label = None
    format: str = JSON
    baseline: Baseline | None = None  # each run's change from this baseline run
    accumulate: np.timedelta64 | None = None  # sums over this window ending at each time
    times: tuple[np.datetime64, ...] | None = None  # only these valid times
    display_units: bool = True  # FEWS useDisplayUnits: the units the maps show


@dataclass(frozen=True, eq=False)
class Series:
    """The values of one run (and one member/level) at the cell, in valid-time order."""

    run: RunInfo
    # ("member", 3), ("member", "mean"), ("elevation", 850)
    dimensions: tuple[tuple[str, float | int | str], ...]
    times: np.ndarray  # datetime64[s]
    values: np.ndarray  # float32, NaN = missing
    components: tuple[tuple[str, np.ndarray], ...] = ()
    # ("baseline_reference_time", T0) of a change, ("accumulation", "PT24H") of sums
    derived: tuple[tuple[str, str], ...] = ()
    units: str = ""  # of values and components (UDUNITS; % for a probability)


@dataclass(frozen=True, eq=False)
class TimeSeries:
    """A request's answer before encoding."""

    layer: Layer
    store: ForecastStore
    request: TimeSeriesRequest
    cell: GridCell
    series: tuple[Series, ...]
    # of the values asked (the member's, or its statistic's): display units unless switched
    # off, UDUNITS, % for a probability (`fewsmap.resolve.units`)
    units: str


@dataclass(frozen=True, eq=False)
class SeriesPlace:
    """Where a series is read other than at the cell under the request's point: the
    cells of ``source`` (a catchment's), ``cells`` of them per value, and the ``cell``
    answers name as the series' location."""

    cell: GridCell
    source: Place
    cells: int


class ReadElsewhere(Exception):
    """`read_time_series` was asked to read only a few lines (``inline``) and the request
    needs more, or reads the network: it is to be read in a render thread."""


def read_time_series(catalog: Catalog, request: TimeSeriesRequest,
                     max_values: int | None = None,
                     place: SeriesPlace | None = None, inline: bool = False) -> TimeSeries:
    """Resolve the request against the catalog and read the values at the cell.

    ``max_values`` bounds the values read (default: the ``max_point_values`` setting);
    ``place`` reads elsewhere than at the cell holding the request's point (a catchment's
    weighted cells), with every product alike. ``inline`` reads only plain series of local
    files from the time-chunked copy, at most `INLINE_SERIES_LINES` lines (bounded work for
    the event loop), and raises `ReadElsewhere` before any read for anything else.

    Raises
    ------
    FewsmapError
        LayerNotDefined, LayerNotQueryable, InvalidCRS, InvalidDimensionValue,
        MissingDimensionValue, InvalidPoint (outside the grid), InvalidParameterValue (too
        many values).
    ReadElsewhere
        As above.
    """
    if request.layer in catalog.groups and request.layer not in catalog.layers:
        members = [layer.id for layer in catalog.layers.values()
                   if layer.group == request.layer]
        raise LayerNotQueryable(f"layer={request.layer[:80]!r} is a layer group; name one of "
                                f"its layers: {', '.join(members[:10])}")
    layer, named_run, derived = resolve_layer(catalog, request.layer)
    request = replace(request, baseline=request.baseline or derived)
    store = catalog.store(layer)
    crs = check_offered(request.crs, offered_crs(store.geometry.crs_wkt))
    runs, baselines = _derived(catalog, layer, select_runs(catalog, layer, named_run, request),
                               request)
    choices = [replace(request, member=choice) for choice in member_choices(request.member)]
    dimensions = [run_dimensions(store, layer, run) for run, _ in runs]  # read once
    chosen = [labels_per_run(store, layer, runs, choice, dimensions) for choice in choices]
    # an accumulation's series reads each step about twice, a change two runs
    reads = (1 if request.accumulate is None else 2) * (1 if request.baseline is None else 2)
    count = sum(times.size * math.prod(len(i) for i in indices)
                for each in chosen
                for (_, times), (_, indices) in zip(runs, each, strict=True)) * len(
        layer.variables) * reads * (place.cells if place else 1)
    limit = catalog.settings.max_point_values if max_values is None else max_values
    if count > limit:
        raise InvalidParameterValue(
            f"this request reads {count} values; at most {limit} are allowed "
            "(narrow start/end, name a run, a member or an elevation)")
    if inline:
        _check_inline(store, layer, runs, chosen, request, place)
    cell = place.cell if place else locate_cell(
        store, crs, request.x, request.y, f"x={request.x:g}, y={request.y:g} ({crs})",
        f"layer {layer.id!r}")
    cache: ReadCache = {}
    source = place.source if place else read_together(store, layer, cell, runs, chosen,
                                                      request.accumulate)
    series = [found for choice, each in zip(choices, chosen, strict=True)
              for found in _read_choice(store, layer, source, runs, each, baselines, choice,
                                        cache)]
    return TimeSeries(layer, store, request, cell, tuple(series),
                      request_units(store, layer, request).units)


def _check_inline(store: ForecastStore, layer: Layer, runs: list[tuple[RunInfo, np.ndarray]],
                  chosen: list[list[tuple[list[LayerDimension], list[list[int]]]]],
                  request: TimeSeriesRequest, place: SeriesPlace | None) -> None:
    """Raise `ReadElsewhere` unless the request is an inline read: local files, no product
    (run change, accumulation, statistic, catchment), every run read from the time-chunked
    copy in at most `INLINE_SERIES_LINES` lines (one ``pread`` of 20 KiB each)."""
    lines = sum(math.prod(len(i) for i in indices) for each in chosen
                for _, indices in each) * len(layer.variables)
    plain = (place is None and request.baseline is None and request.accumulate is None
             and not any(isinstance(choice, EnsembleStatistic)
                         for choice in member_choices(request.member)))
    if not (plain and store.files is not None and lines <= INLINE_SERIES_LINES and all(
            store.series_copy(name, run.slot) for run, _ in runs for name in layer.variables)):
        raise ReadElsewhere


@dataclass(frozen=True, eq=False)
class CellRuns:
    """A cell whose series of several runs were read in one pass (`read_cell_runs`, one
    member/level combination at a time); what that pass did not read is read as
    `read_components` reads it (a baseline run, a statistic's members)."""

    cell: GridCell
    # values by (variable, run slot, member/level indices, valid times as bytes)
    read: dict[tuple[str, int, tuple[int, ...], bytes], np.ndarray]

    def read_values(self, store: ForecastStore, variables: Sequence[str], run: RunInfo,
                    valid_times: np.ndarray, labels: Sequence[Sequence[int]],
                    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """The values at ``valid_times`` × ``labels`` of ``run`` (as `read_components`)."""
        combination = tuple(int(i[0]) for i in labels if len(i) == 1)
        found = [self.read.get((name, run.slot, combination, valid_times.tobytes()))
                 for name in variables] if len(combination) == len(labels) else [None]
        if any(values is None for values in found):
            return read_components(store, variables, self.cell, run, valid_times, labels)
        shape = (-1, *(1 for _ in labels))
        return layer_values(variables, {name: values.reshape(shape) for name, values
                                        in zip(variables, found, strict=True) if
                                        values is not None})


def read_together(store: ForecastStore, layer: Layer, cell: GridCell,
                  runs: list[tuple[RunInfo, np.ndarray]],
                  chosen: list[list[tuple[list[LayerDimension], list[list[int]]]]],
                  window: np.timedelta64 | None) -> CellRuns | GridCell:
    """The cell with the series of every run and single member/level combination the
    request names read in one pass from the time-chunked copy (a series of 10 runs: ten
    inner chunks, without a read call per run); the cell alone for sums over windows,
    which read other times than those listed."""
    if window is not None:
        return cell
    wanted: dict[tuple[int, ...], dict[tuple[int, bytes], np.ndarray]] = {}
    for each in chosen:
        for (run, times), (_, indices) in zip(runs, each, strict=True):
            if all(len(i) == 1 for i in indices):  # one combination (or none)
                combination = tuple(int(i[0]) for i in indices)
                wanted.setdefault(combination, {})[(run.slot, times.tobytes())] = times
    read: dict[tuple[str, int, tuple[int, ...], bytes], np.ndarray] = {}
    slots = {run.slot: run for run, _ in runs}
    for combination, at in wanted.items():
        keys = list(at)
        for name in layer.variables:
            values = read_cell_runs(store, name, [
                (slot, step_slots(slots[slot], at[(slot, times)])) for slot, times in keys],
                combination, cell.row, cell.col)
            read.update(((name, slot, combination, times), found)
                        for (slot, times), found in zip(keys, values, strict=True)
                        if found is not None)
    return CellRuns(cell, read)


def request_units(store: ForecastStore, layer: Layer, request: TimeSeriesRequest) -> ShownUnits:
    """The units of a request's values (a single statistic's, when it names one)."""
    member = request.member
    return shown_units(store, layer, member if isinstance(member, EnsembleStatistic) else None,
                       request.display_units, request.baseline is not None)


def member_choices(member: MemberChoice) -> list[MemberChoice]:
    """The reads a member selection takes: several labels in one, each statistic alone."""
    if not isinstance(member, tuple):
        return [member]
    labels = tuple(m for m in member if not isinstance(m, EnsembleStatistic))
    return [*([labels] if labels else []),
            *(m for m in member if isinstance(m, EnsembleStatistic))]


def _read_choice(store: ForecastStore, layer: Layer, cell: GridCell | Place,
                 runs: list[tuple[RunInfo, np.ndarray]],
                 chosen: list[tuple[list[LayerDimension], list[list[int]]]],
                 baselines: list[RunInfo | None], request: TimeSeriesRequest,
                 cache: ReadCache) -> list[Series]:
    """The series of one member choice (labels, or one statistic), in display units unless
    switched off."""
    units = request_units(store, layer, request)
    series = []
    for (run, times), (dims, indices), baseline in zip(runs, chosen, baselines, strict=True):
        if any(not i for i in indices):
            continue  # the named member or level holds no data in this run
        statistics = [statistic_over(d, i, request.member) for d, i in zip(dims, indices,
                                                                               strict=True)]
        values, components = _values(store, layer, cell, (run, baseline), times, indices,
                                     statistics, request, cache)
        values = units.apply(values)
        components = {name: units.apply(v) for name, v in components.items()}
        shape = [1 if isinstance(s, MemberStatistic) else len(i)
                 for s, i in zip(statistics, indices, strict=True)]
        for combination in itertools.product(*(range(n) for n in shape)):
            at: tuple[slice | int, ...] = (slice(None), *combination)
            labels = tuple((DIMENSION_PROPERTIES.get(d.name, d.name),
                            selector_value(d.labels, s if isinstance(s, MemberStatistic)
                                           else i[k]))
                           for d, i, k, s in zip(dims, indices, combination, statistics,
                                                 strict=True))
            series.append(Series(run, labels, times, values[at],
                                 tuple((name, v[at]) for name, v in components.items()),
                                 derived_properties(baseline, request.accumulate),
                                 units.units))
    return series


def locate_cell(store: ForecastStore, crs: str, x: float, y: float, point: str,
                owner: str) -> GridCell:
    """The grid cell holding the point (x east, y north in ``crs``).

    Raises
    ------
    InvalidPoint
        If the point lies more than half a cell outside the grid, naming ``point`` (how the
        request wrote it), ``owner`` (``layer 'a.b'``) and the grid's extent.
    """
    cell = find_cell(store, crs, x, y)
    if cell is None:
        raise InvalidPoint(f"{point} lies outside the grid of {owner}, which covers "
                           f"{extent_text(store)}")
    return cell


def extent_text(store: ForecastStore) -> str:
    """The grid's extent in words: ``longitude -130..-60, latitude 20..55``."""
    west, south, east, north = lonlat_bbox(store)
    return f"longitude {west:g}..{east:g}, latitude {south:g}..{north:g}"


def select_runs(catalog: Catalog, layer: Layer, named: RunInfo | None,
          request: TimeSeriesRequest) -> list[tuple[RunInfo, np.ndarray]]:
    """The runs to read, each with its valid times inside the window."""
    runs = catalog.runs(layer)
    if not runs:
        raise InvalidDimensionValue(f"layer {layer.id!r} has no published run yet")
    if named is not None and request.reference_time is not None and (
            named.reference_time != request.reference_time):
        raise InvalidParameterValue(f"run={format_time(request.reference_time)} differs from "
                                    f"the run in the layer id ({named.label})")
    if named is not None and request.runs_given:
        raise InvalidParameterValue(f"layer={request.layer[:80]!r} names one run; runs= "
                                    "applies to a layer id without a run")
    single = named is not None or request.reference_time is not None
    if request.reference_time is not None:
        found = [run for run in runs if run.reference_time == request.reference_time]
        if not found:
            raise InvalidDimensionValue(
                f"layer {layer.id!r} has no run {format_time(request.reference_time)}; runs: "
                f"{', '.join(r.label for r in runs[-5:])}{' …' if len(runs) > 5 else ''}")
        chosen = found
    elif named is not None:
        chosen = [named]
    elif request.all_runs:
        chosen = list(runs)
    elif request.latest_runs is not None:
        chosen = list(runs[-request.latest_runs:])
    else:
        chosen = [runs[-1]]
    start = request.start if request.start is not None else np.datetime64("0001-01-01", "s")
    end = request.end if request.end is not None else np.datetime64("9999-12-31", "s")
    bounded = request.start is not None or request.end is not None
    selected = []
    for run in chosen:
        times = run.valid_times  # read-only, as the store keeps it
        if bounded:
            times = times[(times >= start) & (times <= end)]
        if request.times is not None:
            times = times[np.isin(times, np.array(request.times, dtype="datetime64[s]"))]
        if times.size:
            selected.append((run, times))
    if not selected:
        which = f"run {chosen[0].label}" if single or len(chosen) == 1 else (
            f"any of the {len(chosen)} runs")
        raise InvalidDimensionValue(
            f"{which} has no valid time between {_bound(request.start)} and "
            f"{_bound(request.end)}")
    return selected


def _values(store: ForecastStore, layer: Layer, cell: GridCell | Place,
            runs: tuple[RunInfo, RunInfo | None], times: np.ndarray,
            indices: list[list[int]], statistics: list[Selector], request: TimeSeriesRequest,
            cache: ReadCache) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """A run's values at the cell (reduced, summed over an accumulation's windows), minus
    its baseline's when it has one (`fewsmap.products.change.changed`). Values are read
    once per request (``cache``): several statistics reduce the same members' values."""
    run, baseline = runs
    if isinstance(cell, CellRuns) and baseline is None and request.accumulate is None and \
            not any(isinstance(s, MemberStatistic) for s in statistics):
        # Read already, nothing to reduce or subtract (a fifth of a plain series' work).
        return cell.read_values(store, layer.variables, run, times, indices)

    def read_run(shown: RunInfo) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        lists, selectors = (indices, statistics) if shown is run else _baseline_labels(
            store, layer, shown, times, indices, request)  # its own members for a statistic
        key = (shown.slot, tuple(tuple(i) for i in lists), times.tobytes())
        if key not in cache:  # unreduced: each statistic reduces them below
            cache[key] = point_values(store, layer.variables, cell, shown, times, lists,
                                      [0] * len(lists), request.accumulate)
        values, components = cache[key]
        return reduce_selected(values, selectors, 1), {
            name: reduce_selected(v, selectors, 1) for name, v in components.items()}

    return changed(read_run, run, baseline)


def _derived(catalog: Catalog, layer: Layer, runs: list[tuple[RunInfo, np.ndarray]],
             request: TimeSeriesRequest,
             ) -> tuple[list[tuple[RunInfo, np.ndarray]], list[RunInfo | None]]:
    """The runs of a change or accumulation, each with the valid times it has a value at
    (those its baseline shares, whose window lies within the run), and each run's baseline.
    Where several runs are read, one without a baseline or such a time is left out.

    Raises
    ------
    InvalidDimensionValue
        If no run has a value at any time (naming why for one run).
    InvalidParameterValue
        For a vector layer.
    """
    if request.baseline is None and request.accumulate is None:
        return runs, [None] * len(runs)
    kept: list[tuple[RunInfo, np.ndarray]] = []
    baselines: list[RunInfo | None] = []
    refusal: InvalidDimensionValue | None = None
    for run, times in runs:
        try:
            times, base = product_times(catalog, layer, run, times, request.baseline,
                                        request.accumulate)
        except InvalidDimensionValue as exc:
            refusal = exc
            continue
        if times.size:
            kept.append((run, times))
            baselines.append(base)
    if kept:
        return kept, baselines
    if refusal is not None and len(runs) == 1:
        raise refusal
    raise InvalidDimensionValue(
        f"no valid time of {'run ' + runs[0][0].label if len(runs) == 1 else 'the runs'} "
        "has a value"
        + (" in its baseline run too" if request.baseline is not None else "")
        + (" with a whole accumulation window inside the run"
           if request.accumulate is not None else "")
        + " between the requested start and end")


def product_times(catalog: Catalog, layer: Layer, run: RunInfo, times: np.ndarray,
                  baseline: Baseline | None, window: np.timedelta64 | None,
                  named: bool = False) -> tuple[np.ndarray, RunInfo | None]:
    """Those of a run's ``times`` a change or an accumulation has a value at (valid times
    its baseline run shares, whose ``window`` lies within the run), and its baseline run.
    Series, EDR positions, areas and cubes all choose them here.

    ``named``: the times were named one by one (EDR ``datetime``), so one without a value
    is refused rather than left out.

    Raises
    ------
    InvalidDimensionValue
        For a baseline the layer lacks, and with ``named`` for a time without a value
        (naming it).
    InvalidParameterValue
        For a vector layer.
    """
    if baseline is None and window is None:
        return times, None
    if layer.is_vector:
        raise InvalidParameterValue(f"baseline and accumulate are offered for scalar layers; "
                                    f"{layer.id!r} is a vector layer")
    base = None if baseline is None else select_baseline(catalog.runs(layer), run, baseline,
                                                         layer.id)
    if named and base is not None:
        check_shared(times, run, base)
    if named and window is not None:
        needed_times(run, times, window)  # refuses a window that cannot be summed
    if base is not None:
        times = np.intersect1d(times, shared_times(run, base))
    if window is not None:
        times = complete_times(run, times, window)
    return times, base


def _baseline_labels(store: ForecastStore, layer: Layer, baseline: RunInfo,
                     times: np.ndarray, indices: list[list[int]], request: TimeSeriesRequest,
                     ) -> tuple[list[list[int]], list[Selector]]:
    """What the baseline run reads: the run's members and levels, except that a statistic
    is over the baseline's own members."""
    (dims, own), = labels_per_run(store, layer, [(baseline, times)], request)
    chosen = [o if isinstance(request.member, EnsembleStatistic) and
              d.name == "ensemble_member" else i
              for d, o, i in zip(dims, own, indices, strict=True)]
    return chosen, [statistic_over(d, i, request.member)
                    for d, i in zip(dims, chosen, strict=True)]


def labels_per_run(store: ForecastStore, layer: Layer,
                    runs: list[tuple[RunInfo, np.ndarray]], request: TimeSeriesRequest,
                    dimensions: list[list[LayerDimension]] | None = None,
                    ) -> list[tuple[list[LayerDimension], list[list[int]]]]:
    """Each run's member and level dimensions and the store indices to read along them.
    ``dimensions`` are each run's (`run_dimensions`) when already known.

    ``all`` means every label holding data in that run, so a lagged ensemble gives one series
    per member of each run, not an all-missing series for every member of the cube. Where
    several runs are read, one lacking a named member (or level) reads none; where none has
    it, the request is refused.

    Raises
    ------
    InvalidDimensionValue, MissingDimensionValue
        If no run holds the named label, or a label is required and not named.
    """
    wanted: dict[str, MemberChoice] = {"ensemble_member": request.member,
                                       "elevation": request.elevation}
    chosen: list[tuple[list[LayerDimension], list[list[int]]]] = []
    refusal: InvalidDimensionValue | None = None
    for k, (run, _) in enumerate(runs):
        dims = run_dimensions(store, layer, run) if dimensions is None else dimensions[k]
        check_statistic(layer, request.member, dims)
        indices = []
        for dimension in dims:
            try:
                indices.append(_indices(dimension, wanted.get(dimension.name), layer.id))
            except InvalidDimensionValue as exc:
                refusal = exc
                indices.append([])
        chosen.append((dims, indices))
    if refusal is not None and all(any(not i for i in indices) for _, indices in chosen):
        raise refusal
    return chosen


def run_dimensions(store: ForecastStore, layer: Layer, run: RunInfo) -> list[LayerDimension]:
    """The layer's member and level dimensions with the labels holding data in ``run``."""
    return layer_dimensions(store, layer.variable, layer.defaults, (run,))


def _indices(dimension: LayerDimension, wanted: MemberChoice, layer_id: str) -> list[int]:
    """Store indices along a member or level dimension: one, several, or every one for
    ``all``, or every member a statistic reduces."""
    if isinstance(wanted, tuple):
        return [dimension.index(float(label), layer_id) for label in wanted
                if not isinstance(label, EnsembleStatistic)]
    if wanted == ALL:
        return [int(i) for i in dimension.sorted_indices()]
    if isinstance(wanted, EnsembleStatistic):
        return list(label_lists([dimension.select(wanted, layer_id)])[0])
    return [dimension.index(None if wanted is None else float(wanted), layer_id)]


def statistic_over(dimension: LayerDimension, indices: list[int],
                    member: object) -> Selector:
    """The statistic reducing the values read along ``dimension`` (0: none)."""
    if isinstance(member, EnsembleStatistic) and dimension.name == "ensemble_member":
        return MemberStatistic(member, tuple(indices))
    return 0


def _bound(value: np.datetime64 | None) -> str:
    return format_time(value) if value is not None else "(open)"
