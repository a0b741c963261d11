"""The window of native grid cells a bounding box touches, in the grid's own CRS.

A WCS-like subset: the bbox (in any offered CRS) is transformed to the grid's CRS and every
cell whose extent overlaps it is kept, unchanged (`GridGeometry.overlapping`). Rows are
ordered north first and columns west to east; a longitude axis may wrap (a 0..360 grid asked
for -10..10 gives 350..370). Curvilinear grids (2-D latitude/longitude) keep the index box of
the cells inside the bbox. This module adds the export's limits.
"""

from __future__ import annotations

from fewsmap.errors import InvalidParameterValue
from fewsmap.store.cube import ForecastStore
from fewsmap.store.geometry import GridWindow

__all__ = ["MAX_EXPORT_CELLS", "GridWindow", "native_window"]

# 64 MiB of float32 per variable: larger subsets are read from /zarr directly.
MAX_EXPORT_CELLS = 16 * 1024 * 1024


def native_window(store: ForecastStore, crs: str, bbox: tuple[float, float, float, float],
                  layer_id: str) -> GridWindow:
    """The native cells of ``store`` that ``bbox`` (east/north order, in ``crs``) overlaps.

    Raises
    ------
    InvalidParameterValue
        If the bbox covers no cell, or more than ``MAX_EXPORT_CELLS``, or cannot be
        expressed in the grid's CRS.
    """
    window = store.geometry.overlapping(crs, bbox)
    rows_n, cols_n = window.shape
    if rows_n == 0 or cols_n == 0:
        raise InvalidParameterValue(f"BBOX={','.join(f'{v:g}' for v in bbox)} ({crs}) covers "
                                    f"no cell of the grid of layer {layer_id!r}")
    if rows_n * cols_n > MAX_EXPORT_CELLS:
        raise InvalidParameterValue(
            f"the BBOX covers {rows_n}×{cols_n} cells; an export holds at most "
            f"{MAX_EXPORT_CELLS} (narrow the BBOX, or read the store at /zarr/{store.name})")
    return window
