"""Read data chunks straight from their files: whole windows, or single values block by block.

zarr-python reads through an event loop in another thread and its codec pipeline, which
costs about 0.5 ms per call beyond the decompression itself: a third of a 256 × 256 tile's
render. The chunks fewsmap writes are plain files (default chunk keys, codecs ``bytes``
little-endian + ``blosc``), so a window is read by decompressing the chunk files it overlaps
with numcodecs directly.

A time series needs one value from each of hundreds of chunks. A blosc chunk is a sequence of
independently compressed blocks with a table of their offsets, so one value needs two small
``pread`` calls and one block's decompression: with the 64 KiB blocks new stores are written
with (``layout.data_codec``), about 16x faster per value than decoding the 1 MB chunk.

Any other layout gets None from `DirectReader.of`, and the caller reads through zarr.
Files are opened under the store's one rule (`fewsmap.store.files`): a chunk leading out of
the store is refused, a damaged one fails as a `StoreError` (code ``StorageError``).
"""

from __future__ import annotations

import bisect
import itertools
import os
import struct
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numcodecs import blosc

from fewsmap.store.files import MISSING, StoreFiles

# Blosc 1 frame header: version, codec version, flags, type size, uncompressed bytes,
# block size, compressed bytes; then (unless stored raw) one int32 offset per block.
HEADER = struct.Struct("<BBBBiii")
OFFSET = struct.Struct("<i")
MEMCPYED = 0x02  # the flag of a chunk stored uncompressed after the header
# The header and the offsets of up to this many blocks are read at once (64 KiB blocks of a
# 1 MiB chunk: 16).
PREFETCH_BLOCKS = 64


class DirectReader:
    """Reads windows and items of one zarr array from its chunk files (`DirectReader.of`)."""

    def __init__(self, files: StoreFiles, name: str, chunk_shape: tuple[int, ...],
                 dtype: np.dtype[Any], fill_value: Any) -> None:
        self.files = files
        self.name = name
        self.chunk_shape = chunk_shape
        self.dtype = dtype
        self.fill = np.asarray(fill_value, dtype=dtype)

    @classmethod
    def of(cls, store: Path | StoreFiles, name: str, metadata: Any) -> DirectReader | None:
        """A reader for the array ``name`` of the store folder ``store`` if its chunks are
        laid out as fewsmap writes them."""
        try:
            codecs = [codec.to_dict() for codec in metadata.codecs]
            key_encoding = metadata.chunk_key_encoding.to_dict()
            chunk_shape = tuple(int(n) for n in metadata.chunk_grid.chunk_shape)
            dtype = np.dtype(metadata.data_type.to_native_dtype())
        except (AttributeError, TypeError, ValueError):
            return None
        plain = (
            [c["name"] for c in codecs] == ["bytes", "blosc"]
            and codecs[0].get("configuration", {}).get("endian", "little") == "little"
            and key_encoding.get("name") == "default"
            and key_encoding.get("configuration", {}).get("separator", "/") == "/"
        )
        if not plain:
            return None
        files = store if isinstance(store, StoreFiles) else StoreFiles(store)
        return cls(files, name, chunk_shape, dtype.newbyteorder("<"), metadata.fill_value)

    def read_window(self, prefix: Sequence[int], rows: slice, cols: slice) -> np.ndarray | None:
        """``array[(*prefix, rows, cols)]`` for unit-step slices within the array, or None
        when the chunks are not single slices along the prefix (zarr then reads it)."""
        if any(n != 1 for n in self.chunk_shape[:-2]):
            return None
        with self.files.reading(self.name):
            return self._read_window(prefix, rows, cols)

    def _read_window(self, prefix: Sequence[int], rows: slice, cols: slice) -> np.ndarray:
        (r0, r1), (c0, c1) = (rows.start, rows.stop), (cols.start, cols.stop)
        chunk_rows, chunk_cols = self.chunk_shape[-2:]
        out = np.full((r1 - r0, c1 - c0), self.fill, dtype=self.dtype)
        folder = f"{self.name}/c/{'/'.join(map(str, prefix))}/"
        row_bytes = chunk_cols * self.dtype.itemsize
        for row in range(r0 // chunk_rows, (r1 - 1) // chunk_rows + 1):
            top = row * chunk_rows
            y0, y1 = max(r0, top), min(r1, top + chunk_rows)
            for col in range(c0 // chunk_cols, (c1 - 1) // chunk_cols + 1):
                try:  # only the blosc blocks holding rows y0..y1 of the chunk
                    fd = self.files.open(f"{folder}{row}/{col}")
                except MISSING:
                    continue  # never written: the fill value
                try:
                    raw = _read_span(fd, (y0 - top) * row_bytes, (y1 - top) * row_bytes)
                finally:
                    os.close(fd)
                rows_read = np.frombuffer(raw, dtype=self.dtype).reshape(y1 - y0, chunk_cols)
                left = col * chunk_cols
                x0, x1 = max(c0, left), min(c1, left + chunk_cols)
                out[y0 - r0:y1 - r0, x0 - c0:x1 - c0] = rows_read[:, x0 - left:x1 - left]
        return out

    def read_items(self, points: Sequence[Sequence[int]]) -> np.ndarray:
        """The values at ``points`` (full array indices), fill value where no chunk exists."""
        index = np.asarray(points, dtype=np.int64).reshape(len(points), len(self.chunk_shape))
        shape = np.asarray(self.chunk_shape, dtype=np.int64)
        offsets = np.ravel_multi_index((index % shape).T, self.chunk_shape) * self.dtype.itemsize
        folder = f"{self.name}/c/"
        keys = [folder + "/".join(map(str, chunk)) for chunk in (index // shape).tolist()]
        with self.files.reading(self.name):
            raw = b"".join([self._item(key, offset)
                            for key, offset in zip(keys, offsets.tolist(), strict=True)])
            return np.frombuffer(raw, dtype=self.dtype).copy()

    def _item(self, key: str, offset: int) -> bytes:
        try:
            fd = self.files.open(key)
        except MISSING:
            return self.fill.tobytes()
        try:
            value = _read_span(fd, offset, offset + self.dtype.itemsize)
        finally:
            os.close(fd)
        if len(value) != self.dtype.itemsize:  # a short chunk would shift every later value
            raise ValueError(f"chunk {key} ends before item {offset}")
        return value


def _read_span(fd: int, start: int, stop: int) -> bytes:
    """Bytes ``start:stop`` of the uncompressed chunk in the blosc frame ``fd``, decompressing
    only the blocks that hold them."""
    head = os.pread(fd, HEADER.size + OFFSET.size * PREFETCH_BLOCKS, 0)
    version, codec_version, flags, typesize, nbytes, blocksize, cbytes = HEADER.unpack_from(head)
    if flags & MEMCPYED:
        return os.pread(fd, stop - start, HEADER.size + start)
    blocks = -(-nbytes // blocksize)
    first, last = start // blocksize, (stop - 1) // blocksize
    if (first == 0 and last == blocks - 1) or (nbytes % blocksize and last == blocks - 1):
        # All of it, or a short last block (coded differently): decode the whole frame.
        return bytes(blosc.decompress(os.pread(fd, cbytes, 0))[start:stop])
    table_size = HEADER.size + OFFSET.size * blocks
    table = head if len(head) >= table_size else os.pread(fd, table_size, 0)
    offsets = struct.unpack_from(f"<{blocks}i", table, HEADER.size)
    # Threaded compression stores blocks in the order they finished: a block ends where the
    # next stored block begins.
    stored = [*sorted(offsets), cbytes]
    pieces = []
    for begin in offsets[first:last + 1]:
        end = stored[bisect.bisect_right(stored, begin)]
        pieces.append(os.pread(fd, end - begin, begin))
    # Those blocks alone, as a frame of their own: the same flags and block size.
    table_end = HEADER.size + OFFSET.size * len(pieces)
    starts = list(itertools.accumulate((len(piece) for piece in pieces[:-1]),
                                       initial=table_end))
    frame = b"".join([
        HEADER.pack(version, codec_version, flags, typesize, blocksize * len(pieces), blocksize,
                    table_end + sum(map(len, pieces))),
        struct.pack(f"<{len(pieces)}i", *starts), *pieces])
    inside = start - first * blocksize
    return bytes(blosc.decompress(frame)[inside:inside + stop - start])
