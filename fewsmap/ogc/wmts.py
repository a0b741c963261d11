"""OGC WMTS 1.0.0: capabilities, GetTile and GetFeatureInfo (KVP and RESTful), over the
Web Mercator quadtree.

Every tile is a GetMap (``fewsmap.ogc.tiles``) and every GetFeatureInfo the WMS
GetFeatureInfo of that GetMap at pixel (I, J); this module only describes and addresses
them. Dimensions: ``Time`` (valid time) and ``Run`` (forecast reference time), then the
layer's elevation/member dimensions under their WMS names. WMTS cannot say that valid times
depend on the run, so ``Time`` lists the times of every run; the derived layer
``<layer>:change`` (latest run minus the previous one) lists the times those two runs share,
where there are any (`fewsmap.ogc.capabilities.change_run`).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import quote, urlencode

import numpy as np

from fewsmap.catalog import Catalog, Layer, Style
from fewsmap.catalog.described import describe_each
from fewsmap.catalog.extent import MERCATOR_HALF_WORLD_M, lonlat_bbox
from fewsmap.dimensions import REQUIRED, default_time, layer_dimensions
from fewsmap.errors import FewsmapError, InvalidParameterValue
from fewsmap.ogc.capabilities import (
    CHANGE_ABSTRACT,
    change_run,
    change_runs,
    change_title,
)
from fewsmap.ogc.featureinfo import (
    GEOJSON,
    GML2,
    GML3,
    HTML,
    OFFERED_INFO_FORMATS,
    PLAIN,
    resolve_info_format,
)
from fewsmap.ogc.tiles import (
    MAX_ZOOM,
    TILE_SIZE,
    TileAddress,
    getmap_params,
    parse_tile_number,
    zoom_range,
)
from fewsmap.ogc.xmlsafe import xml_safe
from fewsmap.params import Params
from fewsmap.products.change import CHANGE_SUFFIX
from fewsmap.resolve.maps import CHANGE_STYLE
from fewsmap.store.cube import RunInfo
from fewsmap.time.instants import format_time

WMTS = "http://www.opengis.net/wmts/1.0"
OWS = "http://www.opengis.net/ows/1.1"
XLINK = "http://www.w3.org/1999/xlink"
TILE_MATRIX_SET = "WebMercatorQuad"
# OGC 17-083r2 (Two Dimensional Tile Matrix Set), WebMercatorQuad at zoom 0.
SCALE_AT_ZOOM_0 = 559082264.028717
LATEST = "latest"
# WMTS dimension identifiers → tile selectors; any other dimension is a DIM_<name>.
SELECTORS = {"Time": "time", "Run": "run", "elevation": "elevation",
             "ensemble_member": "member"}
# RESTful FeatureInfo resources end in {J}/{I}.<extension>, the extension naming the info
# format (OGC 07-057r7's example: ".../{TileCol}/{J}/{I}.xml" for GML 3.1).
INFO_EXTENSIONS = {"txt": PLAIN, "html": HTML, "json": GEOJSON, "gml": GML2, "xml": GML3}
TILE_PATH = "{TileMatrixSet}/{TileMatrix}/{TileRow}/{TileCol}"


class PointIJOutOfRange(FewsmapError):
    """A GetFeatureInfo pixel outside the tile (OGC WMTS 1.0.0 GetFeatureInfo exceptions)."""

    ogc_code = "PointIJOutOfRange"


@dataclass(frozen=True)
class TileQuery:
    """A GetTile request reduced to a layer, a tile and GetMap-named selectors."""

    layer: str
    tile: TileAddress
    selectors: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class PixelQuery:
    """A GetFeatureInfo request: a tile, a pixel of it (from its top-left) and an info format."""

    tile: TileQuery
    i: int
    j: int
    info_format: str


def capabilities(catalog: Catalog, layers: Iterable[Layer], base_url: str) -> bytes:
    """The WMTS 1.0.0 ServiceMetadata document, with KVP and RESTful resource URLs."""
    root = ET.Element(_wmts("Capabilities"), {"version": "1.0.0"})
    identification = ET.SubElement(root, _ows("ServiceIdentification"))
    _ows_text(identification, "Title", catalog.title)
    _ows_text(identification, "ServiceType", "OGC WMTS")
    _ows_text(identification, "ServiceTypeVersion", "1.0.0")
    metadata = ET.SubElement(root, _ows("OperationsMetadata"))
    for operation in ("GetCapabilities", "GetTile", "GetFeatureInfo"):
        _operation(metadata, operation, {"KVP": f"{base_url}/wmts?",
                                         "RESTful": f"{base_url}/wmts/1.0.0/"})
    contents = ET.SubElement(root, _wmts("Contents"))
    described = describe_each(layers, lambda layer: _layers(catalog, layer, base_url),
                              "WMTS capabilities")
    contents.extend(element for _, elements in described for element in elements)
    _tile_matrix_set(contents)
    ET.SubElement(root, _wmts("ServiceMetadataURL"),
                  {f"{{{XLINK}}}href": f"{base_url}/wmts/1.0.0/WMTSCapabilities.xml"})
    ET.indent(root, space=" ")
    body: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return body


def dimension_names(catalog: Catalog, layer: Layer) -> list[str]:
    """The layer's WMTS dimensions in resource-URL order."""
    return ["Time", "Run", *(d.name for d in layer_dimensions(
        catalog.store(layer), layer.variable, layer.defaults))]


def kvp_tile(catalog: Catalog, params: Params) -> TileQuery:
    """Parse a KVP GetTile request; dimensions come as ``<Identifier>=<value>``.

    Raises
    ------
    FewsmapError
        MissingParameterValue, InvalidParameterValue, LayerNotDefined or TileOutOfRange.
    """
    layer, _ = catalog.resolve(params.require("layer"))
    _check_matrix_set(params.require("tilematrixset"))
    fmt = (params.get("format") or "image/png").lower()
    if fmt != "image/png":
        raise InvalidParameterValue(f"FORMAT={fmt[:40]!r}; offered: image/png")
    tile = TileAddress(_tile_matrix(params.require("tilematrix")),
                       parse_tile_number(params.require("tilecol"), "TILECOL"),
                       parse_tile_number(params.require("tilerow"), "TILEROW"))
    dimensions = [(name, params.get(name) or "") for name in dimension_names(catalog, layer)]
    # Vendor selectors GetMap knows (COLORSCALERANGE, showContours, SLD_BODY, a run change's
    # BASELINE, ACCUMULATE) pass through.
    vendor = [(name, value) for name, value in params.items()
              if name in ("colorscalerange", "showcontours", "sld_body", "baseline",
                          "accumulate")]
    return TileQuery(params.require("layer"), tile,
                     _selectors(params.get("style") or "", dimensions) + tuple(vendor))


def kvp_feature_info(catalog: Catalog, params: Params) -> PixelQuery:
    """Parse a KVP GetFeatureInfo request: a GetTile request with I, J and InfoFormat.

    Raises
    ------
    FewsmapError
        As `kvp_tile`; PointIJOutOfRange for a pixel outside the tile.
    """
    tile = kvp_tile(catalog, params)
    info_format, _ = resolve_info_format(params.require("infoformat"), "InfoFormat",
                                         InvalidParameterValue)
    return PixelQuery(tile, _pixel(params.require("i"), "I"), _pixel(params.require("j"), "J"),
                      info_format)


def rest_query(catalog: Catalog, layer_id: str, path: str) -> TileQuery | PixelQuery:
    """Parse a RESTful resource path below the layer: a tile,
    ``{Style}/{Time}/{Run}/…/{TileMatrixSet}/{TileMatrix}/{TileRow}/{TileCol}.png``, or a
    feature info, ``…/{TileCol}/{J}/{I}.<extension>`` (`INFO_EXTENSIONS`).

    Raises
    ------
    FewsmapError
        LayerNotDefined, InvalidParameterValue, TileOutOfRange or PointIJOutOfRange.
    """
    layer, _ = catalog.resolve(layer_id)
    names = dimension_names(catalog, layer)
    head, _, extension = path.rpartition(".")
    parts = head.split("/")
    tile_length = len(names) + 5  # style, dimensions, matrix set, matrix, row, column
    if len(parts) == tile_length and extension == "png":
        return _rest_tile(layer_id, names, parts)
    if len(parts) == tile_length + 2 and extension in INFO_EXTENSIONS:
        return PixelQuery(_rest_tile(layer_id, names, parts[:-2]), _pixel(parts[-1], "I"),
                          _pixel(parts[-2], "J"), INFO_EXTENSIONS[extension])
    prefix = f"/wmts/1.0.0/{layer.id}/{_rest_template(names)}"
    raise InvalidParameterValue(f"expected {prefix}.png or {prefix}/{{J}}/{{I}}."
                                f"{{{','.join(INFO_EXTENSIONS)}}}")


def feature_info_params(query: PixelQuery) -> Params:
    """The WMS GetFeatureInfo a tile's pixel means: the tile's GetMap, queried at (I, J)."""
    tile = query.tile
    info = [("request", "GetFeatureInfo"), ("query_layers", tile.layer),
            ("i", str(query.i)), ("j", str(query.j)), ("info_format", query.info_format)]
    # The first value of a name wins: REQUEST here replaces the tile's GetMap.
    return Params([*info, *getmap_params(tile.layer, tile.tile, Params(tile.selectors))])


def _rest_tile(layer_id: str, names: list[str], parts: list[str]) -> TileQuery:
    style, *values = parts[: len(names) + 1]
    matrix_set, matrix, row, column = parts[len(names) + 1:]
    _check_matrix_set(matrix_set)
    tile = TileAddress(_tile_matrix(matrix), parse_tile_number(column, "TileCol"),
                       parse_tile_number(row, "TileRow"))
    return TileQuery(layer_id, tile, _selectors(style, list(zip(names, values, strict=True))))


def _rest_template(names: list[str]) -> str:
    return "{Style}/" + "".join(f"{{{n}}}/" for n in names) + TILE_PATH


def _pixel(text: str, name: str) -> int:
    """I or J: a whole number; outside the tile is PointIJOutOfRange (a minus sign too)."""
    value = parse_tile_number(text.removeprefix("-"), name)
    if text.startswith("-") or value >= TILE_SIZE:
        raise PointIJOutOfRange(f"{name}={text[:20]} is outside the tile: 0..{TILE_SIZE - 1}")
    return value


def _selectors(style: str, dimensions: list[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    """WMTS dimensions → tile selectors; ``default``/``latest`` values mean "not given"."""
    chosen = [("style", "" if style.lower() == "default" else style)]
    for name, value in dimensions:
        if value.lower() in ("default", "current", LATEST, ""):
            continue
        chosen.append((SELECTORS.get(name, f"dim_{name}"), value))
    return tuple(chosen)


def _check_matrix_set(name: str) -> None:
    if name not in (TILE_MATRIX_SET, "GoogleMapsCompatible", "EPSG:3857"):
        raise InvalidParameterValue(f"TileMatrixSet={name[:40]!r}; offered: {TILE_MATRIX_SET}")


def _tile_matrix(text: str) -> int:
    # Some clients send the matrix as "EPSG:3857:5" or "WebMercatorQuad:5".
    return parse_tile_number(text.rsplit(":", 1)[-1], "TILEMATRIX")


@dataclass(frozen=True)
class Listing:
    """What a WMTS layer lists: a catalog layer, or its derived run change."""

    identifier: str
    title: str
    abstract: str
    styles: tuple[Style, ...]
    times: tuple[RunInfo, ...]  # the runs whose valid times Time lists (the last: default)
    runs: tuple[RunInfo, ...]  # the runs Run names


def _layers(catalog: Catalog, layer: Layer, base_url: str) -> list[ET.Element]:
    """The layer and, where it draws something (`change_run`), its ``<layer>:change``: the
    valid times the latest and previous runs share, the runs with a previous run, the
    diverging change style."""
    runs = catalog.runs(layer)
    found = [_layer(catalog, layer, base_url, Listing(
        layer.id, layer.title, layer.abstract, layer.styles, runs, runs))]
    change = change_run(catalog, layer)
    if change is not None:
        found.append(_layer(catalog, layer, base_url, Listing(
            layer.id + CHANGE_SUFFIX, change_title(layer), CHANGE_ABSTRACT, (CHANGE_STYLE,),
            (change,), change_runs(catalog, layer))))
    return found


def _layer(catalog: Catalog, layer: Layer, base_url: str, listing: Listing) -> ET.Element:
    node = ET.Element(_wmts("Layer"))
    _ows_text(node, "Title", listing.title)
    if listing.abstract:
        _ows_text(node, "Abstract", listing.abstract)
    west, south, east, north = lonlat_bbox(catalog.store(layer))
    box = ET.SubElement(node, _ows("WGS84BoundingBox"))
    _ows_text(box, "LowerCorner", f"{west:.6f} {south:.6f}")
    _ows_text(box, "UpperCorner", f"{east:.6f} {north:.6f}")
    _ows_text(node, "Identifier", listing.identifier)
    for index, style in enumerate(listing.styles):
        element = ET.SubElement(node, _wmts("Style"), {"isDefault": str(index == 0).lower()})
        _ows_text(element, "Title", style.title)
        _ows_text(element, "Identifier", style.name)
        legend = urlencode({"service": "WMS", "request": "GetLegendGraphic",
                            "version": "1.3.0", "layer": listing.identifier,
                            "style": style.name, "format": "image/png"})
        ET.SubElement(element, _wmts("LegendURL"), {
            "format": "image/png", f"{{{XLINK}}}href": f"{base_url}/wms?{legend}"})
    _text(node, "Format", "image/png")
    for info_format in OFFERED_INFO_FORMATS:
        _text(node, "InfoFormat", info_format)
    _time_dimensions(node, layer, listing)
    # Values: the labels holding data in any run (Run is a dimension here too); the default
    # holds data in the latest run, which is the default Run.
    runs = catalog.runs(layer)
    store = catalog.store(layer)
    defaults = layer_dimensions(store, layer.variable, layer.defaults, runs[-1:])
    for dimension, latest in zip(layer_dimensions(store, layer.variable, layer.defaults, runs,
                                                  statistics=layer.statistics),
                                 defaults, strict=True):
        element = _dimension(node, dimension.name, dimension.units,
                             None if latest.default is None else f"{latest.default:g}")
        for value in dimension.values():  # members, then ensemble statistics
            _text(element, "Value", value)
    link = ET.SubElement(node, _wmts("TileMatrixSetLink"))
    _text(link, "TileMatrixSet", TILE_MATRIX_SET)
    limits = ET.SubElement(link, _wmts("TileMatrixSetLimits"))
    for zoom in range(zoom_range(catalog, layer)[1] + 1):
        _limits(limits, catalog, layer, zoom)
    template = (f"{base_url}/wmts/1.0.0/{quote(listing.identifier, safe='')}/"
                + _rest_template(dimension_names(catalog, layer)))
    ET.SubElement(node, _wmts("ResourceURL"), {
        "format": "image/png", "resourceType": "tile", "template": f"{template}.png"})
    for extension, info_format in INFO_EXTENSIONS.items():
        ET.SubElement(node, _wmts("ResourceURL"), {
            "format": info_format, "resourceType": "FeatureInfo",
            "template": f"{template}/{{J}}/{{I}}.{extension}"})
    return node


def _time_dimensions(node: ET.Element, layer: Layer, listing: Listing) -> None:
    policy = str(layer.defaults.get("time", "now"))
    times, runs = listing.times, listing.runs
    default = (format_time(default_time(times[-1], policy))
               if times and policy != REQUIRED else None)
    time = _dimension(node, "Time", "ISO8601", default, current=True)
    for when in np.unique(np.concatenate([r.valid_times for r in times])) if times else ():
        _text(time, "Value", format_time(when))
    if not times:
        _text(time, "Value", "default")  # the schema needs a value; GetTile then says why
    run = _dimension(node, "Run", "ISO8601", LATEST)
    _text(run, "Value", LATEST)  # always the newest complete run (short-lived tiles)
    for entry in runs:
        _text(run, "Value", entry.label)


def _dimension(node: ET.Element, name: str, units: str, default: str | None,
               current: bool = False) -> ET.Element:
    element = ET.SubElement(node, _wmts("Dimension"))
    _ows_text(element, "Identifier", name)
    if units:
        _ows_text(element, "UOM", units)
    if default is not None:
        _text(element, "Default", default)
    if current:
        _text(element, "Current", "true")
    return element


def _limits(parent: ET.Element, catalog: Catalog, layer: Layer, zoom: int) -> None:
    """The tile rows and columns at ``zoom`` that cover the layer's extent."""
    west, south, east, north = lonlat_bbox(catalog.store(layer))
    count = 2**zoom
    left, top = _tile_of(west, north, count)
    right, bottom = _tile_of(east, south, count)
    element = ET.SubElement(parent, _wmts("TileMatrixLimits"))
    _text(element, "TileMatrix", str(zoom))
    for tag, value in (("MinTileRow", top), ("MaxTileRow", bottom),
                       ("MinTileCol", left), ("MaxTileCol", right)):
        _text(element, tag, str(value))


def _tile_of(lon: float, lat: float, count: int) -> tuple[int, int]:
    lat = max(min(lat, 85.0511287798), -85.0511287798)
    column = (lon + 180.0) / 360.0 * count
    row = (1.0 - np.arcsinh(np.tan(np.radians(lat))) / np.pi) / 2.0 * count
    return min(max(int(column), 0), count - 1), min(max(int(row), 0), count - 1)


def _tile_matrix_set(contents: ET.Element) -> None:
    node = ET.SubElement(contents, _wmts("TileMatrixSet"))
    _ows_text(node, "Identifier", TILE_MATRIX_SET)
    _ows_text(node, "SupportedCRS", "urn:ogc:def:crs:EPSG::3857")
    _text(node, "WellKnownScaleSet", "urn:ogc:def:wkss:OGC:1.0:GoogleMapsCompatible")
    for zoom in range(MAX_ZOOM + 1):
        matrix = ET.SubElement(node, _wmts("TileMatrix"))
        _ows_text(matrix, "Identifier", str(zoom))
        _text(matrix, "ScaleDenominator", repr(SCALE_AT_ZOOM_0 / 2**zoom))
        _text(matrix, "TopLeftCorner", f"{-MERCATOR_HALF_WORLD_M!r} {MERCATOR_HALF_WORLD_M!r}")
        for tag in ("TileWidth", "TileHeight"):
            _text(matrix, tag, "256")
        for tag in ("MatrixWidth", "MatrixHeight"):
            _text(matrix, tag, str(2**zoom))


def _operation(metadata: ET.Element, name: str, urls: dict[str, str]) -> None:
    """An operation offered at one URL per encoding (KVP, RESTful), as GeoServer lists them."""
    operation = ET.SubElement(metadata, _ows("Operation"), {"name": name})
    http = ET.SubElement(ET.SubElement(operation, _ows("DCP")), _ows("HTTP"))
    for encoding, url in urls.items():
        get = ET.SubElement(http, _ows("Get"), {f"{{{XLINK}}}href": url})
        constraint = ET.SubElement(get, _ows("Constraint"), {"name": "GetEncoding"})
        _ows_text(ET.SubElement(constraint, _ows("AllowedValues")), "Value", encoding)


def exception_report(error: FewsmapError) -> bytes:
    """An OWS 1.1 ExceptionReport (WMTS 1.0.0 §8.3)."""
    root = ET.Element(_ows("ExceptionReport"), {
        "version": "1.1.0", "{http://www.w3.org/XML/1998/namespace}lang": "en"})
    answer = error.answer
    attrs = {"exceptionCode": answer.ows or error.ogc_code}
    if answer.locator:  # the parameter at fault (OWS Common 1.1 §8.4)
        attrs["locator"] = answer.locator
    exception = ET.SubElement(root, _ows("Exception"), attrs)
    _ows_text(exception, "ExceptionText", str(error))
    body: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return body


# Prefixed, since the WMS capabilities own ElementTree's default namespace.
ET.register_namespace("wmts", WMTS)
ET.register_namespace("ows", OWS)


def _wmts(tag: str) -> str:
    return f"{{{WMTS}}}{tag}"


def _ows(tag: str) -> str:
    return f"{{{OWS}}}{tag}"


def _text(parent: ET.Element, tag: str, text: str) -> ET.Element:
    element = ET.SubElement(parent, _wmts(tag))
    element.text = xml_safe(text)  # titles and keywords come from data and configuration
    return element


def _ows_text(parent: ET.Element, tag: str, text: str) -> ET.Element:
    element = ET.SubElement(parent, _ows(tag))
    element.text = xml_safe(text)
    return element
