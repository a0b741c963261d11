"""The render pipeline: select → regrid → colour → contours → encode, one typed value in."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fewsmap.catalog.styles import Style
from fewsmap.render.colour import Palette, palette_for
from fewsmap.render.contours import composite, contour_levels, contour_overlay
from fewsmap.render.encode import jpeg, png_palette, png_rgba, uv_tiff
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
    return render_maps([spec])


def render_maps(specs: list[MapSpec], image_format: str = "image/png") -> bytes:
    """Draw one map, or several layers on top of each other (a named layer group).

    PNG: one transparent layer without contours is a palette PNG, anything else RGBA.
    JPEG: drawn over the background. The first spec's background settings apply.
    """
    drawn = [_draw(spec) for spec in specs]
    first = specs[0]
    palette_png = image_format == "image/png" and first.transparent
    if len(drawn) == 1 and not first.show_contours and palette_png:
        indices, palette, _ = drawn[0]
        return png_palette(indices, palette.lut)
    rgba = np.zeros((first.canvas.height, first.canvas.width, 4), dtype=np.uint8)
    for spec, (indices, palette, window) in zip(specs, drawn, strict=True):
        rgba = composite(rgba, palette.rgba(indices))
        if spec.show_contours:
            levels = contour_levels(spec.style.contour_levels, palette.value_range)
            rgba = composite(rgba, contour_overlay(window, spec.canvas, levels))
    if not first.transparent:
        background = np.empty_like(rgba)
        background[..., :3] = first.bgcolor
        background[..., 3] = 255
        rgba = composite(background, rgba)
    return jpeg(rgba) if image_format == "image/jpeg" else png_rgba(rgba)


def _draw(spec: MapSpec) -> tuple[np.ndarray, Palette, SourceWindow | None]:
    """Read, regrid and colour one layer: palette indices, the palette, the source cells."""
    windows = read_windows(spec)
    window = windows[0] if len(windows) == 1 else _speed(windows)
    field = regrid(window, spec.canvas)
    palette = palette_for(spec.style, spec.color_range, run_range(spec.run, spec.variables))
    return palette.indices(field), palette, window


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
