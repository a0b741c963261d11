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
        values = np.empty(len(points), dtype=self.dtype)
        for i, point in enumerate(points):
            values[i] = self._item(point)
        return values

    def _item(self, point: Sequence[int]) -> Any:
        chunk = [p // n for p, n in zip(point, self.chunk_shape, strict=True)]
        inner = [p % n for p, n in zip(point, self.chunk_shape, strict=True)]
        offset = int(np.ravel_multi_index(inner, self.chunk_shape)) * self.dtype.itemsize
        path = self.folder.joinpath("c", *map(str, chunk))
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            return self.fill
        try:
            raw = _read_bytes(fd, offset, self.dtype.itemsize)
        finally:
            os.close(fd)
        return np.frombuffer(raw, dtype=self.dtype)[0]


def _read_bytes(fd: int, offset: int, size: int) -> bytes:
    """``size`` bytes at ``offset`` of the uncompressed chunk in the blosc frame ``fd``."""
    version, codec_version, flags, typesize, nbytes, blocksize, cbytes = HEADER.unpack(
        os.pread(fd, HEADER.size, 0))
    if flags & MEMCPYED:
        return os.pread(fd, size, HEADER.size + offset)
    blocks = -(-nbytes // blocksize)
    block = offset // blocksize
    length = min(blocksize, nbytes - block * blocksize)
    if length < blocksize:  # a short last block is coded differently: decode the whole frame
        return bytes(blosc.decompress(os.pread(fd, cbytes, 0))[offset:offset + size])
    table = os.pread(fd, OFFSET.size * min(2, blocks - block), HEADER.size + OFFSET.size * block)
    start = OFFSET.unpack_from(table)[0]
    end = OFFSET.unpack_from(table, OFFSET.size)[0] if block + 1 < blocks else cbytes
    compressed = os.pread(fd, end - start, start)
    # The block alone, as a one-block frame: the same flags and sizes, one offset just past
    # the header.
    frame = (HEADER.pack(version, codec_version, flags, typesize, blocksize, blocksize,
                         HEADER.size + OFFSET.size + len(compressed))
             + OFFSET.pack(HEADER.size + OFFSET.size) + compressed)
    inside = offset - block * blocksize
    return bytes(blosc.decompress(frame)[inside:inside + size])
