"""Resolve an EDR query against the catalog and read the raw values it names.

Collections are layers and instances are runs. A layer's EDR parameters are its variables
(both components of a vector layer); an ensemble variable has one parameter per member,
``<variable>_member_<label>``, because CoverageJSON has no member axis (a domain's axes are
x, y, z, t and composite), and ensemble statistics are parameters too,
``<variable>_member_mean``, ``<variable>_member_above:20`` (`fewsmap.products.ensemble`).
Levels are the ``z`` axis.

A position query is an adapter over the series core (`fewsmap.resolve.series
.read_time_series`, which ``/api/timeseries`` answers from too): its parameters become the
members and statistics, its ``z`` the levels and its ``datetime`` the valid times of one
run, so both fronts give the same values. Area and cube queries read their window of the
native grid by the cube's one read path (`fewsmap.store.reads.read_block`); both take the
same valid times of a change or an accumulation (`fewsmap.resolve.series.product_times`)
and the same units (`fewsmap.resolve.units`). Only the chunks holding the selected cells,
times, members and levels are read (float32; NaN where the cube has no value).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from fewsmap.catalog import Catalog, Layer
from fewsmap.dimensions import LayerDimension, layer_dimensions
from fewsmap.edr.query import EdrQuery
from fewsmap.edr.window import Window, select_window
from fewsmap.errors import (
    FewsmapError,
    InvalidDimensionValue,
    InvalidParameterValue,
    LayerNotDefined,
    NotFound,
    ResponseTooLarge,
)
from fewsmap.points import GridCell
from fewsmap.products.accumulate import needed_times, window_sums
from fewsmap.products.change import derived_properties, difference
from fewsmap.products.ensemble import EnsembleStatistic, parse_statistic
from fewsmap.resolve.labels import label_value
from fewsmap.resolve.series import (
    TimeSeriesRequest,
    extent_text,
    locate_cell,
    product_times,
    read_time_series,
)
from fewsmap.resolve.units import ShownUnits, shown_units
from fewsmap.store.cube import ForecastStore, RunInfo
from fewsmap.store.reads import read_block
from fewsmap.time.axis import refuse_unmatched
from fewsmap.time.grammar import parse_instant

MEMBER_INFIX = "_member_"


@dataclass(frozen=True)
class EdrParameter:
    """One EDR parameter: a variable, one member of an ensemble variable, or an ensemble
    statistic over its members (``<variable>_member_mean``, ``…_member_above:20``)."""

    id: str
    variable: str
    member: int | float | str | None = None  # the member's label, or the statistic's
    member_index: int | None = None  # its index along the store's member dimension
    statistic: EnsembleStatistic | None = None


@dataclass(frozen=True, eq=False)
class LayerAxes:
    """The dimensions of a layer between step and grid, and which are members and levels."""

    dims: tuple[LayerDimension, ...]
    member: LayerDimension | None
    level: LayerDimension | None

    @classmethod
    def of(cls, store: ForecastStore, layer: Layer, runs: Sequence[RunInfo] = ()) -> LayerAxes:
        """Read them from the layer's (first) variable: the labels holding data in ``runs``."""
        dims = tuple(layer_dimensions(store, layer.variable, layer.defaults, runs,
                                      statistics=layer.statistics))
        return cls(dims, next((d for d in dims if d.name == "ensemble_member"), None),
                   next((d for d in dims if d.name == "elevation"), None))

    def sorted_levels(self) -> np.ndarray:
        """Store indices of every level, by ascending level value."""
        if self.level is None:
            return np.zeros(1, dtype=np.int64)
        return self.level.sorted_indices()


@dataclass(frozen=True, eq=False)
class EdrAnswer:
    """The values a data query selected, before encoding.

    ``values`` maps each parameter id to float32 of shape (times, levels, rows, cols), NaN
    where the cube has no value and, for an area, outside the polygon. ``levels`` is None for
    layers without levels (the level axis then has length 1).
    """

    layer: Layer
    store: ForecastStore
    run: RunInfo
    kind: str
    crs: str
    parameters: tuple[EdrParameter, ...]
    times: np.ndarray
    levels: np.ndarray | None
    window: Window
    values: dict[str, np.ndarray]
    cell: GridCell | None = None
    level_dim: str | None = None  # the store dimension of the levels
    units: dict[str, str] | None = None  # each parameter's (`fewsmap.resolve.units`)
    # ("baseline_reference_time", T0) of a change, ("accumulation", "P1D") of sums
    derived: tuple[tuple[str, str], ...] = ()

    def attributes(self, parameter: EdrParameter) -> dict[str, Any]:
        """CF attributes of a parameter's variable."""
        return self.store.attributes(parameter.variable)


def find_layer(catalog: Catalog, layer_id: str) -> Layer:
    """The layer a collection id names.

    Raises
    ------
    NotFound
        If there is no such layer (groups are not collections).
    Unauthorized
        If the layer is protected and the request holds no token for it.
    """
    try:
        return catalog.layer(layer_id)
    except LayerNotDefined as exc:
        raise NotFound(f"collection {layer_id[:80]!r} does not exist; /edr/collections "
                       "lists them") from exc


def find_run(catalog: Catalog, layer: Layer, run_id: str | None) -> RunInfo:
    """The run an instance id names (its reference time), or the latest run for None.

    Raises
    ------
    NotFound
        If the layer has no published run, or none with that reference time.
    """
    runs = catalog.runs(layer)
    if not runs:
        raise NotFound(f"collection {layer.id!r} has no published run yet")
    if run_id is None:
        return runs[-1]
    for run in runs:
        if run.label == run_id:
            return run
    try:
        wanted = parse_instant(run_id, "instance")
    except FewsmapError:
        wanted = None
    for run in runs:
        if run.reference_time == wanted:
            return run
    raise NotFound(f"collection {layer.id!r} has no instance {run_id[:40]!r}; instances are "
                   f"runs by reference time, e.g. {runs[-1].label}")


def layer_parameters(store: ForecastStore, layer: Layer,
                     axes: LayerAxes | None = None) -> tuple[EdrParameter, ...]:
    """The layer's parameters: one per variable, or per variable and member, then the
    ensemble statistics listed for the layer (`Layer.statistics`)."""
    axes = axes or LayerAxes.of(store, layer)
    found = []
    for variable in layer.variables:
        if axes.member is None:
            found.append(EdrParameter(variable, variable))
            continue
        labels = axes.member.labels
        for index in axes.member.sorted_indices():
            label = label_value(labels[index])
            found.append(EdrParameter(f"{variable}{MEMBER_INFIX}{label}", variable, label,
                                      int(index)))
        if axes.member.sorted_labels():  # statistics of no member would be empty
            found += [statistic_parameter(variable, statistic)
                      for statistic in axes.member.statistics]
    return tuple(found)


def statistic_parameter(variable: str, label: str) -> EdrParameter:
    """The parameter of an ensemble statistic of ``variable`` (``label``: ``mean``, ``p90``,
    ``above:20`` …)."""
    statistic = parse_statistic(label)
    assert statistic is not None
    return EdrParameter(f"{variable}{MEMBER_INFIX}{statistic.label}", variable,
                        statistic.label, statistic=statistic)


def answer_query(catalog: Catalog, layer_id: str, run_id: str | None, query: EdrQuery,
                 max_values: int) -> EdrAnswer:
    """Resolve ``query`` on a collection (and instance) and read its values.

    Raises
    ------
    FewsmapError
        NotFound, InvalidParameterValue, InvalidPoint, OperationNotSupported (area or cube
        on a curvilinear grid), ResponseTooLarge (before any value is read).
    """
    layer = find_layer(catalog, layer_id)
    run = find_run(catalog, layer, run_id)
    store = catalog.store(layer)
    axes = LayerAxes.of(store, layer, (run,))
    parameters = _choose(layer_parameters(store, layer, axes), query.parameters, layer, axes)
    times, baseline = product_times(catalog, layer, run, _times(run, query), query.baseline,
                                    query.accumulate, named=query.times is not None)
    if not times.size:
        raise InvalidDimensionValue(
            f"no valid time of run {run.label} has a value"
            + ("" if baseline is None else f" in its baseline run {baseline.label} too")
            + ("" if query.accumulate is None
               else " with a whole accumulation window inside the run"))
    levels = _levels(axes, query, layer.id)
    window, cell = _cells(store, layer, query, max_values)
    fields = sum(1 if p.statistic is None or axes.member is None
                 else len(axes.member.sorted_indices()) for p in parameters)
    # a statistic reads every member, a change two runs, a sum about twice the steps
    reads = (1 if baseline is None else 2) * (1 if query.accumulate is None else 2)
    count = fields * times.size * levels.size * window.size * reads
    if count > max_values:
        raise ResponseTooLarge(
            f"this query selects {count} values ({fields} parameters or members read × "
            f"{times.size} times × {levels.size} levels × {window.size} cells"
            + ("" if reads == 1 else f" × {reads} for the change or sums")
            + f"); at most {max_values} are allowed (max_edr_values): narrow datetime, z, "
            "parameter-name or the region")
    units = {p.id: parameter_units(store, layer, p, query.display_units, baseline is not None)
             for p in parameters}
    if cell is not None:
        values = _position_values(catalog, layer, run, axes, parameters, times, levels, query,
                                  max_values)
    else:
        values = _window_values(store, layer, (run, baseline), axes, parameters, times,
                                levels, window, query.accumulate)
        values = {name: units[name].apply(v) for name, v in values.items()}
    if query.kind == "area":
        for array in values.values():
            array[..., ~window.inside] = np.nan
    return EdrAnswer(layer, store, run, query.kind, query.crs, parameters, times,
                     None if axes.level is None else axes.level.labels[levels], window,
                     values, cell, None if axes.level is None else axes.level.dim,
                     {name: shown.units for name, shown in units.items()},
                     derived_properties(baseline, query.accumulate))


def _cells(store: ForecastStore, layer: Layer, query: EdrQuery,
           max_values: int) -> tuple[Window, GridCell | None]:
    """The window of the query's cells, and a position's cell.

    Raises
    ------
    InvalidPoint, InvalidParameterValue
        For a point outside the grid, a region holding no cell centre.
    OperationNotSupported, ResponseTooLarge
        As `select_window`.
    """
    if query.point is not None:
        lon, lat = query.point
        cell = locate_cell(store, "OGC:CRS84", lon, lat, f"POINT({lon:g} {lat:g})",
                           f"collection {layer.id!r}")
        return point_window(cell), cell
    assert query.region is not None
    found = select_window(store, query.region, max_values)
    if found is None:
        raise InvalidParameterValue(
            f"no cell centre of collection {layer.id!r} lies in the {query.kind} "
            f"requested; the grid covers {extent_text(store)} (a region smaller than a "
            "cell holds no centre: use a position query)")
    return found, None


def parameter_units(store: ForecastStore, layer: Layer, parameter: EdrParameter,
                    display_units: bool, difference: bool = False) -> ShownUnits:
    """The units a parameter is answered in (`fewsmap.resolve.units.shown_units`): what
    queries return and the collection's metadata say."""
    return shown_units(store, layer, parameter.statistic, display_units, difference)


def _position_values(catalog: Catalog, layer: Layer, run: RunInfo, axes: LayerAxes,
                     parameters: tuple[EdrParameter, ...], times: np.ndarray,
                     levels: np.ndarray, query: EdrQuery,
                     max_values: int) -> dict[str, np.ndarray]:
    """A position's values by the series core: the parameters' members and statistics at
    the selected levels and times of the run, each (times, levels, 1, 1)."""
    assert query.point is not None
    members = tuple(dict.fromkeys(
        p.statistic if p.statistic is not None else float(p.member)
        for p in parameters if p.member is not None))
    level_labels = None if axes.level is None else tuple(
        float(axes.level.labels[i]) for i in levels)
    answer = read_time_series(catalog, TimeSeriesRequest(
        layer=layer.id, x=query.point[0], y=query.point[1], crs="CRS:84",
        reference_time=run.reference_time, times=tuple(times), member=members or None,
        elevation=level_labels, baseline=query.baseline, accumulate=query.accumulate,
        display_units=query.display_units), max_values)
    values = {p.id: np.full((times.size, levels.size, 1, 1), np.nan, dtype=np.float32)
              for p in parameters}
    z_of: dict[float | int | str, int] = {} if level_labels is None else {
        label_value(v): z for z, v in enumerate(level_labels)}
    for series in answer.series:
        labels = dict(series.dimensions)
        z = z_of.get(labels.get("elevation", ""), 0)
        rows = np.searchsorted(times, series.times)
        found = dict(series.components) if layer.components else {}
        for parameter in parameters:
            if parameter.member is not None and labels.get("member") != parameter.member:
                continue
            values[parameter.id][rows, z, 0, 0] = found.get(parameter.variable,
                                                            series.values)
    return values


def point_window(cell: GridCell) -> Window:
    """The one-cell window of a position query (x/y: the centre in CRS84)."""
    one = np.ones((1, 1))
    return Window(np.array([cell.row]), np.array([cell.col]), np.array([cell.lon]),
                  np.array([cell.lat]), one * cell.lon, one * cell.lat,
                  np.ones((1, 1), dtype=bool))


def _window_values(store: ForecastStore, layer: Layer, runs: tuple[RunInfo, RunInfo | None],
                   axes: LayerAxes, parameters: tuple[EdrParameter, ...], times: np.ndarray,
                   levels: np.ndarray, window: Window,
                   accumulate: np.timedelta64 | None) -> dict[str, np.ndarray]:
    """An area's or cube's values: of the run, summed over an accumulation's windows, minus
    its baseline's (a statistic of the baseline over its own members), each (times, levels,
    rows, cols)."""
    run, baseline = runs
    values = _read(store, layer, run, axes, parameters, times, levels, window, accumulate)
    if baseline is None:
        return values
    base = _read(store, layer, baseline, LayerAxes.of(store, layer, (baseline,)), parameters,
                 times, levels, window, accumulate)
    return {name: difference(v, base[name]) for name, v in values.items()}


def _read(store: ForecastStore, layer: Layer, run: RunInfo, axes: LayerAxes,
          parameters: tuple[EdrParameter, ...], times: np.ndarray, levels: np.ndarray,
          window: Window, accumulate: np.timedelta64 | None = None) -> dict[str, np.ndarray]:
    """Read the parameters' values at ``times`` of ``run`` (each time's window sum with
    ``accumulate``), then reduce the members of each statistic."""
    read_times = times if accumulate is None else needed_times(run, times, accumulate)
    steps = run.step_slots[np.searchsorted(run.valid_times, read_times)].astype(np.int64)
    shape = (times.size, levels.size, window.rows.size, window.cols.size)
    values: dict[str, np.ndarray] = {}
    for variable in dict.fromkeys(p.variable for p in parameters):
        mine = [p for p in parameters if p.variable == variable]
        members = np.array([p.member_index for p in mine if p.member_index is not None],
                           dtype=np.int64)
        if axes.member is not None and any(p.statistic is not None for p in mine):
            members = axes.member.sorted_indices()  # a statistic reads every member
        labels = [members if d is axes.member else levels if d is axes.level
                  else np.array([d.index(None, layer.id)], dtype=np.int64) for d in axes.dims]
        block = read_block(store, variable, run.slot, steps, labels, window.rows,
                           window.cols)
        if accumulate is not None:  # a statistic of sums: sum each member first
            block = window_sums(block, read_times, times, run, accumulate)
        if axes.member is None:
            values[mine[0].id] = block.reshape(shape)
            continue
        axis = 1 + axes.dims.index(axes.member)
        for parameter in mine:
            if parameter.statistic is not None:
                field = parameter.statistic.reduce(block, axis)
            else:
                k = int(np.flatnonzero(members == parameter.member_index)[0])
                field = np.take(block, k, axis=axis)
            values[parameter.id] = field.reshape(shape)
    return values


def _choose(offered: tuple[EdrParameter, ...], names: tuple[str, ...], layer: Layer,
            axes: LayerAxes) -> tuple[EdrParameter, ...]:
    """The parameters named (a variable name stands for all its members); all but the
    ensemble statistics by default. Any ``<variable>_member_<statistic>`` is accepted for an
    ensemble layer, listed or not (any threshold)."""
    members = tuple(p for p in offered if p.statistic is None)
    if not names:
        return members
    layer_id = layer.id
    chosen: dict[str, EdrParameter] = {}
    for name in names:
        matches = [p for p in offered if name == p.id] or [p for p in members
                                                           if name == p.variable]
        if not matches and layer.statistics and axes.member is not None:
            matches = _unlisted_statistic(name, layer)
        if not matches:
            listing = ", ".join(p.id for p in offered[:12]) + (" …" if len(offered) > 12
                                                                else "")
            raise InvalidParameterValue(f"parameter-name {name[:60]!r} is not a parameter of "
                                        f"collection {layer_id!r}; parameters: {listing}")
        chosen.update((p.id, p) for p in matches)
    listed = [p for p in offered if p.id in chosen]  # in the collection's order
    return (*listed, *(p for p in chosen.values() if p not in listed))


def _unlisted_statistic(name: str, layer: Layer) -> list[EdrParameter]:
    """The statistic parameter ``name`` means, if it is ``<variable>_member_<statistic>``."""
    variable, infix, label = name.partition(MEMBER_INFIX)
    if not infix or variable not in layer.variables:
        return []
    try:
        statistic = parse_statistic(label)
    except InvalidDimensionValue as exc:
        raise InvalidParameterValue(f"parameter-name {name[:60]!r}: {exc}") from exc
    return [statistic_parameter(variable, label)] if statistic is not None else []


def _times(run: RunInfo, query: EdrQuery) -> np.ndarray:
    if query.times is None:
        return run.valid_times
    refuse_unmatched(run, query.times, name="datetime")  # none left out in silence
    return query.times.select(run.valid_times)


def _levels(axes: LayerAxes, query: EdrQuery, layer_id: str) -> np.ndarray:
    """Store indices of the selected levels by ascending value ([0] without levels)."""
    if query.levels is None:
        return axes.sorted_levels()
    if axes.level is None:
        raise InvalidParameterValue(f"z was given, but collection {layer_id!r} has no "
                                    "vertical levels")
    labels = axes.level.labels.astype("float64")
    found = query.levels.select(labels)
    if axes.level.held is not None:
        held = np.isin(found, axes.level.held)
        if query.levels.values and not held.all():
            # A listed level is refused like one the cube lacks, not left out (issue #13 #7).
            raise InvalidParameterValue(
                f"z={labels[found[~held][0]]:g} holds no data{axes.level.scope}; levels "
                f"holding data: {axes.level.listing()}")
        found = found[held]
    if not found.size:
        raise InvalidParameterValue(f"z selects no level of collection {layer_id!r}; "
                                    f"levels: {axes.level.listing()}")
    return found[np.argsort(labels[found], kind="stable")]
