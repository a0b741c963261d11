"""GetStyles (SLD 1.0 WMS profile): a layer's styles as an SLD 1.0.0 document.

Each style becomes a UserStyle with one RasterSymbolizer whose ColorMap colours values as
the service does, so the document drawn back as SLD_BODY (fewsmap/ogc/sld.py) gives the
same map: class breaks (a colour from each ``lowerValue`` up) become GeoServer intervals
(a colour below each quantity), continuous colour maps a ramp through the legend's entries
over the colour range the latest run is drawn with, SLD ColorMaps themselves.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from fewsmap.catalog import Catalog, Style
from fewsmap.catalog.sld import SLD_NS
from fewsmap.catalog.styles import FLOAT32_MAX, ColorMapEntry
from fewsmap.errors import InvalidParameterValue
from fewsmap.ogc.xmlsafe import xml_safe
from fewsmap.params import Params
from fewsmap.render.colour import palette_for
from fewsmap.render.legend import legend_entries, ramp_entries
from fewsmap.resolve.legends import drawn_range

MEDIA_TYPE = "application/vnd.ogc.sld+xml"


def get_styles(catalog: Catalog, params: Params) -> tuple[bytes, str]:
    """The styles of each layer of LAYERS as one StyledLayerDescriptor.

    Raises
    ------
    FewsmapError
        MissingParameterValue without LAYERS, LayerNotDefined for an unknown layer,
        InvalidParameterValue for an SLD_VERSION other than 1.0.0.
    """
    version = (params.get("sld_version") or "1.0.0").strip()
    if version != "1.0.0":
        raise InvalidParameterValue(f"SLD_VERSION={version[:20]!r}; offered: 1.0.0")
    # SLD is the default namespace, declared on the root: registering a prefix with
    # ElementTree would change every other document it writes (capabilities).
    root = ET.Element("StyledLayerDescriptor", {"xmlns": SLD_NS, "version": "1.0.0"})
    for name in (n.strip() for n in params.require("layers").split(",")):
        layer, _ = catalog.resolve(name)
        named = ET.SubElement(root, "NamedLayer")
        _text(named, "Name", name)
        runs = catalog.runs(layer)
        for style in layer.styles:
            data_range = drawn_range(catalog, layer, runs[-1], style, None, None, None,
                                     None) if runs else None
            entries = style_color_map(style, data_range)
            if entries:
                _user_style(named, style, style is layer.default_style, entries)
    ET.indent(root)
    body = ET.tostring(root, encoding="unicode")
    return f'<?xml version="1.0" encoding="UTF-8"?>\n{body}\n'.encode(), MEDIA_TYPE


def style_color_map(style: Style, data_range: tuple[float, float] | None
                      ) -> tuple[str, tuple[ColorMapEntry, ...]] | None:
    """The ColorMap type and entries drawing as ``style`` does (None: a continuous style
    without a known range, which no ColorMap can pin down)."""
    if style.kind == "color_map":
        return style.color_map_type, style.color_map
    if style.kind == "continuous" and not (style.value_range or data_range):
        return None
    palette = palette_for(style, None, data_range)
    rows = ramp_entries(palette) if style.kind == "continuous" else legend_entries(palette)
    if style.kind == "continuous":
        return "ramp", tuple(ColorMapEntry(r["lowerValue"], r["color"], 1.0, r["label"])
                             for r in rows)
    # Intervals colour below each quantity: nothing below the first break, each class up
    # to the next break, the last one up to the largest float32.
    uppers = [r["lowerValue"] for r in rows[1:]] + [FLOAT32_MAX]
    first = ColorMapEntry(rows[0]["lowerValue"], "#000000", 0.0, "")
    return "intervals", (first, *(ColorMapEntry(upper, r["color"], 1.0, r["label"])
                                  for upper, r in zip(uppers, rows, strict=True)))


def _user_style(parent: ET.Element, style: Style, default: bool,
                color_map: tuple[str, tuple[ColorMapEntry, ...]]) -> None:
    user = ET.SubElement(parent, "UserStyle")
    _text(user, "Name", style.name)
    _text(user, "Title", style.title)
    if default:
        _text(user, "IsDefault", "1")
    rule = ET.SubElement(ET.SubElement(user, "FeatureTypeStyle"), "Rule")
    symbolizer = ET.SubElement(rule, "RasterSymbolizer")
    if style.opacity != 1.0:
        _text(symbolizer, "Opacity", f"{style.opacity:g}")
    kind, entries = color_map
    colours = ET.SubElement(symbolizer, "ColorMap", {"type": kind})
    for entry in entries:
        attributes = {"color": entry.color, "quantity": repr(float(entry.quantity))}
        if entry.opacity != 1.0:
            attributes["opacity"] = f"{entry.opacity:g}"
        if entry.label:
            attributes["label"] = xml_safe(entry.label)
        ET.SubElement(colours, "ColorMapEntry", attributes)


def _text(parent: ET.Element, tag: str, text: str) -> None:
    ET.SubElement(parent, tag).text = xml_safe(text)

