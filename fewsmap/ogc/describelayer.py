"""DescribeLayer (SLD 1.0 WMS profile): what kind of data each requested layer draws.

Every fewsmap layer is a coverage (a forecast grid), and no WFS or WCS describes it, so each
``LayerDescription`` names the layer and its coverage (``Query typeName``) without an
``owsType``/``owsURL``, which the WMS 1.1.1 DTD allows ("none"). GeoServer answers this
``WMS_DescribeLayerResponse`` document for WMS 1.3.0 requests as well; SLD 1.1's
``DescribeLayerResponse`` cannot be used, since its schema requires a WFS or WCS address
for every layer. JSON follows GeoServer's ``outputFormat=application/json``.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

from fewsmap.catalog import Catalog
from fewsmap.errors import InvalidFormat
from fewsmap.ogc.xmlsafe import xml_safe
from fewsmap.params import Params

XML_FORMATS = ("text/xml", "application/vnd.ogc.wms_xml")
JSON_FORMAT = "application/json"
DOCTYPE = ('<!DOCTYPE WMS_DescribeLayerResponse SYSTEM '
           '"http://schemas.opengis.net/wms/1.1.1/WMS_DescribeLayerResponse.dtd">\n')
# The DTD fixes the document's version (it is the response format's, not the request's).
RESPONSE_VERSION = "1.1.1"


def describe_layer(catalog: Catalog, params: Params) -> tuple[bytes | dict[str, Any], str]:
    """Describe each layer of LAYERS (a group: each of its layers), as XML or JSON.

    Raises
    ------
    FewsmapError
        MissingParameterValue without LAYERS, LayerNotDefined for an unknown one,
        InvalidFormat for an OUTPUTFORMAT other than XML or JSON.
    """
    names = [name.strip() for name in params.require("layers").split(",")]
    layers = [layer for name in names for layer in _layer_names(catalog, name)]
    output = (params.get("outputformat") or params.get("format") or "text/xml").strip().lower()
    if output == JSON_FORMAT:
        return {"version": RESPONSE_VERSION, "layerDescriptions": [
            {"layerName": layer, "typeName": layer} for layer in layers]}, JSON_FORMAT
    if output not in XML_FORMATS:
        raise InvalidFormat(f"OUTPUTFORMAT={output[:60]!r} is not offered for DescribeLayer; "
                            f"offered: {', '.join((*XML_FORMATS, JSON_FORMAT))}")
    root = ET.Element("WMS_DescribeLayerResponse", {"version": RESPONSE_VERSION})
    for layer in layers:
        description = ET.SubElement(root, "LayerDescription", {"name": xml_safe(layer)})
        ET.SubElement(description, "Query", {"typeName": xml_safe(layer)})
    ET.indent(root)
    body = ET.tostring(root, encoding="unicode")
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n{DOCTYPE}{body}\n').encode(), output


def _layer_names(catalog: Catalog, name: str) -> list[str]:
    """The layer a name means (checked), or the layers of a group (GeoServer expands
    groups)."""
    if name not in catalog.layers and name in catalog.groups:
        return [layer.id for layer in catalog.layers.values() if layer.group == name]
    catalog.resolve(name)  # LayerNotDefined for a name the catalog does not know
    return [name]
