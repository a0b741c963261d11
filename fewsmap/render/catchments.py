"""Catchment maps: each polygon of a set filled with its area-weighted mean.

The means are those of the catchment API (`fewsmap.products.catchments`, weights kept per
store state and set); the polygons are rasterised onto the canvas by pixel centre (a pixel
shows the catchment its centre lies in), in the canvas CRS: the polygon is transformed there
with its edges densified, so it bends as the projection bends it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import shapely

from fewsmap.products.catchments import CatchmentSet, set_means
from fewsmap.products.ensemble import Selector, label_lists
from fewsmap.render.regrid import Canvas
from fewsmap.store.cube import ForecastStore, RunInfo
from fewsmap.store.geometry import transformer

DENSIFY_DEGREES = 0.1  # polygon edges are split to this length before projection


def catchment_means(store: ForecastStore, variables: Sequence[str], run: RunInfo,
                    valid_time: np.datetime64, labels: Sequence[Selector],
                    catchments: CatchmentSet) -> np.ndarray:
    """Each catchment's mean at one valid time: float32 (catchments,), NaN where none.

    ``labels`` are the store indices along the member/level dimensions, or a statistic over
    the members (reduced over the members' catchment means).
    """
    means = set_means(store, variables, catchments, run, np.array([valid_time]),
                      label_lists(labels), labels)
    return means.reshape(-1).astype(np.float32)


def rasterise(catchments: CatchmentSet, values: np.ndarray, canvas: Canvas) -> np.ndarray:
    """Fill each polygon with its value on the canvas: float32 (height, width), NaN outside
    every polygon (later polygons over earlier ones where they overlap)."""
    field = np.full((canvas.height, canvas.width), np.nan, dtype=np.float32)
    west, south, east, north = canvas.bbox
    dx, dy = (east - west) / canvas.width, (north - south) / canvas.height
    to_canvas = transformer("OGC:CRS84", canvas.crs)
    view = shapely.box(west, south, east, north)
    for polygon, value in zip(catchments.polygons, values, strict=True):
        if not np.isfinite(value):
            continue
        dense = shapely.segmentize(polygon, DENSIFY_DEGREES)
        with np.errstate(all="ignore"):
            moved = shapely.transform(dense, lambda xy: np.column_stack(
                to_canvas.transform(xy[:, 0], xy[:, 1])))
        coordinates = shapely.get_coordinates(moved)
        if not np.isfinite(coordinates).all() or not moved.intersects(view):
            continue
        left, bottom, right, top = moved.bounds
        cols = np.arange(max(0, int((left - west) / dx)),
                         min(canvas.width, int(np.ceil((right - west) / dx))))
        rows = np.arange(max(0, int((north - top) / dy)),
                         min(canvas.height, int(np.ceil((north - bottom) / dy))))
        if not cols.size or not rows.size:
            continue
        xs, ys = west + (cols + 0.5) * dx, north - (rows + 0.5) * dy
        inside = shapely.contains_xy(moved, xs[None, :], ys[:, None])
        block = field[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
        block[inside] = value
    return field
