"""Values at a point: find the grid cell under a point, read its values over time.

The core of GetFeatureInfo and the time-series API (no web imports). A point is given in any
CRS as (x, y) in east/north order (pyproj ``always_xy``). Separable grids (1-D axes: regular
lon/lat or projected x/y) find the cell on each axis after transforming the point into the
grid's own CRS; curvilinear grids (2-D latitude/longitude) take the nearest cell centre on the
sphere. A point more than half a cell outside the grid has no cell. The store's geometry
finds the cell (`GridGeometry.cell_at`); the cube's read path reads it (`fewsmap.store.reads`).

Reading touches only the chunks holding that cell, one per (run, step, member, level) value,
never a whole field (docs/design/cube.md: one such slice per chunk, 512 × 512 spatial tiles),
and of each chunk only the compressed block holding the value (`fewsmap.store.direct`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from fewsmap.store import reads
from fewsmap.store.cube import ForecastStore, RunInfo
from fewsmap.store.geometry import GridCell

__all__ = ["GridCell", "find_cell", "layer_values", "read_cell", "read_components", "step_slots"]


def find_cell(store: ForecastStore, crs: str, x: float, y: float) -> GridCell | None:
    """Find the grid cell containing (or nearest to) a point (`GridGeometry.cell_at`).

    Parameters
    ----------
    store
        The forecast cube.
    crs
        The point's CRS as an authority code (``EPSG:3857``, ``EPSG:4326``, ``OGC:CRS84`` …).
    x, y
        The point in ``crs``, easting/longitude first whatever the CRS's axis order.

    Returns
    -------
    GridCell or None
        The cell, or None when the point lies more than half a cell outside the grid or
        cannot be expressed in the grid's CRS.
    """
    return store.geometry.cell_at(crs, x, y)


def read_cell(store: ForecastStore, variable: str, cell: GridCell, run: RunInfo,
              valid_times: np.ndarray | None = None,
              labels: Sequence[Sequence[int]] = ()) -> np.ndarray:
    """Read the values of ``variable`` at ``cell`` for some valid times of one run
    (`fewsmap.store.reads.read_block`: one value per chunk holding the cell).

    Parameters
    ----------
    store
        The forecast cube.
    variable
        A forecast variable of the store.
    cell
        The cell, from `find_cell` on the same store.
    run
        A published run of the store.
    valid_times
        Valid times of the run to read (datetime64); None reads all, in time order.
    labels
        Store indices along each dimension between ``step`` and the grid (members, levels),
        in the variable's dimension order: one sequence per dimension.

    Returns
    -------
    numpy.ndarray
        float32 of shape ``(len(valid_times), *map(len, labels))``; NaN where there is no
        data (a missing value, or a chunk never written).

    Raises
    ------
    KeyError
        If a valid time is not one of the run's, or ``labels`` does not give every
        dimension of the variable.
    """
    dims = store.dims(variable)[2:-2]
    if len(labels) != len(dims):
        raise KeyError(f"'{variable}' has dimensions {list(dims)} between step and the grid; "
                       f"got {len(labels)} label lists")
    steps = step_slots(run, valid_times)
    values = reads.read_block(store, variable, run.slot, steps, labels, np.array([cell.row]),
                              np.array([cell.col]))
    return values.reshape((steps.size, *(len(lab) for lab in labels)))


def step_slots(run: RunInfo, valid_times: np.ndarray | None) -> np.ndarray:
    """The store step indices of ``valid_times`` of ``run`` (None: every step).

    Raises
    ------
    KeyError
        If a valid time is not one of the run's.
    """
    if valid_times is None or valid_times is run.valid_times:  # every step (read-only)
        return np.asarray(run.step_slots, dtype=np.int64)
    wanted = np.asarray(valid_times, dtype="datetime64[s]").ravel()
    if wanted.size == run.valid_times.size and (wanted == run.valid_times).all():
        return np.asarray(run.step_slots, dtype=np.int64)  # every step (a series of runs)
    where = np.searchsorted(run.valid_times, wanted)
    inside = where < run.valid_times.size
    found = np.zeros(wanted.shape, dtype=bool)
    found[inside] = run.valid_times[where[inside]] == wanted[inside]
    if not found.all():
        missing = wanted[~found][0]
        raise KeyError(f"run {run.label} has no valid time {missing}Z")
    return np.asarray(run.step_slots[where], dtype=np.int64)


def read_components(
    store: ForecastStore, variables: Sequence[str], cell: GridCell, run: RunInfo,
    valid_times: np.ndarray | None = None, labels: Sequence[Sequence[int]] = (),
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Read a layer's value at ``cell``: a scalar, or the speed of a (u, v) vector.

    Parameters are those of `read_cell`; ``variables`` is one variable or a (u, v) pair.

    Returns
    -------
    tuple
        The values (the speed ``hypot(u, v)`` for a pair; float32, NaN where missing) and,
        for a pair, each component's values by variable name (empty for a scalar).
    """
    read = {name: read_cell(store, name, cell, run, valid_times, labels) for name in variables}
    return layer_values(variables, read)


def layer_values(variables: Sequence[str], read: dict[str, np.ndarray]
                 ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """A layer's values from its variables' values ``read``: a scalar's own, or the speed
    of a (u, v) pair and each component (as `read_components` returns them)."""
    if len(variables) == 1:
        return read[variables[0]], {}
    u, v = (read[name] for name in variables)
    return np.hypot(u, v).astype(np.float32), read
