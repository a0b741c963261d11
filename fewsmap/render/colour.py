"""Colour: values → palette indices → RGBA, through one 256-entry lookup table per style.

Index 0 is transparent (missing data, outside the grid, below the first class break);
continuous styles use indices 1..255 over the value range, class-break styles one index per
class, SLD ColorMaps thresholds of their own (`color_map_levels`). The legend reads the same
``Palette``, so map and legend always agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from matplotlib import colormaps
from matplotlib.colors import to_rgba

from fewsmap.catalog.styles import (
    CONTINUOUS_LEVELS,
    FLOAT32_MAX,
    ColorMapEntry,
    ColorRange,
    Style,
    colour_range_problem,
)
from fewsmap.errors import InvalidParameterValue, StyleNotDefined
from fewsmap.render import kernels

TRANSPARENT = 0
TOP_LEVEL = CONTINUOUS_LEVELS - 0.001  # the highest scaled value: index 255


@dataclass(frozen=True, eq=False)
class Palette:
    """A style resolved against a value range: thresholds and a 256 × RGBA table."""

    style: Style
    lower_values: np.ndarray  # lowerValue of each index 1..n (float64, ascending)
    lut: np.ndarray  # (256, 4) uint8; row 0 transparent
    smooth: bool  # continuous colour map (FEWS colorSmoothing)
    value_range: tuple[float, float]

    @property
    def size(self) -> int:
        """Number of colour entries in use (excluding transparent)."""
        return int(self.lower_values.size)

    def indices(self, values: np.ndarray) -> np.ndarray:
        """Map values to palette indices (uint8); NaN (and, for classes, below the first
        break) → transparent; continuous styles clamp to the range.

        float32 fields (every map) go through one compiled pass; other types through numpy,
        whose result is the reference (`indices_numpy`)."""
        if values.dtype != np.float32:
            return self.indices_numpy(values)
        flat = np.ascontiguousarray(values).reshape(-1)
        if self.smooth:
            low, factor = self._even_levels()
            out = kernels.quantise_even(flat, low, factor, np.float32(TOP_LEVEL))
        else:
            out = kernels.quantise_breaks(flat, self.lower_values)
        return np.asarray(out).reshape(values.shape)

    def _even_levels(self) -> tuple[np.float32, np.float32]:
        low, high = self.value_range
        return np.float32(low), np.float32(CONTINUOUS_LEVELS / (high - low))

    def indices_numpy(self, values: np.ndarray) -> np.ndarray:
        """`indices` in numpy: any dtype."""
        finite = np.isfinite(values)
        if self.smooth:
            # Evenly spaced thresholds: arithmetic instead of a search over 255 of them
            # (4x faster on a 1920x1200 map, benchmarks/results/suite.md).
            low, factor = self._even_levels()
            with np.errstate(over="ignore", invalid="ignore"):  # huge values clamp to the top
                scaled = (values.astype(np.float32, copy=False) - low) * factor
            scaled = np.where(finite, np.clip(scaled, 0.0, TOP_LEVEL), -1.0)
            return (scaled + 1.0).astype(np.uint8)
        index = np.searchsorted(self.lower_values, values, side="right")
        return np.where(finite, index, TRANSPARENT).astype(np.uint8)

    def rgba(self, indices: np.ndarray) -> np.ndarray:
        """Look up RGBA pixels (H, W, 4) for palette indices, as one gather."""
        table = self.lut.view(np.uint32).reshape(-1)
        return np.asarray(table[indices].view(np.uint8).reshape((*indices.shape, 4)))

    def hex_colors(self) -> list[str]:
        """``#rrggbb`` of each index 1..n (FEWS legend JSON)."""
        return ["#{:02x}{:02x}{:02x}".format(*row[:3]) for row in self.lut[1 : self.size + 1]]


def palette_for(style: Style, value_range: ColorRange,
                fallback_range: tuple[float, float] | None) -> Palette:
    """Resolve ``style`` with an explicit range (colorscalerange), else its own, else data's.

    ``auto`` (``COLORSCALERANGE=auto``) takes the data's range as if it were given
    explicitly: the caller passes the drawn run's own range as ``fallback_range``.

    Raises
    ------
    StyleNotDefined
        If a continuous style has no range and no statistics exist to derive one.
    InvalidParameterValue
        If a range is asked of an SLD ColorMap, whose quantities fix its colours.
    """
    if isinstance(value_range, str):  # AUTO_RANGE
        value_range = fallback_range
    if style.kind == "color_map":
        if value_range is not None:
            raise InvalidParameterValue(
                "COLORSCALERANGE re-spreads a style of the service; an SLD ColorMap's "
                "quantities fix its colours: leave COLORSCALERANGE out")
        return _palette(style, None)
    if style.kind == "classes":  # only an explicit range re-spreads class breaks (FEWS)
        return _palette(style, _colourable(value_range) if value_range else None)
    chosen = value_range or style.value_range or fallback_range
    if chosen is None:
        raise StyleNotDefined(f"style {style.name!r} needs a colour range; none is known")
    return _palette(style, _colourable(chosen))


@lru_cache(maxsize=256)
def _palette(style: Style, value_range: tuple[float, float] | None) -> Palette:
    lut = np.zeros((256, 4), dtype=np.uint8)
    if style.kind == "color_map":
        lower, colours = color_map_levels(style)
        lut[1 : lower.size + 1] = colours
        quantities = [entry.quantity for entry in style.color_map]
        return Palette(style, lower, lut, smooth=False,
                       value_range=(quantities[0], quantities[-1]))
    if style.kind == "classes":
        breaks = np.asarray(style.breaks, dtype="float64")
        if value_range is not None:  # FEWS: colorscalerange re-spreads breaks evenly
            breaks = np.linspace(value_range[0], value_range[1], breaks.size)
        for i, colour in enumerate(style.colors, start=1):
            lut[i] = np.round(np.asarray(to_rgba(colour)) * 255)
        span = (float(breaks[0]), float(breaks[-1]))
        return Palette(style, breaks, lut, smooth=False, value_range=span)
    assert value_range is not None
    low, high = value_range
    lower = low + (high - low) * np.arange(CONTINUOUS_LEVELS) / CONTINUOUS_LEVELS
    lower[0] = -np.inf  # below the range: the first colour (clamped, as ncWMS does)
    cmap = colormaps[style.colormap]
    lut[1:] = np.round(cmap(np.linspace(0, 1, CONTINUOUS_LEVELS)) * 255)
    return Palette(style, lower, lut, smooth=True, value_range=(low, high))


def _colourable(value_range: tuple[float, float]) -> tuple[float, float]:
    """Make a range from data colourable: within float32 and wide enough to colour with.

    Requested and configured ranges are checked (`colour_range_problem`); a run's own
    statistics may be a constant field (given a width of at least 0.5, or ~16 float32 steps
    of the value, so it still gets a colour) or reach float32's extremes.
    """
    low, high = (min(max(float(v), -FLOAT32_MAX), FLOAT32_MAX) for v in value_range)
    low = max(low, high - FLOAT32_MAX)  # a span beyond float32: keep the upper part
    if colour_range_problem(low, high) is None:
        return low, high
    centre = (low + high) / 2
    pad = max(0.5, abs(centre) * 1e-6)
    return max(centre - pad, -FLOAT32_MAX), min(centre + pad, FLOAT32_MAX)


def color_map_levels(style: Style) -> tuple[np.ndarray, np.ndarray]:
    """Thresholds (ascending float64) and RGBA rows (uint8) of an SLD ColorMap's indices.

    Index i colours values from threshold i up to the next, as GeoTools' SLDColorMapBuilder
    builds GeoServer's colour maps:

    - ramp: below the first quantity its entry, between entries colour and opacity
      interpolated (an equal share of the 254 levels per pair of entries), from the last
      quantity up its entry;
    - intervals: below the first quantity the first entry, from each quantity up to the
      next the next entry, from the last quantity up nothing (transparent);
    - values: only the quantities themselves, compared as float32 (the fields' type),
      everything else transparent.

    The RasterSymbolizer Opacity scales every alpha (GeoServer draws the coloured image at
    that opacity).
    """
    entries = style.color_map
    rgba = np.array([_entry_rgba(entry) for entry in entries], dtype=np.float64)
    quantities = np.array([entry.quantity for entry in entries], dtype=np.float64)
    if style.color_map_type == "values":
        exact = quantities.astype(np.float32)
        after = np.nextafter(exact, np.float32(np.inf))
        lower = np.column_stack([exact, after]).reshape(-1).astype(np.float64)
        clear = np.zeros_like(rgba)
        colours = np.stack([rgba, clear], axis=1).reshape(-1, 4)
    elif style.color_map_type == "intervals":
        lower = np.concatenate([[-np.inf], quantities])
        colours = np.concatenate([rgba, np.zeros((1, 4))])
    else:
        per_pair = (CONTINUOUS_LEVELS - 1) // (len(entries) - 1)
        fractions = np.arange(per_pair) / per_pair
        starts = quantities[:-1, None] + np.diff(quantities)[:, None] * fractions
        mixed = rgba[:-1, None] + (rgba[1:] - rgba[:-1])[:, None] * fractions[:, None]
        lower = np.concatenate([starts.reshape(-1), quantities[-1:]])
        lower[0] = -np.inf  # below the first quantity: the first entry
        colours = np.concatenate([mixed.reshape(-1, 4), rgba[-1:]])
    colours[:, 3] *= style.opacity
    return lower, np.round(colours).astype(np.uint8)


def _entry_rgba(entry: ColorMapEntry) -> tuple[float, float, float, float]:
    red, green, blue, _ = to_rgba(entry.color)
    return red * 255, green * 255, blue * 255, entry.opacity * 255
