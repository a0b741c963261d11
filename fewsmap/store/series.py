"""The time-chunked copy of a forecast variable: a point's values of one run kept together.

A variable's chunks hold one (run, step, member, level) field each, which is what maps read;
a time series at a point needs one value from each of them: 730 chunk files for 10 runs ×
73 steps, 52.6 ms over HTTP. So the writer also writes ``<variable>.series``
(`fewsmap.store.layout.series_name`): the same values with dimensions (run, y, x, step,
members…, levels…), in shards of 512 × 512 cells × 128 steps with inner chunks of 32 × 32
cells × 128 steps, from which a series reads one inner chunk per run (and member, level).

It is written into the run's slot after the variable's own chunks and from them, before
the publish, so readers see both or neither; the run record lists the variables it holds
(``"series"``), as runs written before have none. Small fields need no copy: their chunks
already hold a run's steps together (`fewsmap.store.layout.data_chunks`).
docs/design/points.md has the measurements.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import zarr

from fewsmap.store.backend import backend_of
from fewsmap.store.cube import array_of, dimension_names, quiet_zarr
from fewsmap.store.layout import (
    SERIES_RECORD,
    SERIES_SHARD,
    data_codec,
    has_field_blocks,
    series_chunks,
    series_dims,
    series_name,
)

if TYPE_CHECKING:
    from fewsmap.store.writer import Executor

RECORD_KEY = SERIES_RECORD


@dataclass(frozen=True)
class SeriesWrite:
    """One shard's worth of a run's copy: one member/level combination, one spatial tile of
    `SERIES_SHARD` cells, every step (self-contained, so a dask worker can do it)."""

    store: str
    variable: str
    slot: int
    labels: tuple[int, ...]
    rows: slice
    cols: slice


def write_copies(group: zarr.Group, store: str, slot: int,
                 labels: Mapping[str, Sequence[np.ndarray]], executor: Executor) -> list[str]:
    """Write the time-chunked copy of each variable whose fields need one into ``slot``.

    Parameters
    ----------
    group
        The store's root group, open for writing.
    store
        The store's location as another process names it.
    slot
        The run's slot, whose chunks of every variable are written.
    labels
        By variable, the store indices along each member/level dimension the run wrote.
    executor
        Where the shards are written.

    Returns
    -------
    list of str
        The variables given a copy of this run (for the run record).
    """
    writes: list[SeriesWrite] = []
    for variable, indices in labels.items():
        main = array_of(group, variable)
        if has_field_blocks(main.chunks):
            continue
        _create(group, variable, main)
        rows, cols = main.shape[-2:]
        writes += [SeriesWrite(store, variable, slot, tuple(map(int, combo)),
                               slice(r, min(r + SERIES_SHARD, rows)),
                               slice(c, min(c + SERIES_SHARD, cols)))
                   for combo in itertools.product(*indices)
                   for r in range(0, rows, SERIES_SHARD) for c in range(0, cols, SERIES_SHARD)]
    executor.map(write_shard, writes)
    return sorted({w.variable for w in writes})


def _create(group: zarr.Group, variable: str, main: zarr.Array[Any]) -> None:
    """Create the copy of ``variable`` beside it (same axes, grown with them), if absent."""
    name = series_name(variable)
    if name in group:
        return
    dims = dimension_names(main)
    inner, shards = series_chunks(main.ndim)
    group.create_array(name, shape=series_dims(tuple(main.shape)), chunks=inner, shards=shards,
                       dtype="float32", fill_value=np.nan, dimension_names=series_dims(dims),
                       attributes={"long_name": f"time-chunked copy of {variable}"},
                       compressors=data_codec())


def write_shard(write: SeriesWrite) -> None:
    """Read one tile of a run's fields (every step) from the variable, write it to the copy."""
    with quiet_zarr():
        group = zarr.open_group(backend_of(write.store).zarr_store(writable=True), mode="r+",
                                use_consolidated=False)
    main = array_of(group, write.variable)
    every_step = slice(None)
    labels = [slice(n, n + 1) for n in write.labels]  # kept as axes: moved as one block
    source: tuple[int | slice, ...] = (write.slot, every_step, *labels, write.rows, write.cols)
    target: tuple[int | slice, ...] = (write.slot, write.rows, write.cols, every_step, *labels)
    values = np.asarray(main[source])
    array_of(group, series_name(write.variable))[target] = np.moveaxis(values, (-2, -1), (0, 1))
