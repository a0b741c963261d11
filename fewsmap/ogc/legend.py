"""GetLegendGraphic: PNG or FEWS JSON, from the same palette GetMap colours with."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from fewsmap.catalog import Catalog, Layer, Style
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
from fewsmap.products.change import Baseline, parse_baseline, select_baseline
from fewsmap.products.ensemble import EnsembleStatistic
from fewsmap.render.colour import Palette, palette_for
from fewsmap.render.contours import contour_levels
from fewsmap.render.legend import (
    LegendText,
    legend_image,
    legend_json,
    legend_png,
    legend_size,
    stacked_legends_png,
)
from fewsmap.render.pipeline import automatic_range
from fewsmap.resolve.layers import resolve_layer
from fewsmap.resolve.maps import check_group_style, group_layers, select_run, statistic_style
from fewsmap.store.cube import RunInfo

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
    name, style_name, sld_style = client_style(
        params, params.get("layer") or params.get("layers") or "",
        (params.get("style") or params.get("styles") or "").strip())
    member = parse_member(params)  # an exceedance probability has a legend in %
    image_format = (params.get("format") or PNG).strip().lower()
    if image_format not in (PNG, JSON):
        raise InvalidFormat(f"FORMAT={image_format[:60]!r} is not offered for legends; "
                            f"offered: {PNG}, {JSON}")
    if name not in catalog.layers and name in catalog.groups:
        check_group_style(name, style_name, sld_style)
        display = params.flag("useDisplayUnits", default=True)
        legends = [layer_legend(catalog, params, layer, None,
                                statistic_style(layer, "", member, display))
                   for layer in group_layers(catalog, name)]
        return group_legend(legends, image_format, params, max_pixels)
    layer, run_from_id, derived = resolve_layer(catalog, name)
    baseline = parse_baseline(params.get("baseline")) or derived
    legend = layer_legend(catalog, params, layer, run_from_id, sld_style or statistic_style(
        layer, style_name, member, params.flag("useDisplayUnits", default=True),
        change=baseline is not None), baseline)
    if image_format == JSON:
        return legend_json(legend.palette, legend.text), JSON
    width, height = image_size(params, max_pixels, legend.size)
    return legend_png(legend.palette, legend.text, width, height), PNG


@dataclass(frozen=True)
class Legend:
    """What one layer's legend shows: the palette its map colours with, and its text
    (title, units, contour levels)."""

    layer: Layer
    palette: Palette
    text: LegendText

    @property
    def size(self) -> tuple[int, int]:
        """The default image size (`legend_size`)."""
        return legend_size(self.palette.style, self.text.units, bool(self.text.contours.size))


def layer_legend(catalog: Catalog, params: Params, layer: Layer, run_from_id: RunInfo | None,
                 style: Style, baseline: Baseline | None = None) -> Legend:
    """The legend of ``layer`` in ``style``, for the run GetMap draws with the same
    parameters, whose statistics give the colour range (of an accumulation's sums, and of
    the change from ``baseline``, as GetMap's `fewsmap.render.pipeline.value_range`)."""
    run = select_run(catalog, layer, run_from_id, parse_reference_time(params)) \
        if catalog.runs(layer) else None
    asked = parse_color_range(params.get("colorscalerange"))
    automatic = None if run is None else drawn_range(catalog, layer, run, style, params,
                                                     parse_member(params), baseline)
    palette = palette_for(style, asked, automatic)
    stored_units = str(catalog.store(layer).attributes(layer.variable).get("units", ""))
    units = style.units or stored_units
    contours = contour_levels(style, palette, automatic[0] if automatic else None) \
        if params.flag("showContours") else np.empty(0)
    title = legend_title(legend_title(layer.title, units), stored_units)
    return Legend(layer, palette, LegendText(title, units, contours))


def legend_title(title: str, units: str) -> str:
    """A layer's title as a legend's: without the ``[units]`` its end may repeat (zero-config
    titles end so), which the units row shows in UDUNITS form."""
    suffix = f" [{units}]"
    return title.removesuffix(suffix) if units and title != suffix.strip() else title


def drawn_range(catalog: Catalog, layer: Layer, run: RunInfo, style: Style, params: Params,
                member: object, baseline: Baseline | None) -> tuple[float, float] | None:
    """The automatic colour range of what GetMap draws of ``layer`` in ``run`` with the same
    parameters (`fewsmap.render.pipeline.automatic_range`): a statistic's, an
    accumulation's sums, a change from ``baseline``.

    Raises
    ------
    InvalidDimensionValue
        For a baseline the layer has no run of.
    """
    base = None if baseline is None else select_baseline(catalog.runs(layer), run, baseline,
                                                         layer.id)
    return automatic_range(catalog.store(layer), run, layer.variables, style,
                           parse_color_range(params.get("colorscalerange")),
                           member if isinstance(member, EnsembleStatistic) else None,
                           parse_window(params.get("accumulate")), base)


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
