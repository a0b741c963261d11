"""Numbers on legends and contours: round values, and one readable format per legend.

A legend's labels share a number of decimals chosen from the spacing of its values (and no
more than they need), written in fixed notation without trailing zeros: ``0.1``, ``0.5``,
``1``; ``279.5``/``282.2`` become round ticks ``280``, ``285``; geopotential reads ``10180``,
never ``1.018e+04``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable

import numpy as np
from matplotlib.ticker import MaxNLocator

# A continuous legend (and its default contour levels) shows at most this many round values.
MAX_ROUND_LEVELS = 11
# Finer than this, fixed notation would be a row of zeros; values are rounded to it.
MAX_DECIMALS = 10
# The round steps (times a power of ten) a colour range is divided into.
ROUND_STEPS = (1.0, 2.0, 2.5, 5.0, 10.0)


def round_levels(low: float, high: float, most: int = MAX_ROUND_LEVELS) -> np.ndarray:
    """Return up to ``most`` round values from ``low`` to ``high``, evenly spaced.

    Parameters
    ----------
    low, high
        The range (``low < high``); values outside it are never returned.
    most
        The largest number of values.

    Returns
    -------
    numpy.ndarray
        Ascending float64 multiples of a round step (1, 2, 2.5 or 5 times a power of ten);
        the two ends themselves when no two round values fit in the range.
    """
    ticks = np.asarray(MaxNLocator(nbins=most - 1, steps=list(ROUND_STEPS))
                       .tick_values(low, high), dtype="float64")
    if ticks.size >= 2:  # the step's exact multiples, free of float noise (0.30000000000000004)
        step = float(np.min(np.diff(ticks)))
        digits = max(0, -math.floor(math.log10(step)) + 2)
        ticks = np.round(ticks, digits)
    slack = (high - low) * 1e-9  # a tick equal to an end, up to float rounding
    inside = ticks[(ticks >= low - slack) & (ticks <= high + slack)]
    return inside if inside.size >= 2 else np.array([low, high], dtype="float64")


def label_decimals(values: Iterable[float]) -> int:
    """Choose the decimals of a legend's labels from its values.

    As many as the values need to be written exactly (0.1, 0.5, 1; 1.25, 2.5), unless that
    is more than one digit beyond what the spacing of neighbouring values makes readable
    (one digit below the order of the smallest spacing): breaks re-spread to 30, 32.857…
    are written 30, 32.9.
    """
    finite = sorted({float(v) for v in values if math.isfinite(v)})
    exact = next((d for d in range(MAX_DECIMALS + 1)
                  if all(math.isclose(round(v, d), v, rel_tol=1e-9, abs_tol=1e-12)
                         for v in finite)), MAX_DECIMALS)
    spacings = [high - low for low, high in itertools.pairwise(finite) if high > low]
    if not spacings:
        return exact
    readable = max(0, 1 - math.floor(math.log10(min(spacings))))
    return exact if exact <= readable + 1 else min(readable, MAX_DECIMALS)


def format_label(value: float, decimals: int) -> str:
    """Write ``value`` in fixed notation with at most ``decimals`` decimals (no trailing
    zeros, no ``-0``)."""
    if not math.isfinite(value):
        return str(value)
    text = f"{value:.{decimals}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def format_labels(values: Iterable[float]) -> list[str]:
    """Write a legend's values in the one format `label_decimals` chooses for them."""
    values = list(values)
    decimals = label_decimals(values)
    return [format_label(v, decimals) for v in values]
