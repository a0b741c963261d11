"""GetLegendGraphic: PNG or FEWS JSON, from the same palette GetMap colours with."""

from __future__ import annotations

from typing import Any

from fewsmap.catalog import Catalog
from fewsmap.errors import InvalidFormat, InvalidParameterValue
from fewsmap.formats.media import PNG
from fewsmap.ogc.getmap import (
    client_style,
    image_size,
    parse_color_range,
    parse_member,
    parse_reference_time,
)
from fewsmap.params import Params
from fewsmap.products.accumulate import parse_window
from fewsmap.products.change import parse_baseline
from fewsmap.render.legend import legend_image, legend_json, legend_png, stacked_legends_png
from fewsmap.resolve.legends import Legend, LegendRequest, resolve_legends

JSON = "application/json"


def get_legend_graphic(catalog: Catalog, params: Params,
                       max_pixels: int) -> tuple[bytes | dict[str, Any], str]:
    """Return the legend (PNG bytes or a JSON-ready dict) and its media type.

    The legend of a layer group holds its layers' legends in drawing order (bottom layer
    first): stacked in a PNG (each under its title), listed under ``layers`` in JSON. With
    ``showContours=true`` a legend shows the contour levels GetMap draws.

    Raises
    ------
    FewsmapError
        LayerNotDefined, StyleNotDefined, InvalidFormat, InvalidParameterValue (also for
        WIDTH×HEIGHT beyond ``max_pixels``, as GetMap).
    """
    request = parse_legend(params)
    image_format = (params.get("format") or PNG).strip().lower()
    if image_format not in (PNG, JSON):
        raise InvalidFormat(f"FORMAT={image_format[:60]!r} is not offered for legends; "
                            f"offered: {PNG}, {JSON}")
    legends, group = resolve_legends(catalog, request)
    if group:
        return group_legend(legends, image_format, params, max_pixels)
    [legend] = legends
    if image_format == JSON:
        return legend_json(legend.palette, legend.text), JSON
    width, height = image_size(params, max_pixels, legend.size)
    return legend_png(legend.palette, legend.text, width, height), PNG


def parse_legend(params: Params) -> LegendRequest:
    """Read GetLegendGraphic's parameters (and GetMap's that change the legend).

    Raises
    ------
    FewsmapError
        InvalidParameterValue for a malformed value.
    """
    name, style_name, sld_style = client_style(
        params, params.get("layer") or params.get("layers") or "",
        (params.get("style") or params.get("styles") or "").strip())
    return LegendRequest(
        name, style_name, sld_style, parse_member(params),
        params.flag("useDisplayUnits", default=True), parse_reference_time(params),
        parse_color_range(params.get("colorscalerange")),
        parse_window(params.get("accumulate")), parse_baseline(params.get("baseline")),
        params.flag("showContours"))


def group_legend(legends: list[Legend], image_format: str, params: Params,
                 max_pixels: int) -> tuple[bytes | dict[str, Any], str]:
    """A group's legend: its layers' legends listed (JSON) or stacked under their titles
    (PNG; WIDTH and HEIGHT size each layer's part).

    Raises
    ------
    InvalidParameterValue
        If the parts together exceed ``max_pixels``.
    """
    if image_format == JSON:
        return {"layers": [{"layer": legend.layer.id, "title": legend.layer.title,
                            **legend_json(legend.palette, legend.text)}
                           for legend in legends]}, JSON
    sizes = [image_size(params, max_pixels, legend.size) for legend in legends]
    total = sum(width * height for width, height in sizes)
    if total > max_pixels:
        raise InvalidParameterValue(f"the legends of the group's {len(legends)} layers take "
                                    f"{total} pixels, beyond the limit of {max_pixels}")
    return stacked_legends_png([
        legend_image(legend.palette, legend.text, width, height)
        for legend, (width, height) in zip(legends, sizes, strict=True)]), PNG
