"""The EDR metadata documents: landing page, conformance, collections and instances.

Each document is built with KNMI's edr-pydantic models of the EDR 1.1 schemas, so a
document that does not follow them fails where it is made, and written with
``model_dump(mode="json", exclude_none=True, by_alias=True)``.

Every layer whose id can be a URL path segment (no ``/``) is a collection, and every
published run of it an instance named by its reference time (``yyyy-MM-ddTHH:mm:ssZ``, as in
FEWS per-run layer ids). Links are absolute, built on the URL the client used.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from typing import Any
from urllib.parse import quote

import numpy as np
import pyproj
from edr_pydantic.capabilities import ConformanceModel, LandingPageModel
from edr_pydantic.collections import Collection, Collections, Instance, Instances
from edr_pydantic.data_queries import DataQueries, EDRQuery
from edr_pydantic.extent import Extent, Spatial, Temporal, Vertical
from edr_pydantic.link import EDRQueryLink, Link
from edr_pydantic.observed_property import ObservedProperty
from edr_pydantic.parameter import Parameter, Parameters
from edr_pydantic.unit import Unit
from edr_pydantic.variables import CubeVariables, Variables

from fewsmap.catalog import Catalog, Layer
from fewsmap.catalog.described import describe_each
from fewsmap.catalog.extent import lonlat_bbox
from fewsmap.edr.data import LayerAxes, layer_parameters, parameter_units
from fewsmap.edr.encode import describe
from fewsmap.edr.query import OUTPUT_FORMATS, QUERY_TYPES
from fewsmap.formats.covjson import CRS84_URI, EPSG4326_URI, dump
from fewsmap.formats.media import JSON
from fewsmap.resolve.labels import label_value
from fewsmap.store.cube import ForecastStore, RunInfo
from fewsmap.time.grammar import format_duration
from fewsmap.time.instants import format_time

OPENAPI = "application/vnd.oai.openapi+json;version=3.0"
CONFORMANCE = (
    "http://www.opengis.net/spec/ogcapi-common-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-common-1/1.0/conf/landing-page",
    "http://www.opengis.net/spec/ogcapi-common-1/1.0/conf/json",
    "http://www.opengis.net/spec/ogcapi-common-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/ogcapi-common-2/1.0/conf/collections",
    "http://www.opengis.net/spec/ogcapi-edr-1/1.1/conf/core",
    "http://www.opengis.net/spec/ogcapi-edr-1/1.1/conf/collections",
    "http://www.opengis.net/spec/ogcapi-edr-1/1.1/conf/json",
    "http://www.opengis.net/spec/ogcapi-edr-1/1.1/conf/covjson",
    "http://www.opengis.net/spec/ogcapi-edr-1/1.1/conf/oas30",
    "http://www.opengis.net/spec/ogcapi-edr-1/1.1/conf/queries",
)
TRS = ('TIMECRS["DateTime",TDATUM["Gregorian Calendar"],'
       'CS[TemporalDateTime,1],AXIS["Time (T)",future]]')
QUERY_HELP = {
    "position": "Values of the grid cell containing coords=POINT(x y), at every selected "
                "time and level",
    "area": "Values of the grid cells whose centres lie in coords=POLYGON((…)) "
            "(or MULTIPOLYGON), on the native grid; other cells of the window are null",
    "cube": "Values of the smallest window of the native grid holding every cell whose "
            "centre lies in bbox=minx,miny,maxx,maxy",
}


def landing_page(title: str, root: str) -> dict[str, Any]:
    """The EDR landing page (OGC API Common /)."""
    edr = f"{root}/edr"
    return dump(LandingPageModel(
        title=f"{title}: OGC API - Environmental Data Retrieval",
        description="Raw values of forecast layers: each layer is a collection, each "
                    "forecast run an instance; position, area and cube queries answer "
                    "CoverageJSON or CSV.",
        links=[
            _link(edr, "self", "This document"),
            _link(f"{edr}/api", "service-desc", "The API definition (OpenAPI 3.0)", OPENAPI),
            _link(f"{edr}/conformance", "conformance", "Conformance classes"),
            _link(f"{edr}/collections", "data", "Collections (one per layer)"),
        ]))


def conformance() -> dict[str, Any]:
    """The conformance declaration."""
    return dump(ConformanceModel(conformsTo=list(CONFORMANCE)))


def edr_layers(catalog: Catalog) -> list[Layer]:
    """Layers published as collections: those whose id fits in one path segment."""
    return [layer for layer in catalog.layers.values() if "/" not in layer.id]


def collections(catalog: Catalog, root: str, display_units: bool = True) -> dict[str, Any]:
    """Every collection's metadata (parameter units: display units unless
    ``display_units`` is false, as queries answer)."""
    return dump(Collections(
        links=[_link(f"{root}/edr/collections", "self", "Collections")],
        collections=[found for _, found in describe_each(
            edr_layers(catalog), lambda layer: _collection(catalog, layer, root, display_units),
            "EDR collections")]))


def collection(catalog: Catalog, layer: Layer, root: str,
               display_units: bool = True) -> dict[str, Any]:
    """A collection's metadata: extent over all runs, parameters, queries, instances."""
    return dump(_collection(catalog, layer, root, display_units))


def instances(catalog: Catalog, layer: Layer, root: str,
              display_units: bool = True) -> dict[str, Any]:
    """The runs of a collection, newest first."""
    href = f"{collection_href(root, layer)}/instances"
    return dump(Instances(
        links=[_link(href, "self", f"Runs of {layer.title}"),
               _link(collection_href(root, layer), "collection", layer.title)],
        instances=[_instance(catalog, layer, run, root, display_units)
                   for run in reversed(catalog.runs(layer))]))


def instance(catalog: Catalog, layer: Layer, run: RunInfo, root: str,
             display_units: bool = True) -> dict[str, Any]:
    """One run's metadata: its valid times, and queries reading that run."""
    return dump(_instance(catalog, layer, run, root, display_units))


def _collection(catalog: Catalog, layer: Layer, root: str,
                display_units: bool = True) -> Collection:
    href = collection_href(root, layer)
    runs = catalog.runs(layer)
    store = catalog.store(layer)
    queries = _queries(store, href, LayerAxes.of(store, layer, runs))
    queries["instances"] = EDRQuery(link=EDRQueryLink(
        href=f"{href}/instances", rel="data", type=JSON, title="Forecast runs",
        variables=Variables.model_validate({"title": "Instances",
                                            "query_type": "instances"})))
    return Collection(
        id=layer.id, title=layer.title,
        description=layer.abstract or f"{layer.title}: variable(s) "
        f"{', '.join(layer.variables)} of store {layer.store}, {len(runs)} run(s); "
        "collection-level queries read the latest run",
        links=[_link(href, "self", layer.title),
               _link(f"{href}/instances", "data", "Forecast runs (instances)")],
        data_queries=DataQueries(**queries), **_dataset(store, layer, runs, display_units))


def _instance(catalog: Catalog, layer: Layer, run: RunInfo, root: str,
              display_units: bool = True) -> Instance:
    href = instance_href(root, layer, run)
    store = catalog.store(layer)
    title = f"{layer.title}, run {run.label}"
    return Instance(
        id=run.label, title=title,
        description=f"The forecast run of {layer.title} with reference time {run.label}: "
        f"{run.valid_times.size} valid times",
        links=[_link(href, "self", title),
               _link(collection_href(root, layer), "collection", layer.title)],
        data_queries=DataQueries(**_queries(store, href, LayerAxes.of(store, layer, (run,)))),
        **_dataset(store, layer, (run,), display_units))


def collection_href(root: str, layer: Layer) -> str:
    """The URL of a collection."""
    return f"{root}/edr/collections/{quote(layer.id, safe='')}"


def instance_href(root: str, layer: Layer, run: RunInfo) -> str:
    """The URL of an instance (a run)."""
    return f"{collection_href(root, layer)}/instances/{quote(run.label, safe=':')}"


def _dataset(store: ForecastStore, layer: Layer, runs: tuple[RunInfo, ...],
             display_units: bool = True) -> dict[str, Any]:
    """What collections and instances share: extent, parameters, CRSs, formats."""
    axes = LayerAxes.of(store, layer, runs)
    west, south, east, north = lonlat_bbox(store)
    extent = Extent(spatial=Spatial(bbox=[[west, south, east, north]], crs=CRS84_URI))
    if runs:
        times = np.unique(np.concatenate([run.valid_times for run in runs]))
        extent.temporal = Temporal(interval=[[_aware(times[0]), _aware(times[-1])]],
                                   values=time_values(times), trs=TRS)
    if axes.level is not None:
        levels = [str(label_value(v)) for v in axes.level.sorted_labels()]
        extent.vertical = Vertical(interval=[[levels[0], levels[-1]]], values=levels,
                                   vrs=_vrs(store, axes.level.dim))
    parameters = {}
    for parameter in layer_parameters(store, layer, axes):
        about = describe(store, parameter,
                         parameter_units(store, layer, parameter, display_units).units)
        parameters[parameter.id] = Parameter.model_validate({
            "id": parameter.id, "label": about.label, "data-type": "float",
            "observedProperty": ObservedProperty(id=about.observed_id, label=about.observed),
            "unit": Unit(symbol=about.units) if about.units else None})
    return {"extent": extent, "crs": [CRS84_URI, EPSG4326_URI],
            "output_formats": list(OUTPUT_FORMATS), "parameter_names": Parameters(parameters)}


def _queries(store: ForecastStore, href: str, axes: LayerAxes) -> dict[str, EDRQuery]:
    queries = {}
    for kind in ("position",) if store.curvilinear else QUERY_TYPES:
        title = f"{kind.capitalize()} query"
        about: dict[str, Any] = {
            "title": title, "description": QUERY_HELP[kind], "query_type": kind,
            "output_formats": list(OUTPUT_FORMATS),
            "default_output_format": OUTPUT_FORMATS[0], "crs_details": _crs_details()}
        variables = Variables.model_validate(about)
        if kind == "cube":
            variables = CubeVariables.model_validate({**about, "height_units": [
                axes.level.units] if axes.level is not None and axes.level.units else []})
        queries[kind] = EDRQuery(link=EDRQueryLink(href=f"{href}/{kind}", rel="data",
                                                   title=title, variables=variables))
    return queries


@cache
def _crs_details() -> list[dict[str, str]]:
    return [{"crs": "CRS84", "wkt": pyproj.CRS.from_user_input("OGC:CRS84").to_wkt()},
            {"crs": "EPSG:4326", "wkt": pyproj.CRS.from_epsg(4326).to_wkt()}]


def _vrs(store: ForecastStore, dim: str) -> str:
    """A WKT-like description of the level axis (CF attributes carry no vertical CRS)."""
    attrs = store.attributes(dim)
    name = str(attrs.get("long_name") or dim)
    direction = "down" if str(attrs.get("positive", "up")).lower() == "down" else "up"
    units = str(attrs.get("units") or "unknown")
    return f'VERTCRS["{name}",VDATUM["{name}"],CS[vertical,1],AXIS["{dim}",{direction}],' \
           f'UNIT["{units}"]]'


def time_values(times: np.ndarray) -> list[str]:
    """Valid times for ``extent.temporal.values``: ``Rn/start/step`` when regular."""
    steps = np.diff(times)
    if times.size > 2 and np.all(steps == steps[0]):
        return [f"R{times.size}/{format_time(times[0])}/{format_duration(steps[0])}"]
    return [format_time(t) for t in times]


def _link(href: str, rel: str, title: str, media_type: str = JSON) -> Link:
    return Link(href=href, rel=rel, type=media_type, title=title)


def _aware(time: np.datetime64) -> datetime:
    """A UTC instant as the aware datetime the EDR models hold (written ``…Z``)."""
    seconds = int(time.astype("datetime64[s]").astype(np.int64))
    return datetime.fromtimestamp(seconds, tz=UTC)

