"""Contour lines over the regridded field, drawn by matplotlib at exact pixel size."""

from __future__ import annotations

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from fewsmap.render.regrid import Canvas, SourceWindow

LINE_COLOR = (0.1, 0.1, 0.1, 0.9)
LINE_WIDTH_PX = 1.0


def contour_levels(configured: tuple[float, ...] | None,
                   value_range: tuple[float, float]) -> np.ndarray:
    """The style's levels, else about eight round numbers across the colour range."""
    if configured:
        return np.asarray(configured, dtype="float64")
    low, high = value_range
    return np.asarray(MaxNLocator(nbins=8).tick_values(low, high), dtype="float64")


def contour_overlay(window: SourceWindow | None, canvas: Canvas,
                    levels: np.ndarray) -> np.ndarray:
    """Draw contour lines as an RGBA (H, W, 4) uint8 overlay of the canvas.

    Lines are traced on the source cells (in canvas coordinates), not on the resampled
    pixels: they are smooth at any zoom, and continue across the edges of adjacent tiles
    because the window extends a cell beyond the canvas.
    """
    figure = Figure(figsize=(canvas.width / 100, canvas.height / 100), dpi=100)
    figure.patch.set_alpha(0)
    agg = FigureCanvasAgg(figure)
    axes = figure.add_axes((0, 0, 1, 1))
    axes.set_axis_off()
    minx, miny, maxx, maxy = canvas.bbox
    axes.set_xlim(minx, maxx)
    axes.set_ylim(miny, maxy)
    if window is not None and min(window.values.shape) >= 2:
        values = np.ma.masked_invalid(window.values)
        x, y = window.x, window.y
        if x.ndim == 2:  # curvilinear: cells whose centre has no canvas coordinates
            bad = ~(np.isfinite(x) & np.isfinite(y))
            values = np.ma.masked_where(bad, values)
            x, y = np.where(bad, np.nanmean(x), x), np.where(bad, np.nanmean(y), y)
        if values.count() > 3:
            low, high = float(values.min()), float(values.max())
            inside = levels[(levels >= low) & (levels <= high)]
            if inside.size:
                axes.contour(x, y, values, levels=inside, colors=[LINE_COLOR],
                             linewidths=LINE_WIDTH_PX, antialiased=True)
    agg.draw()  # type: ignore[no-untyped-call]
    return np.asarray(agg.buffer_rgba(), dtype=np.uint8).copy()  # type: ignore[no-untyped-call]


def composite(base: np.ndarray, overlay: np.ndarray) -> np.ndarray:
    """Alpha-composite ``overlay`` over ``base`` (both RGBA uint8, straight alpha)."""
    alpha = overlay[..., 3:4].astype(np.float32) / 255
    base_alpha = base[..., 3:4].astype(np.float32) / 255
    out_alpha = alpha + base_alpha * (1 - alpha)
    rgb = overlay[..., :3] * alpha + base[..., :3] * base_alpha * (1 - alpha)
    safe = np.where(out_alpha > 0, out_alpha, 1)
    out = np.empty_like(base)
    out[..., :3] = np.clip(np.round(rgb / safe), 0, 255)
    out[..., 3:4] = np.clip(np.round(out_alpha * 255), 0, 255)
    return out
