"""GetFeatureInfo: the values of the grid cell under a pixel of a map, in five formats.

The map part of the request is parsed exactly as GetMap parses it (`parse_getmap` with
``embedded=True``), so CRS, axis order, BBOX, size limits, runs, members and levels mean the
same here. The queried point is the *centre* of pixel (I, J), counted from the top-left
pixel (0, 0) (WMS 1.3.0 §7.4.3.7). TIME may be one instant (or absent: the GetMap default)
or a list, range or ``all``; ELEVATION one level (or absent: the layer's default) or a list
of levels and ranges (a vertical profile). One feature per time and level, levels in the
order the layer lists them within each time.
"""

from __future__ import annotations

import html
import json
import math
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

import numpy as np

from fewsmap.catalog import Catalog, Layer
from fewsmap.crs import check_offered, offered_crs
from fewsmap.dimensions import LabelSpan, layer_dimensions
from fewsmap.errors import (
    FewsmapError,
    InvalidDimensionValue,
    InvalidFormat,
    InvalidParameterValue,
    InvalidPoint,
    LayerNotDefined,
    LayerNotQueryable,
    MissingParameterValue,
)
from fewsmap.formats.numbers import json_finite, json_number
from fewsmap.ogc.getmap import parse_getmap, wms_version
from fewsmap.ogc.xmlsafe import xml_safe
from fewsmap.params import Params, finite_number
from fewsmap.points import GridCell, find_cell
from fewsmap.products.accumulate import most_steps
from fewsmap.products.change import changed, check_shared, derived_properties, point_values
from fewsmap.products.ensemble import (
    Selector,
    label_lists,
    statistic_of,
)
from fewsmap.render.pipeline import shown_style
from fewsmap.resolve.labels import (
    DIMENSION_PROPERTIES,
    label_value,
    lead_time_text,
    selector_value,
)
from fewsmap.resolve.layers import resolve_layer
from fewsmap.resolve.maps import (
    MapRequest,
    check_group_style,
    defined_run,
    derived_baseline,
    dimension_labels,
    select_run,
    select_style,
)
from fewsmap.store.cube import ForecastStore, RunInfo
from fewsmap.time.axis import limit_times, resolve_times
from fewsmap.time.grammar import TimeSelection, parse_time
from fewsmap.time.instants import format_time

PLAIN = "text/plain"
HTML = "text/html"
GEOJSON = "application/json"
GML2 = "application/vnd.ogc.gml"
GML3 = "application/vnd.ogc.gml/3.1.1"
# INFO_FORMAT values understood → (what is written, media type answered).
INFO_FORMATS = {
    "text/plain": (PLAIN, "text/plain; charset=utf-8"),
    "text/html": (HTML, "text/html; charset=utf-8"),
    "application/json": (GEOJSON, "application/json"),
    "application/geo+json": (GEOJSON, "application/geo+json"),
    "json": (GEOJSON, "application/json"),
    "application/vnd.ogc.gml": (GML2, GML2),
    "application/vnd.ogc.gml/3.1.1": (GML3, GML3),
    "text/xml": (GML3, "text/xml; subtype=gml/3.1.1"),
    "text/xml; subtype=gml/3.1.1": (GML3, "text/xml; subtype=gml/3.1.1"),
}
# What capabilities advertise (WMS 1.3.0 §7.2.4.7.2; the aliases above are accepted too).
OFFERED_INFO_FORMATS = (PLAIN, HTML, GEOJSON, GML2, GML3)
FEWSMAP_NS = "urn:fewsmap:featureinfo"
GML_NS = "http://www.opengis.net/gml"
WFS_NS = "http://www.opengis.net/wfs"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
CRS84_URI = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
ELEVATION_FORMS = "allowed: a level, a comma list of levels, or a range low/high"


@dataclass(frozen=True)
class GetFeatureInfoRequest:
    """A syntactically valid GetFeatureInfo request.

    ``map`` is the embedded GetMap request (bbox east/north); ``time`` None means TIME was
    not given; ``elevation`` empty means ELEVATION was not given; ``feature_count`` None
    means every selected time.
    """

    map: MapRequest
    version: str  # WMS 1.3.0 names the pixel I, J; 1.1.1 X, Y
    query_layers: tuple[str, ...]
    i: int
    j: int
    info_format: str
    media_type: str
    feature_count: int | None = None
    time: TimeSelection | None = None
    elevation: tuple[LabelSpan, ...] = ()

    @property
    def point(self) -> tuple[float, float]:
        """The centre of pixel (I, J) in the request CRS, east/north order."""
        minx, miny, maxx, maxy = self.map.bbox
        x = minx + (self.i + 0.5) * (maxx - minx) / self.map.width
        y = maxy - (self.j + 0.5) * (maxy - miny) / self.map.height
        return x, y


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


@dataclass(frozen=True)
class FeatureValue:
    """The value of one layer at the queried cell for one time (and member or level)."""

    layer: str
    variable: str
    units: str
    value: float | None
    time: np.datetime64
    reference_time: np.datetime64
    cell: GridCell | None
    # ("member", 3), ("member", "p90"), ("elevation", 850)
    dimensions: tuple[tuple[str, float | int | str], ...] = ()
    components: tuple[tuple[str, float | None], ...] = ()  # (u, v) of a vector layer
    dimension_units: tuple[tuple[str, str], ...] = field(default=())
    # What a derived value is: ("baseline_reference_time", T0), ("accumulation", "PT24H")
    derived: tuple[tuple[str, str], ...] = ()

    @property
    def lead_time(self) -> np.timedelta64:
        """Valid time minus reference time, in seconds."""
        return np.timedelta64(self.time - self.reference_time, "s")


def parse_getfeatureinfo(params: Params, max_pixels: int) -> GetFeatureInfoRequest:
    """Check a GetFeatureInfo query and return it typed.

    Raises
    ------
    FewsmapError
        Any GetMap parameter error; MissingParameterValue for QUERY_LAYERS, I/J (X/Y);
        InvalidPoint for a pixel outside the image; InvalidFormat for INFO_FORMAT;
        InvalidParameterValue for a BBOX whose size overflows.
    """
    request = parse_getmap(params, max_pixels, embedded=True)
    names = tuple(n.strip() for n in params.require("query_layers").split(",") if n.strip())
    if not names:
        raise MissingParameterValue("parameter QUERY_LAYERS is required")
    version = wms_version(params)
    i = _pixel(params, ("i", "x") if version == "1.3.0" else ("x", "i"),
               request.width)
    j = _pixel(params, ("j", "y") if version == "1.3.0" else ("y", "j"),
               request.height)
    info_format, media_type = resolve_info_format(params.get("info_format") or PLAIN)
    time = params.get("time")
    elevation = params.get("elevation")
    parsed = GetFeatureInfoRequest(
        map=request,
        version=version,
        query_layers=names,
        i=i,
        j=j,
        info_format=info_format,
        media_type=media_type,
        feature_count=_feature_count(params.get("feature_count")),
        time=parse_time(time) if time and time.strip() else None,
        elevation=parse_levels(elevation) if elevation else (),
    )
    # Finite corners can still be too far apart for a float: no point to query, nor to write.
    if not all(math.isfinite(v) for v in parsed.point):
        raise InvalidParameterValue("BBOX is too large: its width or height overflows")
    return parsed


def parse_levels(text: str, name: str = "ELEVATION") -> tuple[LabelSpan, ...]:
    """A list of levels and ranges (``850,700,500``, ``1000/500``), in the order given.

    Raises
    ------
    InvalidDimensionValue
        Naming the item that is not a finite number nor a range of two.
    """
    items = []
    for part in text.split(","):
        ends = [finite_number(end.strip(), name) for end in part.split("/")]
        if len(ends) > 2:
            raise InvalidDimensionValue(f"{name} item {part.strip()[:40]!r} has "
                                        f"{len(ends) - 1} '/'; {ELEVATION_FORMS}")
        items.append(LabelSpan(ends[0], ends[-1]))
    return tuple(items)


def resolve_info_format(text: str, name: str = "INFO_FORMAT",
                        error: type[FewsmapError] = InvalidFormat) -> tuple[str, str]:
    """An info format as asked (any case, aliases, media type parameters) → (the format
    written, the media type answered).

    Raises
    ------
    FewsmapError
        ``error`` (InvalidFormat, the WMS code, by default), naming ``name`` and the offer.
    """
    asked = " ".join(text.strip().lower().split())
    if asked not in INFO_FORMATS and asked.split(";")[0].strip() in INFO_FORMATS:
        asked = asked.split(";")[0].strip()  # a charset or other media type parameter
    if asked not in INFO_FORMATS:
        raise error(f"{name}={asked[:60]!r} is not offered; offered: "
                    f"{', '.join(OFFERED_INFO_FORMATS)}")
    return INFO_FORMATS[asked]


def resolve_queries(catalog: Catalog, request: GetFeatureInfoRequest) -> list[PointQuery]:
    """The layers to query, each with its run, CRS, times and member/level indices.

    QUERY_LAYERS must name layers the map drew (WMS 1.3.0 §7.4.3.4): an entry of LAYERS
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
    for name in dict.fromkeys(request.query_layers):
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
            layer, _, _ = resolve_layer(catalog, name)  # LayerNotDefined for an unknown name
            select_style(layer, style)
            layers.add(layer.id)
        else:
            check_group_style(name, style, request.sld_style)
            groups.add(name)
    return layers, groups


def read_features(queries: Iterable[PointQuery], request: GetFeatureInfoRequest,
                  max_values: int) -> list[FeatureValue]:
    """Read the value of each query at the queried point (None off the grid or missing).

    Raises
    ------
    InvalidParameterValue
        If more than ``max_values`` values would be read (each is one chunk read).
    """
    queries = list(queries)
    total = sum(q.times.size * len(q.layer.variables) * math.prod(map(len, q.label_lists()))
                * q.fields_per_value() for q in queries)  # a statistic reads every member
    if total > max_values:
        raise InvalidParameterValue(
            f"this request reads {total} values; at most {max_values} are allowed "
            "(max_point_values; narrow TIME or ELEVATION, or lower FEATURE_COUNT)")
    x, y = request.point
    features = []
    for query in queries:
        cell = find_cell(query.store, query.crs, x, y)
        shape = (query.times.size, query.level_count())  # time × level
        if cell is None:
            values = np.full(shape, np.nan, dtype=np.float32)
            components = {name: values for name in query.layer.components}
        else:
            read, parts = query.read(cell)
            values = read.reshape(shape)
            components = {k: v.reshape(shape) for k, v in parts.items()}
        levels, units = _dimension_values(query)
        attrs = query.store.attributes(query.layer.variable)
        statistic = statistic_of(query.labels)
        layer_units = str(attrs.get("units", ""))
        shown = shown_style(query.layer.default_style, statistic,
                            request.map.use_display_units)
        if shown.converts:  # values in the units the map and legend show (FEWS)
            layer_units, values = shown.units, shown.to_display(values)
            components = {k: shown.to_display(v) for k, v in components.items()}
        found = []
        for k, when in enumerate(query.times):
            for n, dims in enumerate(levels):
                found.append(FeatureValue(
                    layer=query.name,
                    variable=",".join(query.layer.variables),
                    units=statistic.units(layer_units) if statistic else layer_units,
                    value=json_number(values[k, n]),
                    time=when,
                    reference_time=query.run.reference_time,
                    cell=cell,
                    dimensions=dims,
                    components=tuple((name, json_number(v[k, n]))
                                     for name, v in components.items()),
                    dimension_units=units,
                    derived=query.derived(),
                ))
        features += found[: request.feature_count]  # FEATURE_COUNT: features per layer
    return features


def get_feature_info(catalog: Catalog, params: Params,
                     max_pixels: int) -> tuple[bytes, str, list[tuple[str, str]]]:
    """Answer a GetFeatureInfo request: the body, its media type and response headers
    (a ``Warning`` when nearest-time matching served other times than asked).

    Raises
    ------
    FewsmapError
        The OGC exception for the first problem found.
    """
    request = parse_getfeatureinfo(params, max_pixels)
    queries = list(resolve_queries(catalog, request))
    features = read_features(queries, request, catalog.settings.max_point_values)
    served = dict.fromkeys(s for q in queries for _, s in q.substitutions)
    headers = [("Warning", nearest_warning(tuple(served)))] if served else []
    return encode_features(features, request), request.media_type, headers


def nearest_warning(served: tuple[np.datetime64, ...]) -> str:
    """GeoServer's way of saying which times were served instead of those asked for."""
    return ", ".join(f"99 Nearest value used: time={format_time(t)}" for t in served)


def encode_features(features: list[FeatureValue], request: GetFeatureInfoRequest) -> bytes:
    """Write features in the request's INFO_FORMAT."""
    if request.info_format == GEOJSON:
        return _geojson(features, request)
    if request.info_format == HTML:
        return _html(features, request)
    if request.info_format in (GML2, GML3):
        return _gml(features, request, gml3=request.info_format == GML3)
    return _plain(features, request)


# --- resolving ------------------------------------------------------------------------


def _query(catalog: Catalog, name: str, layer: Layer, run: RunInfo | None,
           request: GetFeatureInfoRequest) -> PointQuery:
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
                      baseline, baseline_labels, request.map.accumulate)


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


def _pixel(params: Params, names: tuple[str, str], size: int) -> int:
    """Pixel column or row (I/J in 1.3.0, X/Y in 1.1.1; either is accepted), 0 ≤ p < size."""
    first, second = names
    text = params.get(first) or params.get(second)
    label = first.upper()
    if not text:
        raise MissingParameterValue(
            f"parameter {label} is required (I and J in WMS 1.3.0, X and Y in 1.1.1)")
    try:
        value = float(text)
    except ValueError as exc:
        raise InvalidPoint(f"{label}={text[:20]!r} must be a whole pixel number") from exc
    if not math.isfinite(value) or not value.is_integer():
        raise InvalidPoint(f"{label}={text[:20]!r} must be a whole pixel number")
    if not 0 <= value < size:
        raise InvalidPoint(f"{label}={int(value)} is outside the image: 0..{size - 1} "
                           "(pixel 0 is the left column / top row)")
    return int(value)


def _feature_count(text: str | None) -> int | None:
    """FEATURE_COUNT: a positive whole number; anything else means the default (§7.4.3.7)."""
    try:
        value = int(text) if text else 0
    except ValueError:
        return None
    return value if value > 0 else None


# --- writing ------------------------------------------------------------------------------


def _properties(feature: FeatureValue) -> dict[str, object]:
    properties: dict[str, object] = {
        "layer": feature.layer,
        "variable": feature.variable,
        "value": feature.value,
        "units": feature.units,
        "time": format_time(feature.time),
        "reference_time": format_time(feature.reference_time),
        "lead_time": lead_time_text(feature.lead_time),
    }
    properties.update(feature.dimensions)
    properties.update(feature.derived)
    properties.update((f"{name}_units", units) for name, units in feature.dimension_units
                      if name != "member")
    if feature.components:
        properties["components"] = dict(feature.components)
    cell = feature.cell
    properties.update({"row": cell.row if cell else None, "col": cell.col if cell else None})
    if cell is not None:
        properties.update({"lon": json_finite(cell.lon), "lat": json_finite(cell.lat),
                           "x": json_finite(cell.x), "y": json_finite(cell.y), "crs": cell.crs})
    return properties


def _geojson(features: list[FeatureValue], request: GetFeatureInfoRequest) -> bytes:
    x, y = request.point
    body = {
        "type": "FeatureCollection",
        "features": [{
            "type": "Feature",
            "id": _feature_id(feature),
            # RFC 7946: WGS 84 longitude, latitude. The grid cell centre whose value is given.
            "geometry": {"type": "Point", "coordinates": [feature.cell.lon, feature.cell.lat]}
            if feature.cell is not None else None,
            "properties": _properties(feature),
        } for feature in features],
        # Foreign member (RFC 7946 §6.1): the point that was asked for.
        "query": {"i": request.i, "j": request.j, "crs": request.map.crs, "x": x, "y": y},
    }
    return json.dumps(body, allow_nan=False).encode()


def _feature_id(feature: FeatureValue) -> str:
    dims = "".join(f"/{k}={v}" for k, v in feature.dimensions)
    run, time = format_time(feature.reference_time), format_time(feature.time)
    return f"{feature.layer}/{run}/{time}{dims}"


def _pixel_text(request: GetFeatureInfoRequest) -> str:
    names = ("X", "Y") if request.version == "1.1.1" else ("I", "J")
    return f"{names[0]}={request.i}, {names[1]}={request.j}"


def _value_text(feature: FeatureValue) -> str:
    return "no data" if feature.value is None else repr(feature.value)


def _plain(features: list[FeatureValue], request: GetFeatureInfoRequest) -> bytes:
    x, y = request.point
    lines = [f"GetFeatureInfo at pixel {_pixel_text(request)}: {request.map.crs} "
             f"x={x:.6f}, y={y:.6f}"]
    rule = "-" * 60
    for feature in features:
        lines += ["", f"Results for layer '{feature.layer}':", rule]
        for key, value in _properties(feature).items():
            if key == "value":
                value = _value_text(feature)
            elif value is None:
                value = "(outside the grid)" if key in ("row", "col") else ""
            lines.append(f"{key} = {value}")
        lines.append(rule)
    if not features:
        lines.append("no features")
    return ("\n".join(lines) + "\n").encode()


def _html(features: list[FeatureValue], request: GetFeatureInfoRequest) -> bytes:
    x, y = request.point
    def esc(text: str) -> str:  # XHTML: escaped and free of characters XML cannot hold
        return html.escape(xml_safe(text))

    parts = ['<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE html>\n'
             '<html xmlns="http://www.w3.org/1999/xhtml"><head><meta charset="utf-8"/>'
             "<title>GetFeatureInfo</title></head><body>",
             f"<p>Pixel {_pixel_text(request)}: {esc(request.map.crs)} "
             f"x={x:.6f}, y={y:.6f}</p>"]
    by_layer: dict[str, list[FeatureValue]] = {}
    for feature in features:
        by_layer.setdefault(feature.layer, []).append(feature)
    for layer, rows in by_layer.items():
        first = rows[0]
        cell = first.cell
        where = (f"cell row {cell.row}, col {cell.col}; centre lon {cell.lon:.6f}, "
                 f"lat {cell.lat:.6f}" if cell else "the point lies outside the grid")
        columns = ["time", "reference_time", "lead_time",
                   *(k for k, _ in first.dimensions), *(k for k, _ in first.components),
                   "value"]
        parts.append(f'<table class="featureInfo"><caption>{esc(layer)} '
                     f"({esc(first.variable)}{', ' + esc(first.units) if first.units else ''})"
                     f": {esc(where)}</caption><tr>"
                     + "".join(f"<th>{esc(c)}</th>" for c in columns) + "</tr>")
        for feature in rows:
            cells = [format_time(feature.time), format_time(feature.reference_time),
                     lead_time_text(feature.lead_time),
                     *(str(v) for _, v in feature.dimensions),
                     *("no data" if v is None else repr(v) for _, v in feature.components),
                     _value_text(feature)]
            parts.append("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in cells) + "</tr>")
        parts.append("</table>")
    if not features:
        parts.append("<p>no features</p>")
    parts.append("</body></html>\n")
    return "".join(parts).encode()


def _gml(features: list[FeatureValue], request: GetFeatureInfoRequest, gml3: bool) -> bytes:
    """A WFS-style feature collection: GML 2 (``fid``, coordinates) or GML 3.1.1."""
    ET.register_namespace("wfs", WFS_NS)
    ET.register_namespace("gml", GML_NS)
    ET.register_namespace("fewsmap", FEWSMAP_NS)
    ET.register_namespace("xsi", XSI_NS)
    root = ET.Element(f"{{{WFS_NS}}}FeatureCollection")
    for n, feature in enumerate(features):
        member = ET.SubElement(root, f"{{{GML_NS}}}featureMember")
        id_attr = f"{{{GML_NS}}}id" if gml3 else "fid"
        node = ET.SubElement(member, f"{{{FEWSMAP_NS}}}PointValue", {id_attr: f"f{n + 1}"})
        if feature.cell is not None:
            geometry = ET.SubElement(node, f"{{{FEWSMAP_NS}}}geometry")
            lon, lat = feature.cell.lon, feature.cell.lat
            if gml3:
                point = ET.SubElement(geometry, f"{{{GML_NS}}}Point", {"srsName": CRS84_URI})
                ET.SubElement(point, f"{{{GML_NS}}}pos").text = f"{lon!r} {lat!r}"
            else:  # GML 2: x,y = longitude,latitude
                point = ET.SubElement(geometry, f"{{{GML_NS}}}Point", {"srsName": "EPSG:4326"})
                ET.SubElement(point, f"{{{GML_NS}}}coordinates").text = f"{lon!r},{lat!r}"
        for key, value in _properties(feature).items():
            if key == "components":
                for name, component in feature.components:
                    _gml_value(node, "component", component, {"name": name})
                continue
            _gml_value(node, key, value)
    body: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=False)
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + body


def _gml_value(node: ET.Element, key: str, value: object,
               attrib: dict[str, str] | None = None) -> None:
    safe = {k: xml_safe(v) for k, v in (attrib or {}).items()}
    element = ET.SubElement(node, f"{{{FEWSMAP_NS}}}{key}", safe)
    if value is None:
        element.set(f"{{{XSI_NS}}}nil", "true")
    else:
        element.text = xml_safe(str(value))  # units and names come from the data

