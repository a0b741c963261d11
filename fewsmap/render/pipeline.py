"""The render pipeline: select → regrid → colour → contours → encode, one typed value in."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fewsmap.catalog.styles import Style
from fewsmap.render.colour import palette_for
from fewsmap.render.contours import composite, contour_levels, contour_overlay
from fewsmap.render.encode import png_palette, png_rgba, uv_tiff
from fewsmap.render.regrid import Canvas, SourceWindow, read_window, regrid
from fewsmap.store.cube import ForecastStore, RunInfo


@dataclass(frozen=True, eq=False)
class MapSpec:
    """Everything needed to draw one map; built by the protocol layer from a request.

    ``labels`` gives the store index along every dimension between ``step`` and the grid
    (members, levels), in the variable's dimension order.
    """

    store: ForecastStore
    variables: tuple[str, ...]  # one scalar, or the (u, v) components of a vector
    run: RunInfo
    valid_time: np.datetime64
    labels: tuple[int, ...]
    canvas: Canvas
    style: Style
    color_range: tuple[float, float] | None = None
    show_contours: bool = False
    transparent: bool = True
    bgcolor: tuple[int, int, int] = (255, 255, 255)


def run_range(run: RunInfo, variables: tuple[str, ...]) -> tuple[float, float] | None:
    """The value range over the whole run (computed at ingest), so tiles have no seams.

    For a vector, the speed range: 0 up to the largest speed the components allow.
    """
    ranges = []
    for variable in variables:
        stats = run.statistics.get(variable, {})
        low, high = stats.get("min"), stats.get("max")
        if low is None or high is None:
            return None
        ranges.append((float(low), float(high)))
    if len(ranges) == 1:
        return ranges[0]
    largest = [max(abs(low), abs(high)) for low, high in ranges]
    return 0.0, float(np.sqrt(sum(c * c for c in largest)))


def read_windows(spec: MapSpec) -> list[SourceWindow | None]:
    """Read the source window of each variable of the spec (same cells for all)."""
    where = np.flatnonzero(spec.run.valid_times == spec.valid_time)
    index = (spec.run.slot, int(spec.run.step_slots[where[0]]), *spec.labels)
    return [read_window(spec.store, variable, index, spec.canvas) for variable in spec.variables]


def render_map(spec: MapSpec) -> bytes:
    """Draw the map described by ``spec`` as PNG bytes (deterministic for equal specs)."""
    windows = read_windows(spec)
    window = windows[0] if len(windows) == 1 else _speed(windows)
    field = regrid(window, spec.canvas)
    palette = palette_for(spec.style, spec.color_range, run_range(spec.run, spec.variables))
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


def render_uv_tiff(spec: MapSpec) -> bytes:
    """Encode a vector field as FEWS does: 8-bit RGBA TIFF with u in R and v in G.

    ``value = byte * scale + offset`` per component, with scale and offset in the
    ModelPixelScale and ModelTiepoint tags (re-purposed, not georeferencing); a missing
    value is R = G = 255; alpha is 0 outside the grid (reference/fews-wms-t.md §4.4).
    """
    fields = [regrid(window, spec.canvas) for window in read_windows(spec)]
    return uv_tiff(fields[0], fields[1])


def _speed(windows: list[SourceWindow | None]) -> SourceWindow | None:
    u, v = windows
    if u is None or v is None:
        return None
    return SourceWindow(np.hypot(u.values, v.values).astype(np.float32), u.x, u.y)
