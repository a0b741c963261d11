"""The catchment API: area-weighted means of a layer over polygons, as series and as GeoJSON.

- ``/api/catchments/<set>/<id>?layer=…`` — the catchment's mean per valid time × member × run,
  as JSON, CSV or CoverageJSON (``f=``/``format=``, or ``Accept``). Runs, members (ensemble
  statistics too: the statistic over the members' catchment means), levels and the valid-time
  window are selected as in ``/api/timeseries``, whose parsing, run selection and encoders
  are reused here.
- ``/api/catchments?layer=…&geometry=<WKT or GeoJSON>`` (or the geometry as a POST body) —
  the same for one polygon given in the request.
- ``/api/catchments/<set>`` — the set as GeoJSON; with ``layer`` each feature's ``value`` at
  one valid time (``time``, default the run's first) of one run and member.
"""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import shapely

from fewsmap.catalog import Catalog, Layer
from fewsmap.errors import (
    InvalidDimensionValue,
    InvalidFormat,
    InvalidParameterValue,
    LayerNotDefined,
)
from fewsmap.export import NETCDF
from fewsmap.formats.media import COVJSON, CSV, JSON
from fewsmap.formats.numbers import json_numbers
from fewsmap.ogc.timeseries import coverage_json, encode_csv, parse_timeseries, series_json
from fewsmap.params import Params
from fewsmap.points import GridCell
from fewsmap.products.catchments import (
    WEIGHTS,
    CatchmentSet,
    SetWeights,
    catchment_weights,
    read_means,
    request_polygons,
    window_of,
)
from fewsmap.products.ensemble import MemberStatistic, reduce_selected
from fewsmap.resolve.labels import DIMENSION_PROPERTIES, selector_value
from fewsmap.resolve.series import (
    Series,
    TimeSeries,
    TimeSeriesRequest,
    labels_per_run,
    request_units,
    select_runs,
    statistic_over,
)
from fewsmap.store.cube import ForecastStore, RunInfo
from fewsmap.time.grammar import parse_instant
from fewsmap.time.instants import format_time

GEOJSON = "application/geo+json"
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


def catchment_request(params: Params, accept: str = "") -> TimeSeriesRequest:
    """Check the query of a catchment series: `parse_timeseries` without a point; the
    format from ``f``/``format``, else the ``Accept`` header.

    Raises
    ------
    FewsmapError
        As `parse_timeseries`; InvalidFormat for NetCDF (not offered for catchments).
    """
    items = [(k, v) for k, v in params.items() if k not in ("x", "y", "f")]
    chosen = params.get("f") or params.get("format") or _accepted(accept)
    if chosen:
        items = [(k, v) for k, v in items if k != "format"] + [("format", chosen)]
    request = parse_timeseries(Params([*items, ("x", "0"), ("y", "0")]))
    if request.format == NETCDF:
        raise InvalidFormat("format=netcdf is not offered for catchments; offered: json, "
                            "covjson, csv")
    return request


def _accepted(accept: str) -> str:
    """The first media type of an Accept header that the API offers, else ''."""
    for part in accept.split(","):
        media = part.split(";")[0].strip().lower()
        if media in (JSON, COVJSON, CSV, "application/vnd.cov+json"):
            return media
    return ""


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


def read_catchment(catalog: Catalog, request: TimeSeriesRequest, layer: Layer,
                   named_run: RunInfo | None, catchment: Catchment) -> TimeSeries:
    """Read the catchment's mean per valid time × member/level × run.

    Raises
    ------
    FewsmapError
        As `fewsmap.ogc.timeseries.read_time_series` (runs, members, levels), and
        InvalidParameterValue when the polygon covers no cell of the layer's grid or the
        request would read more than `MAX_READ_VALUES` values.
    """
    store = catalog.store(layer)
    window = window_of([catchment.weights.polygons[catchment.index]])
    if window is None:
        raise InvalidParameterValue(f"catchment {catchment.id!r} covers no cell of the grid "
                                    f"of layer {layer.id!r}")
    runs = select_runs(catalog, layer, named_run, request)
    chosen = labels_per_run(store, layer, runs, request)
    count = window.size * len(layer.variables) * sum(
        times.size * math.prod(len(i) for i in indices)
        for (_, times), (_, indices) in zip(runs, chosen, strict=True))
    if count > MAX_READ_VALUES:
        raise InvalidParameterValue(f"this request reads {count} values; at most "
                                    f"{MAX_READ_VALUES} (name a run, a member, or narrow "
                                    "start/end)")
    series = []
    # stored units for now: the set's GeoJSON values (products/catchments) are not converted
    units = request_units(store, layer, replace(request, display_units=False))
    for (run, times), (dims, indices) in zip(runs, chosen, strict=True):
        if any(not i for i in indices):
            continue
        steps = np.array([run.step_of(t) for t in times], dtype=np.int64)
        values = read_means(store, layer.variables, window, run.slot, steps, indices)[..., 0]
        statistics = [statistic_over(d, i, request.member)
                      for d, i in zip(dims, indices, strict=True)]
        values = units.apply(reduce_selected(values.astype(np.float32), statistics, 1))
        shape = [1 if isinstance(s, MemberStatistic) else len(i)
                 for s, i in zip(statistics, indices, strict=True)]
        for combination in itertools.product(*(range(n) for n in shape)):
            labels = tuple((DIMENSION_PROPERTIES.get(d.name, d.name),
                            selector_value(d.labels, s if isinstance(s, MemberStatistic)
                                           else i[k]))
                           for d, i, k, s in zip(dims, indices, combination, statistics,
                                                 strict=True))
            at: tuple[slice | int, ...] = (slice(None), *combination)
            series.append(Series(run, labels, times, values[at], units=units.units))
    centre = catchment.polygon.representative_point()
    cell = GridCell(row=-1, col=-1, lon=centre.x, lat=centre.y, x=centre.x, y=centre.y,
                    crs="EPSG:4326")
    return TimeSeries(layer, store, replace(request, x=centre.x, y=centre.y), cell,
                      tuple(series), units.units)


def catchment_series(catalog: Catalog, request: TimeSeriesRequest, layer: Layer,
                     named_run: RunInfo | None, catchment: Catchment) -> tuple[bytes, str]:
    """Answer a catchment series request: the body and its media type."""
    answer = read_catchment(catalog, request, layer, named_run, catchment)
    about = {"set": catchment.catchments.name, "id": catchment.id,
             "cells": int(catchment.weights.polygons[catchment.index].weights.size),
             "weighting": catchment.weights.method}
    if request.format == CSV:
        return encode_csv(answer), "text/csv; charset=utf-8"
    if request.format == COVJSON:
        return _dumps(_polygon_coverages(coverage_json(answer), catchment, about)), COVJSON
    body = series_json(answer)
    del body["cell"], body["point"]
    body["catchment"] = about
    return _dumps(body), JSON


def _polygon_coverages(collection: dict[str, Any], catchment: Catchment,
                       about: dict[str, Any]) -> dict[str, Any]:
    """The time-series CoverageCollection recast as PolygonSeries coverages (CoverageJSON
    §6.1.10: one polygon on a composite axis, and t)."""
    rings = shapely.geometry.mapping(catchment.polygon)["coordinates"]
    polygons = [rings] if catchment.polygon.geom_type == "Polygon" else list(rings)
    collection["domainType"] = "PolygonSeries"
    for coverage in collection["coverages"]:
        axes = coverage["domain"]["axes"]
        del axes["x"], axes["y"]
        axes["composite"] = {"dataType": "polygon", "coordinates": ["x", "y"],
                             "values": polygons[:1] if len(polygons) == 1 else polygons}
        coverage["domain"]["domainType"] = "PolygonSeries"
        coverage["fewsmap:catchment"] = about
    return collection


def set_geojson(catalog: Catalog, catchments: CatchmentSet, params: Params) -> bytes:
    """The set as GeoJSON; with ``layer``, each feature's mean at one valid time.

    Raises
    ------
    FewsmapError
        As `read_catchment`; InvalidDimensionValue when the time or member selects more
        than one value per feature (``member=all``).
    """
    if not params.get("layer"):
        return _dumps(catchments.feature_collection())
    request = catchment_request(params)
    layer, named_run, store = layer_and_store(catalog, request)
    values, about = set_values(catalog, request, params, layer, named_run, store, catchments)
    return _dumps(catchments.feature_collection(json_numbers(values), about))


def set_values(catalog: Catalog, request: TimeSeriesRequest, params: Params, layer: Layer,
               named_run: RunInfo | None, store: ForecastStore, catchments: CatchmentSet,
               ) -> tuple[np.ndarray, dict[str, Any]]:
    """Every catchment's mean at one valid time of one run and member (float32, NaN where a
    catchment has no value), and what was read (layer, run, time, member)."""
    time_text = (params.get("time") or "").strip()
    when = parse_instant(time_text, "time") if time_text else None
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
    weights = WEIGHTS.weights(store, catchments)
    window = window_of(weights.polygons)
    statistics = [statistic_over(d, i, request.member) for d, i in zip(dims, indices,
                                                                           strict=True)]
    if window is None:
        values = np.full(len(catchments.ids), np.nan, dtype=np.float32)
    else:
        step = np.array([run.step_of(when)], dtype=np.int64)
        means = read_means(store, layer.variables, window, run.slot, step, indices)
        values = reduce_selected(means.astype(np.float32), statistics, 1).reshape(-1)
    about = {"layer": layer.id, "reference_time": run.label, "time": format_time(when),
             **{DIMENSION_PROPERTIES.get(d.name, d.name): selector_value(
                 d.labels, s if isinstance(s, MemberStatistic) else i[0])
                for d, i, s in zip(dims, indices, statistics, strict=True)},
             "weighting": weights.method}
    return values, about


def sets_json(catalog: Catalog, base: str) -> bytes:
    """The configured sets: name, title, how many catchments, and links."""
    return _dumps({"catchments": [
        {"name": s.name, "title": s.title, "count": len(s.ids),
         "links": [{"rel": "item", "type": GEOJSON, "href": f"{base}/api/catchments/{s.name}"}]}
        for s in catalog.catchments.values()]})


def _dumps(body: dict[str, Any]) -> bytes:
    return json.dumps(body, allow_nan=False).encode()
