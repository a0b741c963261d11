"""The time-series API for dashboards: a layer's values at one point, over lead times and runs.

``GET /api/timeseries?layer=…&x=…&y=…`` answers JSON (default), CoverageJSON, CSV or NetCDF;
the OpenAPI 3.1 description (`openapi_document`) is the contract and is served beside it.
This module only parses and encodes: what to read and the reading are the core's
(`fewsmap.resolve.series`, which EDR position queries share), only the chunks holding the
point's cell.

Selections: one run (``run=<T0>|latest``, default latest), several (``runs=all|<n>``), or a
valid-time window (``start``/``end``), which alone means every run that covers it (a forecast
plume). ``member`` and ``elevation`` take a value or ``all``; absent, the layer's default.
"""

from __future__ import annotations

import csv
import io
import json
from functools import lru_cache
from typing import Any

import numpy as np

from fewsmap.catalog import Catalog
from fewsmap.crs import canonical_crs
from fewsmap.dimensions import layer_dimensions
from fewsmap.errors import InvalidFormat, InvalidParameterValue
from fewsmap.export import NETCDF
from fewsmap.export.netcdf import PointSeries, timeseries_netcdf
from fewsmap.formats import covjson
from fewsmap.formats.covjson import (
    TEMPORAL_REFERENCING,
    Description,
    describe_variable,
    ndarray,
    point_series_domain,
)
from fewsmap.formats.media import COVJSON, CSV, JSON
from fewsmap.formats.numbers import (
    csv_numbers,
    float32_array,
    json_bytes,
    json_finite,
    json_numbers,
)
from fewsmap.formats.openapi import json_content, query_parameter, schema_ref
from fewsmap.params import Params, finite_number
from fewsmap.products.accumulate import parse_window
from fewsmap.products.change import parse_baseline
from fewsmap.products.ensemble import EnsembleStatistic, parse_statistic
from fewsmap.resolve.labels import lead_times_text
from fewsmap.resolve.series import (
    ALL,
    DEFAULT_CRS,
    LATEST,
    ReadElsewhere,
    Series,
    TimeSeries,
    TimeSeriesRequest,
    read_time_series,
)
from fewsmap.time.grammar import parse_instant
from fewsmap.time.instants import format_time, format_times

FORMATS = {"json": JSON, "application/json": JSON,
           "covjson": COVJSON, "coveragejson": COVJSON, COVJSON: COVJSON,
           "application/vnd.cov+json": COVJSON,
           "csv": CSV, "text/csv": CSV,
           "netcdf": NETCDF, "nc": NETCDF, NETCDF: NETCDF, "application/netcdf": NETCDF}
MAX_RUNS_PARAMETER = 10_000


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
        display_units=params.flag("useDisplayUnits", default=True),
    )


def time_series(catalog: Catalog, params: Params, inline: bool = False) -> tuple[bytes, str]:
    """Answer ``/api/timeseries``: the body and its media type. ``inline`` answers only a
    few lines of local files as JSON (`read_time_series`).

    Raises
    ------
    FewsmapError
        The error for the first problem found.
    ReadElsewhere
        If ``inline`` and the answer needs more.
    """
    request = parse_timeseries(params)
    if inline and request.format != JSON:
        raise ReadElsewhere
    answer = read_time_series(catalog, request, inline=inline)
    if request.format == CSV:
        return encode_csv(answer), "text/csv; charset=utf-8"
    if request.format == COVJSON:
        return _dumps(coverage_json(answer)), COVJSON
    if request.format == NETCDF:
        return encode_netcdf(answer), NETCDF
    return series_json(series_head(answer), answer), JSON


def series_head(answer: TimeSeries) -> dict[str, Any]:
    """What the plain JSON answer (schema ``TimeSeries`` of the OpenAPI document) says
    before its series: layer, variable, units, the cell and the point asked for."""
    cell, request = answer.cell, answer.request
    head: dict[str, Any] = {
        "layer": answer.layer.id,
        "variable": ",".join(answer.layer.variables),
        "units": answer.units,
        "cell": {"row": cell.row, "col": cell.col, "lon": json_finite(cell.lon),
                 "lat": json_finite(cell.lat), "x": json_finite(cell.x), "y": json_finite(cell.y),
                 "crs": cell.crs},
        "point": {"x": request.x, "y": request.y, "crs": cell.crs},
    }
    if answer.layer.components:
        head["components"] = list(answer.layer.components)
    return head


def series_json(head: dict[str, Any], answer: TimeSeries) -> bytes:
    """The plain JSON answer: ``head`` (`series_head`) with the answer's ``series`` last.

    Encoded by orjson (`json_bytes`): values straight from their float32 arrays, each run's
    time texts made once per run (`_time_texts`).
    """
    entries = []
    for series in answer.series:
        entry: dict[str, Any] = {"reference_time": series.run.label}
        entry.update(series.dimensions)
        entry.update(series.derived)
        entry["times"], entry["lead_times"] = _time_texts(
            series.run.reference_time, np.asarray(series.times, dtype="datetime64[s]").tobytes())
        entry["values"] = float32_array(series.values)
        if series.components:
            entry["components"] = {name: float32_array(values)
                                   for name, values in series.components}
        entries.append(entry)
    return json_bytes({**head, "series": entries})


@lru_cache(maxsize=1024)
def _time_texts(reference_time: np.datetime64, times: bytes
                ) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The texts of a run's valid ``times`` (datetime64[s] bytes) and of their lead times:
    every request of a run's series repeats them."""
    instants = np.frombuffer(times, dtype="datetime64[s]")
    return (tuple(format_times(instants)),
            tuple(lead_times_text(instants, reference_time)))


def encode_csv(answer: TimeSeries) -> bytes:
    """CSV: a header, then one row per value (RFC 4180; empty field = missing)."""
    names = [name for name, _ in answer.series[0].dimensions] if answer.series else []
    extra = [name for name in names if name != "member"]
    components = list(answer.layer.components)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["reference_time", "valid_time", "lead_time", "member", *extra, "value",
                     *components, "units"])
    for series in answer.series:
        labels = dict(series.dimensions)
        columns = [csv_numbers(series.values),
                   *(csv_numbers(values) for _, values in series.components)]
        fixed = [labels.get("member", ""), *(labels[name] for name in extra)]
        writer.writerows([series.run.label, when, lead, *fixed, *numbers, series.units]
                         for when, lead, *numbers in zip(format_times(series.times),
                                                         _lead_times(series), *columns,
                                                         strict=True))
    return out.getvalue().encode()


def encode_netcdf(answer: TimeSeries) -> bytes:
    """CF NetCDF-4 with featureType timeSeries: one instance per run (and member/level) at
    the cell's centre; a vector layer gives its speed and each component."""
    layer, store = answer.layer, answer.store
    keys = _keys(answer)
    speed = {"long_name": f"speed of ({', '.join(layer.components)})"}
    # each variable's own attributes, in the units of the answer (display units or stored)
    attrs = {key: {**(store.attributes(key) if key in store.variables else speed),
                   "units": answer.units} for key in keys}
    series = [PointSeries(s.run.reference_time, s.dimensions, s.times,
                          {keys[0]: s.values, **dict(s.components)}) for s in answer.series]
    cell = answer.cell
    return timeseries_netcdf(series, cell.lon, cell.lat, attrs,
                             f"{layer.id} at grid cell row {cell.row}, column {cell.col}")


def coverage_json(answer: TimeSeries) -> dict[str, Any]:
    """CoverageJSON: a CoverageCollection of PointSeries coverages, one per series.

    Each coverage's x/y is the cell centre in CRS84; its run and member are given in the
    members ``fewsmap:reference_time``/``fewsmap:member`` and its lead times in
    ``fewsmap:lead_times`` (CoverageJSON has no axis for them). Parameters and the level
    axis are described as EDR describes them (`fewsmap.formats.covjson`).
    """
    layer, cell = answer.layer, answer.cell
    keys = _keys(answer)
    references = [covjson.geographic_referencing(), TEMPORAL_REFERENCING]
    coverages = []
    for series in answer.series:
        level = dict(series.dimensions).get("elevation")
        ranges = {key: ndarray(json_numbers(values), ["t"], [int(values.size)])
                  for key, values in zip(keys, (series.values, *(v for _, v in
                                                                 series.components)),
                                         strict=True)}
        coverage: dict[str, Any] = {
            "type": "Coverage",
            "id": f"{layer.id}/{series.run.label}"
                  + "".join(f"/{k}={v}" for k, v in series.dimensions),
            "domain": point_series_domain(cell.lon, cell.lat, format_times(series.times),
                                          None if isinstance(level, str) else level),
            "ranges": ranges,
            "fewsmap:reference_time": series.run.label,
            "fewsmap:lead_times": _lead_times(series),
        }
        coverage.update((f"fewsmap:{name}", value) for name, value in series.dimensions
                        if name != "elevation")
        coverages.append(coverage)
    level = _level_dim(answer)
    if level is not None and any("elevation" in dict(s.dimensions) for s in answer.series):
        references.append(covjson.vertical_referencing(answer.store.attributes(level), level))
    return {"type": "CoverageCollection", "domainType": "PointSeries",
            "parameters": {key: covjson.parameter(_describe(answer, key)) for key in keys},
            "referencing": references, "coverages": coverages}


def _keys(answer: TimeSeries) -> list[str]:
    """The answer's quantities: the variable, or a vector's speed then its components."""
    layer = answer.layer
    return ["speed", *layer.components] if layer.components else [layer.variable]


def _describe(answer: TimeSeries, key: str) -> Description:
    """A quantity of the answer as EDR describes a parameter (a statistic in its units)."""
    layer, member = answer.layer, answer.request.member
    if key == "speed":
        speed = f"Speed of ({', '.join(layer.components)})"
        return Description(speed, speed, answer.units)
    statistic = member if isinstance(member, EnsembleStatistic) else None
    return describe_variable(answer.store.attributes(key), key, statistic=statistic,
                             units=answer.units)


def _level_dim(answer: TimeSeries) -> str | None:
    """The store dimension of the layer's levels, if it has levels."""
    return next((d.dim for d in layer_dimensions(answer.store, answer.layer.variable, {})
                 if d.name == "elevation"), None)


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


def _lead_times(series: Series) -> list[str]:
    return lead_times_text(series.times, series.run.reference_time)


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
        query_parameter("layer", True, "A layer id from the WMS capabilities (`<store>.<variable>` "
                   "without configuration), or a per-run id `<layer>-<T0>`; not a group.",
                   {"type": "string", "minLength": 1}, "naefs-mean.QTF"),
        query_parameter("x", True, "Easting of the point in `crs`: the **longitude** for "
                   "EPSG:4326 and CRS:84. Always east first, whatever the CRS's official "
                   "axis order (unlike WMS 1.3.0 EPSG:4326 bounding boxes).",
                   {"type": "number"}, -105.0),
        query_parameter("y", True, "Northing of the point in `crs`: the **latitude** for "
                   "EPSG:4326 and CRS:84.", {"type": "number"}, 40.0),
        query_parameter("crs", False, "CRS of x and y: EPSG:4326 (default; x=lon, y=lat), CRS:84, "
                   "EPSG:3857 or the grid's own EPSG code (see the layer's CRS in the "
                   "capabilities).", {"type": "string", "default": DEFAULT_CRS}, "EPSG:3857"),
        query_parameter("run", False, "One run by its forecast reference time, or `latest` (the "
                   "default when neither `runs` nor `start`/`end` is given): all its lead "
                   f"times. {time_text}.",
                   {"type": "string", "default": LATEST}, "2022-08-09T00:00:00Z"),
        query_parameter("runs", False, "`all` runs, or the latest n runs; each series is tagged "
                   "with its run. Not together with `run`.",
                   {"oneOf": [{"type": "string", "const": ALL},
                              {"type": "integer", "minimum": 1,
                               "maximum": MAX_RUNS_PARAMETER}]}, ALL),
        query_parameter("start", False, "First valid time (inclusive). Without `run`/`runs`, "
                   "`start`/`end` select every run with a valid time in the window (a "
                   f"forecast plume). {time_text}.",
                   {"type": "string", "format": "date-time"}, "2022-08-10T00:00:00Z"),
        query_parameter("end", False, f"Last valid time (inclusive). {time_text}.",
                   {"type": "string", "format": "date-time"}, "2022-08-12T00:00:00Z"),
        query_parameter("member", False, "Ensemble member label, or `all` (one series per "
                   "member holding data in each run: a lagged ensemble's runs each give "
                   "their own members); default: the layer's default member (the control), "
                   "else the lowest member the run holds. Runs without a named member give "
                   "no series; only valid times holding data are listed. Or an ensemble "
                   "statistic over the members holding data: `mean`, `median`, `min`, `max`, "
                   "`std`, `p1`..`p99` (numpy's linear percentiles), `above:<X>`/`below:<X>` "
                   "(per cent of those members above/below X, in the layer's units).",
                   member_value, ALL),
        query_parameter("elevation", False, "Level (e.g. pressure in hPa), or `all` (the levels "
                   "holding data); default: the configured default, else the level nearest "
                   "the surface holding data.", number_or_all, 850),
        query_parameter("baseline", False, "A run change: each run's values minus those of "
                        "`previous` (the run before it) or of the run at this reference time, "
                        "at the valid times both hold (only those are listed). Also "
                        f"`layer=<layer>:change`. {time_text}.",
                        {"type": "string", "minLength": 1}, "previous"),
        query_parameter("accumulate", False, "An ISO 8601 duration (PT24H, P3D; at most 31 "
                        "days, a whole number of the run's steps): at each valid time, the sum "
                        "of the run's values in the window ending there; only valid times "
                        "whose whole window lies within the run are listed.",
                        {"type": "string", "minLength": 1}, "PT24H"),
        query_parameter("useDisplayUnits", False, "FEWS's switch, as for maps and "
                        "GetFeatureInfo: `true` (default) answers values in the units the maps "
                        "show (K as degC, m s-1 as km h-1, kg m-2 s-1 as mm h-1), `false` in the "
                        "stored units; `units` says which (UDUNITS). A probability is % and a "
                        "change converts without the offset (2 K is 2 degC) either way.",
                        {"type": "boolean", "default": True}, False),
        query_parameter("format", False, "`json` (default), `covjson` (CoverageJSON "
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
            "units": {"type": "string", "description": "Units of the values (UDUNITS): the "
                      "display units unless useDisplayUnits=false; % for a probability."},
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
            "series": {"type": "array", "items": schema_ref("Series")},
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
                            JSON: {"schema": schema_ref("TimeSeries")},
                            COVJSON: {"schema": {"type": "object", "required": ["type"],
                                                 "properties": {"type": {
                                                     "const": "CoverageCollection"}}}},
                            NETCDF: {"schema": {"type": "string",
                                                "contentMediaType": NETCDF}},
                            CSV: {"schema": {"type": "string"}, "example":
                                  "reference_time,valid_time,lead_time,member,value,units\n"
                                  "2022-08-09T00:00:00Z,2022-08-09T06:00:00Z,PT6H,,20.48,"
                                  "degC\n"},
                        }},
                "400": {"description": "A bad request: the error code (LayerNotDefined, "
                                       "InvalidParameterValue, InvalidDimensionValue, "
                                       "MissingParameterValue, InvalidCRS, InvalidPoint, "
                                       "InvalidFormat …) and a message naming the value.",
                        "content": json_content(schema_ref("Error"))},
            },
        }}},
        "components": {"schemas": {"TimeSeries": time_series_schema, "Series": series,
                                   "Error": error_schema}},
    }

