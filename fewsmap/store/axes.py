"""Whether a grid axis is evenly spaced: one tolerance, relative to the spacing.

Axes stored as float32 are not exact: a 2,500 m polar stereographic axis near 7,000 km
holds centres off by up to ±0.03 m (half a float32 step), and a 0.01° global axis by a few
millionths of a degree. Every decision "is this axis regular" (GRIB axes rebuilt at ingest,
the GeoTIFF export's affine transform) asks the same question: does every centre lie within
``EVEN_TOLERANCE_CELLS`` of a cell of the arithmetic sequence through the first and last
centre (issue #13, item 17)?

The tolerance, 1 % of a cell, is ~100× the float32 error of the coarsest real axes (100 m
cells at 7,000 km: 0.4 %; 0.01° global: 0.2 %) and places a cell within a hundredth of its
size, less than a pixel until a cell covers 100 screen pixels; a whole Gaussian grid (N48 or
N640: 1.2–1.4 % of a cell from the nearest regular axis) stays uneven.
"""

from __future__ import annotations

import numpy as np

EVEN_TOLERANCE_CELLS = 0.01


def mean_step(centres: np.ndarray) -> float:
    """The signed step of the arithmetic sequence through the first and last centre (0 for
    fewer than two centres)."""
    axis = np.asarray(centres, dtype="float64")
    return float(axis[-1] - axis[0]) / (axis.size - 1) if axis.size > 1 else 0.0


def on_regular_axis(positions: np.ndarray, first: float, step: float, along: int = -1) -> bool:
    """Tell whether ``positions`` lie within ``EVEN_TOLERANCE_CELLS`` of a cell of the axis
    ``first + i * step``, ``i`` counting along dimension ``along`` of ``positions``.

    Non-finite positions or a zero step never pass.
    """
    values = np.asarray(positions, dtype="float64")
    shape = [1] * values.ndim
    shape[along] = values.shape[along]
    regular = first + step * np.arange(values.shape[along]).reshape(shape)
    error = np.abs(values - regular).max(initial=0.0) / abs(step) if step else np.inf
    return bool(error <= EVEN_TOLERANCE_CELLS)


def is_evenly_spaced(centres: np.ndarray) -> bool:
    """Tell whether a 1-D axis is evenly spaced within ``EVEN_TOLERANCE_CELLS`` (an axis of
    fewer than three centres always is)."""
    axis = np.asarray(centres, dtype="float64")
    if axis.size < 3:
        return True
    return on_regular_axis(axis, float(axis[0]), mean_step(axis))


def cell_spacings(y: np.ndarray, x: np.ndarray) -> tuple[float, float]:
    """(dy, dx), the cell size along each 1-D axis: its mean step.

    An axis of one centre has no step of its own: a single row or column of cells takes the
    other axis's, and a grid of one cell is one unit of its CRS wide (1° or 1 m). Extents,
    maps, feature info and exports all size such cells by this rule (issue #13).
    """
    dy, dx = abs(mean_step(y)), abs(mean_step(x))
    return (dy or dx or 1.0), (dx or dy or 1.0)
