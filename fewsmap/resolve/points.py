"""Values at a point of a map: which layers, runs, times, members and levels a point query
means (`resolve_queries`), read at the grid cell under the point (`read_features`).

The core of WMS GetFeatureInfo and WMTS GetFeatureInfo (DESIGN.md §7: resolution in one
place): `fewsmap.ogc.featureinfo` parses the query into a `PointRequest` and encodes the
`FeatureValue` list this returns. The map part is the `MapRequest` GetMap resolves
(`fewsmap.resolve.maps`), so runs, times, members, levels, changes and accumulations mean
the same here. TIME may be one instant (or absent: the map's default) or a list, range or
``all``; ELEVATION one level (or absent: the layer's default) or a list of levels and
ranges (a vertical profile). One feature per time and level, levels in the order the layer
lists them within each time.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

import numpy as np
import shapely

from fewsmap.catalog import Catalog, Layer
from fewsmap.catalog.quantities import normalise_units
from fewsmap.crs import check_offered, offered_crs
from fewsmap.dimensions import LabelSpan, layer_dimensions
from fewsmap.errors import InvalidParameterValue, LayerNotDefined, LayerNotQueryable
from fewsmap.formats.numbers import json_number
from fewsmap.points import GridCell, find_cell
from fewsmap.products.accumulate import most_steps
from fewsmap.products.catchments import (
    WEIGHTS,
    CatchmentSet,
    catchment_at,
    set_means,
    window_of,
)
from fewsmap.products.change import changed, check_shared, derived_properties, point_values
from fewsmap.products.ensemble import Selector, label_lists, statistic_of
from fewsmap.resolve.catchments import check_read_values
from fewsmap.resolve.labels import DIMENSION_PROPERTIES, label_value, selector_value
from fewsmap.resolve.layers import resolve_layer
from fewsmap.resolve.maps import (
    MapRequest,
    check_group_style,
    defined_run,
    derived_baseline,
    dimension_labels,
    select_run,
    statistic_style,
)
from fewsmap.resolve.units import shown_units
from fewsmap.store.cube import ForecastStore, RunInfo
from fewsmap.store.geometry import transformer
from fewsmap.time.axis import limit_times, resolve_times
from fewsmap.time.grammar import TimeSelection


@dataclass(frozen=True)
class PointRequest:
    """The values of some layers of a map at one point.

    ``map`` is the map the point lies on (its layers, CRS, run and dimensions); ``x``, ``y``
    the point in the map's CRS, east/north order; ``time`` None means TIME was not given;
    ``elevation`` empty means ELEVATION was not given; ``feature_count`` None means every
    selected time.
    """

    map: MapRequest
    layers: tuple[str, ...]  # the layers queried (layer ids or per-run ids)
    x: float
    y: float
    feature_count: int | None = None
    time: TimeSelection | None = None
    elevation: tuple[LabelSpan, ...] = ()


@dataclass(frozen=True, eq=False)
class PointQuery:
    """One queried layer, resolved: what to read and where."""

    name: str  # as named in QUERY_LAYERS (a layer id or a per-run id)
    layer: Layer
    store: ForecastStore
    run: RunInfo
    crs: str
    times: np.ndarray  # datetime64[s], ascending
    labels: tuple[Selector, ...]  # a member's index, or a statistic over the members
    # Where the layer's nearest-time matching served another time than asked: (asked, served).
    substitutions: tuple[tuple[np.datetime64, np.datetime64], ...] = ()
    # The store indices of the levels ELEVATION names, read along the ``level_axis``-th
    # dimension (of ``labels``) instead of its one selector; empty: that one level.
    levels: tuple[int, ...] = ()
    level_axis: int | None = None
    # Run change: the baseline run and its member/level selectors; an accumulation window.
    baseline: RunInfo | None = None
    baseline_labels: tuple[Selector, ...] = ()
    window: np.timedelta64 | None = None
    # A catchment layer (<set>:<layer>): the set whose catchment means the map draws.
    catchments: CatchmentSet | None = None

    def label_lists(self, labels: tuple[Selector, ...] | None = None) -> list[list[int]]:
        """Store indices to read along each dimension (`label_lists`, with the levels) for
        ``labels`` (default: the run's)."""
        lists = label_lists(self.labels if labels is None else labels)
        if self.level_axis is not None:
            lists[self.level_axis] = list(self.levels)
        return lists

    def level_count(self) -> int:
        """How many levels are read (1 for a layer without levels or one level asked)."""
        return len(self.levels) if self.level_axis is not None else 1

    def values_read(self) -> int:
        """Values read at one cell: times × variables × members and levels (a statistic
        reads every member) × `fields_per_value`."""
        return (self.times.size * len(self.layer.variables)
                * math.prod(map(len, self.label_lists())) * self.fields_per_value())

    def fields_per_value(self) -> int:
        """Fields read for each value: an accumulation's steps (at most), twice for a
        change."""
        steps = 1 if self.window is None else most_steps(self.run, self.window)
        return steps * (1 if self.baseline is None else 2)

    def derived(self) -> tuple[tuple[str, str], ...]:
        """What makes the values derived, as feature properties: the baseline run of a
        change and the window of an accumulation."""
        return derived_properties(self.baseline, self.window)

    def read(self, cell: GridCell) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """The values at ``cell`` (time × the labels read), and any vector components:
        reduced over a statistic's members, summed over an accumulation's window, minus the
        baseline's (`fewsmap.products.change`)."""
        def read_run(run: RunInfo) -> tuple[np.ndarray, dict[str, np.ndarray]]:
            labels = self.labels if run is self.run else self.baseline_labels
            return point_values(self.store, self.layer.variables, cell, run, self.times,
                                self.label_lists(labels), labels, self.window)

        return changed(read_run, self.run, self.baseline)

    def read_catchment(self, index: int) -> np.ndarray:
        """The mean of catchment ``index`` of the set (time × the labels read), reduced over
        a statistic's members: what the catchment map draws (`set_means`).

        Raises
        ------
        InvalidParameterValue
            If the values of its cells exceed the catchment API's limit (`check_read_values`).
        """
        assert self.catchments is not None
        window = window_of([WEIGHTS.weights(self.store, self.catchments).polygons[index]])
        check_read_values(self.values_read() * (window.size if window else 0),
                          "narrow TIME or ELEVATION, or name a member")
        return set_means(self.store, self.layer.variables, self.catchments, self.run,
                         self.times, self.label_lists(), self.labels, [index])[..., 0]


@dataclass(frozen=True, eq=False)
class CatchmentFeature:
    """The catchment a point of a catchment layer lies in: the polygon its map fills."""

    id: str
    name: str  # its ``name`` property, else its id
    polygon: shapely.Geometry  # CRS84


@dataclass(frozen=True)
class FeatureValue:
    """The value of one layer at the queried cell for one time (and member or level)."""

    layer: str
    variable: str
    units: str
    value: float | None
    time: np.datetime64
    reference_time: np.datetime64
    cell: GridCell | None  # None off the grid, and for a catchment
    # ("member", 3), ("member", "p90"), ("elevation", 850)
    dimensions: tuple[tuple[str, float | int | str], ...] = ()
    components: tuple[tuple[str, float | None], ...] = ()  # (u, v) of a vector layer
    dimension_units: tuple[tuple[str, str], ...] = field(default=())
    # What a derived value is: ("baseline_reference_time", T0), ("accumulation", "PT24H")
    derived: tuple[tuple[str, str], ...] = ()
    catchment: CatchmentFeature | None = None  # whose mean the value is (catchment layers)

    @property
    def lead_time(self) -> np.timedelta64:
        """Valid time minus reference time, in seconds."""
        return np.timedelta64(self.time - self.reference_time, "s")


def resolve_queries(catalog: Catalog, request: PointRequest) -> list[PointQuery]:
    """The layers to query, each with its run, CRS, times and member/level indices.

    The query layers must be layers the map drew (WMS 1.3.0 §7.4.3.4): an entry of LAYERS
    (any of its runs) or a layer of a group LAYERS names; only those are queried, in the
    order QUERY_LAYERS names them. Groups are not queryable.

    Raises
    ------
    FewsmapError
        LayerNotDefined (also for a layer not shown on the map, WMS 1.3.0 Table E.1),
        LayerNotQueryable, StyleNotDefined, InvalidCRS, InvalidDimensionValue,
        MissingDimensionValue …
    """
    drawn_layers, drawn_groups = _drawn(catalog, request.map)
    queries = []
    for name in dict.fromkeys(request.layers):
        if name in catalog.groups and name not in catalog.layers:
            raise LayerNotQueryable(
                f"QUERY_LAYERS={name[:80]!r} is a layer group, which is not queryable; "
                "query its layers by name")
        layer, run, baseline = resolve_layer(catalog, name)
        if layer.id not in drawn_layers and layer.group not in drawn_groups:
            raise LayerNotDefined(
                f"QUERY_LAYERS={name[:80]!r} is not among LAYERS="
                f"{','.join(n for n, _ in request.map.entries)[:80]!r} (a query layer must "
                "be a layer drawn or a layer of a group drawn)")
        queries.append(_query(catalog, name, layer, run, replace(request, map=replace(
            request.map, baseline=request.map.baseline or baseline))))
    return queries


def _drawn(catalog: Catalog, request: MapRequest) -> tuple[set[str], set[str]]:
    """The ids of the layers and of the groups a map draws, each entry of LAYERS checked
    with its STYLES entry as GetMap checks it.

    Raises
    ------
    FewsmapError
        LayerNotDefined for an unknown name, StyleNotDefined for a style it lacks.
    """
    layers, groups = set(), set()
    for name, style in request.entries:
        if name in catalog.layers or name not in catalog.groups:
            layer, _, derived = resolve_layer(catalog, name)  # LayerNotDefined if unknown
            # as GetMap picks it: a change's diverging style, a probability's 0..100 %
            statistic_style(layer, style, request.member,
                            change=(request.baseline or derived) is not None)
            layers.add(layer.id)
        else:
            check_group_style(name, style, request.sld_style)
            groups.add(name)
    return layers, groups


def read_features(queries: Iterable[PointQuery], request: PointRequest,
                  max_values: int) -> list[FeatureValue]:
    """Read the value of each query at the queried point (None off the grid or missing): a
    grid layer's at the cell under the point, a catchment layer's the mean of the catchment
    the point lies in (no feature outside every catchment), as their maps show them.

    Raises
    ------
    InvalidParameterValue
        If more than ``max_values`` values would be read (each is one chunk read).
    """
    queries = list(queries)
    total = sum(q.values_read() for q in queries)
    if total > max_values:
        raise InvalidParameterValue(
            f"this request reads {total} values; at most {max_values} are allowed "
            "(max_point_values; narrow TIME or ELEVATION, or lower FEATURE_COUNT)")
    features = []
    for query in queries:
        read = _read_at(query, request.x, request.y)
        if read is None:  # a catchment layer's point in no catchment: no feature
            continue
        values, components, cell, catchment = read
        levels, units = _dimension_values(query)
        # In the units the map and legend show (FEWS), as series answer them: a change
        # converts without the offset, a probability is %.
        shown = shown_units(query.store, query.layer, statistic_of(query.labels),
                            request.map.use_display_units, query.baseline is not None)
        values = shown.apply(values)
        components = {k: shown.apply(v) for k, v in components.items()}
        found = []
        for k, when in enumerate(query.times):
            for n, dims in enumerate(levels):
                found.append(FeatureValue(
                    layer=query.name,
                    variable=",".join(query.layer.variables),
                    units=normalise_units(shown.units),
                    value=json_number(values[k, n]),
                    time=when,
                    reference_time=query.run.reference_time,
                    cell=cell,
                    dimensions=dims,
                    components=tuple((name, json_number(v[k, n]))
                                     for name, v in components.items()),
                    dimension_units=units,
                    derived=query.derived(),
                    catchment=catchment,
                ))
        features += found[: request.feature_count]  # FEATURE_COUNT: features per layer
    return features


def _read_at(query: PointQuery, x: float, y: float) -> tuple[
        np.ndarray, dict[str, np.ndarray], GridCell | None, CatchmentFeature | None] | None:
    """A query's values at point (x, y) of its CRS (time × level, NaN off the grid), its
    vector components, the grid cell read, or the catchment whose means a catchment layer
    answers (as its map fills the catchment the point lies in); None for a catchment layer's
    point in no catchment."""
    shape = (query.times.size, query.level_count())  # time × level
    if query.catchments is not None:
        lon, lat = transformer(query.crs, "OGC:CRS84").transform(x, y)
        index = catchment_at(query.catchments, lon, lat)
        if index is None:
            return None
        catchment_id = query.catchments.ids[index]
        name = query.catchments.properties[index].get("name")
        found = CatchmentFeature(catchment_id, catchment_id if name is None else str(name),
                                 query.catchments.polygons[index])
        return query.read_catchment(index).reshape(shape), {}, None, found
    cell = find_cell(query.store, query.crs, x, y)
    if cell is None:
        values = np.full(shape, np.nan, dtype=np.float32)
        return values, {name: values for name in query.layer.components}, None, None
    read, parts = query.read(cell)
    return read.reshape(shape), {k: v.reshape(shape) for k, v in parts.items()}, cell, None


def _query(catalog: Catalog, name: str, layer: Layer, run: RunInfo | None,
           request: PointRequest) -> PointQuery:
    store = catalog.store(layer)
    run = select_run(catalog, layer, run, request.map.reference_time)
    baseline = derived_baseline(catalog, layer, run, request.map)
    offered = offered_crs(store.geometry.crs_wkt)
    crs = check_offered(request.map.crs, offered)
    # The valid times TIME (and DIM_LEAD_TIME) mean for this run, resolved as GetMap does.
    resolved = resolve_times(run if request.time is not None else defined_run(
        run, baseline, request.map.accumulate), request.time, request.map.lead_time,
        layer.time_tolerance, default=str(layer.defaults.get("time", "now")))
    times = np.array(resolved.times, dtype="datetime64[s]")
    if baseline is not None:
        check_shared(times, run, baseline)
    if request.feature_count is not None:
        times = times[: request.feature_count]
    limit_times(request.time, times.size, catalog.settings.max_time_values)
    valid_time = times[0] if times.size == 1 else None
    level_axis, levels, first = _levels(catalog, layer, run, request.elevation, valid_time)
    # The members (and the one level, or the first of several) are chosen as GetMap does.
    labels = dimension_labels(catalog, layer, replace(request.map, elevation=first), run,
                              valid_time)
    several = len(levels) > 1
    if several and request.feature_count is not None:  # the times FEATURE_COUNT reaches
        times = times[: -(-request.feature_count // len(levels))]
    baseline_labels = () if baseline is None else dimension_labels(
        catalog, layer, replace(request.map, elevation=first), baseline, valid_time)
    return PointQuery(name, layer, store, run, crs, times, labels, resolved.substitutions,
                      levels if several else (), level_axis if several else None,
                      baseline, baseline_labels, request.map.accumulate,
                      catalog.catchments.get(layer.catchments) if layer.catchments else None)


def _levels(catalog: Catalog, layer: Layer, run: RunInfo, items: tuple[LabelSpan, ...],
            valid_time: np.datetime64 | None
            ) -> tuple[int | None, tuple[int, ...], float | None]:
    """The position of the elevation dimension among the layer's dimensions, the store
    indices of the levels ELEVATION names holding data in ``run`` (at ``valid_time``, when
    one time is asked) and the first one's label; (None, (), None) without ELEVATION or for
    a layer without levels, which ignores it as GetMap does.

    Raises
    ------
    InvalidDimensionValue
        For an item naming no level holding data.
    """
    if not items:
        return None, (), None
    dims = layer_dimensions(catalog.store(layer), layer.variable, layer.defaults, (run,),
                            valid_time)
    for axis, dimension in enumerate(dims):
        if dimension.name == "elevation":
            levels = dimension.indices_of(items, layer.id)
            return axis, levels, float(dimension.labels[levels[0]])
    return None, (), None


def _dimension_values(query: PointQuery) -> tuple[
        list[tuple[tuple[str, float | int | str], ...]], tuple[tuple[str, str], ...]]:
    """The member/level labels (or statistic) of each level a query reads, as feature
    properties, and their units."""
    dims = layer_dimensions(query.store, query.layer.variable, query.layer.defaults)
    values: list[tuple[str, float | int | str]] = []
    units = []
    for dimension, index in zip(dims, query.labels, strict=True):
        name = DIMENSION_PROPERTIES.get(dimension.name, dimension.name)
        values.append((name, selector_value(dimension.labels, index)))
        if dimension.units:
            units.append((name, dimension.units))
    if query.level_axis is None:
        return [tuple(values)], tuple(units)
    axis, labels = query.level_axis, dims[query.level_axis].labels
    return [tuple((name, label_value(labels[level])) if k == axis else (name, value)
                  for k, (name, value) in enumerate(values))
            for level in query.levels], tuple(units)
