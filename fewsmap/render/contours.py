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
# Labels sit where lines cross the middle column of each 256-pixel cell of a lattice fixed
# in map coordinates (at the image's resolution): a tile is one cell, so adjacent tiles and
# one map covering them place the same labels (no seams), a label never straddles a tile
# edge, and each tile gets at most one label per level, nearest its middle row.
# (matplotlib's clabel labels every line of the image on its own: a busy 256-pixel tile
# took 1.3 s against 0.14 s unlabelled, and tiles disagreed with the map covering them.)
LABEL_CELL_PX = 256
MAX_LABELS_PER_CELL = 6
LABEL_MARGIN_PX = 20  # from a cell's top and bottom: a label there would be cut
LABEL_GAP_PX = 14  # between labels of one cell


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
    """Choose where to label contour lines: where they cross the label lattice.

    In each `LABEL_CELL_PX` cell of a lattice fixed in canvas coordinates (origin 0, at
    the canvas resolution), each level is labelled at most once, where a line crosses the
    cell's middle column nearest its middle row (not within `LABEL_MARGIN_PX` of its top
    or bottom); at most `MAX_LABELS_PER_CELL`, `LABEL_GAP_PX` apart. Only the geometry of
    the lines decides, never the image's extent, so tiles agree with a map covering them.

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
        90), cell by cell.
    """
    minx, miny, maxx, maxy = canvas.bbox
    cell = np.array([(maxx - minx) / canvas.width, (maxy - miny) / canvas.height]) \
        * LABEL_CELL_PX
    margin = LABEL_MARGIN_PX / LABEL_CELL_PX
    best: dict[tuple[int, int, int], tuple[float, tuple[int, float, float, float]]] = {}
    for level, lines in enumerate(lines_per_level):
        for line in lines:
            for column, row, offset, place in _crossings(level, line, cell):
                if margin <= offset <= 1 - margin:
                    key = (column, row, level)
                    nearness = abs(offset - 0.5)
                    if key not in best or nearness < best[key][0]:
                        best[key] = (nearness, place)
    per_cell: dict[tuple[int, int], list[tuple[float, tuple[int, float, float, float]]]] = {}
    for (column, row, _), chosen in sorted(best.items()):
        per_cell.setdefault((column, row), []).append(chosen)
    places = []
    for candidates in per_cell.values():
        kept: list[tuple[int, float, float, float]] = []
        for _, place in sorted(candidates):
            apart = all(abs(place[2] - other[2]) / cell[1] * LABEL_CELL_PX >= LABEL_GAP_PX
                        for other in kept)
            if apart and len(kept) < MAX_LABELS_PER_CELL:
                kept.append(place)
        places += kept
    return places


def _crossings(level: int, line: np.ndarray, cell: np.ndarray
               ) -> list[tuple[int, int, float, tuple[int, float, float, float]]]:
    """Where ``line`` crosses the middle columns of lattice cells of size ``cell``:
    (column, row, height within the cell 0..1, (level, x, y, upright angle))."""
    if len(line) < 2:
        return []
    start, end = line[:-1], line[1:]
    column_start = np.floor(start[:, 0] / cell[0] - 0.5)
    column_end = np.floor(end[:, 0] / cell[0] - 0.5)
    found = []
    for i in np.flatnonzero(column_start != column_end):
        column = int(max(column_start[i], column_end[i]))
        x = (column + 0.5) * cell[0]
        fraction = (x - start[i, 0]) / (end[i, 0] - start[i, 0])
        y = start[i, 1] + fraction * (end[i, 1] - start[i, 1])
        row = int(np.floor(y / cell[1]))
        dx, dy = (end[i] - start[i]) / cell
        degrees = 90 - (90 - float(np.degrees(np.arctan2(dy, dx)))) % 180
        found.append((column, row, float(y / cell[1] - row), (level, float(x), float(y),
                                                              degrees)))
    return found


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
