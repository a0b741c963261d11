"""Write whole fields' chunks without zarr's codec pipeline: blosc in this thread, one store trip.

zarr-python writes a chunk through its event loop, a codec pipeline and a thread hop per
codec: about 3 ms of CPU per 1 MB chunk of a forecast field, of which blosc is 0.8 ms (an
ensemble run of 2 GB spent 9 of its 31 CPU seconds there, benchmarks/results/
ingest_throughput.md). The chunks fewsmap writes hold one field's spatial tile each
(`fewsmap.store.layout.data_chunks`) with codecs ``bytes`` (little-endian) + ``blosc``, so
they are encoded here with numcodecs, the same bytes zarr writes (edge chunks padded with
the fill value, chunks holding nothing but the fill value not written), and stored in one
trip through zarr's store (a folder or object storage alike). Any other layout is written
through zarr.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numba
import numpy as np
import zarr
from numcodecs import Blosc
from zarr.abc.store import Store
from zarr.codecs import BloscCodec, BytesCodec
from zarr.codecs.bytes import Endian
from zarr.core.buffer import default_buffer_prototype
from zarr.core.chunk_key_encodings import DefaultChunkKeyEncoding
from zarr.core.common import concurrent_map
from zarr.core.config import config
from zarr.core.metadata.v3 import ArrayV3Metadata
from zarr.core.sync import sync
from zarr.storage import LocalStore

# Encoded chunks are stored once they add up to this much: a piece of 48 steps × 4 MB fields
# held all its chunks at once (peak RSS of a 10 GB ingest 833 -> 1237 MB).
FLUSH_BYTES = 32 << 20
SHUFFLES = {"noshuffle": Blosc.NOSHUFFLE, "shuffle": Blosc.SHUFFLE,
            "bitshuffle": Blosc.BITSHUFFLE}


def blosc_of(array: zarr.Array[Any]) -> Blosc | None:
    """The numcodecs codec that encodes ``array``'s chunks as zarr does, or None unless its
    codecs are little-endian ``bytes`` + ``blosc`` under the default ``/`` chunk keys."""
    metadata = array.metadata
    if not isinstance(metadata, ArrayV3Metadata):
        return None
    keys = metadata.chunk_key_encoding
    if not (isinstance(keys, DefaultChunkKeyEncoding) and keys.separator == "/"):
        return None
    match metadata.codecs:
        case (BytesCodec() as raw, BloscCodec() as blosc) if raw.endian in (None,
                                                                         Endian.little):
            return Blosc(cname=blosc.cname.value, clevel=blosc.clevel,
                         shuffle=SHUFFLES[blosc.shuffle.value], blocksize=blosc.blocksize,
                         typesize=array.dtype.itemsize)
    return None


def write_fields(array: zarr.Array[Any], slot: int, where: Sequence[np.ndarray | slice],
                 values: np.ndarray) -> None:
    """``array.oindex[(slot, *where)] = values``: whole fields (…, y, x) at store indices
    ``where`` along the axes between the run and the grid.

    Encoded here when every chunk holds one field's tile (`blosc_of`), else by zarr.
    """
    codec = blosc_of(array)
    if codec is None or any(n != 1 for n in array.chunks[:-2]):
        array.oindex[(slot, *where)] = values
        return
    indices = [np.arange(array.shape[k + 1])[w] if isinstance(w, slice) else np.asarray(w)
               for k, w in enumerate(where)]
    rows, cols = array.chunks[-2:]
    ny, nx = array.shape[-2:]
    objects: list[tuple[str, bytes]] = []
    held = 0  # bytes encoded, not yet stored
    chunk = np.empty((rows, cols), dtype=array.dtype.newbyteorder("<"))  # one, reused
    for at in itertools.product(*(range(len(i)) for i in indices)):
        field = values[at]
        prefix = (slot, *(int(i[k]) for i, k in zip(indices, at, strict=True)))
        for row, col in itertools.product(range(0, ny, rows), range(0, nx, cols)):
            tile = field[row:row + rows, col:col + cols]
            if not _holds_value(tile, array.fill_value):
                continue  # as zarr: a chunk of the fill value only is not stored
            if tile.shape != (rows, cols):  # an edge chunk: zarr pads it with the fill value
                chunk[...] = array.fill_value
            chunk[:tile.shape[0], :tile.shape[1]] = tile
            key = array.metadata.encode_chunk_key((*prefix, row // rows, col // cols))
            objects.append((f"{array.path}/{key}", bytes(codec.encode(chunk))))
            held += len(objects[-1][1])
            if held >= FLUSH_BYTES:
                store_objects(array.store, objects)
                objects, held = [], 0
    store_objects(array.store, objects)


def _holds_value(tile: np.ndarray, fill: Any) -> bool:
    """Whether a tile holds anything but the fill value (NaN equal to NaN, as zarr has it)."""
    if isinstance(fill, float | np.floating) and np.isnan(fill) and tile.dtype == np.float32:
        return bool(_any_number(tile))
    return not np.array_equal(tile, np.broadcast_to(np.asarray(fill, tile.dtype), tile.shape),
                              equal_nan=tile.dtype.kind in "fc")


@numba.njit(nogil=True, cache=True)
def _any_number(tile: np.ndarray) -> bool:
    """Whether a float32 tile holds any value that is not NaN; stops at the first (a field's
    tile usually holds one in its first cell: numpy's isnan().all() passes over all of it)."""
    for row in range(tile.shape[0]):
        for value in tile[row]:
            if value == value:
                return True
    return False


def store_objects(store: Store, objects: Sequence[tuple[str, bytes]]) -> None:
    """Put ``objects`` (key, bytes) into a zarr store: files written in this thread in a
    folder (zarr's event loop cost a thread hop and a wake-up per file), else concurrently
    in one trip through zarr's event loop.

    Files are written in place, not renamed into it as zarr does: they go into a run slot
    no reader sees until the run is published, after they are flushed
    (`fewsmap.store.durable`); a writer that fails or dies leaves them to be deleted with the
    slot (`fewsmap.store.writer.recover`).
    """
    if not objects:
        return
    if isinstance(store, LocalStore):
        _write_files(Path(store.root), objects)
        return
    prototype = default_buffer_prototype()

    async def put(key: str, data: bytes) -> None:
        await store.set(key, prototype.buffer.from_bytes(data))

    sync(concurrent_map(objects, put, config.get("async.concurrency")))


def _write_files(root: Path, objects: Sequence[tuple[str, bytes]]) -> None:
    """Write each object as the file ``root/key``, creating the folders it needs."""
    made: set[Path] = set()
    for key, data in objects:
        path = root / key
        if path.parent not in made:
            path.parent.mkdir(parents=True, exist_ok=True)
            made.add(path.parent)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
        finally:
            os.close(fd)
