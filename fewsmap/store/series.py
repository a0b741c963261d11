"""The time-chunked copy of a forecast variable: a point's values of one run kept together.

A variable's chunks hold one (run, step, member, level) field each, which is what maps read;
a time series at a point needs one value from each of them: 730 chunk files for 10 runs ×
73 steps, 52.6 ms over HTTP. So the writer also writes ``<variable>.series``
(`fewsmap.store.layout.series_name`): the same values with dimensions (run, y, x, step,
members…, levels…), in shards of 512 × 512 cells × up to 128 steps with inner chunks of 8 × 8
to 32 × 32 cells × those steps (`layout.series_tile`), from which a series reads one inner
chunk per run (and member, level).

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
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np
import zarr
from numcodecs import Blosc
from numcodecs.checksum32 import CRC32C

from fewsmap.store.backend import backend_of
from fewsmap.store.chunk_writes import store_objects
from fewsmap.store.cube import array_of, dimension_names, quiet_zarr
from fewsmap.store.direct import DirectReader
from fewsmap.store.files import StoreFiles
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
# An empty inner chunk's index entry, and the crc32c after the index (zarr's sharding codec).
EMPTY = 2**64 - 1
CHECKSUM_BYTES = 4


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
                 labels: Mapping[str, Sequence[tuple[int, ...]]], executor: Executor
                 ) -> list[str]:
    """Write the time-chunked copy of the run in ``slot`` from the variable's chunks, for
    the member/level combinations no piece wrote from memory (`write_piece_copy`).

    Parameters
    ----------
    group
        The store's root group, open for writing.
    store
        The store's location as another process names it.
    slot
        The run's slot, whose chunks of every variable are written.
    labels
        By variable, the store indices of the member/level combinations to copy.
    executor
        Where the shards are written.

    Returns
    -------
    list of str
        The variables given a copy of this run here (for the run record).
    """
    writes: list[SeriesWrite] = []
    for variable, combos in labels.items():
        main = array_of(group, variable)
        if not needs_copy(main):
            continue
        create_copy(group, variable)
        rows, cols = main.shape[-2:]
        writes += [SeriesWrite(store, variable, slot, tuple(map(int, combo)),
                               slice(r, min(r + SERIES_SHARD, rows)),
                               slice(c, min(c + SERIES_SHARD, cols)))
                   for combo in combos
                   for r in range(0, rows, SERIES_SHARD) for c in range(0, cols, SERIES_SHARD)]
    executor.map(write_shard, writes)
    return sorted({w.variable for w in writes})


def needs_copy(main: zarr.Array[Any]) -> bool:
    """Whether a variable's fields need a time-chunked copy: small fields' chunks already
    hold a run's steps together (`fewsmap.store.layout.data_chunks`)."""
    return not has_field_blocks(main.chunks)


def create_copy(group: zarr.Group, variable: str) -> None:
    """Create the copy of ``variable`` beside it (same axes, grown with them), if absent."""
    name = series_name(variable)
    if name in group:
        return
    main = array_of(group, variable)
    dims = dimension_names(main)
    inner, shards = series_chunks(main.ndim, main.shape[1])
    group.create_array(name, shape=series_dims(tuple(main.shape)), chunks=inner, shards=shards,
                       dtype="float32", fill_value=np.nan, dimension_names=series_dims(dims),
                       attributes={"long_name": f"time-chunked copy of {variable}"},
                       compressors=data_codec())


def write_piece_copy(group: zarr.Group, variable: str, slot: int, values: np.ndarray,
                     where: Sequence[np.ndarray]) -> None:
    """Write the copy's shards of a piece that holds every step the run has of its
    members/levels, from its values in memory (no read back of what was just written).

    ``values`` are (steps, members/levels…, y, x) at store indices ``where`` (steps first).
    """
    copy = array_of(group, series_name(variable))
    steps = copy.shape[3]  # the copy's dimensions: run, y, x, step, members/levels…
    rows, cols = values.shape[-2:]
    every_step = np.array_equal(where[0], np.arange(steps))
    for at in itertools.product(*(range(len(w)) for w in where[1:])):
        index: tuple[slice | int, ...] = (slice(None), *at)
        field = values[index]
        if not every_step:  # the store's other steps: NaN, as their chunks read
            full = np.full((steps, rows, cols), np.nan, dtype="float32")
            full[where[0]] = field
            field = full
        labels = tuple(int(w[k]) for w, k in zip(where[1:], at, strict=True))
        for r, c in itertools.product(range(0, rows, SERIES_SHARD), range(0, cols, SERIES_SHARD)):
            store_objects(group.store, _tile_shards(
                copy, slot, labels, r, c, field[:, r:r + SERIES_SHARD, c:c + SERIES_SHARD]))


def write_shard(write: SeriesWrite) -> None:
    """Read one tile of a run's fields (every step) from the variable, write it to the copy.

    The shards are encoded here rather than by zarr: its sharding codec encodes inner chunks
    one by one in Python, which made the copy cost more than the variable's own write
    (docs/design/points.md). The bytes are what zarr writes and reads: inner chunks encoded
    with the variable's codec, an index of (offset, length) pairs first, then its crc32c.
    """
    backend = backend_of(write.store)
    with quiet_zarr():
        zarr_store = backend.zarr_store(writable=True)
        group = zarr.open_group(zarr_store, mode="r+", use_consolidated=False)
    main = array_of(group, write.variable)
    values = _read_tile(backend.files, main, write)
    store_objects(zarr_store, _tile_shards(array_of(group, series_name(write.variable)),
                                           write.slot, write.labels, write.rows.start,
                                           write.cols.start, values))


def _tile_shards(copy: zarr.Array[Any], slot: int, labels: tuple[int, ...], row: int,
                 col: int, values: np.ndarray) -> list[tuple[str, bytes]]:
    """The copy's shards (key, bytes) of a tile's values (steps, rows, columns; at most a
    shard's cells, starting at cell ``row``, ``col``) of one run and member/level
    combination."""
    steps = copy.chunks[3]  # inner chunks and shards hold as many
    tile = copy.chunks[1]  # as the copy was created (`layout.series_tile`; 32 before 2026-12)
    shards = []
    for first in range(0, values.shape[0], steps):
        shard = encode_shard(values[first:first + steps], steps, tile)
        if shard is not None:
            key = "/".join(map(str, (copy.path, "c", slot, row // SERIES_SHARD,
                                     col // SERIES_SHARD, first // steps, *labels)))
            shards.append((key, shard))
    return shards


def _read_tile(files: StoreFiles | None, main: zarr.Array[Any], write: SeriesWrite
               ) -> np.ndarray:
    """The variable's values of a run over one tile, every step: (steps, rows, columns).

    Local chunk files are read directly (5x faster than zarr here: no event loop and codec
    pipeline per chunk), object storage through zarr.
    """
    reader = None if files is None else DirectReader.of(files, write.variable, main.metadata)
    if reader is not None:
        fields = [reader.read_window((write.slot, step, *write.labels), write.rows, write.cols)
                  for step in range(main.shape[1])]
        found = [field for field in fields if field is not None]
        if len(found) == len(fields):
            return np.stack(found)
    labels = [slice(n, n + 1) for n in write.labels]
    key: tuple[int | slice, ...] = (write.slot, slice(None), *labels, write.rows, write.cols)
    return np.asarray(main[key]).reshape(main.shape[1], *_extent(write))


def _extent(write: SeriesWrite) -> tuple[int, int]:
    return write.rows.stop - write.rows.start, write.cols.stop - write.cols.start


def encode_shard(values: np.ndarray, steps: int, tile: int) -> bytes | None:
    """Encode a tile's values (steps, rows, columns; at most a shard) as one shard of a
    time-chunked copy with inner chunks of ``tile`` × ``tile`` cells; None where every
    value is NaN (no shard, as zarr writes none).

    A band of ``tile`` rows at a time is transposed into one reused buffer of its inner
    chunks (cells × steps each, contiguous), and only inner chunks holding a value are
    compressed: a transposing copy of the whole tile first (17 MB a shard) cost as much in
    page faults as it saved in calls.
    """
    count = SERIES_SHARD // tile
    n, rows, cols = values.shape
    across = -(-cols // tile)
    codec = _inner_codec()
    index = np.full((count * count, 2), EMPTY, dtype="<u8")
    band = np.full((across, tile, tile, steps), np.nan, dtype="<f4")  # steps past n stay NaN
    inner = band[..., :n]
    encoded: list[bytes] = []
    offset = index.nbytes + CHECKSUM_BYTES
    for i in range(-(-rows // tile)):
        part = values[:, i * tile:(i + 1) * tile]
        if part.shape[1:] != (tile, across * tile):  # an edge band: cells past the grid NaN
            edge = np.full((n, tile, across * tile), np.nan, dtype="<f4")
            edge[:, :part.shape[1], :cols] = part
            part = edge
        inner[...] = part.reshape(n, tile, across, tile).transpose(2, 1, 3, 0)
        empty = np.isnan(inner).reshape(across, -1).all(axis=1)
        for j in np.flatnonzero(~empty).tolist():
            data = bytes(codec.encode(band[j]))
            index[i * count + j] = (offset, len(data))
            offset += len(data)
            encoded.append(data)
    if not encoded:
        return None
    return bytes(CRC32C().encode(index.tobytes())) + b"".join(encoded)


@lru_cache(maxsize=1)
def _inner_codec() -> Blosc:
    """The variable's own data codec (`data_codec`), as numcodecs runs it."""
    config = data_codec().to_dict()["configuration"]
    assert isinstance(config, dict)
    return Blosc(cname=str(config["cname"]), clevel=int(config["clevel"]),
                 shuffle=Blosc.SHUFFLE, blocksize=int(config["blocksize"]))
