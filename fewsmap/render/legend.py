"""Legends from the very palette the map uses: FEWS JSON entries and a PNG."""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from fewsmap.catalog.styles import Style
from fewsmap.render.colour import Palette
from fewsmap.render.encode import png_image

# A continuous colour map is described by this many evenly spaced entries.
CONTINUOUS_ENTRIES = 11
ROW_HEIGHT_PX = 15


def legend_size(style: Style, units: str) -> tuple[int, int]:
    """The default legend image size for a style: 150 px wide, 15 px per row (FEWS)."""
    entries = {"classes": len(style.breaks), "color_map": len(style.color_map)}
    rows = entries.get(style.kind, CONTINUOUS_ENTRIES) + bool(units)
    return 150, ROW_HEIGHT_PX * rows


def legend_entries(palette: Palette) -> list[dict[str, Any]]:
    """FEWS ``legend[]``: ascending ``lowerValue`` with ``#rrggbb`` colour and a label."""
    if palette.style.kind == "color_map":
        return color_map_entries(palette.style)
    if not palette.smooth:
        return [{"lowerValue": float(value), "color": colour, "label": f">= {value:g}",
                 "colorSmoothing": False}
                for value, colour in zip(palette.lower_values, palette.hex_colors(),
                                         strict=True)]
    low, high = palette.value_range
    values = np.linspace(low, high, CONTINUOUS_ENTRIES)
    indices = palette.indices(values)
    colours = ["#{:02x}{:02x}{:02x}".format(*palette.lut[i][:3]) for i in indices]
    return [{"lowerValue": float(round(v, 6)), "color": c, "label": f"{v:.4g}",
             "colorSmoothing": True} for v, c in zip(values, colours, strict=True)]


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


def legend_json(palette: Palette, units: str) -> dict[str, Any]:
    """The FEWS GetLegendGraphic JSON answer."""
    body: dict[str, Any] = {"legend": legend_entries(palette)}
    if units:
        body["unit"] = units
    return body


def legend_png(palette: Palette, units: str, width: int | None, height: int | None) -> bytes:
    """A legend image: one row per entry (15 px by default, FEWS), swatch and label."""
    return png_image(legend_image(palette, units, width, height))


def stacked_legends_png(parts: list[tuple[str, Image.Image]]) -> bytes:
    """The legends of several layers one below the other, each under a row of its title
    (a layer group's legend), as wide as the widest."""
    width = max(image.width for _, image in parts)
    height = sum(ROW_HEIGHT_PX + image.height for _, image in parts)
    stacked = Image.new("RGBA", (width, height), (255, 255, 255, 0))
    draw = ImageDraw.Draw(stacked)
    top = 0
    for title, image in parts:
        draw.text((2, top + 1), title, fill=(0, 0, 0, 255))
        stacked.paste(image, (0, top + ROW_HEIGHT_PX))
        top += ROW_HEIGHT_PX + image.height
    return png_image(stacked)


def legend_image(palette: Palette, units: str, width: int | None,
                 height: int | None) -> Image.Image:
    """Draw the legend of `legend_png` as an RGBA image."""
    entries = legend_entries(palette)
    header = 1 if units else 0
    rows = len(entries) + header
    default_width, default_height = legend_size(palette.style, units)
    width, height = width or default_width, height or default_height
    row = height / rows
    image = Image.new("RGBA", (width, height), (255, 255, 255, 0))
    draw = ImageDraw.Draw(image)
    if units:
        draw.text((2, 1), units, fill=(0, 0, 0, 255))
    left = min(2, width - 1)  # a legend a few pixels wide is all swatch
    for i, entry in enumerate(entries):
        top = int((i + header) * row)
        bottom = max(int((i + header + 1) * row) - 2, top)
        alpha = round(255 * entry.get("opacity", 1.0))
        draw.rectangle((left, top, min(24, width - 1), bottom),
                       fill=entry["color"] + f"{alpha:02x}", outline=(90, 90, 90, 255))
        draw.text((30, top), entry["label"], fill=(0, 0, 0, 255))
    return image
