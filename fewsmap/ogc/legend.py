"""GetLegendGraphic: PNG or FEWS JSON, from the same palette GetMap colours with."""

from __future__ import annotations

from typing import Any

from fewsmap.catalog import Catalog
from fewsmap.errors import InvalidFormat
from fewsmap.ogc.getmap import (
    PNG,
    client_style,
    image_size,
    parse_color_range,
    parse_member,
    parse_reference_time,
    select_run,
    statistic_style,
)
from fewsmap.ogc.params import Params
from fewsmap.products.ensemble import EnsembleStatistic
from fewsmap.render.colour import palette_for
from fewsmap.render.legend import legend_json, legend_png, legend_size
from fewsmap.render.pipeline import run_range

JSON = "application/json"


def get_legend_graphic(catalog: Catalog, params: Params,
                       max_pixels: int) -> tuple[bytes | dict[str, Any], str]:
    """Return the legend (PNG bytes or a JSON-ready dict) and its media type.

    Raises
    ------
    FewsmapError
        LayerNotDefined, StyleNotDefined, InvalidFormat, InvalidParameterValue (also for
        WIDTH×HEIGHT beyond ``max_pixels``, as GetMap).
    """
    name, style_name, sld_style = client_style(
        params, params.get("layer") or params.get("layers") or "",
        (params.get("style") or params.get("styles") or "").strip())
    layer, run_from_id = catalog.resolve(name)
    member = parse_member(params)  # an exceedance probability has a legend in %
    style = sld_style or statistic_style(layer, style_name, member)
    image_format = (params.get("format") or PNG).strip().lower()
    if image_format not in (PNG, JSON):
        raise InvalidFormat(f"FORMAT={image_format[:60]!r} is not offered for legends; "
                            f"offered: {PNG}, {JSON}")
    runs = catalog.runs(layer)
    # The run GetMap draws with the same parameters: its statistics give the colour range.
    run = select_run(catalog, layer, run_from_id, parse_reference_time(params)) if runs \
        else None
    automatic = run_range(run, layer.variables) if run else None
    if isinstance(member, EnsembleStatistic):
        automatic = member.value_range(automatic)
    palette = palette_for(style, parse_color_range(params.get("colorscalerange")), automatic)
    units = style.units or str(catalog.store(layer).attributes(layer.variable).get("units", ""))
    if image_format == JSON:
        return legend_json(palette, units), JSON
    width, height = image_size(params, max_pixels, legend_size(style, units))
    return legend_png(palette, units, width, height), PNG
