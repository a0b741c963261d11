"""The units values are answered in: the ones the maps show, or the stored ones.

Maps and GetFeatureInfo draw and give values in the layer style's display units (K → degC,
m s-1 → km h-1; FEWS ``useDisplayUnits``, default true); series (``/api/timeseries``) and
EDR answers convert with the same style here, so a chart beside a map reads the same
numbers. The switch false answers the stored units. A probability is % either way; a
change (run minus baseline) and a standard deviation convert without the offset (a change
of 2 K is 2 degC), as `fewsmap.render.pipeline.shown_style` says for maps. Units are
written in UDUNITS form (`fewsmap.units.udunits`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fewsmap.catalog import Layer
from fewsmap.products.ensemble import EnsembleStatistic
from fewsmap.render.pipeline import shown_style
from fewsmap.store.cube import ForecastStore
from fewsmap.units import udunits


@dataclass(frozen=True)
class ShownUnits:
    """Units of answered values and how stored values become them:
    ``shown = stored × scale + offset``."""

    units: str
    scale: float = 1.0
    offset: float = 0.0

    def apply(self, values: np.ndarray) -> np.ndarray:
        """Convert stored values (float32 stays float32; NaN stays NaN)."""
        if (self.scale, self.offset) == (1.0, 0.0):
            return values
        return np.asarray(values * np.float32(self.scale) + np.float32(self.offset),
                          dtype=np.float32)


def shown_units(store: ForecastStore, layer: Layer, statistic: EnsembleStatistic | None,
                display_units: bool, difference: bool = False) -> ShownUnits:
    """The units a layer's values are answered in, and the conversion to them.

    Parameters
    ----------
    store, layer
        The layer and its store (the stored units are its variable's ``units``).
    statistic
        The ensemble statistic answered, if any (a probability is in %).
    display_units
        FEWS ``useDisplayUnits``: the style's display units (true) or the stored ones.
    difference
        Whether the values are a run change (converted without the offset).
    """
    stored = udunits(str(store.attributes(layer.variable).get("units", "")))
    if statistic is not None and statistic.is_probability:
        return ShownUnits(statistic.units(stored))
    if not display_units:
        return ShownUnits(stored)
    style = shown_style(layer.default_style, statistic, display_units, difference)
    if not (style.units and style.data_units):  # a style not bound to the stored units
        return ShownUnits(stored)
    # Bound, it shows its own units even where they equal the stored ones (kg m-2 is mm).
    return ShownUnits(udunits(style.units), style.scale, style.offset)
