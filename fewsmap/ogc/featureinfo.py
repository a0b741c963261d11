"""GetFeatureInfo: parse the query into a `PointRequest`, encode the values
`fewsmap.resolve.points` reads, in five formats.

The map part of the request is parsed exactly as GetMap parses it (`parse_getmap` with
``embedded=True``), so CRS, axis order, BBOX, size limits, runs, members and levels mean the
same here. The queried point is the *centre* of pixel (I, J), counted from the top-left
pixel (0, 0) (WMS 1.3.0 §7.4.3.7). TIME may be a list, range or ``all`` and ELEVATION a list
of levels and ranges (`fewsmap.resolve.points`).
"""

from __future__ import annotations

import html
import json
import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely

from fewsmap.catalog import Catalog
from fewsmap.dimensions import LabelSpan
from fewsmap.errors import (
    FewsmapError,
    InvalidDimensionValue,
    InvalidFormat,
    InvalidParameterValue,
    InvalidPoint,
    MissingParameterValue,
)
from fewsmap.formats.numbers import json_finite
from fewsmap.ogc.getmap import parse_getmap, wms_version
from fewsmap.ogc.xmlsafe import xml_safe
from fewsmap.params import Params, finite_number
from fewsmap.resolve.labels import lead_time_text
from fewsmap.resolve.maps import MapRequest
from fewsmap.resolve.points import FeatureValue, PointRequest, read_features, resolve_queries
from fewsmap.time.grammar import parse_time
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
    """A syntactically valid GetFeatureInfo request: the point query it means (at the
    centre of pixel I, J of the embedded map), and how to answer it."""

    query: PointRequest
    version: str  # WMS 1.3.0 names the pixel I, J; 1.1.1 X, Y
    i: int
    j: int
    info_format: str
    media_type: str

    @property
    def map(self) -> MapRequest:
        """The embedded GetMap request (bbox east/north)."""
        return self.query.map

    @property
    def point(self) -> tuple[float, float]:
        """The queried point in the request CRS, east/north order."""
        return self.query.x, self.query.y


def pixel_centre(request: MapRequest, i: int, j: int) -> tuple[float, float]:
    """The centre of pixel (I, J) of a map in its CRS, east/north order."""
    minx, miny, maxx, maxy = request.bbox
    x = minx + (i + 0.5) * (maxx - minx) / request.width
    y = maxy - (j + 0.5) * (maxy - miny) / request.height
    return x, y


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
    x, y = pixel_centre(request, i, j)
    # Finite corners can still be too far apart for a float: no point to query, nor to write.
    if not (math.isfinite(x) and math.isfinite(y)):
        raise InvalidParameterValue("BBOX is too large: its width or height overflows")
    query = PointRequest(
        map=request,
        layers=names,
        x=x,
        y=y,
        feature_count=_feature_count(params.get("feature_count")),
        time=parse_time(time) if time and time.strip() else None,
        elevation=parse_levels(elevation) if elevation else (),
    )
    return GetFeatureInfoRequest(query=query, version=version, i=i, j=j,
                                 info_format=info_format, media_type=media_type)


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
    queries = list(resolve_queries(catalog, request.query))
    features = read_features(queries, request.query, catalog.settings.max_point_values)
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


# --- parsing ------------------------------------------------------------------------


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
    if feature.catchment is not None:  # a mean over the catchment, not a cell's value
        properties.update({"catchment": feature.catchment.id,
                           "catchment_name": feature.catchment.name})
        return properties
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
            "geometry": _geometry(feature),
            "properties": _properties(feature),
        } for feature in features],
        # Foreign member (RFC 7946 §6.1): the point that was asked for.
        "query": {"i": request.i, "j": request.j, "crs": request.map.crs, "x": x, "y": y},
    }
    return json.dumps(body, allow_nan=False).encode()


def _geometry(feature: FeatureValue) -> dict[str, Any] | None:
    """RFC 7946 (WGS 84 longitude, latitude): the catchment whose mean is given, or the
    centre of the grid cell whose value is given."""
    if feature.catchment is not None:
        return dict(shapely.geometry.mapping(feature.catchment.polygon))
    if feature.cell is None:
        return None
    return {"type": "Point", "coordinates": [feature.cell.lon, feature.cell.lat]}


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
        where = _where(first)
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


def _where(feature: FeatureValue) -> str:
    """Where a value was read, for people: the catchment, or the grid cell."""
    cell, catchment = feature.cell, feature.catchment
    if catchment is not None:
        return f"catchment {catchment.id} ({catchment.name})"
    if cell is None:
        return "the point lies outside the grid"
    return (f"cell row {cell.row}, col {cell.col}; centre lon {cell.lon:.6f}, "
            f"lat {cell.lat:.6f}")


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

