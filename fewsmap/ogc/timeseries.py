"""The time-series API for dashboards: a layer's values at one point, over lead times and runs.

``GET /api/timeseries?layer=…&x=…&y=…`` answers JSON (default), CoverageJSON or CSV; the
OpenAPI 3.1 description (`openapi_document`) is the contract and is served beside it. The
point is found and read by the core (`fewsmap.points`): only the chunks holding its cell.

Selections: one run (``run=<T0>|latest``, default latest), several (``runs=all|<n>``), or a
valid-time window (``start``/``end``), which alone means every run that covers it (a forecast
plume). ``member`` and ``elevation`` take a value or ``all``; absent, the layer's default.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import math
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any

import numpy as np

from fewsmap.catalog import Catalog, Layer
from fewsmap.catalog.extent import lonlat_bbox
from fewsmap.crs import canonical_crs, check_offered, offered_crs
from fewsmap.dimensions import LayerDimension, layer_dimensions
from fewsmap.errors import (
    InvalidDimensionValue,
    InvalidFormat,
    InvalidParameterValue,
    InvalidPoint,
    LayerNotQueryable,
)
from fewsmap.export import NETCDF
from fewsmap.export.netcdf import PointSeries, timeseries_netcdf
from fewsmap.ogc.featureinfo import (
    DIMENSION_PROPERTIES,
    json_number,
    json_numbers,
    lead_time_text,
    selector_value,
)
from fewsmap.ogc.getmap import check_statistic, resolve_layer
from fewsmap.ogc.params import Params, finite_number
from fewsmap.points import GridCell, find_cell
from fewsmap.products.accumulate import complete_times, parse_window
from fewsmap.products.change import (
    Baseline,
    changed,
    derived_properties,
    parse_baseline,
    point_values,
    select_baseline,
    shared_times,
)
from fewsmap.products.ensemble import (
    EnsembleStatistic,
    MemberStatistic,
    Selector,
    label_lists,
    parse_statistic,
)
from fewsmap.store.cube import ForecastStore, RunInfo
from fewsmap.time.grammar import parse_instant
from fewsmap.time.instants import format_time, format_times

JSON = "application/json"
COVJSON = "application/prs.coverage+json"
CSV = "text/csv"
FORMATS = {"json": JSON, "application/json": JSON,
           "covjson": COVJSON, "coveragejson": COVJSON, COVJSON: COVJSON,
           "application/vnd.cov+json": COVJSON,
           "csv": CSV, "text/csv": CSV,
           "netcdf": NETCDF, "nc": NETCDF, NETCDF: NETCDF, "application/netcdf": NETCDF}
ALL = "all"
LATEST = "latest"
DEFAULT_CRS = "EPSG:4326"
CRS84_URI = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
MAX_RUNS_PARAMETER = 10_000


@dataclass(frozen=True)
class TimeSeriesRequest:
    """A checked time-series query; ``x``/``y`` east/north in ``crs`` whatever its axis order.

    Runs: ``reference_time`` names one; else ``all_runs`` or ``latest_runs`` (the last n);
    else the latest run. ``start``/``end`` limit valid times (inclusive). ``member`` and
    ``elevation`` are a label, None (the default) or `ALL`.
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
    member: float | str | EnsembleStatistic | None = None
    elevation: float | str | None = None
    format: str = JSON
    baseline: Baseline | None = None  # each run's change from this baseline run
    accumulate: np.timedelta64 | None = None  # sums over this window ending at each time


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


@dataclass(frozen=True, eq=False)
class TimeSeries:
    """A request's answer before encoding."""

    layer: Layer
    store: ForecastStore
    request: TimeSeriesRequest
    cell: GridCell
    series: tuple[Series, ...]

    @property
    def units(self) -> str:
        """Units of the layer's variable (CF ``units``); % for an exceedance probability."""
        units = str(self.store.attributes(self.layer.variable).get("units", ""))
        member = self.request.member
        return member.units(units) if isinstance(member, EnsembleStatistic) else units


def parse_timeseries(params: Params) -> TimeSeriesRequest:
    """Check a time-series query and return it typed.

    Raises
    ------
    FewsmapError
        MissingParameterValue, InvalidParameterValue, InvalidDimensionValue, InvalidFormat.
    """
    run_text = (params.get("run") or "").strip()
    runs_text = (params.get("runs") or "").strip().lower()
    if run_text and runs_text:
        raise InvalidParameterValue("give run=<T0>|latest or runs=all|<n>, not both")
    reference_time = None
    if run_text and run_text.lower() != LATEST:
        reference_time = parse_instant(run_text, "run")
    latest_runs = None
    if runs_text and runs_text != ALL:
        latest_runs = _whole_number(runs_text, "runs", "all or a whole number of latest runs")
    start, end = (_instant(params, name) for name in ("start", "end"))
    if start is not None and end is not None and end < start:
        raise InvalidParameterValue(f"end={format_time(end)} is before start="
                                    f"{format_time(start)}")
    window_plume = (start is not None or end is not None) and not run_text and not runs_text
    format_text = (params.get("format") or params.get("f") or "json").strip().lower()
    if format_text not in FORMATS:
        raise InvalidFormat(f"format={format_text[:60]!r} is not offered; offered: json, "
                            "covjson, csv, netcdf")
    return TimeSeriesRequest(
        layer=params.require("layer"),
        x=_coordinate(params, "x"),
        y=_coordinate(params, "y"),
        crs=canonical_crs(params.get("crs") or DEFAULT_CRS),
        reference_time=reference_time,
        all_runs=runs_text == ALL or window_plume,
        latest_runs=latest_runs,
        runs_given=bool(runs_text),
        start=start,
        end=end,
        member=_member(params),
        elevation=_label(params, "elevation"),
        format=FORMATS[format_text],
        baseline=parse_baseline(params.get("baseline")),
        accumulate=parse_window(params.get("accumulate")),
    )


def read_time_series(catalog: Catalog, request: TimeSeriesRequest) -> TimeSeries:
    """Resolve the request against the catalog and read the values at the cell.

    Raises
    ------
    FewsmapError
        LayerNotDefined, LayerNotQueryable, InvalidCRS, InvalidDimensionValue,
        MissingDimensionValue, InvalidPoint (outside the grid), InvalidParameterValue (too
        many values).
    """
    if request.layer in catalog.groups and request.layer not in catalog.layers:
        members = [layer.id for layer in catalog.layers.values()
                   if layer.group == request.layer]
        raise LayerNotQueryable(f"layer={request.layer[:80]!r} is a layer group; name one of "
                                f"its layers: {', '.join(members[:10])}")
    layer, named_run, derived = resolve_layer(catalog, request.layer)
    request = replace(request, baseline=request.baseline or derived)
    store = catalog.store(layer)
    crs = check_offered(request.crs, offered_crs(store.geometry.crs_wkt),
                        "InvalidCRS")
    runs, baselines = _derived(catalog, layer, _runs(catalog, layer, named_run, request),
                               request)
    chosen = _labels_per_run(store, layer, runs, request)
    reads = (1 if request.accumulate is None else 2) * (1 if request.baseline is None else 2)
    count = sum(times.size * math.prod(len(i) for i in indices)
                for (_, times), (_, indices) in zip(runs, chosen, strict=True)) * len(
        layer.variables) * reads  # an accumulation's series reads each step about twice
    limit = catalog.settings.max_point_values
    if count > limit:
        raise InvalidParameterValue(
            f"this request reads {count} values; at most {limit} are allowed "
            "(max_point_values; narrow start/end, name a run, a member or an elevation)")
    cell = find_cell(store, crs, request.x, request.y)
    if cell is None:
        west, south, east, north = lonlat_bbox(store)
        raise InvalidPoint(
            f"x={request.x:g}, y={request.y:g} ({crs}) lies outside the grid of layer "
            f"{layer.id!r}, which covers longitude {west:g}..{east:g}, latitude "
            f"{south:g}..{north:g}")
    series = []
    for (run, times), (dims, indices), baseline in zip(runs, chosen, baselines, strict=True):
        if any(not i for i in indices):
            continue  # the named member or level holds no data in this run
        statistics = [_statistic_over(d, i, request.member) for d, i in zip(dims, indices,
                                                                               strict=True)]

        values, components = _values(store, layer, cell, (run, baseline), times, indices,
                                     statistics, request)
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
                                 derived_properties(baseline, request.accumulate)))
    return TimeSeries(layer, store, request, cell, tuple(series))


def time_series(catalog: Catalog, params: Params) -> tuple[bytes, str]:
    """Answer ``/api/timeseries``: the body and its media type.

    Raises
    ------
    FewsmapError
        The error for the first problem found.
    """
    request = parse_timeseries(params)
    answer = read_time_series(catalog, request)
    if request.format == CSV:
        return encode_csv(answer), "text/csv; charset=utf-8"
    if request.format == COVJSON:
        return _dumps(coverage_json(answer)), COVJSON
    if request.format == NETCDF:
        return encode_netcdf(answer), NETCDF
    return _dumps(series_json(answer)), JSON


def series_json(answer: TimeSeries) -> dict[str, Any]:
    """The plain JSON answer (schema ``TimeSeries`` of the OpenAPI document)."""
    cell, request = answer.cell, answer.request
    body: dict[str, Any] = {
        "layer": answer.layer.id,
        "variable": ",".join(answer.layer.variables),
        "units": answer.units,
        "cell": {"row": cell.row, "col": cell.col, "lon": _finite(cell.lon),
                 "lat": _finite(cell.lat), "x": _finite(cell.x), "y": _finite(cell.y),
                 "crs": cell.crs},
        "point": {"x": request.x, "y": request.y, "crs": cell.crs},
        "series": [],
    }
    if answer.layer.components:
        body["components"] = list(answer.layer.components)
    for series in answer.series:
        entry: dict[str, Any] = {"reference_time": series.run.label}
        entry.update(series.dimensions)
        entry.update(series.derived)
        entry["times"] = format_times(series.times)
        entry["lead_times"] = _lead_times(series)
        entry["values"] = json_numbers(series.values)
        if series.components:
            entry["components"] = {name: json_numbers(values)
                                   for name, values in series.components}
        body["series"].append(entry)
    return body


def encode_csv(answer: TimeSeries) -> bytes:
    """CSV: a header, then one row per value (RFC 4180; empty field = missing)."""
    names = [name for name, _ in answer.series[0].dimensions] if answer.series else []
    extra = [name for name in names if name != "member"]
    components = list(answer.layer.components)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["reference_time", "valid_time", "lead_time", "member", *extra, "value",
                     *components])
    for series in answer.series:
        labels = dict(series.dimensions)
        parts = dict(series.components)
        for k, (when, lead) in enumerate(zip(series.times, _lead_times(series), strict=True)):
            writer.writerow([
                series.run.label, format_time(when), lead, labels.get("member", ""),
                *(labels[name] for name in extra), _csv_number(series.values[k]),
                *(_csv_number(parts[name][k]) for name in components)])
    return out.getvalue().encode()


def encode_netcdf(answer: TimeSeries) -> bytes:
    """CF NetCDF-4 with featureType timeSeries: one instance per run (and member/level) at
    the cell's centre; a vector layer gives its speed and each component."""
    layer, store = answer.layer, answer.store
    keys = ["speed", *layer.components] if layer.components else [layer.variable]
    speed = {"units": answer.units, "long_name": f"speed of ({', '.join(layer.components)})"}
    attrs = {key: store.attributes(key) if key in store.variables else speed for key in keys}
    series = [PointSeries(s.run.reference_time, s.dimensions, s.times,
                          {keys[0]: s.values, **dict(s.components)}) for s in answer.series]
    cell = answer.cell
    return timeseries_netcdf(series, cell.lon, cell.lat, attrs,
                             f"{layer.id} at grid cell row {cell.row}, column {cell.col}")


def coverage_json(answer: TimeSeries) -> dict[str, Any]:
    """CoverageJSON: a CoverageCollection of PointSeries coverages, one per series.

    Each coverage's x/y is the cell centre in CRS84; its run and member are given in the
    members ``fewsmap:reference_time``/``fewsmap:member`` and its lead times in
    ``fewsmap:lead_times`` (CoverageJSON has no axis for them).
    """
    layer, cell = answer.layer, answer.cell
    attrs = answer.store.attributes(layer.variable)
    keys = ["speed", *layer.components] if layer.components else [layer.variable]
    parameters = {}
    for key in keys:
        source = answer.store.attributes(key) if key in answer.store.variables else attrs
        label = str(source.get("long_name") or key)
        if key == "speed":
            label = f"Speed of ({', '.join(layer.components)})"
        parameter: dict[str, Any] = {"type": "Parameter",
                                     "observedProperty": {"label": {"en": label}}}
        if source.get("standard_name"):
            parameter["observedProperty"]["id"] = (
                f"http://vocab.nerc.ac.uk/standard_name/{source['standard_name']}/")
        units = str(source.get("units", answer.units))
        if units:
            parameter["unit"] = {"symbol": units}
        parameters[key] = parameter
    referencing: list[dict[str, Any]] = [
        {"coordinates": ["x", "y"], "system": {"type": "GeographicCRS", "id": CRS84_URI}},
        {"coordinates": ["t"], "system": {"type": "TemporalRS", "calendar": "Gregorian"}},
    ]
    coverages = []
    for series in answer.series:
        labels = dict(series.dimensions)
        axes: dict[str, Any] = {"x": {"values": [cell.lon]}, "y": {"values": [cell.lat]},
                                "t": {"values": format_times(series.times)}}
        if "elevation" in labels:
            axes["z"] = {"values": [labels["elevation"]]}
        arrays = {"speed" if layer.components else layer.variable: series.values,
                  **dict(series.components)}
        coverage: dict[str, Any] = {
            "type": "Coverage",
            "id": f"{layer.id}/{series.run.label}"
                  + "".join(f"/{k}={v}" for k, v in series.dimensions),
            "domain": {"type": "Domain", "domainType": "PointSeries", "axes": axes},
            "ranges": {key: {"type": "NdArray", "dataType": "float", "axisNames": ["t"],
                             "shape": [int(values.size)],
                             "values": json_numbers(values)}
                       for key, values in arrays.items()},
            "fewsmap:reference_time": series.run.label,
            "fewsmap:lead_times": _lead_times(series),
        }
        for name, value in series.dimensions:
            if name != "elevation":
                coverage[f"fewsmap:{name}"] = value
        coverages.append(coverage)
    if any("elevation" in dict(s.dimensions) for s in answer.series):
        units = next((d.units for d in layer_dimensions(answer.store, layer.variable, {})
                      if d.name == "elevation"), "")
        referencing.append({"coordinates": ["z"], "system": {
            "type": "VerticalCRS", "cs": {"csAxes": [{"name": {"en": "elevation"},
                                                       "direction": "up",
                                                       "unit": {"symbol": units}}]}}})
    return {"type": "CoverageCollection", "domainType": "PointSeries",
            "parameters": parameters, "referencing": referencing, "coverages": coverages}


def _runs(catalog: Catalog, layer: Layer, named: RunInfo | None,
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
    selected = []
    for run in chosen:
        times = run.valid_times[(run.valid_times >= start) & (run.valid_times <= end)]
        if times.size:
            selected.append((run, times))
    if not selected:
        which = f"run {chosen[0].label}" if single or len(chosen) == 1 else (
            f"any of the {len(chosen)} runs")
        raise InvalidDimensionValue(
            f"{which} has no valid time between {_bound(request.start)} and "
            f"{_bound(request.end)}")
    return selected


def _values(store: ForecastStore, layer: Layer, cell: GridCell,
            runs: tuple[RunInfo, RunInfo | None], times: np.ndarray,
            indices: list[list[int]], statistics: list[Selector], request: TimeSeriesRequest,
            ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """A run's values at the cell (reduced, summed over an accumulation's windows), minus
    its baseline's when it has one (`fewsmap.products.change.changed`)."""
    run, baseline = runs

    def read_run(shown: RunInfo) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        lists, selectors = (indices, statistics) if shown is run else _baseline_labels(
            store, layer, shown, times, indices, request)  # its own members for a statistic
        return point_values(store, layer.variables, cell, shown, times, lists, selectors,
                            request.accumulate)

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
    if layer.is_vector:
        raise InvalidParameterValue(f"baseline and accumulate are offered for scalar layers; "
                                    f"{layer.id!r} is a vector layer")
    kept: list[tuple[RunInfo, np.ndarray]] = []
    baselines: list[RunInfo | None] = []
    refusal: InvalidDimensionValue | None = None
    for run, times in runs:
        try:
            base = None if request.baseline is None else select_baseline(
                catalog.runs(layer), run, request.baseline, layer.id)
        except InvalidDimensionValue as exc:
            refusal = exc
            continue
        if base is not None:
            times = np.intersect1d(times, shared_times(run, base))
        if request.accumulate is not None:
            times = complete_times(run, times, request.accumulate)
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


def _baseline_labels(store: ForecastStore, layer: Layer, baseline: RunInfo,
                     times: np.ndarray, indices: list[list[int]], request: TimeSeriesRequest,
                     ) -> tuple[list[list[int]], list[Selector]]:
    """What the baseline run reads: the run's members and levels, except that a statistic
    is over the baseline's own members."""
    (dims, own), = _labels_per_run(store, layer, [(baseline, times)], request)
    chosen = [o if isinstance(request.member, EnsembleStatistic) and
              d.name == "ensemble_member" else i
              for d, o, i in zip(dims, own, indices, strict=True)]
    return chosen, [_statistic_over(d, i, request.member)
                    for d, i in zip(dims, chosen, strict=True)]


def _labels_per_run(store: ForecastStore, layer: Layer,
                    runs: list[tuple[RunInfo, np.ndarray]], request: TimeSeriesRequest,
                    ) -> list[tuple[list[LayerDimension], list[list[int]]]]:
    """Each run's member and level dimensions and the store indices to read along them.

    ``all`` means every label holding data in that run, so a lagged ensemble gives one series
    per member of each run, not an all-missing series for every member of the cube. Where
    several runs are read, one lacking a named member (or level) reads none; where none has
    it, the request is refused.

    Raises
    ------
    InvalidDimensionValue, MissingDimensionValue
        If no run holds the named label, or a label is required and not named.
    """
    wanted = {"ensemble_member": request.member, "elevation": request.elevation}
    chosen: list[tuple[list[LayerDimension], list[list[int]]]] = []
    refusal: InvalidDimensionValue | None = None
    for run, _ in runs:
        dims = layer_dimensions(store, layer.variable, layer.defaults, (run,))
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


def _indices(dimension: LayerDimension, wanted: float | str | EnsembleStatistic | None,
             layer_id: str) -> list[int]:
    """Store indices along a member or level dimension: one, or every one for ``all``, or
    every member a statistic reduces."""
    if wanted == ALL:
        return [int(i) for i in dimension.sorted_indices()]
    if isinstance(wanted, EnsembleStatistic):
        return list(label_lists([dimension.select(wanted, layer_id)])[0])
    return [dimension.index(None if wanted is None else float(wanted), layer_id)]


def _statistic_over(dimension: LayerDimension, indices: list[int],
                    member: object) -> Selector:
    """The statistic reducing the values read along ``dimension`` (0: none)."""
    if isinstance(member, EnsembleStatistic) and dimension.name == "ensemble_member":
        return MemberStatistic(member, tuple(indices))
    return 0


def _label(params: Params, name: str) -> float | str | None:
    text = (params.get(name) or "").strip()
    if not text:
        return None
    if text.lower() == ALL:
        return ALL
    return finite_number(text, name)


def _member(params: Params) -> float | str | EnsembleStatistic | None:
    """``member``: a label, ``all``, or an ensemble statistic (``mean``, ``above:20`` …)."""
    text = (params.get("member") or "").strip()
    statistic = parse_statistic(text) if text and text.lower() != ALL else None
    return statistic or _label(params, "member")


def _coordinate(params: Params, name: str) -> float:
    return finite_number(params.require(name), name, InvalidParameterValue)


def _instant(params: Params, name: str) -> np.datetime64 | None:
    text = (params.get(name) or "").strip()
    return parse_instant(text, name) if text else None


def _whole_number(text: str, name: str, allowed: str) -> int:
    try:
        value = int(text)
    except ValueError as exc:
        raise InvalidParameterValue(f"{name}={text[:40]!r}: allowed: {allowed}") from exc
    if not 0 < value <= MAX_RUNS_PARAMETER:
        raise InvalidParameterValue(
            f"{name}={value}: allowed: {allowed} (1..{MAX_RUNS_PARAMETER})")
    return value


def _bound(value: np.datetime64 | None) -> str:
    return format_time(value) if value is not None else "(open)"


def _lead_times(series: Series) -> list[str]:
    leads = (series.times - series.run.reference_time).astype("timedelta64[s]")
    return [_lead_text(seconds) for seconds in leads.astype(np.int64).tolist()]


@lru_cache(maxsize=4096)
def _lead_text(seconds: int) -> str:  # a series repeats the same few lead times
    return lead_time_text(np.timedelta64(seconds, "s"))


def _csv_number(value: object) -> str:
    number = json_number(value)
    return "" if number is None else repr(number)


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _dumps(body: dict[str, Any]) -> bytes:
    return json.dumps(body, allow_nan=False).encode()


def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 description of ``/api/timeseries`` (served at ``/api/openapi.json``)."""
    time_text = "ISO 8601 UTC instant, e.g. 2022-08-09T06:00:00Z"
    number_or_all = {"oneOf": [{"type": "number"}, {"type": "string", "const": ALL}]}
    member_value = {"oneOf": [*number_or_all["oneOf"], {"type": "string", "pattern": (
        r"^(mean|median|min|max|std|p[1-9][0-9]?|(above|below):-?[0-9]+(\.[0-9]+)?)$")}]}
    nullable_number = {"type": ["number", "null"]}
    parameters = [
        _parameter("layer", True, "A layer id from the WMS capabilities (`<store>.<variable>` "
                   "without configuration), or a per-run id `<layer>-<T0>`; not a group.",
                   {"type": "string", "minLength": 1}, "naefs-mean.QTF"),
        _parameter("x", True, "Easting of the point in `crs`: the **longitude** for "
                   "EPSG:4326 and CRS:84. Always east first, whatever the CRS's official "
                   "axis order (unlike WMS 1.3.0 EPSG:4326 bounding boxes).",
                   {"type": "number"}, -105.0),
        _parameter("y", True, "Northing of the point in `crs`: the **latitude** for "
                   "EPSG:4326 and CRS:84.", {"type": "number"}, 40.0),
        _parameter("crs", False, "CRS of x and y: EPSG:4326 (default; x=lon, y=lat), CRS:84, "
                   "EPSG:3857 or the grid's own EPSG code (see the layer's CRS in the "
                   "capabilities).", {"type": "string", "default": DEFAULT_CRS}, "EPSG:3857"),
        _parameter("run", False, "One run by its forecast reference time, or `latest` (the "
                   "default when neither `runs` nor `start`/`end` is given): all its lead "
                   f"times. {time_text}.",
                   {"type": "string", "default": LATEST}, "2022-08-09T00:00:00Z"),
        _parameter("runs", False, "`all` runs, or the latest n runs; each series is tagged "
                   "with its run. Not together with `run`.",
                   {"oneOf": [{"type": "string", "const": ALL},
                              {"type": "integer", "minimum": 1,
                               "maximum": MAX_RUNS_PARAMETER}]}, ALL),
        _parameter("start", False, "First valid time (inclusive). Without `run`/`runs`, "
                   "`start`/`end` select every run with a valid time in the window (a "
                   f"forecast plume). {time_text}.",
                   {"type": "string", "format": "date-time"}, "2022-08-10T00:00:00Z"),
        _parameter("end", False, f"Last valid time (inclusive). {time_text}.",
                   {"type": "string", "format": "date-time"}, "2022-08-12T00:00:00Z"),
        _parameter("member", False, "Ensemble member label, or `all` (one series per "
                   "member holding data in each run: a lagged ensemble's runs each give "
                   "their own members); default: the layer's default member (the control), "
                   "else the lowest member the run holds. Runs without a named member give "
                   "no series; only valid times holding data are listed. Or an ensemble "
                   "statistic over the members holding data: `mean`, `median`, `min`, `max`, "
                   "`std`, `p1`..`p99` (numpy's linear percentiles), `above:<X>`/`below:<X>` "
                   "(per cent of those members above/below X, in the layer's units).",
                   member_value, ALL),
        _parameter("elevation", False, "Level (e.g. pressure in hPa), or `all` (the levels "
                   "holding data); default: the configured default, else the level nearest "
                   "the surface holding data.", number_or_all, 850),
        _parameter("baseline", False, "A run change: each run's values minus those of "
                   "`previous` (the run before it) or of the run at this reference time, at "
                   "the valid times both hold (only those are listed). Also "
                   f"`layer=<layer>:change`. {time_text}.",
                   {"type": "string", "minLength": 1}, "previous"),
        _parameter("accumulate", False, "An ISO 8601 duration (PT24H, P3D; at most 31 days, "
                   "a whole number of the run's steps): at each valid time, the sum of the "
                   "run's values in the window ending there; only valid times whose whole "
                   "window lies within the run are listed.",
                   {"type": "string", "minLength": 1}, "PT24H"),
        _parameter("format", False, "`json` (default), `covjson` (CoverageJSON "
                   "CoverageCollection of PointSeries), `csv` or `netcdf` (CF NetCDF-4, "
                   "featureType timeSeries).",
                   {"type": "string", "enum": ["json", "covjson", "csv", "netcdf"],
                    "default": "json"},
                   "json"),
    ]
    series = {
        "type": "object",
        "required": ["reference_time", "times", "lead_times", "values"],
        "properties": {
            "reference_time": {"type": "string", "format": "date-time"},
            "member": {"type": ["number", "string"],
                       "description": "Present for ensemble layers: the member's label, or "
                                      "the statistic asked for (`mean`, `above:20` …)."},
            "elevation": {"type": "number", "description": "Present for layers with levels."},
            "baseline_reference_time": {"type": "string", "format": "date-time",
                                        "description": "Present for a change: the baseline "
                                                       "run the values are taken against."},
            "accumulation": {"type": "string", "description": "Present for sums: the "
                                                              "window (ISO 8601 duration)."},
            "times": {"type": "array", "items": {"type": "string", "format": "date-time"}},
            "lead_times": {"type": "array", "items": {"type": "string"},
                           "description": "ISO 8601 durations (PT6H, P1DT6H)."},
            "values": {"type": "array", "items": nullable_number,
                       "description": "null where there is no data."},
            "components": {"type": "object", "additionalProperties": {
                "type": "array", "items": nullable_number},
                "description": "Vector layers: each component's values (values = speed)."},
        },
    }
    time_series_schema = {
        "type": "object",
        "required": ["layer", "variable", "units", "cell", "point", "series"],
        "properties": {
            "layer": {"type": "string"},
            "variable": {"type": "string"},
            "units": {"type": "string"},
            "components": {"type": "array", "items": {"type": "string"}},
            "cell": {
                "type": "object", "required": ["row", "col", "lon", "lat", "x", "y", "crs"],
                "description": "The grid cell read: store row/column, its centre in WGS 84 "
                               "and in `crs` (x east, y north).",
                "properties": {"row": {"type": "integer"}, "col": {"type": "integer"},
                               "lon": nullable_number, "lat": nullable_number,
                               "x": nullable_number, "y": nullable_number,
                               "crs": {"type": "string"}}},
            "point": {"type": "object", "required": ["x", "y", "crs"],
                      "properties": {"x": {"type": "number"}, "y": {"type": "number"},
                                     "crs": {"type": "string"}}},
            "series": {"type": "array", "items": {"$ref": "#/components/schemas/Series"}},
        },
    }
    error_schema = {
        "type": "object", "required": ["error"],
        "properties": {"error": {"type": "object", "required": ["code", "message"],
                                 "properties": {"code": {"type": ["string", "null"]},
                                                "message": {"type": "string"}}}},
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "fewsmap time-series API", "version": "1.0.0",
                 "description": "Values of a forecast layer at one point over lead times, "
                                "runs (forecast plumes), ensemble members and levels. The "
                                "point's grid cell is the one containing it; a point more "
                                "than half a cell outside the grid is refused (InvalidPoint)."},
        "paths": {"/api/timeseries": {"get": {
            "operationId": "getTimeSeries",
            "summary": "Time series of a layer at a point",
            "parameters": parameters,
            "responses": {
                "200": {"description": "The series, in the requested format.",
                        "content": {
                            JSON: {"schema": {"$ref": "#/components/schemas/TimeSeries"}},
                            COVJSON: {"schema": {"type": "object", "required": ["type"],
                                                 "properties": {"type": {
                                                     "const": "CoverageCollection"}}}},
                            NETCDF: {"schema": {"type": "string",
                                                "contentMediaType": NETCDF}},
                            CSV: {"schema": {"type": "string"}, "example":
                                  "reference_time,valid_time,lead_time,member,value\n"
                                  "2022-08-09T00:00:00Z,2022-08-09T06:00:00Z,PT6H,,20.48\n"},
                        }},
                "400": {"description": "A bad request: the error code (LayerNotDefined, "
                                       "InvalidParameterValue, InvalidDimensionValue, "
                                       "MissingParameterValue, InvalidCRS, InvalidPoint, "
                                       "InvalidFormat …) and a message naming the value.",
                        "content": {JSON: {"schema": {"$ref": "#/components/schemas/Error"}}}},
            },
        }}},
        "components": {"schemas": {"TimeSeries": time_series_schema, "Series": series,
                                   "Error": error_schema}},
    }


def _parameter(name: str, required: bool, description: str, schema: dict[str, Any],
               example: object) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": required, "description": description,
            "schema": schema, "example": example}
