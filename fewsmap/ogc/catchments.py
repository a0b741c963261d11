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

This module parses and encodes; what to read and the means come from
`fewsmap.resolve.catchments`.
"""

from __future__ import annotations

import json
from typing import Any

import shapely

from fewsmap.catalog import Catalog, Layer
from fewsmap.errors import InvalidFormat
from fewsmap.export import NETCDF
from fewsmap.formats.media import COVJSON, CSV, JSON
from fewsmap.formats.numbers import json_numbers
from fewsmap.ogc.timeseries import (
    coverage_json,
    encode_csv,
    parse_timeseries,
    series_head,
    series_json,
)
from fewsmap.params import Params
from fewsmap.products.catchments import CatchmentSet
from fewsmap.resolve.catchments import Catchment, layer_and_store, read_catchment, set_values
from fewsmap.resolve.series import TimeSeriesRequest
from fewsmap.time.grammar import parse_instant

GEOJSON = "application/geo+json"


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


def catchment_series(catalog: Catalog, request: TimeSeriesRequest, layer: Layer,
                     catchment: Catchment) -> tuple[bytes, str]:
    """Answer a catchment series request: the body and its media type."""
    answer = read_catchment(catalog, request, layer, catchment)
    about = {"set": catchment.catchments.name, "id": catchment.id,
             "cells": int(catchment.weights.polygons[catchment.index].weights.size),
             "weighting": catchment.weights.method}
    if request.format == CSV:
        return encode_csv(answer), "text/csv; charset=utf-8"
    if request.format == COVJSON:
        return _dumps(_polygon_coverages(coverage_json(answer), catchment, about)), COVJSON
    head = series_head(answer)
    del head["cell"], head["point"]
    head["catchment"] = about
    return series_json(head, answer), JSON


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
    time_text = (params.get("time") or "").strip()
    when = parse_instant(time_text, "time") if time_text else None
    values, about = set_values(catalog, request, when, layer, named_run, store, catchments)
    return _dumps(catchments.feature_collection(json_numbers(values), about))


def sets_json(catalog: Catalog, base: str) -> bytes:
    """The configured sets: name, title, how many catchments, and links."""
    return _dumps({"catchments": [
        {"name": s.name, "title": s.title, "count": len(s.ids),
         "links": [{"rel": "item", "type": GEOJSON, "href": f"{base}/api/catchments/{s.name}"}]}
        for s in catalog.catchments.values()]})


def _dumps(body: dict[str, Any]) -> bytes:
    return json.dumps(body, allow_nan=False).encode()
