"""A legend request resolved: the run GetMap would draw, its colour range, the palette and
the text (title, units, contour levels) of each layer's legend.

`fewsmap.ogc.legend` parses GetLegendGraphic into a `LegendRequest` and encodes the
`Legend` (PNG or FEWS JSON); TileJSON takes its colour range from `drawn_range`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fewsmap.catalog import Catalog, Layer, Style
from fewsmap.catalog.styles import ColorRange
from fewsmap.products.change import Baseline, select_baseline
from fewsmap.products.ensemble import EnsembleStatistic
from fewsmap.render.colour import Palette, palette_for
from fewsmap.render.contours import contour_levels
from fewsmap.render.legend import LegendText, legend_size
from fewsmap.render.pipeline import automatic_range
from fewsmap.resolve.layers import resolve_layer
from fewsmap.resolve.maps import check_group_style, group_layers, select_run, statistic_style
from fewsmap.resolve.units import shown_units
from fewsmap.store.cube import RunInfo


@dataclass(frozen=True)
class LegendRequest:
    """A legend as asked, whatever the protocol: a layer or group, its style, and what
    makes the map it explains (run, member, sums, change, colour range, contours)."""

    name: str
    style_name: str = ""
    sld_style: Style | None = None
    member: int | EnsembleStatistic | None = None  # a probability has a legend in %
    display_units: bool = True  # FEWS useDisplayUnits
    reference_time: np.datetime64 | None = None  # the run (None: as the layer id, or latest)
    color_range: ColorRange = None
    accumulate: np.timedelta64 | None = None
    baseline: Baseline | None = None
    show_contours: bool = False


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


def resolve_legends(catalog: Catalog, request: LegendRequest) -> tuple[list[Legend], bool]:
    """The legends a request asks for, and whether they are a group's (each of its layers'
    legend in drawing order, bottom layer first).

    Raises
    ------
    FewsmapError
        LayerNotDefined, StyleNotDefined, InvalidDimensionValue (a baseline without a run).
    """
    name = request.name
    if name not in catalog.layers and name in catalog.groups:
        check_group_style(name, request.style_name, request.sld_style)
        return [layer_legend(catalog, request, layer, None, statistic_style(
            layer, "", request.member, request.display_units))
            for layer in group_layers(catalog, name)], True
    layer, run_from_id, derived = resolve_layer(catalog, name)
    baseline = request.baseline or derived
    style = request.sld_style or statistic_style(
        layer, request.style_name, request.member, request.display_units,
        change=baseline is not None)
    return [layer_legend(catalog, request, layer, run_from_id, style, baseline)], False


def layer_legend(catalog: Catalog, request: LegendRequest, layer: Layer,
                 run_from_id: RunInfo | None, style: Style,
                 baseline: Baseline | None = None) -> Legend:
    """The legend of ``layer`` in ``style``, for the run GetMap draws with the same
    parameters, whose statistics give the colour range (of an accumulation's sums, and of
    the change from ``baseline``, as GetMap's `fewsmap.render.pipeline.value_range`)."""
    run = select_run(catalog, layer, run_from_id, request.reference_time) \
        if catalog.runs(layer) else None
    automatic = None if run is None else drawn_range(
        catalog, layer, run, style, request.color_range, request.member, request.accumulate,
        baseline)
    palette = palette_for(style, request.color_range, automatic)
    stored_units = str(catalog.store(layer).attributes(layer.variable).get("units", ""))
    # A style without units of its own (a change's) shows what the map's numbers are in,
    # as charts and GetFeatureInfo say them: a change of a K layer in degC.
    units = style.units or shown_units(
        catalog.store(layer), layer, request.member if isinstance(
            request.member, EnsembleStatistic) else None, request.display_units,
        baseline is not None).units
    contours = contour_levels(style, palette, automatic[0] if automatic else None) \
        if request.show_contours else np.empty(0)
    title = legend_title(legend_title(layer.title, units), stored_units)
    return Legend(layer, palette, LegendText(title, units, contours))


def legend_title(title: str, units: str) -> str:
    """A layer's title as a legend's: without the ``[units]`` its end may repeat (zero-config
    titles end so), which the units row shows in UDUNITS form."""
    suffix = f" [{units}]"
    return title.removesuffix(suffix) if units and title != suffix.strip() else title


def drawn_range(catalog: Catalog, layer: Layer, run: RunInfo, style: Style,
                color_range: ColorRange, member: object, accumulate: np.timedelta64 | None,
                baseline: Baseline | None) -> tuple[float, float] | None:
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
    return automatic_range(catalog.store(layer), run, layer.variables, style, color_range,
                           member if isinstance(member, EnsembleStatistic) else None,
                           accumulate, base)
