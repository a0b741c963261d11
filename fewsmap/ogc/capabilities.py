"""GetCapabilities answers built from the catalog: FEWS JSON and WMS 1.3.0 XML."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlencode

from fewsmap.catalog import Catalog, Layer, Style
from fewsmap.catalog.described import describe_each
from fewsmap.catalog.extent import lonlat_bbox, lonlat_to_mercator, mercator_bbox, native_bbox
from fewsmap.crs import BASE_CRS, north_first, offered_crs
from fewsmap.dimensions import REQUIRED, LayerDimension, default_time, layer_dimensions
from fewsmap.ogc.featureinfo import OFFERED_INFO_FORMATS
from fewsmap.ogc.getmap import MAX_LAYERS
from fewsmap.ogc.xmlsafe import xml_safe
from fewsmap.products.change import CHANGE_SUFFIX, shared_times
from fewsmap.render.legend import legend_size
from fewsmap.resolve.maps import CHANGE_STYLE, defined_run
from fewsmap.store.cube import RunInfo
from fewsmap.store.geometry import transformer
from fewsmap.time.grammar import format_axis
from fewsmap.time.instants import format_time


def run_dimensions(catalog: Catalog, layer: Layer, run: RunInfo | None) -> list[LayerDimension]:
    """The layer's member and level dimensions as ``run`` holds data (None: the latest run),
    the members with the layer's ensemble statistics."""
    runs = catalog.runs(layer)
    shown = run or (runs[-1] if runs else None)
    return layer_dimensions(catalog.store(layer), layer.variable, layer.defaults,
                            () if shown is None else (shown,), statistics=layer.statistics)


def keyword_groups(catalog: Catalog, layer: Layer,
                   run: RunInfo | None = None) -> list[dict[str, str]]:
    """FEWS keywords: one group per ensemble member (ensembleId, ensembleMemberId), else one.

    Members are those holding data in ``run`` (None: the latest run).
    """
    for dimension in run_dimensions(catalog, layer, run):
        if dimension.name == "ensemble_member":
            ensemble = layer.keywords.get("ensembleId", layer.variable)
            return [{**layer.keywords, "ensembleId": ensemble, "ensembleMemberId": f"{m:g}"}
                    for m in dimension.sorted_labels()]
    return [dict(layer.keywords)]


def layer_json(catalog: Catalog, layer: Layer, run: RunInfo | None, only_headers: bool,
               name: str | None = None) -> dict[str, Any]:
    """One FEWS JSON capabilities layer (``run`` None: the layer's latest run)."""
    runs = catalog.runs(layer)
    run = run or (runs[-1] if runs else None)
    parent = catalog.heading(layer.group)
    store = catalog.store(layer)
    minx, miny, maxx, maxy = mercator_bbox(store)
    entry: dict[str, Any] = {
        "name": name or layer.id,
        "title": layer.title,
        "path": [parent.id],
        "groupName": parent.id,
        "groupTitle": parent.title,
        "keywordList": [{**group, **({"forecastTime": run.label} if run else {})}
                        for group in keyword_groups(catalog, layer, run)],
        "boundingBox": {"crs": "EPSG:3857", "minx": f"{minx:.8f}", "miny": f"{miny:.8f}",
                        "maxx": f"{maxx:.8f}", "maxy": f"{maxy:.8f}"},
        "styles": [{"name": s.name, "title": s.title} for s in layer.styles],
        "onlyGrids": True,
    }
    if layer.is_vector:
        entry["uv"] = True  # FEWS: GetMap format=image/tiff&convertUVtoRG=true
    for dimension in run_dimensions(catalog, layer, run):
        if dimension.name == "ensemble_member":
            entry["ensembles"] = [{"ensembleId": layer.variable,
                                   "ensembleMemberIds": dimension.values()}]
        elif dimension.name == "elevation":
            levels = dimension.sorted_labels()
            entry["elevation"] = {"units": dimension.units, "unitSymbol": dimension.units,
                                  "lowerValue": levels[0], "upperValue": levels[-1],
                                  "irregularTicks": levels}
    if run is None:
        entry["completelyMissing"] = True
        return entry
    stats = run.statistics.get(layer.variable, {})
    entry["externalForecastTime"] = run.label
    entry["completelyMissing"] = stats.get("nan_fraction") == 1.0
    entry["firstValueTime"] = format_time(run.valid_times[0])
    entry["lastValueTime"] = format_time(run.valid_times[-1])
    default = _default_time(layer, run)
    if default is not None:
        entry["timesDefault"] = default
    if not only_headers:
        entry["times"] = [format_time(t) for t in run.valid_times]
    return entry


def capabilities_json(catalog: Catalog, layers: Iterable[Layer], only_headers: bool,
                      forecast_runs: dict[str, list[RunInfo]] | None = None) -> dict[str, Any]:
    """FEWS JSON capabilities: ``title``, flat ``layers[]`` and ``groups[]``.

    ``forecast_runs`` lists, per layer id, the runs to report as child layers
    ``<layer>-<T0>`` (the FEWS forecast period).
    """
    def describe(layer: Layer) -> list[dict[str, Any]]:
        entries = [layer_json(catalog, layer, None, only_headers)]
        change = change_run(catalog, layer)
        if change is not None:
            entry = layer_json(catalog, layer, change, only_headers, layer.id + CHANGE_SUFFIX)
            entry["title"] = change_title(layer)
            entry["styles"] = [{"name": CHANGE_STYLE.name, "title": CHANGE_STYLE.title}]
            entries.append(entry)
        for run in (forecast_runs or {}).get(layer.id, []):
            child = layer_json(catalog, layer, run, only_headers, f"{layer.id}-{run.label}")
            child["title"] = run.label
            entries.append(child)
        return entries

    entries = [entry for _, described in describe_each(layers, describe, "FEWS capabilities")
               for entry in described]
    headings = map(catalog.heading, dict.fromkeys(e["groupName"] for e in entries))
    groups = [{"name": g.id, "title": g.title, "path": [g.id]} for g in headings]
    return {"title": catalog.title, "layers": entries, "groups": groups}


def change_run(catalog: Catalog, layer: Layer, run: RunInfo | None = None) -> RunInfo | None:
    """``run`` (None: the latest) narrowed to the valid times it shares with the run before
    it: what the derived layer ``<layer>:change`` lists and draws (`fewsmap.products.change`)
    in WMS, FEWS JSON and WMTS capabilities and TileJSON; None where it would draw nothing:
    for a vector layer, the layer's first run, or two runs sharing no valid time."""
    runs = catalog.runs(layer)
    run = run or (runs[-1] if runs else None)
    earlier = [r for r in runs if run is not None and r.reference_time < run.reference_time]
    if layer.is_vector or run is None or not earlier or \
            not shared_times(run, earlier[-1]).size:
        return None
    return defined_run(run, earlier[-1], None)


def change_runs(catalog: Catalog, layer: Layer) -> tuple[RunInfo, ...]:
    """The runs a ``<layer>:change`` may name: each run after the first."""
    return catalog.runs(layer)[1:]


CHANGE_ABSTRACT = ("The latest run minus the previous run at the valid times both hold "
                   "(BASELINE=previous); with a run selected (DIM_REFERENCE_TIME, WMTS Run), "
                   "that run minus the run before it.")


def change_title(layer: Layer) -> str:
    """The title of a layer's ``:change`` layer."""
    return f"{layer.title}: change since the previous run"


def capabilities_xml(catalog: Catalog, layers: Iterable[Layer], service_url: str,
                     only_headers: bool = False,
                     forecast_runs: dict[str, list[RunInfo]] | None = None,
                     version: str = "1.3.0") -> bytes:
    """WMS capabilities XML: 1.3.0 (valid against the OGC schema) or 1.1.1.

    ``only_headers`` leaves out time values (FEWS ``onlyHeaders=true``); ``forecast_runs``
    adds one child layer ``<layer>-<T0>`` per run (the FEWS forecast period). The 1.1.1
    document is the 1.3.0 one translated (see ``_as_1_1_1``).
    """
    layers = list(layers)
    root = ET.Element(_wms("WMS_Capabilities"), {
        "version": "1.3.0",
        f"{{{XSI}}}schemaLocation": f"{WMS} {SCHEMAS}/wms/1.3.0/capabilities_1_3_0.xsd "
                                    f"{SLD} {SCHEMAS}/sld/1.1.0/sld_capabilities.xsd"})
    service = _child(root, "Service")
    _text(service, "Name", "WMS")
    _text(service, "Title", catalog.title)
    _text(service, "Abstract", "Forecast grids as WMS with time, in the style of the "
                               "Delft-FEWS web service (fewsmap)")
    _link(service, service_url)
    _text(service, "LayerLimit", str(MAX_LAYERS))
    capability = _child(root, "Capability")
    request = _child(capability, "Request")
    _operation(request, _wms("GetCapabilities"), ("text/xml", "application/json"), service_url)
    _operation(request, _wms("GetMap"), ("image/png", "image/jpeg", "image/tiff", "image/gif",
                                         "image/apng", "image/webp",
                                         "image/tiff;subtype=float32", "application/x-netcdf"),
               service_url)
    _operation(request, _wms("GetFeatureInfo"), OFFERED_INFO_FORMATS, service_url)
    # SLD 1.1 extended operations (sld_capabilities.xsd); WMS 1.1.1 lists them in this order.
    _operation(request, f"{{{SLD}}}DescribeLayer", ("text/xml", "application/json"),
               service_url)
    _operation(request, f"{{{SLD}}}GetLegendGraphic", ("image/png", "application/json"),
               service_url)
    exception = _child(capability, "Exception")
    for name in ("XML", "INIMAGE", "BLANK", "JSON"):
        _text(exception, "Format", name)
    top = _child(capability, "Layer")
    _text(top, "Title", catalog.title)

    def describe(layer: Layer) -> tuple[list[ET.Element], tuple[float, float, float, float],
                                        tuple[str, ...]]:
        runs = (forecast_runs or {}).get(layer.id, [])
        change = _change_layer(catalog, layer, service_url, only_headers)
        return ([_layer(catalog, layer, None, service_url, only_headers, runs),
                 *([] if change is None else [change])],
                lonlat_bbox(catalog.store(layer)), _offered(catalog, layer))

    described = describe_each(layers, describe, "WMS capabilities")
    # Child layers inherit the root's CRSs (WMS 1.3.0 §7.2.4.6.7): the root lists only those
    # every layer draws in; a grid's own CRS is listed on its layer (issue #17).
    for crs in _common_crs([offered for _, (_, _, offered) in described]):
        _text(top, "CRS", crs)
    if described:
        _bounding_boxes(top, _union([box for _, (_, box, _) in described]))
    by_group: dict[str, list[tuple[ET.Element, tuple[float, float, float, float]]]] = {}
    for layer, (elements, box, _) in described:
        by_group.setdefault(layer.group, []).extend((element, box) for element in elements)
    for group_id, members in by_group.items():
        group = catalog.heading(group_id)
        node = _child(top, "Layer")
        if group_id in catalog.groups:  # a group the client may not draw is a heading only
            _text(node, "Name", group.id)  # requestable: draws its layers (WMS §7.2.4.6.3)
        _text(node, "Title", group.title)
        _bounding_boxes(node, _union([box for _, box in members]))
        node.extend(element for element, _ in members)
    header = b'<?xml version="1.0" encoding="UTF-8"?>\n'
    if version == "1.1.1":
        root = _as_1_1_1(root)
        header += DOCTYPE_1_1_1
    ET.indent(root, space=" ")
    body: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=False)
    return header + body


DOCTYPE_1_1_1 = (b'<!DOCTYPE WMT_MS_Capabilities SYSTEM '
                 b'"http://schemas.opengis.net/wms/1.1.1/WMS_MS_Capabilities.dtd">\n')
# 1.1.1 names of the 1.3.0 formats that differ.
FORMATS_1_1_1 = {"text/xml": "application/vnd.ogc.wms_xml", "XML": "application/vnd.ogc.se_xml",
                 "INIMAGE": "application/vnd.ogc.se_inimage",
                 "BLANK": "application/vnd.ogc.se_blank"}


def _as_1_1_1(root: ET.Element) -> ET.Element:
    """Translate a 1.3.0 capabilities tree into WMS 1.1.1 (WMT_MS_Capabilities).

    No namespace; SRS for CRS; LatLonBoundingBox for EX_GeographicBoundingBox; EPSG:4326
    boxes longitude first and no CRS:84; each Dimension split into an empty Dimension and an
    Extent holding values and default (after all Dimensions, as the 1.1.1 DTD orders them).
    """
    for element in root.iter():
        element.tag = element.tag.rpartition("}")[2]
    root.tag = "WMT_MS_Capabilities"
    root.attrib = {"version": "1.1.1"}
    service = root.find("Service")
    if service is not None:
        for limit in service.findall("LayerLimit"):
            service.remove(limit)
    for element in root.iter("Format"):
        element.text = FORMATS_1_1_1.get(element.text or "", element.text)
    for layer in list(root.iter("Layer")):
        _layer_as_1_1_1(layer)
    return root


def _layer_as_1_1_1(layer: ET.Element) -> None:
    extents = []
    for child in list(layer):
        if child.tag == "CRS":
            child.tag = "SRS"
            if child.text == "CRS:84":
                layer.remove(child)
        elif child.tag == "EX_GeographicBoundingBox":
            values = {c.tag: c.text or "" for c in child}
            box = ET.Element("LatLonBoundingBox", {
                "minx": values["westBoundLongitude"], "miny": values["southBoundLatitude"],
                "maxx": values["eastBoundLongitude"], "maxy": values["northBoundLatitude"]})
            position = list(layer).index(child)
            layer.remove(child)
            layer.insert(position, box)
        elif child.tag == "BoundingBox":
            crs = child.attrib.pop("CRS")
            if crs == "CRS:84":
                layer.remove(child)
                continue
            if north_first(crs):  # 1.3.0 boxes follow the CRS's axis order, 1.1.1's x first
                a = child.attrib
                a["minx"], a["miny"], a["maxx"], a["maxy"] = a["miny"], a["minx"], a["maxy"], \
                    a["maxx"]
            child.set("SRS", crs)
        elif child.tag == "Dimension":
            extent = ET.Element("Extent", {k: v for k, v in child.attrib.items()
                                           if k not in ("units", "unitSymbol")})
            extent.text, child.text = child.text, None
            child.attrib = {k: v for k, v in child.attrib.items()
                            if k in ("name", "units", "unitSymbol")}
            extents.append(extent)
    if extents:
        last = max(i for i, c in enumerate(layer) if c.tag == "Dimension")
        for offset, extent in enumerate(extents, start=1):
            layer.insert(last + offset, extent)


WMS = "http://www.opengis.net/wms"
SLD = "http://www.opengis.net/sld"
XLINK = "http://www.w3.org/1999/xlink"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
SCHEMAS = "http://schemas.opengis.net"
for _prefix, _uri in (("", WMS), ("sld", SLD), ("xlink", XLINK), ("xsi", XSI)):
    ET.register_namespace(_prefix, _uri)


def _wms(tag: str) -> str:
    return f"{{{WMS}}}{tag}"


def _child(parent: ET.Element, tag: str, attrib: dict[str, str] | None = None) -> ET.Element:
    return ET.SubElement(parent, _wms(tag), {k: xml_safe(v) for k, v in (attrib or {}).items()})


def _text(parent: ET.Element, tag: str, text: str, **attrib: str) -> ET.Element:
    element = _child(parent, tag, attrib)
    element.text = xml_safe(text)  # titles, keywords, units come from data and configuration
    return element


def _link(parent: ET.Element, href: str) -> None:
    _child(parent, "OnlineResource", {f"{{{XLINK}}}type": "simple", f"{{{XLINK}}}href": href})


def _operation(request: ET.Element, tag: str, formats: tuple[str, ...], url: str) -> None:
    operation = ET.SubElement(request, tag)
    for media_type in formats:
        _text(operation, "Format", media_type)
    get = _child(_child(_child(operation, "DCPType"), "HTTP"), "Get")
    _link(get, url)


def _offered(catalog: Catalog, layer: Layer) -> tuple[str, ...]:
    return offered_crs(catalog.store(layer).geometry.crs_wkt)


def _common_crs(offers: list[tuple[str, ...]]) -> list[str]:
    """The CRSs every layer is offered in; the base ones when there are no layers."""
    common = set(offers[0]).intersection(*offers[1:]) if offers else set(BASE_CRS)
    return sorted(common, key=lambda c: (c not in BASE_CRS, c))


def _default_time(layer: Layer, run: RunInfo) -> str | None:
    """The layer's default time for a run, formatted; None when TIME is required."""
    policy = str(layer.defaults.get("time", "now"))
    return None if policy == REQUIRED else format_time(default_time(run, policy))


def _union(boxes: list[tuple[float, float, float, float]]) -> tuple[float, float, float, float]:
    return (min(b[0] for b in boxes), min(b[1] for b in boxes),
            max(b[2] for b in boxes), max(b[3] for b in boxes))


def _bounding_boxes(node: ET.Element, lonlat: tuple[float, float, float, float],
                    extra: tuple[str, ...] = (),
                    native: tuple[float, float, float, float] | None = None) -> None:
    """Write a node's geographic box and a BoundingBox per CRS; ``extra`` CRSs are the grid's
    own (offered_crs), whose box is ``native`` (the cell edges) when given."""
    west, south, east, north = lonlat
    geographic = _child(node, "EX_GeographicBoundingBox")
    for tag, value in (("westBoundLongitude", west), ("eastBoundLongitude", east),
                       ("southBoundLatitude", south), ("northBoundLatitude", north)):
        _text(geographic, tag, f"{value:.6f}")
    mercator = lonlat_to_mercator(lonlat)
    boxes = {"CRS:84": (west, south, east, north),
             "EPSG:4326": (south, west, north, east),  # WMS 1.3.0: latitude first
             "EPSG:3857": mercator}
    for crs in extra:
        boxes[crs] = _in_axis_order(native, crs) if native else _projected_box(lonlat, crs)
    for crs, (minx, miny, maxx, maxy) in boxes.items():
        _child(node, "BoundingBox", {"CRS": crs, "minx": f"{minx:.6f}", "miny": f"{miny:.6f}",
                                     "maxx": f"{maxx:.6f}", "maxy": f"{maxy:.6f}"})


def _layer(catalog: Catalog, layer: Layer, run: RunInfo | None, url: str, only_headers: bool,
           children: list[RunInfo]) -> ET.Element:
    node = ET.Element(_wms("Layer"), {"queryable": "1"})  # GetFeatureInfo; groups are not
    name = layer.id if run is None else f"{layer.id}-{run.label}"
    _text(node, "Name", name)
    _text(node, "Title", layer.title if run is None else run.label)
    if run is None:
        if layer.abstract:
            _text(node, "Abstract", layer.abstract)
        keywords = _child(node, "KeywordList")
        for group in keyword_groups(catalog, layer):
            for key, value in group.items():
                _text(keywords, "Keyword", f"{key}={value}")
        store = catalog.store(layer)
        extra = tuple(c for c in _offered(catalog, layer) if c not in BASE_CRS)
        for crs in extra:
            _text(node, "CRS", crs)
        _bounding_boxes(node, lonlat_bbox(store), extra, native_bbox(store))
    runs = catalog.runs(layer)
    shown = run or (runs[-1] if runs else None)
    if shown is not None and not only_headers and not children:
        _time_dimension(node, catalog, layer, shown)
    if run is None and runs and not only_headers:
        _text(node, "Dimension", ",".join(r.label for r in runs), name="reference_time",
              units="ISO8601", default=runs[-1].label, multipleValues="0",
              nearestValue="0", current="1")
    _dimensions(node, catalog, layer, run)  # a per-run layer states what its run holds
    if run is None:
        units = str(catalog.store(layer).attributes(layer.variable).get("units", ""))
        for style in layer.styles:
            _style(node, layer, style, style.units or units, url)
    node.extend(_layer(catalog, layer, child, url, only_headers, []) for child in children)
    return node


def _time_dimension(node: ET.Element, catalog: Catalog, layer: Layer, run: RunInfo) -> None:
    """The time Dimension of ``run``'s valid times.

    multipleValues: GetMap aggregates lists and ranges (REDUCER) or animates them (image/gif,
    image/apng, image/webp); GetFeatureInfo and the time-series API answer each time.
    current: TIME=current is the default.
    """
    times = format_axis(run.valid_times) if catalog.settings.compact_time_axes else \
        ",".join(format_time(t) for t in run.valid_times)
    attrs = {"name": "time", "units": "ISO8601", "multipleValues": "1",
             "nearestValue": "1" if layer.time_tolerance is not None else "0", "current": "1"}
    default = _default_time(layer, run)
    if default is not None:
        attrs["default"] = default
    _text(node, "Dimension", times, **attrs)


def _change_layer(catalog: Catalog, layer: Layer, url: str,
                  only_headers: bool) -> ET.Element | None:
    """The derived layer ``<layer>:change`` (`change_run`), with the layer's extent, the
    valid times the latest and previous runs share, the runs that have a previous run, the
    layer's members and levels, and the diverging change style."""
    run = change_run(catalog, layer)
    if run is None:
        return None
    node = ET.Element(_wms("Layer"), {"queryable": "1"})
    name = layer.id + CHANGE_SUFFIX
    _text(node, "Name", name)
    _text(node, "Title", change_title(layer))
    _text(node, "Abstract", CHANGE_ABSTRACT)
    store = catalog.store(layer)
    extra = tuple(c for c in _offered(catalog, layer) if c not in BASE_CRS)
    for crs in extra:
        _text(node, "CRS", crs)
    _bounding_boxes(node, lonlat_bbox(store), extra, native_bbox(store))
    if not only_headers:
        _time_dimension(node, catalog, layer, run)
        _text(node, "Dimension", ",".join(r.label for r in change_runs(catalog, layer)),
              name="reference_time", units="ISO8601", default=run.label,
              multipleValues="0", nearestValue="0", current="1")
    _dimensions(node, catalog, layer, None)
    units = str(store.attributes(layer.variable).get("units", ""))
    _style(node, layer, CHANGE_STYLE, units, url, name)
    return node


def _dimensions(node: ET.Element, catalog: Catalog, layer: Layer, run: RunInfo | None) -> None:
    """Elevation, ensemble member and any other dimension, with their defaults: the labels
    holding data in ``run`` (None: the latest run).

    multipleValues (WMS 1.3.0 Annex C.2: whether a request may name several values) is 1
    for elevation, whose lists and ranges GetFeatureInfo answers level by level (a vertical
    profile; GetMap draws one level and refuses them), and 0 for the others, which take one
    value everywhere.
    """
    for dimension in run_dimensions(catalog, layer, run):
        several = "1" if dimension.name == "elevation" else "0"
        attrs = {"name": dimension.name, "units": dimension.units, "multipleValues": several,
                 "nearestValue": "0"}
        if dimension.name == "elevation":
            attrs["unitSymbol"] = dimension.units
        if dimension.default is not None:
            attrs["default"] = f"{dimension.default:g}"
        _text(node, "Dimension", dimension.listing(), **attrs)



def _style(node: ET.Element, layer: Layer, style: Style, units: str, url: str,
           name: str | None = None) -> None:
    element = _child(node, "Style")
    _text(element, "Name", style.name)
    _text(element, "Title", style.title)
    width, height = legend_size(style, units)
    legend = _child(element, "LegendURL", {"width": str(width), "height": str(height)})
    _text(legend, "Format", "image/png")
    query = urlencode({"service": "WMS", "request": "GetLegendGraphic", "version": "1.3.0",
                       "layer": name or layer.id, "style": style.name,
                       "format": "image/png"})
    _link(legend, f"{url}?{query}")


def _projected_box(lonlat: tuple[float, float, float, float],
                   crs: str) -> tuple[float, float, float, float]:
    """The bbox of a lon/lat box in ``crs``, in that CRS's WMS 1.3.0 axis order."""
    west, south, east, north = lonlat
    return _in_axis_order(transformer("EPSG:4326", crs).transform_bounds(west, south, east, north),
                          crs)


def _in_axis_order(box: tuple[float, float, float, float],
                   crs: str) -> tuple[float, float, float, float]:
    """An x-first box in ``crs``'s WMS 1.3.0 axis order."""
    minx, miny, maxx, maxy = box
    return (miny, minx, maxy, maxx) if north_first(crs) else (minx, miny, maxx, maxy)
