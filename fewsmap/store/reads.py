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
from fewsmap.store.layout import series_dims, series_name

MAX_RUNS = 4  # runs of consecutive indices along one axis read one by one


def read_window(store: ForecastStore, variable: str, prefix: Sequence[int], rows: np.ndarray,
                cols: np.ndarray, *, direct: bool = True) -> np.ndarray:
    """Read ``store[variable][(*prefix, rows, cols)]``, rows × columns by store index.

    Contiguous index runs (either direction, e.g. the north-to-south rows of most grids) are
    read as plain slices and flipped after reading, 2.7-3.3x faster than zarr's orthogonal
    indexing (benchmarks/results/suite.md); an axis of up to `MAX_RUNS` such runs (a 0..360
    longitude axis drawn across 0°) is read run by run, any other by orthogonal indexing.

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
    values = _window(store, variable, prefix, np.asarray(rows), np.asarray(cols),
                     _reader(store, variable, direct))
    return _missing_as_nan(store.array(variable), values)


def _window(store: ForecastStore, variable: str, prefix: Sequence[int], rows: np.ndarray,
            cols: np.ndarray, reader: DirectReader | None) -> np.ndarray:
    """``store[variable][(*prefix, rows, cols)]`` as stored (`read_window`)."""
    row_runs, col_runs = _runs(rows), _runs(cols)
    if row_runs is None or col_runs is None:
        return np.asarray(store.array(variable).oindex[(*prefix, rows, cols)])
    if len(row_runs) == len(col_runs) == 1:  # the usual window: no wrap
        return _read_run(store, variable, prefix, row_runs[0], col_runs[0], reader)
    return np.block([[_read_run(store, variable, prefix, r, c, reader) for c in col_runs]
                     for r in row_runs])


def _read_run(store: ForecastStore, variable: str, prefix: Sequence[int], rows: slice,
              cols: slice, reader: DirectReader | None) -> np.ndarray:
    """Read the window of a run of rows × a run of columns (a negative step: flipped)."""
    keys = (_ascending(rows), _ascending(cols))
    values = reader.read_window(tuple(prefix), *keys) if reader is not None else None
    if values is None:
        values = np.asarray(store.array(variable).oindex[(*prefix, *keys)])
    return values[_flip(rows), _flip(cols)]


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
    copy = store.series_copy(variable, slot) if rows.size == cols.size == 1 else None
    line = None
    if copy is not None and all(lab.size == 1 for lab in label_lists):
        line = _copy_line(store, copy, slot, steps, [int(lab[0]) for lab in label_lists],
                          int(rows[0]), int(cols[0]), direct)
    prefixes = [] if line is not None else [(slot, *rest) for rest in itertools.product(
        steps.tolist(), *(lab.tolist() for lab in label_lists))]
    if line is not None:
        values = line
    elif copy is not None:
        # The run's time-chunked copy: one inner chunk per member/level, not one per value.
        values = _read_series(store, copy, slot, int(rows[0]), int(cols[0]), steps,
                              label_lists, prefixes, direct)
    elif reader is not None and rows.size == 1 and cols.size == 1:
        # One blosc block per chunk holding the cell.
        values = reader.read_items([(*prefix, int(rows[0]), int(cols[0]))
                                    for prefix in prefixes])
    elif reader is not None and _reads_windows(reader, rows, cols):
        # A window per field from its chunk files: ~4x faster than zarr for an EDR area
        # (benchmarks/read_paths.py).
        values = np.stack([_window(store, variable, prefix, rows, cols, reader)
                           for prefix in prefixes]) if prefixes else np.empty(shape)
    else:
        (row_key, flip_rows), (col_key, flip_cols) = _as_slice(rows), _as_slice(cols)
        index = (slot, steps, *label_lists, row_key, col_key)
        values = np.asarray(store.array(variable).oindex[index])[..., flip_rows, flip_cols]
    return _missing_as_nan(store.array(variable), values.reshape(shape))


def read_cell_runs(store: ForecastStore, variable: str, runs: Sequence[tuple[int, np.ndarray]],
                   labels: Sequence[int], row: int, col: int) -> list[np.ndarray | None]:
    """A cell's values of one member/level combination at the steps of several runs, read
    from the time-chunked copy in one pass (`fewsmap.store.series`: one inner chunk per run).

    Parameters
    ----------
    store, variable
        The forecast cube and one of its forecast variables.
    runs
        Each run's slot and its store step indices.
    labels
        One store index along each dimension between step and the grid (members, levels).
    row, col
        The cell's store row and column.

    Returns
    -------
    list
        Per run, float32 values at its steps (NaN where the cube has no value), or None
        where the copy does not hold the run, cannot be read directly, or keeps its steps
        in more than one inner chunk: `read_block` reads those.
    """
    # The runs the copy holds, as lines of the copy: the cell's steps of each run.
    lines = {k: (series_dims((slot, int(steps[0]), *labels, row, col)), steps)
             for k, (slot, steps) in enumerate(runs)
             if steps.size and store.series_copy(variable, slot) is not None}
    reader = store.reader(series_name(variable)) if lines else None
    if reader is None:
        return [None] * len(runs)
    array = store.array(variable)
    read = dict(zip(lines, reader.read_lines(list(lines.values()), 3), strict=True))
    return [None if (line := read.get(k)) is None else _missing_as_nan(array, line)
            for k in range(len(runs))]


def _copy_line(store: ForecastStore, copy: str, slot: int, steps: np.ndarray,
               labels: Sequence[int], row: int, col: int, direct: bool = True
               ) -> np.ndarray | None:
    """A cell's values at ``steps`` of one member/level combination of run ``slot``, read
    directly from the time-chunked copy ``copy``, where they lie together in one inner
    chunk; None where the copy is not read directly or keeps them in several."""
    reader = _reader(store, copy, direct)
    if reader is None or not steps.size:
        return None
    return reader.read_lines([(series_dims((slot, int(steps[0]), *labels, row, col)), steps)],
                             3)[0]


def _read_series(store: ForecastStore, copy: str, slot: int, row: int, col: int,
                 steps: np.ndarray, labels: Sequence[np.ndarray],
                 prefixes: Sequence[tuple[int, ...]], direct: bool) -> np.ndarray:
    """A cell's values at ``steps`` × ``labels`` of one run from a time-chunked copy, in the
    order of ``prefixes`` (`fewsmap.store.series`)."""
    reader = _reader(store, copy, direct)
    if reader is not None:
        index = np.asarray(prefixes, dtype=np.int64).reshape(len(prefixes), -1)
        cells = np.broadcast_to(np.array([[row], [col]]), (2, len(prefixes)))
        # The copy's index order (`series_dims`): run, row, column, step, members, levels.
        columns = series_dims((*index.T[:1], *index.T[1:], *cells))
        return reader.read_items(np.column_stack(columns))
    return np.asarray(store.array(copy).oindex[(slot, row, col, steps, *labels)])


def _reads_windows(reader: DirectReader, rows: np.ndarray, cols: np.ndarray) -> bool:
    """Tell whether ``reader`` reads each field's window of these cells itself: chunks that
    are not sharded, and rows and columns in few runs."""
    return reader.inner_shape is None and _runs(rows) is not None and _runs(cols) is not None


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


def _runs(index: np.ndarray) -> list[slice] | None:
    """An index as at most `MAX_RUNS` runs of consecutive indices, each a slice of step 1 or
    -1 (``slice(5, 1, -1)``: 5, 4, 3, 2); None for an index of more runs."""
    if not index.size:
        return None
    step = np.diff(index)
    if (step == 1).all() or (step == -1).all():  # the usual window: one run
        return [_run(index)]
    # A run breaks where the step is not ±1 or changes sign.
    breaks = np.flatnonzero((np.abs(step) != 1) | np.r_[False, step[1:] != step[:-1]]) + 1
    return [_run(part) for part in np.split(index, breaks)] if breaks.size < MAX_RUNS else None


def _run(part: np.ndarray) -> slice:
    """The slice (step 1 or -1) of a run of consecutive indices."""
    first, last = int(part[0]), int(part[-1])
    direction = -1 if last < first else 1
    return slice(first, last + direction, direction)


def _as_slice(index: np.ndarray) -> tuple[slice | np.ndarray, slice]:
    """An index of one run of consecutive indices as an ascending slice and what reverses
    its read into the order wanted; any other index as it is."""
    runs = _runs(index)
    if runs is None or len(runs) != 1:
        return index, slice(None)
    return _ascending(runs[0]), _flip(runs[0])


def _ascending(run: slice) -> slice:
    """The ascending slice over the indices of a run (of step 1 or -1)."""
    return slice(run.stop + 1, run.start + 1) if run.step < 0 else run


def _flip(run: slice) -> slice:
    """What reverses a read of ``_ascending(run)`` into the order of ``run``."""
    return slice(None, None, -1 if run.step < 0 else 1)
