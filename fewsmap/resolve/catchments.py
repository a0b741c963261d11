"""Catchments: what a catchment request means to read (the catchment and its weights on the
layer's grid, runs, members, levels, times) and its means, for every front
(DESIGN.md §7: resolution in one place).

`fewsmap.ogc.catchments` parses the ``/api/catchments`` queries into the `TimeSeriesRequest`
of `/api/timeseries` and encodes what this returns; the means are
`fewsmap.products.catchments`' (weights kept per store state and set).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import shapely

from fewsmap.catalog import Catalog, Layer
from fewsmap.errors import InvalidDimensionValue, InvalidParameterValue, LayerNotDefined
from fewsmap.points import GridCell
from fewsmap.products.catchments import (
    WEIGHTS,
    CatchmentCells,
    CatchmentSet,
    SetWeights,
    catchment_weights,
    request_polygons,
    set_means,
    window_of,
)
from fewsmap.products.ensemble import MemberStatistic
from fewsmap.resolve.labels import DIMENSION_PROPERTIES, selector_value
from fewsmap.resolve.series import (
    SeriesPlace,
    TimeSeries,
    TimeSeriesRequest,
    labels_per_run,
    read_time_series,
    request_units,
    select_runs,
    statistic_over,
)
from fewsmap.store.cube import ForecastStore, RunInfo
from fewsmap.time.instants import format_time

# Values one catchment request may read (window cells × steps × members × levels): a set
# of 100 catchments over Europe at 0.25° is 50 000 cells, 65 steps of 51 members 166 M.
MAX_READ_VALUES = 200_000_000


@dataclass(frozen=True, eq=False)
class Catchment:
    """One polygon of a set, its weights on the layer's grid, and what to read."""

    catchments: CatchmentSet
    index: int
    weights: SetWeights

    @property
    def id(self) -> str:
        """The catchment's id in its set."""
        return self.catchments.ids[self.index]

    @property
    def polygon(self) -> shapely.Geometry:
        """The polygon, in CRS84."""
        return self.catchments.polygons[self.index]


def set_catchment(catalog: Catalog, set_name: str, catchment_id: str,
                  store: ForecastStore) -> Catchment:
    """A configured catchment and its (kept) weights on ``store``'s grid.

    Raises
    ------
    LayerNotDefined
        If the set or the id is not defined.
    """
    catchments = catchment_set_named(catalog, set_name)
    index = catchments.index(catchment_id)
    return Catchment(catchments, index, WEIGHTS.weights(store, catchments))


def catchment_set_named(catalog: Catalog, set_name: str) -> CatchmentSet:
    """The configured set ``set_name``.

    Raises
    ------
    LayerNotDefined
        If there is none.
    """
    found = catalog.catchments.get(set_name)
    if found is None:
        offered = ", ".join(catalog.catchments) or "none configured"
        raise LayerNotDefined(f"catchment set {set_name[:80]!r} is not defined; sets: "
                              f"{offered}")
    return found


def given_catchment(text: str, store: ForecastStore) -> Catchment:
    """The one polygon of a request (WKT or GeoJSON) and its weights (not kept).

    Raises
    ------
    InvalidParameterValue
        If the geometry is unusable or holds more than one polygon feature.
    """
    catchments = request_polygons(text)
    if len(catchments.ids) != 1:
        raise InvalidParameterValue(f"geometry: {len(catchments.ids)} polygons; give one "
                                    "(a MultiPolygon is one catchment), or configure a set")
    return Catchment(catchments, 0, catchment_weights(store.geometry, catchments.polygons))


def layer_and_store(catalog: Catalog, request: TimeSeriesRequest,
                    ) -> tuple[Layer, RunInfo | None, ForecastStore]:
    """The layer a request names (protected layers need their token), its run and store."""
    layer, named_run = catalog.resolve(request.layer)
    return layer, named_run, catalog.store(layer)


def check_read_values(count: int, narrowing: str) -> None:
    """Refuse to read more than `MAX_READ_VALUES` cell values for catchment means.

    Raises
    ------
    InvalidParameterValue
        Naming the count, the limit and ``narrowing``: how to ask for less.
    """
    if count > MAX_READ_VALUES:
        raise InvalidParameterValue(f"this request reads {count} values; at most "
                                    f"{MAX_READ_VALUES} ({narrowing})")


def read_catchment(catalog: Catalog, request: TimeSeriesRequest, layer: Layer,
                   catchment: Catchment) -> TimeSeries:
    """Read the catchment's mean per valid time × member/level × run: the series core
    (`fewsmap.resolve.series.read_time_series`) read at the catchment's weighted cells, so
    statistics, run change (``baseline``), sums (``accumulate``) and display units are
    those of a point's series; ``layer`` is the layer ``request.layer`` names.

    Raises
    ------
    FewsmapError
        As `read_time_series`, and InvalidParameterValue when the polygon covers no cell of
        the layer's grid or the request would read more than `MAX_READ_VALUES` values.
    """
    window = window_of([catchment.weights.polygons[catchment.index]])
    if window is None:
        raise InvalidParameterValue(f"catchment {catchment.id!r} covers no cell of the grid "
                                    f"of layer {layer.id!r}")
    centre = catchment.polygon.representative_point()
    cell = GridCell(row=-1, col=-1, lon=centre.x, lat=centre.y, x=centre.x, y=centre.y,
                    crs="EPSG:4326")
    answer = read_time_series(catalog, request, MAX_READ_VALUES,
                              SeriesPlace(cell, CatchmentCells(window), window.size))
    located: TimeSeries = replace(answer, request=replace(answer.request, x=centre.x,
                                                          y=centre.y))
    return located


def set_values(catalog: Catalog, request: TimeSeriesRequest, when: np.datetime64 | None,
               layer: Layer, named_run: RunInfo | None, store: ForecastStore,
               catchments: CatchmentSet) -> tuple[np.ndarray, dict[str, Any]]:
    """Every catchment's mean at one valid time (``when``, default the run's first) of one
    run and member (float32, NaN where a catchment has no value), and what was read (layer,
    run, time, member).

    Values are in the units the catchment map shows (display units unless
    ``useDisplayUnits=false``), named in ``units``.

    Raises
    ------
    FewsmapError
        As `select_runs`; InvalidDimensionValue when the member or level selects more than
        one value per catchment (``member=all``); InvalidParameterValue for a run change or
        sum (answered per catchment, by `read_catchment`).
    """
    if request.baseline is not None or request.accumulate is not None:
        raise InvalidParameterValue(
            "baseline and accumulate are answered per catchment (/api/catchments/<set>/<id>),"
            " not for a whole set")
    if when is not None:
        request = replace(request, start=when, end=when, all_runs=False)
    runs = select_runs(catalog, layer, named_run, request)
    run, times = runs[-1]
    when = times[0] if when is None else when
    (dims, indices), = labels_per_run(store, layer, [(run, times[:1])], request)
    if any(len(i) != 1 for i, d in zip(indices, dims, strict=True)
           if not isinstance(statistic_over(d, i, request.member), MemberStatistic)):
        raise InvalidDimensionValue("one value per catchment: name one member or level, "
                                    "or an ensemble statistic, not 'all'")
    statistics = [statistic_over(d, i, request.member) for d, i in zip(dims, indices,
                                                                           strict=True)]
    units = request_units(store, layer, request)
    values = units.apply(set_means(store, layer.variables, catchments, run, np.array([when]),
                                   indices, statistics).reshape(-1))
    about = {"layer": layer.id, "reference_time": run.label, "time": format_time(when),
             "units": units.units,
             **{DIMENSION_PROPERTIES.get(d.name, d.name): selector_value(
                 d.labels, s if isinstance(s, MemberStatistic) else i[0])
                for d, i, s in zip(dims, indices, statistics, strict=True)},
             "weighting": WEIGHTS.weights(store, catchments).method}
    return values, about
