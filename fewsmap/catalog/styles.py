"""Styles: how values become colours. One object serves map, legend and contours.

A style is either continuous (a matplotlib colour map over a value range), FEWS class
breaks (``lowerValue`` + colour per class), or an SLD ColorMap (entries of quantity, colour,
opacity and label, read by fewsmap/ogc/sld.py). A range of ``None`` means "from the run's
statistics", computed at ingest, so every tile of a run shares one colour scale.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from pydantic import ValidationError

from fewsmap.errors import ConfigError
from fewsmap.settings import StyleTable, describe_errors

# A continuous colour map is spread over this many colours between min and max.
CONTINUOUS_LEVELS = 255
# Fields are float32 and coloured in float32 arithmetic (fewsmap/render/colour.py).
FLOAT32_MAX = float(np.finfo(np.float32).max)

PRECIPITATION_BREAKS = (0.1, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0)
PRECIPITATION_COLORS = ("#e0f3f8", "#abd9e9", "#74add1", "#4575b4", "#313695",
                        "#54278f", "#756bb1", "#de2d26", "#a50f15")


ColorMapType = Literal["ramp", "intervals", "values"]


@dataclass(frozen=True)
class ColorMapEntry:
    """One SLD ColorMapEntry: a quantity, its ``#rrggbb`` colour, opacity 0..1 and label."""

    quantity: float
    color: str
    opacity: float = 1.0
    label: str = ""


@dataclass(frozen=True)
class Style:
    """A named colour scheme for a layer."""

    name: str
    title: str
    kind: Literal["continuous", "classes", "color_map"] = "continuous"
    colormap: str = "viridis"
    value_range: tuple[float, float] | None = None
    breaks: tuple[float, ...] = ()
    colors: tuple[str, ...] = ()
    units: str = ""
    contour_levels: tuple[float, ...] | None = None
    # kind "color_map": GeoServer's ColorMap types (ramp interpolates between entries,
    # intervals colours below each quantity, values only the quantities themselves) and
    # the RasterSymbolizer Opacity, which scales every entry's opacity.
    color_map_type: ColorMapType = "ramp"
    color_map: tuple[ColorMapEntry, ...] = ()
    opacity: float = 1.0

    def __post_init__(self) -> None:
        if self.kind == "classes" and (not self.breaks or len(self.breaks) != len(self.colors)):
            raise ConfigError(f"style '{self.name}': class breaks need one colour per break")
        if list(self.breaks) != sorted(self.breaks):
            raise ConfigError(f"style '{self.name}': class breaks must ascend")
        if self.value_range is not None:
            problem = colour_range_problem(*self.value_range)
            if problem:
                raise ConfigError(f"style '{self.name}': range {self.value_range}: {problem}")
        problem = color_map_problem(self.color_map_type, self.color_map, self.opacity) \
            if self.kind == "color_map" else None
        if problem:
            raise ConfigError(f"style '{self.name}': {problem}")
        for name, values in (("breaks", self.breaks), ("contours", self.contour_levels or ())):
            if not all(math.isfinite(v) and abs(v) <= FLOAT32_MAX for v in values):
                raise ConfigError(f"style '{self.name}': {name} must be finite numbers within "
                                  f"±{FLOAT32_MAX:.7g} (float32)")


# Palette indices an SLD ColorMap may use (fewsmap/render/colour.py, 1..255): a ramp
# needs one per entry at least, intervals one more (values above the last quantity are
# not drawn), values two per entry (the value, then what lies between it and the next).
MAX_COLOR_MAP_ENTRIES: dict[str, int] = {"ramp": CONTINUOUS_LEVELS, "intervals": 254,
                                         "values": 127}


def color_map_problem(kind: ColorMapType, entries: tuple[ColorMapEntry, ...],
                      opacity: float) -> str | None:
    """Say why a ColorMap style cannot be drawn, or return None if it can.

    GeoServer's rules (SLDColorMapBuilder in GeoTools): a ramp or intervals needs two
    entries, values one; quantities ascend (values: strictly, each names one value).
    """
    least = 1 if kind == "values" else 2
    if not least <= len(entries) <= MAX_COLOR_MAP_ENTRIES[kind]:
        return (f"a ColorMap of type {kind} takes {least} to {MAX_COLOR_MAP_ENTRIES[kind]} "
                f"entries, not {len(entries)}")
    if not 0 <= opacity <= 1:
        return f"the RasterSymbolizer Opacity {opacity:g} is outside 0..1"
    quantities = [entry.quantity for entry in entries]
    for entry in entries:
        if not (math.isfinite(entry.quantity) and abs(entry.quantity) <= FLOAT32_MAX):
            return (f"quantity {entry.quantity!r} is not a finite number within "
                    f"±{FLOAT32_MAX:.7g} (float32)")
        if not 0 <= entry.opacity <= 1:
            return f"opacity {entry.opacity:g} of quantity {entry.quantity:g} is outside 0..1"
    for low, high in itertools.pairwise(quantities):
        if high < low or (kind == "values" and np.float32(high) == np.float32(low)):
            return (f"quantities must ascend{' strictly' if kind == 'values' else ''}: "
                    f"{high:g} follows {low:g}")
    return None


def colour_range_problem(low: float, high: float) -> str | None:
    """Say why (low, high) cannot colour float32 values, or return None if it can.

    Colouring computes ``(value - low) * (CONTINUOUS_LEVELS / (high - low))`` in float32,
    legends ``low + (high - low) * i / CONTINUOUS_LEVELS`` and contour levels in float64: each
    is finite and ascending when both ends are float32 numbers that differ as float32 values
    and the span and its reciprocal fit a float32 (issue #13: 0,1e306 overflowed).
    """
    if not all(math.isfinite(v) and abs(v) <= FLOAT32_MAX for v in (low, high)):
        return f"min and max must be finite numbers within ±{FLOAT32_MAX:.7g} (float32)"
    if not np.float32(low) < np.float32(high):
        return "min must be below max, also as float32 values"
    span = high - low
    if span > FLOAT32_MAX or CONTINUOUS_LEVELS / span > FLOAT32_MAX:
        return (f"max - min must lie between {CONTINUOUS_LEVELS / FLOAT32_MAX:.2g} and "
                f"{FLOAT32_MAX:.7g}")
    return None


# Exceedance probabilities of an ensemble (fewsmap.products.ensemble), whatever the layer.
PROBABILITY_STYLE = Style("probability", "Probability [%]", colormap="YlOrRd",
                          value_range=(0.0, 100.0), units="%")


def style_from_config(entry: dict[str, Any] | StyleTable) -> Style:
    """Build a style from a ``[[styles]]`` table of the configuration file.

    ``entry`` is the table as `fewsmap.settings.ConfigFile` read it, or as a dict (a style
    as JSON capabilities publish it, `style_as_config`), checked against the same schema.

    Raises
    ------
    ConfigError
        If a key is unknown or a value is invalid.
    """
    table = entry if isinstance(entry, StyleTable) else _style_table(entry)
    if table.color_map is not None:
        return Style(name=table.id, title=table.title or table.id, kind="color_map",
                     units=table.units, color_map_type=table.color_map.kind,
                     color_map=tuple(ColorMapEntry(e.quantity, e.color, e.opacity, e.label)
                                     for e in table.color_map.entries),
                     opacity=table.color_map.opacity)
    return Style(
        name=table.id,
        title=table.title or table.id,
        kind="classes" if table.breaks else "continuous",
        colormap=table.colormap,
        value_range=table.value_range,
        breaks=table.breaks,
        colors=table.colors,
        units=table.units,
        contour_levels=table.contours or None,
    )


def _style_table(entry: dict[str, Any]) -> StyleTable:
    try:
        return StyleTable.model_validate(entry)
    except ValidationError as exc:
        raise ConfigError(describe_errors(exc, f"style {str(entry.get('id', '?'))!r}",
                                          StyleTable, entry)) from exc


def style_as_config(style: Style) -> dict[str, Any]:
    """The style as a ``[[styles]]`` table (`style_from_config` reads it back): how JSON
    capabilities publish a style, so clients colour values exactly as the service does."""
    table: dict[str, Any] = {"id": style.name, "title": style.title, "units": style.units}
    if style.kind == "color_map":
        table["color_map"] = {"type": style.color_map_type, "opacity": style.opacity,
                              "entries": [vars(entry) for entry in style.color_map]}
    elif style.kind == "classes":
        table |= {"breaks": list(style.breaks), "colors": list(style.colors)}
    else:
        table["colormap"] = style.colormap
    if style.value_range is not None:
        table["range"] = list(style.value_range)
    if style.contour_levels is not None:
        table["contours"] = list(style.contour_levels)
    return table


def default_style(variable: str, attrs: dict[str, Any]) -> Style:
    """Choose a sensible style from a variable's CF attributes (zero-config layers)."""
    units = str(attrs.get("units", ""))
    standard_name = str(attrs.get("standard_name", "")).lower()
    words = f"{variable} {standard_name} {attrs.get('long_name', '')}".lower()
    if "precipitation" in words or units in ("mm", "kg m-2", "kg m**-2", "in") \
            or any(w in variable.lower() for w in ("qpf", "precip", "rain", "tp")):
        return Style("precipitation", f"Precipitation [{units}]", kind="classes",
                     breaks=PRECIPITATION_BREAKS, colors=PRECIPITATION_COLORS, units=units)
    if "temperature" in words or units in ("K", "degC", "degF"):
        return Style("temperature", f"Temperature [{units}]", colormap="RdYlBu_r", units=units)
    if "wind" in words or "gust" in words or units == "m s-1":
        return Style("wind", f"Wind speed [{units}]", colormap="YlGnBu", units=units)
    return Style("default", f"{variable} [{units}]" if units else variable, units=units)
