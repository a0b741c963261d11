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

Values that share a chunk are read together: the blocks spanning them are decompressed once
(a small field's chunk holds a run's steps, `fewsmap.store.layout.data_chunks`). A sharded
array (a variable's time-chunked copy, `fewsmap.store.series`) is read the same way inside
its inner chunks, found through the shard index at the start of the file; a small inner
chunk (the copy's 20 KiB) is read with one ``pread`` and decompressed whole.

Any other layout gets None from `DirectReader.of`, and the caller reads through zarr.
Files are opened under the store's one rule (`fewsmap.store.files`): a chunk leading out of
the store is refused, a damaged one fails as a `StoreError` (code ``StorageError``).
"""

from __future__ import annotations

import bisect
import itertools
import math
import os
import struct
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numcodecs import blosc

from fewsmap.store.chunk_cache import BLOCKS
from fewsmap.store.files import MISSING, StoreFiles
from fewsmap.store.layout import SERIES_SUFFIX

# Blosc 1 frame header: version, codec version, flags, type size, uncompressed bytes,
# block size, compressed bytes; then (unless stored raw) one int32 offset per block.
HEADER = struct.Struct("<BBBBiii")
OFFSET = struct.Struct("<i")
# A shard index entry: offset and length of an inner chunk, both all ones where it is empty.
SHARD_ENTRY = struct.Struct("<QQ")
EMPTY_ENTRY = (2**64 - 1, 2**64 - 1)
MEMCPYED = 0x02  # the flag of a chunk stored uncompressed after the header
# The header and the offsets of up to this many blocks are read at once (64 KiB blocks of a
# 1 MiB chunk: 16).
PREFETCH_BLOCKS = 64
# Step arrays whose line layout a reader keeps (`DirectReader._line`): a store's runs.
MAX_LINES = 1024
# An inner chunk of up to this many bytes is read whole and decompressed (a time-chunked
# copy's 8 × 8 cells × 80 steps: 20 KiB, one blosc block); a larger one block by block.
WHOLE_INNER_BYTES = 64 * 1024
_READERS = itertools.count()  # tokens of readers keeping blocks


class DirectReader:
    """Reads windows and items of one zarr array from its chunk files (`DirectReader.of`)."""

    def __init__(self, files: StoreFiles, name: str, chunk_shape: tuple[int, ...],
                 dtype: np.dtype[Any], fill_value: Any,
                 inner_shape: tuple[int, ...] | None = None, keep_blocks: bool = False
                 ) -> None:
        self.files = files
        self.name = name
        # What errors name: the variable, also when its time-chunked copy is read.
        self.variable = name.removesuffix(SERIES_SUFFIX)
        self.chunk_shape = chunk_shape  # of a shard, for a sharded array
        self.inner_shape = inner_shape  # of its inner chunks (None: not sharded)
        self.dtype = dtype
        self.fill = np.asarray(fill_value, dtype=dtype)
        self._lines: dict[tuple[str, bytes, int], tuple[int, int, np.ndarray]] = {}
        # Its name in `BLOCKS` where it keeps decompressed blocks of windows (None: not).
        self._token = next(_READERS) if keep_blocks else None

    @classmethod
    def of(cls, store: Path | StoreFiles, name: str, metadata: Any, keep_blocks: bool = False
           ) -> DirectReader | None:
        """A reader for the array ``name`` of the store folder ``store`` if its chunks are
        laid out as fewsmap writes them; ``keep_blocks`` keeps the blocks its windows
        decompress (`_kept_span`: only for a published state's chunks)."""
        try:
            codecs = [codec.to_dict() for codec in metadata.codecs]
            key_encoding = metadata.chunk_key_encoding.to_dict()
            chunk_shape = tuple(int(n) for n in metadata.chunk_grid.chunk_shape)
            dtype = np.dtype(metadata.data_type.to_native_dtype())
        except (AttributeError, TypeError, ValueError):
            return None
        inner_shape = None
        if len(codecs) == 1 and codecs[0]["name"] == "sharding_indexed":
            sharding = codecs[0].get("configuration", {})
            if (sharding.get("index_location") != "start" or not _plain(sharding["codecs"])
                    or [c["name"] for c in sharding.get("index_codecs", ())]
                    != ["bytes", "crc32c"]):
                return None
            codecs, inner_shape = list(sharding["codecs"]), tuple(sharding["chunk_shape"])
        plain = (
            _plain(codecs)
            and key_encoding.get("name") == "default"
            and key_encoding.get("configuration", {}).get("separator", "/") == "/"
        )
        if not plain:
            return None
        files = store if isinstance(store, StoreFiles) else StoreFiles(store)
        return cls(files, name, chunk_shape, dtype.newbyteorder("<"), metadata.fill_value,
                   inner_shape, keep_blocks)

    def read_window(self, prefix: Sequence[int], rows: slice, cols: slice) -> np.ndarray | None:
        """``array[(*prefix, rows, cols)]`` for unit-step slices within the array, or None
        for a sharded array (zarr then reads it).

        A chunk holding several fields (a small field's layout) is read as far as the field's
        rows in it."""
        if self.inner_shape is not None:
            return None
        with self.files.reading(self.variable):
            return self._read_window(prefix, rows, cols)

    def _read_window(self, prefix: Sequence[int], rows: slice, cols: slice) -> np.ndarray:
        (r0, r1), (c0, c1) = (rows.start, rows.stop), (cols.start, cols.stop)
        chunk_rows, chunk_cols = self.chunk_shape[-2:]
        out = np.full((r1 - r0, c1 - c0), self.fill, dtype=self.dtype)
        leading = self.chunk_shape[:-2]
        chunk = "/".join(str(p // n) for p, n in zip(prefix, leading, strict=True))
        folder = f"{self.name}/c/{chunk}/"
        row_bytes = chunk_cols * self.dtype.itemsize
        # Where the field starts in its chunk (0 where a chunk holds one field).
        field = int(np.ravel_multi_index([p % n for p, n in zip(prefix, leading, strict=True)],
                                         leading)) * chunk_rows * row_bytes
        for row in range(r0 // chunk_rows, (r1 - 1) // chunk_rows + 1):
            top = row * chunk_rows
            y0, y1 = max(r0, top), min(r1, top + chunk_rows)
            for col in range(c0 // chunk_cols, (c1 - 1) // chunk_cols + 1):
                # only the blosc blocks holding rows y0..y1 of the chunk
                raw = self._chunk_span(f"{folder}{row}/{col}", field + (y0 - top) * row_bytes,
                                       field + (y1 - top) * row_bytes)
                if raw is None:
                    continue  # never written: the fill value
                rows_read = np.frombuffer(raw, dtype=self.dtype).reshape(y1 - y0, chunk_cols)
                left = col * chunk_cols
                x0, x1 = max(c0, left), min(c1, left + chunk_cols)
                out[y0 - r0:y1 - r0, x0 - c0:x1 - c0] = rows_read[:, x0 - left:x1 - left]
        return out

    def _chunk_span(self, key: str, start: int, stop: int) -> bytes | memoryview | None:
        """Bytes ``start:stop`` of chunk ``key`` uncompressed; None where it was never
        written. A reader that keeps blocks decompresses each one once (`_kept_span`)."""
        if self._token is not None and BLOCKS.max_bytes:
            return self._kept_span(key, start, stop)
        try:
            fd = self.files.open(key)
        except MISSING:
            return None
        try:
            return _read_span(fd, start, stop)
        finally:
            os.close(fd)

    def _kept_span(self, key: str, start: int, stop: int) -> bytes | memoryview | None:
        """`_chunk_span` from the blocks kept in `BLOCKS` under this reader's token, the
        chunk's block table and its other blocks read from the file (and kept) as needed.

        A reader keeping blocks reads one published state (`ForecastStore.reader`), whose
        chunks never change (a run is written to a new slot before it is published), and a
        newer state has new readers: a kept block can never be stale."""
        head_key = (self._token, key)
        head = BLOCKS.get(head_key)
        fd = None
        try:
            if head is None:
                try:
                    fd = self.files.open(key)
                except MISSING:
                    BLOCKS.put(head_key, b"")  # never written (and never will be, here)
                    return None
                head = _frame_head(fd)
                BLOCKS.put(head_key, head)
            if not head:
                return None
            blocksize = HEADER.unpack_from(head)[5]
            first, last = start // blocksize, (stop - 1) // blocksize
            kept = [BLOCKS.get((self._token, key, b)) for b in range(first, last + 1)]
            missing = [first + k for k, block in enumerate(kept) if block is None]
            decoded: dict[int, bytes] = {}
            if missing:  # from the first to the last missing one, in one decompression
                if fd is None:
                    try:
                        fd = self.files.open(key)
                    except MISSING:
                        return None  # deleted since (a retired run): as if never written
                low, high = missing[0], missing[-1]
                data = _decode_blocks(fd, head, low, high)
                for b in range(low, high + 1):
                    decoded[b] = bytes(data[(b - low) * blocksize:(b - low + 1) * blocksize])
                    BLOCKS.put((self._token, key, b), decoded[b])
            blocks = [block if block is not None else decoded[first + k]
                      for k, block in enumerate(kept)]
            inside = start - first * blocksize
            joined = memoryview(blocks[0] if len(blocks) == 1 else b"".join(blocks))
            return joined[inside:inside + stop - start]
        finally:
            if fd is not None:
                os.close(fd)

    def read_items(self, points: Sequence[Sequence[int]] | np.ndarray) -> np.ndarray:
        """The values at ``points`` (full array indices), fill value where no chunk exists.

        The values of one chunk (or inner chunk) are read together: the blosc blocks from
        the first to the last of them, decompressed once.
        """
        index = np.asarray(points, dtype=np.int64).reshape(len(points), len(self.chunk_shape))
        shape = np.asarray(self.chunk_shape, dtype=np.int64)
        inner = np.asarray(self.inner_shape or self.chunk_shape, dtype=np.int64)
        within = index % shape
        # Which inner chunk of its shard holds each value (0 where the array is not sharded).
        frames = np.ravel_multi_index((within // inner).T, tuple(shape // inner))
        offsets = np.ravel_multi_index((within % inner).T, tuple(inner)) * self.dtype.itemsize
        out = np.full(len(points), self.fill, dtype=self.dtype)
        with self.files.reading(self.variable):
            for chunk, items in _groups(index // shape):
                frame_of = frames[items]
                by_frame = {int(frame_of[0]): items} if (frame_of == frame_of[0]).all() else {
                    int(f): items[frame_of == f] for f in np.unique(frame_of)}
                self._read_chunk_items(f"{self.name}/c/{'/'.join(map(str, chunk))}", by_frame,
                                       offsets, out)
        return out

    def read_lines(self, lines: Sequence[tuple[Sequence[int], np.ndarray]], axis: int
                   ) -> list[np.ndarray | None]:
        """For each line, an index and positions along ``axis`` (a cell's steps of one run
        in a time-chunked copy), the values at the index with ``index[axis]`` set to each
        position; None for a line lying in more than one (inner) chunk: `read_items` reads
        those.

        Plain integer arithmetic and one byte span per line, every line under one
        `reading`: a time series of 10 runs reads 10 lines, and `read_items`' index arrays
        cost more than the reads.
        """
        with self.files.reading(self.variable):
            return [self._read_line(index, axis, positions) for index, positions in lines]

    def _line(self, positions: np.ndarray, axis: int) -> tuple[int, int, np.ndarray]:
        """The first and last of ``positions`` and each one's offset in values from the
        first, worked out once: a store's few step arrays (one per run) come back with
        every series, and these small numpy reductions cost more than a line's read."""
        key = (positions.dtype.str, positions.tobytes(), axis)
        found = self._lines.get(key)
        if found is None:
            if len(self._lines) >= MAX_LINES:
                self._lines.clear()
            inner = self.inner_shape or self.chunk_shape
            low, high = int(positions.min()), int(positions.max())
            picks = (positions.astype(np.int64) - low) * math.prod(inner[axis + 1:])
            picks.flags.writeable = False
            found = self._lines[key] = (low, high, picks)
        return found

    def _read_line(self, index: Sequence[int], axis: int, positions: np.ndarray
                   ) -> np.ndarray | None:
        inner = self.inner_shape or self.chunk_shape
        low, high, picks = self._line(positions, axis)
        if low // inner[axis] != high // inner[axis]:
            return None
        first = [int(i) for i in index]
        first[axis] = low
        frame = offset = 0
        for i, n, k in zip(first, self.chunk_shape, inner, strict=True):
            frame = frame * (n // k) + (i % n) // k
            offset = offset * k + i % n % k
        size = self.dtype.itemsize
        items = math.prod(inner[axis + 1:])  # values between two positions, plus one
        start = offset * size
        stop = start + (high - low) * items * size + size
        chunk = "/".join(str(i // n) for i, n in zip(first, self.chunk_shape, strict=True))
        key = f"{self.name}/c/{chunk}"
        try:
            fd = self.files.open(key)
        except MISSING:
            raw = None
        else:
            try:
                raw = self._frame_span(fd, key, frame, start, stop)
            finally:
                os.close(fd)
        if raw is None:  # no chunk, or an empty inner chunk
            return np.full(len(positions), self.fill, dtype=self.dtype)
        values: np.ndarray = np.frombuffer(raw, dtype=self.dtype)[picks]
        return values

    def _read_chunk_items(self, key: str, by_frame: dict[int, np.ndarray], offsets: np.ndarray,
                          out: np.ndarray) -> None:
        """Put the values of chunk ``key`` at ``offsets[items]`` of each frame into
        ``out[items]``; a chunk never written leaves the fill value."""
        try:
            fd = self.files.open(key)
        except MISSING:
            return
        size = self.dtype.itemsize
        try:
            for frame, items in by_frame.items():
                wanted = offsets[items]
                first, last = int(wanted.min()), int(wanted.max()) + size
                raw = self._frame_span(fd, key, frame, first, last)
                if raw is None:
                    continue  # an empty inner chunk: the fill value
                out[items] = np.frombuffer(raw, dtype=self.dtype)[(wanted - first) // size]
        finally:
            os.close(fd)

    def _frame_span(self, fd: int, key: str, frame: int, first: int, last: int
                    ) -> bytes | None:
        """Bytes ``first:last`` of chunk ``key`` (open as ``fd``), of its inner chunk
        ``frame`` where it is a shard; None for an empty inner chunk."""
        raw = (_read_span(fd, first, last) if self.inner_shape is None
               else self._read_inner(fd, key, frame, first, last))
        if raw is not None and len(raw) != last - first:  # a short chunk would shift values
            raise ValueError(f"chunk {key} ends before item {last - self.dtype.itemsize}")
        return raw

    def _read_inner(self, fd: int, key: str, frame: int, first: int, last: int
                    ) -> bytes | None:
        """Bytes ``first:last`` of inner chunk ``frame`` of the shard ``fd`` (None if it is
        empty): a small one read whole with one ``pread`` and decompressed, a larger one as
        far as the blosc blocks holding them."""
        found = self._inner_frame(fd, key, frame)
        if found is None:
            return None
        base, length = found
        nbytes = math.prod(self.inner_shape or ()) * self.dtype.itemsize
        if nbytes > WHOLE_INNER_BYTES:
            if base + length > os.fstat(fd).st_size:
                raise ValueError(f"shard {key} has an index entry past its end")
            return _read_span(fd, first, last, base)
        if length > 2 * nbytes + 4096:  # more than blosc ever makes of it (no huge read)
            raise ValueError(f"shard {key} holds an inner chunk of another size")
        encoded = os.pread(fd, length, base)
        if len(encoded) != length:
            raise ValueError(f"shard {key} has an index entry past its end")
        if length < HEADER.size or HEADER.unpack_from(encoded)[4] != nbytes:
            raise ValueError(f"shard {key} holds an inner chunk of another size")
        return bytes(memoryview(blosc.decompress(encoded))[first:last])

    @staticmethod
    def _inner_frame(fd: int, key: str, frame: int) -> tuple[int, int] | None:
        """Where inner chunk ``frame`` of the shard ``fd`` starts and its length, or None if
        it is empty (whether the file holds that much, its reader checks)."""
        entry = os.pread(fd, SHARD_ENTRY.size, frame * SHARD_ENTRY.size)
        if len(entry) != SHARD_ENTRY.size:
            raise ValueError(f"shard {key} ends inside its index")
        offset, length = SHARD_ENTRY.unpack(entry)
        if (offset, length) == EMPTY_ENTRY:
            return None
        return int(offset), int(length)


def _groups(rows: np.ndarray) -> list[tuple[list[int], np.ndarray]]:
    """The distinct rows of a 2-D index array, each with the positions holding it (a time
    series of one run: one row, so no sort)."""
    if not rows.size:
        return []
    if (rows == rows[0]).all():
        return [(rows[0].tolist(), np.arange(len(rows)))]
    distinct, which = np.unique(rows, axis=0, return_inverse=True)
    which = which.ravel()
    return [(row, np.flatnonzero(which == k)) for k, row in enumerate(distinct.tolist())]


def _plain(codecs: Sequence[dict[str, Any]]) -> bool:
    """Whether chunks are encoded as fewsmap writes them: little-endian bytes, then blosc."""
    return ([c["name"] for c in codecs] == ["bytes", "blosc"]
            and codecs[0].get("configuration", {}).get("endian", "little") == "little")


def _read_span(fd: int, start: int, stop: int, base: int = 0) -> bytes:
    """Bytes ``start:stop`` of the uncompressed chunk in the blosc frame at byte ``base`` of
    ``fd``, decompressing only the blocks that hold them."""
    head = _frame_head(fd, base)
    blocksize = HEADER.unpack_from(head)[5]
    first, last = start // blocksize, (stop - 1) // blocksize
    inside = start - first * blocksize
    return bytes(_decode_blocks(fd, head, first, last, base)[inside:inside + stop - start])


def _frame_head(fd: int, base: int = 0) -> bytes:
    """The header and block offsets of the blosc frame at byte ``base`` of ``fd`` (the
    header alone for a frame stored raw)."""
    head = os.pread(fd, HEADER.size + OFFSET.size * PREFETCH_BLOCKS, base)
    if len(head) < HEADER.size:
        raise ValueError("a chunk ends inside its blosc header")
    flags, nbytes, blocksize = (HEADER.unpack_from(head)[i] for i in (2, 4, 5))
    if blocksize <= 0 or nbytes < 0:
        raise ValueError("a chunk's blosc header is damaged")
    if flags & MEMCPYED:
        return head[:HEADER.size]
    table_size = HEADER.size + OFFSET.size * -(-nbytes // blocksize)
    return head[:table_size] if len(head) >= table_size else os.pread(fd, table_size, base)


def _decode_blocks(fd: int, head: bytes, first: int, last: int, base: int = 0) -> memoryview:
    """The uncompressed bytes of blocks ``first`` to ``last`` of the blosc frame at byte
    ``base`` of ``fd``, whose `_frame_head` is ``head``."""
    version, codec_version, flags, typesize, nbytes, blocksize, cbytes = HEADER.unpack_from(head)
    if flags & MEMCPYED:
        begin = first * blocksize
        return memoryview(os.pread(fd, min(nbytes, (last + 1) * blocksize) - begin,
                                   base + HEADER.size + begin))
    blocks = -(-nbytes // blocksize)
    if (first == 0 and last == blocks - 1) or (nbytes % blocksize and last == blocks - 1):
        # All of it, or a short last block (coded differently): decode the whole frame.
        whole = memoryview(blosc.decompress(os.pread(fd, cbytes, base)))
        return whole[first * blocksize:(last + 1) * blocksize]
    offsets = struct.unpack_from(f"<{blocks}i", head, HEADER.size)
    # Threaded compression stores blocks in the order they finished: a block ends where the
    # next stored block begins.
    stored = [*sorted(offsets), cbytes]
    pieces = []
    for begin in offsets[first:last + 1]:
        end = stored[bisect.bisect_right(stored, begin)]
        pieces.append(os.pread(fd, end - begin, base + begin))
    # Those blocks alone, as a frame of their own: the same flags and block size.
    table_end = HEADER.size + OFFSET.size * len(pieces)
    starts = list(itertools.accumulate((len(piece) for piece in pieces[:-1]),
                                       initial=table_end))
    frame = b"".join([
        HEADER.pack(version, codec_version, flags, typesize, blocksize * len(pieces), blocksize,
                    table_end + sum(map(len, pieces))),
        struct.pack(f"<{len(pieces)}i", *starts), *pieces])
    return memoryview(blosc.decompress(frame))
