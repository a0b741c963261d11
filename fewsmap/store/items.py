"""Read single values out of data chunks, decompressing only the blosc block that holds each.

A time series needs one value from each of hundreds of chunks. zarr decodes every chunk
whole (a 512 × 512 float32 tile, 1 MB), about 0.8 ms a value here; a blosc chunk is a
sequence of independently compressed blocks with a table of their offsets, so one block can
be read with two small ``pread`` calls and decompressed alone. With the 64 KiB blocks new
stores are written with (``layout.data_codec``) that is about 16x faster per value.

Only the layout fewsmap writes is read this way: the default chunk key encoding and the
codecs ``bytes`` (little-endian) + ``blosc``. Anything else returns None, and the caller reads
through zarr.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numcodecs import blosc

# Blosc 1 frame header: version, codec version, flags, type size, uncompressed bytes,
# block size, compressed bytes; then (unless stored raw) one int32 offset per block.
HEADER = struct.Struct("<BBBBiii")
OFFSET = struct.Struct("<i")
MEMCPYED = 0x02  # the flag of a chunk stored uncompressed after the header
# The header and the offsets of up to this many blocks are read at once (64 KiB blocks of a
# 1 MiB chunk: 16).
PREFETCH_BLOCKS = 64


class ItemReader:
    """Reads items of one zarr array from its chunk files; build with `ItemReader.of`."""

    def __init__(self, folder: Path, chunk_shape: tuple[int, ...], dtype: np.dtype[Any],
                 fill_value: Any) -> None:
        self.folder = folder
        self.chunk_shape = chunk_shape
        self.dtype = dtype
        self.fill = np.asarray(fill_value, dtype=dtype)

    @classmethod
    def of(cls, store_path: Path, name: str, metadata: Any) -> ItemReader | None:
        """A reader for the array ``name`` if its chunks are laid out as fewsmap writes them."""
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
        return cls(store_path / name, chunk_shape, dtype.newbyteorder("<"),
                   metadata.fill_value)

    def read(self, points: Sequence[Sequence[int]]) -> np.ndarray:
        """The values at ``points`` (full array indices), fill value where no chunk exists."""
        index = np.asarray(points, dtype=np.int64).reshape(len(points), len(self.chunk_shape))
        shape = np.asarray(self.chunk_shape, dtype=np.int64)
        offsets = np.ravel_multi_index((index % shape).T, self.chunk_shape) * self.dtype.itemsize
        folder = f"{self.folder}/c/"
        paths = [folder + "/".join(map(str, chunk)) for chunk in (index // shape).tolist()]
        raw = [self._item(path, offset)
               for path, offset in zip(paths, offsets.tolist(), strict=True)]
        values = np.frombuffer(b"".join(raw), dtype=self.dtype)
        return values.copy()

    def _item(self, path: str, offset: int) -> bytes:
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            return self.fill.tobytes()
        try:
            return _read_bytes(fd, offset, self.dtype.itemsize)
        finally:
            os.close(fd)


def _read_bytes(fd: int, offset: int, size: int) -> bytes:
    """``size`` bytes at ``offset`` of the uncompressed chunk in the blosc frame ``fd``."""
    head = os.pread(fd, HEADER.size + OFFSET.size * PREFETCH_BLOCKS, 0)
    version, codec_version, flags, typesize, nbytes, blocksize, cbytes = HEADER.unpack_from(head)
    if flags & MEMCPYED:
        return os.pread(fd, size, HEADER.size + offset)
    blocks = -(-nbytes // blocksize)
    block = offset // blocksize
    length = min(blocksize, nbytes - block * blocksize)
    if length < blocksize:  # a short last block is coded differently: decode the whole frame
        return bytes(blosc.decompress(os.pread(fd, cbytes, 0))[offset:offset + size])
    wanted = HEADER.size + OFFSET.size * (block + 2)
    table = head if len(head) >= wanted else os.pread(fd, wanted, 0)
    start = OFFSET.unpack_from(table, HEADER.size + OFFSET.size * block)[0]
    end = (OFFSET.unpack_from(table, HEADER.size + OFFSET.size * (block + 1))[0]
           if block + 1 < blocks else cbytes)
    compressed = os.pread(fd, end - start, start)
    # The block alone, as a one-block frame: the same flags and sizes, one offset just past
    # the header.
    frame = (HEADER.pack(version, codec_version, flags, typesize, blocksize, blocksize,
                         HEADER.size + OFFSET.size + len(compressed))
             + OFFSET.pack(HEADER.size + OFFSET.size) + compressed)
    inside = offset - block * blocksize
    return bytes(blosc.decompress(frame)[inside:inside + size])
