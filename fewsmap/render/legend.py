"""Legends from the very palette the map uses: FEWS JSON entries and a PNG.

A legend reads like the map it explains: a title, the units in UDUNITS form, class breaks
(or round values of a continuous range) labelled in one readable format
(fewsmap/render/labels.py), and, when the map has contours, a line sample with their levels.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from fewsmap.catalog.quantities import normalise_units
from fewsmap.catalog.styles import Style
from fewsmap.render.colour import Palette
from fewsmap.render.contours import LINE_COLOR
from fewsmap.render.encode import png_image
from fewsmap.render.labels import MAX_ROUND_LEVELS, format_labels, round_levels

# A continuous colour map's legend has room for this many round values (the default height).
CONTINUOUS_ENTRIES = MAX_ROUND_LEVELS
ROW_HEIGHT_PX = 15
SWATCH_RIGHT_PX = 24
TEXT_LEFT_PX = 30
TEXT_COLOR = (0, 0, 0, 255)
CONTOUR_RGBA = tuple(round(255 * c) for c in LINE_COLOR)


@dataclass(frozen=True, eq=False)
class LegendText:
    """What a legend says besides its colours: a title, units, and the contour levels drawn
    over the map (empty: the map has no contours)."""

    title: str = ""
    units: str = ""
    contours: np.ndarray = field(default_factory=lambda: np.empty(0))

    @property
    def unit_symbol(self) -> str:
        """The units in UDUNITS form (`fewsmap.catalog.quantities.normalise_units`)."""
        return normalise_units(self.units)


def legend_size(style: Style, units: str, contours: bool = False) -> tuple[int, int]:
    """The default legend image size for a style: 150 px wide, 15 px per row (FEWS): the
    title, the units, one per entry, and the contours when drawn."""
    entries = {"classes": len(style.breaks), "color_map": len(style.color_map)}
    rows = entries.get(style.kind, CONTINUOUS_ENTRIES) + 1 + bool(normalise_units(units)) + contours
    return 150, ROW_HEIGHT_PX * rows


def legend_entries(palette: Palette) -> list[dict[str, Any]]:
    """FEWS ``legend[]``: ascending ``lowerValue`` with ``#rrggbb`` colour and a label.

    Class breaks are labelled ``>= <break>``, a continuous colour map at round values of
    its range, all in one format per legend (`fewsmap.render.labels.format_labels`).
    """
    if palette.style.kind == "color_map":
        return color_map_entries(palette.style)
    if not palette.smooth:
        labels = format_labels(palette.lower_values)
        return [{"lowerValue": float(value), "color": colour, "label": f">= {label}",
                 "colorSmoothing": False}
                for value, colour, label in zip(palette.lower_values, palette.hex_colors(),
                                                labels, strict=True)]
    values = round_levels(*palette.value_range)
    indices = palette.indices(values)
    colours = ["#{:02x}{:02x}{:02x}".format(*palette.lut[i][:3]) for i in indices]
    return [{"lowerValue": float(v), "color": c, "label": label, "colorSmoothing": True}
            for v, c, label in zip(values, colours, format_labels(values), strict=True)]


def ramp_entries(palette: Palette, count: int = CONTINUOUS_ENTRIES) -> list[dict[str, Any]]:
    """A continuous palette as ``count`` evenly spaced entries from one end of its range to
    the other (an SLD ramp through them draws close to the map; GetStyles)."""
    low, high = palette.value_range
    values = np.linspace(low, high, count)
    colours = ["#{:02x}{:02x}{:02x}".format(*palette.lut[i][:3])
               for i in palette.indices(values)]
    return [{"lowerValue": float(v), "color": c, "label": label, "colorSmoothing": True}
            for v, c, label in zip(values, colours, format_labels(values), strict=True)]


def color_map_entries(style: Style) -> list[dict[str, Any]]:
    """An SLD ColorMap's legend: one row per ColorMapEntry, with its label (GeoServer's).

    Without a label a row names its quantity; an interval (values below the quantity, down
    to the previous one) names both ends and carries ``upperValue``. ``opacity`` is the
    drawn opacity (the entry's times the RasterSymbolizer's).
    """
    rows = []
    previous: float | None = None
    for entry in style.color_map:
        row: dict[str, Any] = {"lowerValue": entry.quantity, "color": entry.color.lower(),
                               "label": entry.label or f"{entry.quantity:g}",
                               "colorSmoothing": style.color_map_type == "ramp",
                               "opacity": round(entry.opacity * style.opacity, 6)}
        if style.color_map_type == "intervals":
            row |= {"lowerValue": previous, "upperValue": entry.quantity}
            if not entry.label:
                row["label"] = (f"< {entry.quantity:g}" if previous is None
                                else f"{previous:g} – < {entry.quantity:g}")
        rows.append(row)
        previous = entry.quantity
    return rows


def legend_json(palette: Palette, text: LegendText) -> dict[str, Any]:
    """The FEWS GetLegendGraphic JSON answer (only fields FEWS clients know: the title is
    the layer's in the capabilities), and ``contours`` when asked for a contoured map:
    their levels, labels and line colour."""
    body: dict[str, Any] = {"legend": legend_entries(palette)}
    if text.unit_symbol:
        body["unit"] = text.unit_symbol
    if text.contours.size:
        body["contours"] = {"levels": [float(v) for v in text.contours],
                            "labels": format_labels(text.contours),
                            "color": "#{:02x}{:02x}{:02x}".format(*CONTOUR_RGBA[:3])}
    return body


def legend_png(palette: Palette, text: LegendText, width: int | None,
               height: int | None) -> bytes:
    """A legend image: one row per entry (15 px by default, FEWS), swatch and label."""
    return png_image(legend_image(palette, text, width, height))


def stacked_legends_png(images: list[Image.Image]) -> bytes:
    """The legends of several layers one below the other, each under its own title (a layer
    group's legend), as wide as the widest."""
    width = max(image.width for image in images)
    stacked = Image.new("RGBA", (width, sum(image.height for image in images)),
                        (255, 255, 255, 0))
    top = 0
    for image in images:
        stacked.paste(image, (0, top))
        top += image.height
    return png_image(stacked)


def legend_image(palette: Palette, text: LegendText, width: int | None,
                 height: int | None) -> Image.Image:
    """Draw the legend of `legend_png` as an RGBA image: rows of the title, the units, the
    entries (swatch and label) and the contours (a line sample and their levels)."""
    entries = legend_entries(palette)
    header = [line for line in (text.title, text.unit_symbol) if line]
    rows = len(header) + len(entries) + bool(text.contours.size)
    default_width, default_height = legend_size(palette.style, text.units,
                                                bool(text.contours.size))
    width, height = width or default_width, height or default_height
    row = height / rows
    image = Image.new("RGBA", (width, height), (255, 255, 255, 0))
    draw = ImageDraw.Draw(image)
    for i, line in enumerate(header):
        draw.text((2, int(i * row) + 1), fitted(draw, line, width - 4), fill=TEXT_COLOR)
    left = min(2, width - 1)  # a legend a few pixels wide is all swatch
    right = min(SWATCH_RIGHT_PX, width - 1)
    for i, entry in enumerate(entries, start=len(header)):
        top = int(i * row)
        bottom = max(int((i + 1) * row) - 2, top)
        alpha = round(255 * entry.get("opacity", 1.0))
        draw.rectangle((left, top, right, bottom),
                       fill=entry["color"] + f"{alpha:02x}", outline=(90, 90, 90, 255))
        draw.text((TEXT_LEFT_PX, top), entry["label"], fill=TEXT_COLOR)
    if text.contours.size:
        top = int((rows - 1) * row)
        middle = (top + max(int(rows * row) - 2, top)) // 2
        draw.line((left, middle, right, middle), fill=CONTOUR_RGBA, width=1)
        levels = fitted(draw, ", ".join(format_labels(text.contours)),
                        width - TEXT_LEFT_PX - 2)
        draw.text((TEXT_LEFT_PX, top), levels, fill=TEXT_COLOR)
    return image


def fitted(draw: ImageDraw.ImageDraw, line: str, width_px: int) -> str:
    """``line``, shortened with an ellipsis to fit ``width_px`` (whole if it fits)."""
    if draw.textlength(line) <= width_px:
        return line
    while line and draw.textlength(line + "…") > width_px:
        line = line[:-1]
    return line.rstrip() + "…" if line else ""
