"""Styles: how values become colours. One object serves map, legend and contours.

A style is either continuous (a matplotlib colour map over a value range), FEWS class
breaks (``lowerValue`` + colour per class), or an SLD ColorMap (entries of quantity, colour,
opacity and label, read by fewsmap/ogc/sld.py). A range of ``None`` means "from the
statistics of the layer's runs", computed at ingest, so every tile of every run shares one
colour scale.

A style's numbers are in its display ``units``; ``scale`` and ``offset`` convert the stored
values (``data_units``) to them (K → °C, kg m-2 s-1 → mm/h: `fewsmap.catalog.quantities`).
`in_data_units` gives the same colours in the stored units (FEWS ``useDisplayUnits=false``).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np
from pydantic import ValidationError

from fewsmap.catalog.quantities import (
    PRECIPITATION_MM,
    Display,
    generic_display,
    in_scheme,
    normalise_units,
    recognise,
    scheme_for,
    unit_conversion,
)
from fewsmap.errors import ConfigError
from fewsmap.settings import StyleTable, describe_errors

# A continuous colour map is spread over this many colours between min and max.
CONTINUOUS_LEVELS = 255
# Fields are float32 and coloured in float32 arithmetic (fewsmap/render/colour.py).
FLOAT32_MAX = float(np.finfo(np.float32).max)

# COLORSCALERANGE=auto (ncWMS's word): the range of the drawn run only, not of all runs.
AUTO_RANGE: Literal["auto"] = "auto"
ColorRange = tuple[float, float] | Literal["auto"] | None
# The precipitation classes in mm (the first: less is not drawn) and their colours.
PRECIPITATION_BREAKS = tuple(float(b) for b in PRECIPITATION_MM.breaks)
PRECIPITATION_COLORS = PRECIPITATION_MM.colors


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
    # display value = stored value × scale + offset; data_units names the stored unit.
    data_units: str = ""
    scale: float = 1.0
    offset: float = 0.0

    @property
    def converts(self) -> bool:
        """Whether stored values are converted to display units before colouring."""
        return (self.scale, self.offset) != (1.0, 0.0)

    def to_display(self, values: np.ndarray) -> np.ndarray:
        """Convert stored values (float32) to the style's display units."""
        if not self.converts:
            return values
        return (values * np.float32(self.scale) + np.float32(self.offset)).astype(np.float32)

    def display_range(self, value_range: tuple[float, float] | None
                      ) -> tuple[float, float] | None:
        """Convert a range of stored values (run statistics) to display units."""
        if value_range is None or not self.converts:
            return value_range
        low, high = (v * self.scale + self.offset for v in value_range)
        return (low, high) if low <= high else (high, low)

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
                     opacity=table.color_map.opacity, data_units=table.data_units,
                     scale=table.scale, offset=table.offset)
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
        data_units=table.data_units,
        scale=table.scale,
        offset=table.offset,
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
    if style.data_units:
        table["data_units"] = style.data_units
    if style.converts:  # how a client gets display values from the stored ones
        table |= {"scale": style.scale, "offset": style.offset}
    return table


def default_style(variable: str, attrs: dict[str, Any]) -> Style:
    """Choose the style of a variable from its CF/GRIB attributes (zero-config layers): the
    library's for a quantity it knows (`fewsmap.catalog.quantities`), else a continuous
    perceptual ramp over the layer's range."""
    units = str(attrs.get("units", ""))
    quantity = recognise(variable, attrs)
    display = scheme_for(quantity, units) if quantity else generic_display(units)
    if is_spread(attrs):
        return spread_style(display, variable)
    return library_style(display, variable)


def is_spread(attrs: dict[str, Any]) -> bool:
    """Whether the variable is a spread (an ensemble's standard deviation, as CF
    ``cell_methods`` say: ``realization: standard_deviation``), not the quantity itself."""
    return "standard_deviation" in str(attrs.get("cell_methods", ""))


# A spread's ramp: sequential, light where the members agree.
SPREAD_COLORMAP = "YlOrRd"


def spread_style(display: Display, variable: str = "") -> Style:
    """A spread's style: a continuous ramp over the layer's range in the quantity's display
    unit, converted without offset (a spread of 2 K is 2 °C), as spreads computed on the fly
    are (`fewsmap.render.pipeline.shown_style`); the quantity's classes would miss it."""
    base = library_style(display, variable)
    title = base.title.removesuffix(f" [{base.units}]") if base.units else base.title
    return replace(base, name="spread", kind="continuous", colormap=SPREAD_COLORMAP,
                   breaks=(), colors=(), offset=0.0,
                   title=f"{title} spread" + (f" [{base.units}]" if base.units else ""))


# Perceptually uniform continuous ramps every layer offers over its stable range (matplotlib
# names; cividis also reads for colour-blind viewers). Style names are the ramp names.
RAMPS = ("viridis", "cividis", "magma")
CONTINUOUS_SUFFIX = "_continuous"


def offered_styles(variable: str, attrs: dict[str, Any]) -> tuple[Style, ...]:
    """Return the styles a layer of ``variable`` offers unless configured otherwise, the
    default first: the one list capabilities (WMS, FEWS JSON, WMTS), GetStyles, TileJSON
    and ``STYLES=`` share.

    Its quantity's library style (`default_style`), the library's other schemes of it
    (`named_library_styles`), then `alternative_styles`.
    """
    default = default_style(variable, attrs)
    return alternative_styles(default, tuple(named_library_styles(variable, attrs).values()))


def alternative_styles(default: Style, library: tuple[Style, ...] = ()) -> tuple[Style, ...]:
    """Return ``default``, the ``library`` styles, a continuous variant of each style of
    evenly spaced classes (`continuous_variant`), and the perceptual `RAMPS` over the
    layer's stable range in ``default``'s display units: each named once, in that order."""
    styles = [default, *library]
    styles += [variant for variant in map(continuous_variant, styles) if variant is not None]
    styles += [ramp_style(name, default) for name in RAMPS]
    unique: dict[str, Style] = {}
    for style in styles:
        unique.setdefault(style.name, style)
    return tuple(unique.values())


def continuous_variant(style: Style) -> Style | None:
    """The classes of ``style`` as a continuous ramp (``<name>_continuous``): its colours
    at its breaks, blended between them, fading out over one class below the first break
    (which classes do not draw below); None unless the breaks are evenly spaced (on
    log-like breaks such as precipitation's a ramp would spend most colours on extremes)."""
    if style.kind != "classes" or len(style.breaks) < 3:
        return None
    steps = np.diff(style.breaks)
    if not np.allclose(steps, steps[0]):
        return None
    fade = ColorMapEntry(style.breaks[0] - float(steps[0]), style.colors[0], 0.0)
    entries = (fade, *(ColorMapEntry(b, c) for b, c in zip(style.breaks, style.colors,
                                                          strict=True)))
    return replace(style, name=style.name + CONTINUOUS_SUFFIX,
                   title=_retitled(style, "continuous"), kind="color_map",
                   color_map_type="ramp", color_map=entries, breaks=(), colors=())


def ramp_style(colormap: str, like: Style) -> Style:
    """A continuous ``colormap`` over the layer's stable range, in ``like``'s display units
    (the automatic range: `fewsmap.render.pipeline.automatic_range`)."""
    return Style(colormap, _retitled(like, colormap), colormap=colormap, units=like.units,
                 data_units=like.data_units, scale=like.scale, offset=like.offset)


def _retitled(style: Style, variant: str) -> str:
    """``Temperature [degC]`` → ``Temperature, <variant> [degC]``."""
    suffix = f" [{style.units}]" if style.units else ""
    base = style.title.removesuffix(suffix) if suffix else style.title
    return f"{base}, {variant}{suffix}"


def named_library_styles(variable: str, attrs: dict[str, Any]) -> dict[str, Style]:
    """The library's other schemes for the variable's quantity, by name, for ``[[layers]]
    styles`` to pick (``wind_ms``: wind in m/s; ``precipitation_mm``/``_in``)."""
    units = str(attrs.get("units", ""))
    quantity = recognise(variable, attrs)
    if quantity is None or is_spread(attrs):
        return {}
    return {scheme.name: replace(library_style(in_scheme(quantity, scheme, units)),
                                 name=scheme.name)
            for scheme in quantity.schemes if scheme.name}


def library_style(display: Display, variable: str = "") -> Style:
    """The style of a library scheme, converting stored values to its display units."""
    scheme, quantity = display.scheme, display.quantity
    name = quantity.name if quantity else "default"
    title = quantity.title if quantity else variable or "Value"
    return Style(name, f"{title} [{scheme.units}]" if scheme.units else title,
                 kind="classes" if scheme.breaks else "continuous",
                 colormap=scheme.colormap, breaks=tuple(float(b) for b in scheme.breaks),
                 colors=scheme.colors, units=scheme.units, data_units=display.data_units,
                 scale=display.scale, offset=display.offset)


def bind_units(style: Style, data_units: str, variable: str = "",
               attrs: dict[str, Any] | None = None) -> Style:
    """Make a configured style convert the layer's stored values to its ``units``.

    A style whose units differ from the stored ones (a style in °C for a field in K, in
    m s-1 for one in km h-1) converts when the units do, with the water and gravity
    equivalences of the layer's quantity (kg m-2 of water is mm); otherwise, or when the
    style already converts, it is used as it is.
    """
    if style.converts or not style.units or not data_units:
        return style
    quantity = recognise(variable, {**(attrs or {}), "units": data_units})
    conversion = unit_conversion(data_units, style.units,
                                 quantity.equivalences if quantity else ())
    if conversion is None or conversion == (1.0, 0.0):
        return style
    return replace(style, data_units=normalise_units(data_units), scale=conversion[0],
                   offset=conversion[1])


def in_data_units(style: Style) -> Style:
    """The same colours with numbers in the stored units (FEWS ``useDisplayUnits=false``):
    breaks, range, contours and ColorMap quantities converted back."""
    if not style.converts:
        return style

    def back(value: float) -> float:
        return (value - style.offset) / style.scale

    value_range = None if style.value_range is None else \
        (back(style.value_range[0]), back(style.value_range[1]))
    return replace(
        style, units=style.data_units, data_units="", scale=1.0, offset=0.0,
        title=style.title.replace(f"[{style.units}]", f"[{style.data_units}]"),
        breaks=tuple(back(b) for b in style.breaks), value_range=value_range,
        contour_levels=None if style.contour_levels is None else tuple(
            back(c) for c in style.contour_levels),
        color_map=tuple(replace(e, quantity=back(e.quantity)) for e in style.color_map))
