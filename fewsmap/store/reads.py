"""One read path for the cube's values: windows of one field, and blocks over times.

Every reader of stored values (maps and tiles, GetFeatureInfo, time series, EDR, exports,
animation and the Python API through them) reads here, and only here is it decided how:
straight from the chunk files (`fewsmap.store.direct`, measured faster on local files: about
0.5 ms less per window, and one blosc block per value of a time series instead of a whole
chunk) where `ForecastStore.reader` offers a reader, else through zarr (any other chunk
layout, and stores the direct reader cannot open, such as object storage). Both return the
same values: float32, NaN where the cube has none (a chunk never written, NaN, or a fill value
other than NaN, which means "missing").

``direct=False`` reads through zarr whatever the store offers (tests compare both paths).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import zarr

from fewsmap.store.cube import ForecastStore
from fewsmap.store.direct import DirectReader


def read_window(store: ForecastStore, variable: str, prefix: Sequence[int], rows: np.ndarray,
                cols: np.ndarray, *, direct: bool = True) -> np.ndarray:
    """Read ``store[variable][(*prefix, rows, cols)]``, rows × columns by store index.

    Contiguous index runs (either direction, e.g. the north-to-south rows of most grids) are
    read as plain slices and flipped after reading, 2.7-3.3x faster than zarr's orthogonal
    indexing (benchmarks/results/suite.md); other indices (a longitude axis that wraps) are
    read by orthogonal indexing.

    Parameters
    ----------
    store
        The forecast cube.
    variable
        An array of the store (a forecast variable, or a 2-D coordinate with ``prefix=()``).
    prefix
        The index along every dimension before the grid (run slot, step, members, levels).
    rows, cols
        Store row and column indices, in the order wanted.
    direct
        False reads through zarr even where the chunk files could be read directly.

    Returns
    -------
    numpy.ndarray
        float32 (rows, cols), NaN where the cube has no value.
    """
    row_key, flip_rows = _as_slice(np.asarray(rows))
    col_key, flip_cols = _as_slice(np.asarray(cols))
    values = None
    reader = _reader(store, variable, direct)
    if reader is not None and isinstance(row_key, slice) and isinstance(col_key, slice):
        values = reader.read_window(tuple(prefix), row_key, col_key)
    if values is None:
        values = np.asarray(store.array(variable).oindex[(*prefix, row_key, col_key)])
    values = values[::-1 if flip_rows else 1, ::-1 if flip_cols else 1]
    return _missing_as_nan(store.array(variable), values)


def read_block(store: ForecastStore, variable: str, slot: int, steps: np.ndarray,
               labels: Sequence[Sequence[int] | np.ndarray], rows: np.ndarray, cols: np.ndarray, *,
               direct: bool = True) -> np.ndarray:
    """Read the values of one run at some steps, members/levels and cells.

    A single cell (a time series) is read value by value from the blosc block holding it
    where the chunk files can be read directly; anything else by zarr orthogonal indexing,
    which reads only the chunks holding the selected cells.

    Parameters
    ----------
    store, variable
        The forecast cube and one of its forecast variables.
    slot
        The run's slot along the run dimension (`RunInfo.slot`).
    steps
        Store step indices.
    labels
        Store indices along each dimension between step and the grid (members, levels), in
        the variable's dimension order: one sequence per dimension.
    rows, cols
        Store row and column indices.
    direct
        False reads through zarr even where the chunk files could be read directly.

    Returns
    -------
    numpy.ndarray
        float32 of shape ``(steps, *map(len, labels), rows, cols)``, NaN where the cube has
        no value.
    """
    steps = np.asarray(steps, dtype=np.int64).ravel()
    label_lists = [np.asarray(list(lab), dtype=np.int64) for lab in labels]
    rows, cols = np.asarray(rows, dtype=np.int64).ravel(), np.asarray(cols, np.int64).ravel()
    shape = (steps.size, *(lab.size for lab in label_lists), rows.size, cols.size)
    reader = _reader(store, variable, direct)
    if reader is not None and rows.size == 1 and cols.size == 1:
        # One blosc block per value instead of one chunk.
        points = [(slot, *rest, int(rows[0]), int(cols[0]))
                  for rest in itertools.product(steps.tolist(),
                                                *(lab.tolist() for lab in label_lists))]
        values = reader.read_items(points)
    else:
        (row_key, flip_rows), (col_key, flip_cols) = _as_slice(rows), _as_slice(cols)
        index = (slot, steps, *label_lists, row_key, col_key)
        values = np.asarray(store.array(variable).oindex[index])
        values = values[..., ::-1 if flip_rows else 1, ::-1 if flip_cols else 1]
    return _missing_as_nan(store.array(variable), values.reshape(shape))


def _reader(store: ForecastStore, variable: str, direct: bool) -> DirectReader | None:
    """The direct chunk reader of ``variable`` where the store offers one and it is wanted."""
    return store.reader(variable) if direct else None


def _missing_as_nan(array: zarr.Array[Any], values: np.ndarray) -> np.ndarray:
    """float32 values with the array's fill value, where it is not NaN, as NaN."""
    values = np.asarray(values, dtype=np.float32)
    fill = array.metadata.fill_value
    # A fill value other than NaN means "missing".
    if isinstance(fill, int | float | np.number) and math.isfinite(float(fill)):
        values = np.where(values == np.float32(fill), np.float32(np.nan), values)
    return values


def _as_slice(index: np.ndarray) -> tuple[slice | np.ndarray, bool]:
    """A contiguous index as an ascending slice and whether to flip what it reads."""
    if index.size:
        step = np.diff(index)
        if np.all(step == 1):
            return slice(int(index[0]), int(index[-1]) + 1), False
        if np.all(step == -1):
            return slice(int(index[-1]), int(index[0]) + 1), True
    return index.astype(np.int64), False

