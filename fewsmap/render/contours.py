"""Contour lines over the regridded field, drawn by matplotlib at exact pixel size, labelled
with their levels in the format of the legend (fewsmap/render/labels.py)."""

from __future__ import annotations

import numpy as np
from matplotlib import patheffects
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from fewsmap.catalog.styles import Style
from fewsmap.render.colour import Palette
from fewsmap.render.labels import format_labels, round_levels
from fewsmap.render.regrid import Canvas, SourceWindow

LINE_COLOR = (0.1, 0.1, 0.1, 0.9)
LINE_WIDTH_PX = 1.0
# Label text about 9 px high whatever the image size (a tile is 256 px): points at 100 dpi.
LABEL_SIZE_PT = 9 * 72 / 100
# A label is written on its line over a halo of the background colour, the cartographers'
# way of keeping it readable over lines and colours alike.
LABEL_HALO = [patheffects.withStroke(linewidth=2.5, foreground=(1.0, 1.0, 1.0, 0.85))]
# Labels on one image: on the longest lines, a few per level (matplotlib's clabel labels
# every line: a second for a busy 256-pixel tile on our machine, against 0.1 s unlabelled).
MAX_LABELS = 8
MAX_LABELS_PER_LEVEL = 2
# A line shorter than this on the image (or within this of its edge) is not labelled.
MIN_LABELLED_PX = 60
LABEL_MARGIN_PX = 12


def contour_levels(style: Style, palette: Palette, data_low: float | None) -> np.ndarray:
    """Return the levels a map in ``style`` is contoured at.

    The style's configured levels, else its class breaks as drawn (re-spread by
    COLORSCALERANGE) or ColorMap quantities, else round values across the colour range
    (the values its legend shows). A field bounded by zero (its lowest class break is 0, or
    its data are never negative: precipitation, cloud cover) gets no contour at 0 or below,
    which would ring every cell with any of it.

    Parameters
    ----------
    style
        The style the map is drawn in.
    palette
        That style resolved against the map's colour range.
    data_low
        The lowest value of the field (the run's statistics), if known.

    Returns
    -------
    numpy.ndarray
        Ascending float64 levels.
    """
    if style.contour_levels:
        levels = np.asarray(style.contour_levels, dtype="float64")
    elif style.kind == "classes":
        levels = palette.lower_values.astype("float64")
    elif style.kind == "color_map":
        levels = np.asarray([entry.quantity for entry in style.color_map], dtype="float64")
    else:
        levels = round_levels(*palette.value_range)
    lowest_break = style.breaks[0] if style.kind == "classes" else None
    if lowest_break == 0 or (data_low is not None and data_low >= 0):
        levels = levels[levels > 0]
    return levels


def contour_overlay(window: SourceWindow | None, canvas: Canvas, levels: np.ndarray,
                    labels: bool = True) -> np.ndarray:
    """Draw contour lines as an RGBA (H, W, 4) uint8 overlay of the canvas.

    Lines are traced on the source cells (in canvas coordinates), not on the resampled
    pixels: they are smooth at any zoom, and continue across the edges of adjacent tiles
    because the window extends a cell beyond the canvas. ``labels`` writes each line's
    level on it (matplotlib's clabel, inline), where the line is long enough to hold it.
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
                lines = axes.contour(x, y, values, levels=inside, colors=[LINE_COLOR],
                                     linewidths=LINE_WIDTH_PX, antialiased=True)
                if labels:
                    texts = format_labels(inside)
                    for level, x_label, y_label, degrees in label_places(lines.allsegs, canvas):
                        axes.text(x_label, y_label, texts[level], fontsize=LABEL_SIZE_PT,
                                  color=LINE_COLOR, rotation=degrees, rotation_mode="anchor",
                                  ha="center", va="center", path_effects=LABEL_HALO)
    agg.draw()  # type: ignore[no-untyped-call]
    return np.asarray(agg.buffer_rgba(), dtype=np.uint8).copy()  # type: ignore[no-untyped-call]


def label_places(lines_per_level: list[list[np.ndarray]],
                 canvas: Canvas) -> list[tuple[int, float, float, float]]:
    """Choose where to label contour lines: the middle of the longest lines on the image.

    At most `MAX_LABELS_PER_LEVEL` per level and `MAX_LABELS` in all, on lines at least
    `MIN_LABELLED_PX` long within `LABEL_MARGIN_PX` of the image edges (a label there
    would be cut).

    Parameters
    ----------
    lines_per_level
        For each level, its lines as (N, 2) vertex arrays in canvas coordinates.
    canvas
        The image they are drawn on.

    Returns
    -------
    list of tuple
        (level index, x, y, angle of the line there in degrees, upright: over -90 up to
        90), longest
        lines first.
    """
    minx, miny, maxx, maxy = canvas.bbox
    scale = np.array([canvas.width / (maxx - minx), canvas.height / (maxy - miny)])
    low = np.array([minx, miny]) + LABEL_MARGIN_PX / scale
    high = np.array([maxx, maxy]) - LABEL_MARGIN_PX / scale
    chosen: list[tuple[float, tuple[int, float, float, float]]] = []
    for level, lines in enumerate(lines_per_level):
        ranked = []
        for line in lines:
            shown = line[((line > low) & (line < high)).all(axis=1)]
            if len(shown) < 3:
                continue
            steps = np.diff(shown, axis=0) * scale
            length = float(np.hypot(*steps.T).sum())
            if length >= MIN_LABELLED_PX:
                middle = len(shown) // 2
                dx, dy = (shown[middle + 1] - shown[middle - 1]) * scale
                degrees = 90 - (90 - float(np.degrees(np.arctan2(dy, dx)))) % 180
                ranked.append((length, (level, float(shown[middle, 0]),
                                        float(shown[middle, 1]), degrees)))
        chosen += sorted(ranked, reverse=True)[:MAX_LABELS_PER_LEVEL]
    return [place for _, place in sorted(chosen, reverse=True)[:MAX_LABELS]]


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
