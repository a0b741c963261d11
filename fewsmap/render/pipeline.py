"""The render pipeline: select → regrid → colour → contours → encode, one typed value in."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fewsmap.catalog.styles import Style
from fewsmap.render.colour import palette_for
from fewsmap.render.contours import composite, contour_levels, contour_overlay
from fewsmap.render.encode import png_palette, png_rgba
from fewsmap.render.regrid import Canvas, read_window, regrid
from fewsmap.store.cube import ForecastStore, RunInfo


@dataclass(frozen=True, eq=False)
class MapSpec:
    """Everything needed to draw one map; built by the protocol layer from a request.

    ``labels`` gives the store index along every dimension between ``step`` and the grid
    (members, levels), in the variable's dimension order.
    """

    store: ForecastStore
    variable: str
    run: RunInfo
    valid_time: np.datetime64
    labels: tuple[int, ...]
    canvas: Canvas
    style: Style
    color_range: tuple[float, float] | None = None
    show_contours: bool = False
    transparent: bool = True
    bgcolor: tuple[int, int, int] = (255, 255, 255)


def run_range(run: RunInfo, variable: str) -> tuple[float, float] | None:
    """The variable's value range over the whole run (computed at ingest): no tile seams."""
    stats = run.statistics.get(variable, {})
    low, high = stats.get("min"), stats.get("max")
    return (float(low), float(high)) if low is not None and high is not None else None


def render_map(spec: MapSpec) -> bytes:
    """Draw the map described by ``spec`` as PNG bytes (deterministic for equal specs)."""
    where = np.flatnonzero(spec.run.valid_times == spec.valid_time)
    step = int(spec.run.step_slots[where[0]])
    window = read_window(spec.store, spec.variable, (spec.run.slot, step, *spec.labels),
                         spec.canvas)
    field = regrid(window, spec.canvas)
    palette = palette_for(spec.style, spec.color_range, run_range(spec.run, spec.variable))
    indices = palette.indices(field)
    if not spec.show_contours and spec.transparent:
        return png_palette(indices, palette.lut)
    rgba = palette.rgba(indices)
    if spec.show_contours:
        levels = contour_levels(spec.style.contour_levels, palette.value_range)
        rgba = composite(rgba, contour_overlay(window, spec.canvas, levels))
    if not spec.transparent:
        background = np.empty_like(rgba)
        background[..., :3] = spec.bgcolor
        background[..., 3] = 255
        rgba = composite(background, rgba)
    return png_rgba(rgba)
