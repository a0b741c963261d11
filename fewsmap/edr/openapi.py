"""The OpenAPI 3.0 description of the EDR API (served at ``/edr/api``)."""

from __future__ import annotations

from typing import Any

from fewsmap.edr.metadata import QUERY_HELP
from fewsmap.edr.query import OUTPUT_FORMATS, QUERY_TYPES
from fewsmap.formats.media import COVJSON, CSV
from fewsmap.formats.openapi import json_content, query_parameter, schema_ref

ERRORS = {
    "400": "A bad parameter: the code (InvalidParameterValue, MissingParameterValue, "
           "InvalidPoint, InvalidFormat, …) and a description naming the value",
    "404": "No such collection, instance or path",
    "413": "The answer would hold more than max_edr_values values; narrow the query",
}


def openapi_document(root: str) -> dict[str, Any]:
    """The OpenAPI 3.0.3 document of the EDR API at ``root`` (scheme, host and port)."""
    paths: dict[str, Any] = {
        "/edr": _get("getLandingPage", "Landing page", "LandingPage", ()),
        "/edr/api": {"get": {"operationId": "getAPI", "summary": "This API definition",
                             "tags": ["Capabilities"],
                             "responses": {"200": {"description": "OpenAPI 3.0 document",
                                                   "content": json_content({
                                                       "type": "object"})}}}},
        "/edr/conformance": _get("getConformance", "Conformance classes", "Conformance", ()),
        "/edr/collections": _get("getCollections", "Collections (one per layer)",
                                 "Collections", (), units=True),
        "/edr/collections/{collectionId}": _get(
            "getCollection", "A collection's metadata", "Collection", ("collectionId",),
            units=True),
        "/edr/collections/{collectionId}/instances": _get(
            "getInstances", "Forecast runs of a collection", "Instances", ("collectionId",),
            units=True),
        "/edr/collections/{collectionId}/instances/{instanceId}": _get(
            "getInstance", "One forecast run", "Collection", ("collectionId", "instanceId"),
            units=True),
    }
    for kind in QUERY_TYPES:
        paths[f"/edr/collections/{{collectionId}}/{kind}"] = _query(kind, ("collectionId",))
        paths[f"/edr/collections/{{collectionId}}/instances/{{instanceId}}/{kind}"] = _query(
            kind, ("collectionId", "instanceId"))
    return {
        "openapi": "3.0.3",
        "info": {"title": "fewsmap OGC API - Environmental Data Retrieval", "version": "1.1.0",
                 "description": "Raw forecast values (never resampled) of each layer "
                                "(collection) and run (instance): position, area and cube "
                                "queries as CoverageJSON or CSV. Ensemble members are "
                                "parameters <variable>_member_<n>, ensemble statistics "
                                "<variable>_member_<statistic> (mean, median, min, max, std, "
                                "p1..p99, above:<X>, below:<X>)."},
        "servers": [{"url": root}],
        "paths": paths,
        "components": {"parameters": _parameters(), "schemas": _schemas()},
    }


def _get(operation_id: str, summary: str, schema: str,
         path_parameters: tuple[str, ...], units: bool = False) -> dict[str, Any]:
    """A metadata operation; with ``units`` it takes ``useDisplayUnits`` (the units its
    parameters are described in, as queries answer them)."""
    responses: dict[str, Any] = {"200": {"description": summary,
                                         "content": json_content(schema_ref(schema))},
                                 "400": _error("400")}
    if path_parameters:
        responses["404"] = _error("404")
    names = (*path_parameters, "f-metadata", *(("useDisplayUnits",) if units else ()))
    return {"get": {"operationId": operation_id, "summary": summary,
                    "tags": ["Capabilities" if not path_parameters else "Collection metadata"],
                    "parameters": [_ref(p) for p in names],
                    "responses": responses}}


def _query(kind: str, path_parameters: tuple[str, ...]) -> dict[str, Any]:
    where = "coords-position" if kind == "position" else "coords-area" if kind == "area" \
        else "bbox"
    names = (*path_parameters, where, "datetime", "z", "parameter-name", "crs", "f",
             "baseline", "accumulate", "useDisplayUnits")
    scope = "a run" if "instanceId" in path_parameters else "the latest run"
    return {"get": {
        "operationId": f"get{kind.capitalize()}{'Instance' if scope == 'a run' else ''}",
        "summary": f"{kind.capitalize()} query on {scope}",
        "description": QUERY_HELP[kind] + ".",
        "tags": ["Data queries"],
        "parameters": [_ref(name) for name in names],
        "responses": {
            "200": {"description": "The values: CoverageJSON (a Coverage) or CSV",
                    "content": {COVJSON: {"schema": schema_ref("Coverage")},
                                CSV: {"schema": {"type": "string"}}}},
            **{status: _error(status) for status in ERRORS},
        },
    }}


def _error(status: str) -> dict[str, Any]:
    return {"description": ERRORS[status], "content": json_content(schema_ref("Exception"))}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/parameters/{name}"}


def _parameters() -> dict[str, Any]:
    def query(name: str, description: str, schema: dict[str, Any], required: bool = False,
              example: object = None) -> dict[str, Any]:
        # OGC API: lists are comma-separated in one value (form style, not exploded).
        return query_parameter(name, required, description, schema, example, style="form",
                               explode=False)

    text = {"type": "string"}
    return {
        "collectionId": {"name": "collectionId", "in": "path", "required": True,
                         "description": "A layer id (`<store>.<variable>` without "
                                        "configuration)", "schema": text},
        "instanceId": {"name": "instanceId", "in": "path", "required": True,
                       "description": "A run's reference time, yyyy-MM-ddTHH:mm:ssZ",
                       "schema": text},
        "coords-position": query("coords", "WKT POINT(x y) in crs: longitude first for "
                                 "CRS84, latitude first for EPSG:4326", text, True,
                                 "POINT(-90 40)"),
        "coords-area": query("coords", "WKT POLYGON or MULTIPOLYGON in crs; the cells whose "
                             "centres lie inside are answered", text, True,
                             "POLYGON((-95 35,-85 35,-90 45,-95 35))"),
        "bbox": query("bbox", "minx,miny,maxx,maxy in crs (EPSG:4326: south,west,north,east);"
                      " minx > maxx crosses 180°", {"type": "array", "minItems": 4,
                                                    "maxItems": 4,
                                                    "items": {"type": "number"}},
                      True, [-100, 30, -90, 40]),
        "datetime": query("datetime", "Valid times: an instant, start/end (either end may be "
                          "'..'), or a comma list; a date alone means that whole day. "
                          "Default: every valid time of the run", text,
                          example="2022-08-10T00:00:00Z/2022-08-11T00:00:00Z"),
        "z": query("z", "Levels: a value, a list, low/high, or Rn/first/step. Default: "
                   "every level", text, example="500,850"),
        "parameter-name": query("parameter-name", "Comma list of parameters of the "
                                "collection (a variable name stands for all its members). "
                                "Default: all", text),
        "crs": query("crs", "CRS of coords and bbox", {"type": "string", "enum": [
            "CRS84", "EPSG:4326", "http://www.opengis.net/def/crs/OGC/1.3/CRS84",
            "http://www.opengis.net/def/crs/EPSG/0/4326"], "default": "CRS84"}),
        "f": query("f", "Output format", {"type": "string", "enum": list(OUTPUT_FORMATS),
                                          "default": OUTPUT_FORMATS[0]}),
        "f-metadata": query("f", "Output format of metadata", {
            "type": "string", "enum": ["json"], "default": "json"}),
        "baseline": query("baseline", "A run change (vendor parameter, as in WMS): the run's "
                          "values minus those of `previous` (the run before it) or of the run "
                          "at this reference time, at the valid times both hold (a named "
                          "datetime the baseline lacks is refused)", text,
                          example="previous"),
        "accumulate": query("accumulate", "Sums (vendor parameter, as in WMS): at each valid "
                            "time, the sum of the run's values over this ISO 8601 window "
                            "ending there (a whole number of steps inside the run; at most "
                            "31 days); a statistic is of the members' sums", text,
                            example="PT24H"),
        "useDisplayUnits": query("useDisplayUnits", "FEWS's switch, as for maps: values in "
                                 "the units the maps show (true, K as degC, m s-1 as km h-1)"
                                 " or the stored ones (false); a probability is %, a change "
                                 "converts without the offset. Metadata take it too",
                                 {"type": "boolean", "default": True}, example=False),
    }


def _schemas() -> dict[str, Any]:
    def document(*required: str) -> dict[str, Any]:
        return {"type": "object", "required": list(required)}

    link = {"type": "object", "required": ["href", "rel"],
            "properties": {"href": {"type": "string"}, "rel": {"type": "string"},
                           "type": {"type": "string"}, "title": {"type": "string"}}}
    return {
        "Link": link,
        "LandingPage": {**document("links"), "properties": {
            "title": {"type": "string"}, "description": {"type": "string"},
            "links": {"type": "array", "items": schema_ref("Link")}}},
        "Conformance": {**document("conformsTo"), "properties": {
            "conformsTo": {"type": "array", "items": {"type": "string"}}}},
        "Collection": {**document("id", "links", "extent", "parameter_names"), "properties": {
            "id": {"type": "string"}, "title": {"type": "string"},
            "links": {"type": "array", "items": schema_ref("Link")},
            "extent": {"type": "object"}, "data_queries": {"type": "object"},
            "crs": {"type": "array", "items": {"type": "string"}},
            "output_formats": {"type": "array", "items": {"type": "string"}},
            "parameter_names": {"type": "object"}}},
        "Collections": {**document("links", "collections"), "properties": {
            "collections": {"type": "array",
                            "items": schema_ref("Collection")}}},
        "Instances": {**document("links", "instances"), "properties": {
            "instances": {"type": "array",
                          "items": schema_ref("Collection")}}},
        "Coverage": {**document("type", "domain", "ranges"), "properties": {
            "type": {"type": "string", "enum": ["Coverage"]}, "domain": {"type": "object"},
            "parameters": {"type": "object"}, "ranges": {"type": "object"}}},
        "Exception": {**document("code"), "properties": {
            "code": {"type": "string"}, "description": {"type": "string"}}},
    }
