"""Windows and single values read from chunk files directly equal what zarr reads."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zarr
from zarr.codecs import BloscCodec, ZstdCodec

from fewsmap.errors import StoreError
from fewsmap.store.chunk_cache import BLOCKS, ChunkCache
from fewsmap.store.direct import DirectReader
from fewsmap.store.layout import data_codec, series_chunks


def written(path: Path, values: np.ndarray, chunks: tuple[int, ...], compressor: Any,
            fill_value: float = np.nan) -> zarr.Array[Any]:
    array = zarr.create_array(path, shape=values.shape, chunks=chunks, dtype="float32",
                              compressors=[compressor], fill_value=fill_value)
    array[...] = values
    return array


def random_points(shape: tuple[int, ...], count: int, seed: int) -> list[tuple[int, ...]]:
    rng = np.random.default_rng(seed)
    return [tuple(int(rng.integers(0, n)) for n in shape) for _ in range(count)]


@pytest.mark.parametrize("compressor", [
    data_codec(),  # what stores are written with: 64 KiB blocks
    BloscCodec(cname="lz4", clevel=5, shuffle="shuffle"),  # blosc's own block size
    BloscCodec(cname="zstd", clevel=3, shuffle="bitshuffle", blocksize=4096),
], ids=["fewsmap", "blosc-default", "zstd-bitshuffle"])
@pytest.mark.parametrize("chunks", [(1, 512, 512), (1, 37, 53), (3, 7, 5)])
def test_values_equal_zarr(tmp_path: Path, compressor: Any, chunks: tuple[int, ...]) -> None:
    rows, cols = (600, 700) if chunks[-1] > 100 else (60, 70)  # few chunk files either way
    y, x = np.mgrid[0:rows, 0:cols]
    smooth = np.stack([np.sin(x / 40.0) * np.cos(y / 30.0) + k for k in range(3)])
    smooth = smooth.astype(np.float32)
    smooth[:, ::7, ::3] = np.nan
    array = written(tmp_path / "a.zarr", smooth, chunks, compressor)
    reader = DirectReader.of(tmp_path, "a.zarr", array.metadata)
    assert reader is not None
    points = random_points(smooth.shape, 300, seed=sum(chunks))
    points += [(0, 0, 0), (2, rows - 1, cols - 1), (1, 59, 59), (1, rows // 2, cols // 2)]
    expected = np.array([array[p] for p in points], dtype=np.float32)
    np.testing.assert_array_equal(reader.read_items(points), expected)


def test_incompressible_chunks_are_read_raw(tmp_path: Path) -> None:
    """blosc stores a chunk it cannot shrink uncompressed (flagged): read at its offset."""
    noise = np.random.default_rng(1).integers(0, 2**32, (64, 64), dtype=np.uint32)
    values = noise.view(np.float32)
    array = written(tmp_path / "a.zarr", values, (64, 64), BloscCodec(cname="lz4", clevel=1,
                                                                       shuffle="noshuffle"))
    assert (tmp_path / "a.zarr" / "c" / "0" / "0").read_bytes()[2] & 0x02  # stored raw
    reader = DirectReader.of(tmp_path, "a.zarr", array.metadata)
    assert reader is not None
    points = random_points(values.shape, 100, seed=2)
    got = reader.read_items(points)
    np.testing.assert_array_equal(got.view(np.uint32), [noise[p] for p in points])


def test_missing_chunks_give_the_fill_value(tmp_path: Path) -> None:
    array = zarr.create_array(tmp_path / "a.zarr", shape=(4, 10, 10), chunks=(1, 10, 10),
                              dtype="float32", compressors=[data_codec()], fill_value=-9999.0)
    array[1] = np.arange(100, dtype=np.float32).reshape(10, 10)
    reader = DirectReader.of(tmp_path, "a.zarr", array.metadata)
    assert reader is not None
    np.testing.assert_array_equal(reader.read_items([(0, 3, 3), (1, 3, 3), (3, 9, 9)]),
                                  [-9999.0, 33.0, -9999.0])


def test_other_layouts_are_left_to_zarr(tmp_path: Path) -> None:
    array = written(tmp_path / "a.zarr", np.zeros((4, 4), np.float32), (2, 2),
                    ZstdCodec(level=1))
    assert DirectReader.of(tmp_path, "a.zarr", array.metadata) is None


@pytest.mark.parametrize("compressor", [
    data_codec(), BloscCodec(cname="zstd", clevel=3, shuffle="bitshuffle", blocksize=4096),
], ids=["fewsmap", "zstd-bitshuffle-small-blocks"])
@pytest.mark.parametrize("chunk", [32, 256])
@pytest.mark.parametrize("leading", [(1, 1), (2, 3)], ids=["one field", "fields together"])
@pytest.mark.parametrize("keep_blocks", [False, True], ids=["from files", "blocks kept"])
def test_windows_equal_zarr(tmp_path: Path, compressor: Any, chunk: int,
                            leading: tuple[int, int], keep_blocks: bool) -> None:
    """Windows in one chunk or across chunk edges, over partial edge chunks, whole slices;
    256² chunks hold several blosc blocks, of which only those with the rows are read; a
    chunk may hold several fields (a small field's layout). A reader keeping blocks reads
    each window twice: overlapping windows mix kept and new blocks."""
    rows, cols = 7 * chunk // 4, 9 * chunk // 4
    values = np.random.default_rng(5).normal(size=(2, 3, rows, cols)).astype(np.float32)
    values[0, 1, :, cols // 2:] = np.nan
    array = zarr.create_array(tmp_path / "a.zarr", shape=values.shape,
                              chunks=(*leading, chunk, chunk), dtype="float32",
                              compressors=[compressor], fill_value=np.nan)
    array[...] = values
    array[1, 2] = np.nan  # all-NaN slices: zarr writes no chunk files for them
    reader = DirectReader.of(tmp_path, "a.zarr", array.metadata, keep_blocks=keep_blocks)
    assert reader is not None
    rng = np.random.default_rng(6)
    windows = [(slice(0, rows), slice(0, cols)), (slice(3, 4), slice(5, 6)),
               (slice(chunk - 1, chunk + 1), slice(2 * chunk - 1, 2 * chunk + 1)),
               (slice(rows - 6, rows), slice(cols - 10, cols))]
    for _ in range(40):
        r0, c0 = int(rng.integers(0, rows - 1)), int(rng.integers(0, cols - 1))
        windows.append((slice(r0, int(rng.integers(r0 + 1, rows + 1))),
                        slice(c0, int(rng.integers(c0 + 1, cols + 1)))))
    for prefix in ((0, 0), (0, 1), (1, 2)):
        for window in windows * (2 if keep_blocks else 1):
            got = reader.read_window(prefix, *window)
            np.testing.assert_array_equal(got, array[(*prefix, *window)])


@pytest.fixture
def block_cache() -> Iterator[ChunkCache]:
    """`BLOCKS`, emptied before and after the test, with its bound restored."""
    bound = BLOCKS.max_bytes
    BLOCKS.resize(0)
    BLOCKS.resize(bound)
    yield BLOCKS
    BLOCKS.resize(0)
    BLOCKS.resize(bound)


def _field(path: Path, compressor: Any = None) -> zarr.Array[Any]:
    y, x = np.mgrid[0:600, 0:700]
    values = (np.sin(x / 40.0) * np.cos(y / 30.0)).astype(np.float32)
    return written(path, values[None], (1, 512, 512), compressor or data_codec())


def test_a_reader_keeping_blocks_decompresses_them_once(tmp_path: Path,
                                                        block_cache: ChunkCache) -> None:
    """Windows read again come from the kept blocks, not the files (deleted here); another
    reader (another published state) keeps its own and reads the files."""
    array = _field(tmp_path / "a.zarr")
    reader = DirectReader.of(tmp_path, "a.zarr", array.metadata, keep_blocks=True)
    other = DirectReader.of(tmp_path, "a.zarr", array.metadata, keep_blocks=True)
    assert reader is not None and other is not None
    window = (slice(100, 600), slice(300, 700))  # four chunks, some of their blocks
    first = reader.read_window((0,), *window)
    kept = block_cache.size
    assert kept > 0
    for chunk in (tmp_path / "a.zarr" / "c").rglob("*"):
        if chunk.is_file():
            chunk.unlink()
    np.testing.assert_array_equal(reader.read_window((0,), *window), first)
    np.testing.assert_array_equal(reader.read_window((0,), slice(200, 300), slice(500, 600)),
                                  first[100:200, 200:300])  # within those blocks
    assert block_cache.size == kept
    assert np.isnan(other.read_window((0,), *window)).all()  # its own: the files, gone
    assert np.isnan(reader.read_window((0,), slice(0, 50), slice(0, 50))).all()  # not kept


def test_without_a_block_cache_windows_come_from_the_files(tmp_path: Path,
                                                           block_cache: ChunkCache) -> None:
    array = _field(tmp_path / "a.zarr")
    reader = DirectReader.of(tmp_path, "a.zarr", array.metadata, keep_blocks=True)
    assert reader is not None
    block_cache.resize(0)  # block_cache_mb = 0
    window = (slice(0, 600), slice(0, 700))
    np.testing.assert_array_equal(reader.read_window((0,), *window), array[(0, *window)])
    assert block_cache.size == 0
    (tmp_path / "a.zarr" / "c" / "0" / "0" / "0").unlink()
    assert np.isnan(reader.read_window((0,), slice(0, 10), slice(0, 10))).all()


def test_kept_blocks_stay_within_the_bound(tmp_path: Path, block_cache: ChunkCache) -> None:
    array = _field(tmp_path / "a.zarr")
    reader = DirectReader.of(tmp_path, "a.zarr", array.metadata, keep_blocks=True)
    assert reader is not None
    block_cache.resize(3 * 64 * 1024 * 8 // 7)  # a few of the 64 KiB blocks (an eighth each)
    rng = np.random.default_rng(3)
    for _ in range(30):
        r0, c0 = int(rng.integers(0, 590)), int(rng.integers(0, 690))
        window = (slice(r0, r0 + 10), slice(c0, c0 + 10))
        np.testing.assert_array_equal(reader.read_window((0,), *window), array[(0, *window)])
        assert block_cache.size <= block_cache.max_bytes


def test_raw_stored_chunks_are_kept_too(tmp_path: Path, block_cache: ChunkCache) -> None:
    noise = np.random.default_rng(1).integers(0, 2**32, (300, 64), dtype=np.uint32)
    array = written(tmp_path / "a.zarr", noise.view(np.float32), (256, 64),
                    BloscCodec(cname="lz4", clevel=1, shuffle="noshuffle", blocksize=4096))
    assert (tmp_path / "a.zarr" / "c" / "0" / "0").read_bytes()[2] & 0x02  # stored raw
    reader = DirectReader.of(tmp_path, "a.zarr", array.metadata, keep_blocks=True)
    assert reader is not None
    for window in [(slice(10, 290), slice(3, 60))] * 2 + [(slice(0, 300), slice(0, 64))]:
        got = reader.read_window((), *window)
        np.testing.assert_array_equal(got.view(np.uint32), noise[window])


@pytest.mark.parametrize("tile", [8, 32])
def test_sharded_items_equal_zarr_and_windows_are_left_to_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tile: int) -> None:
    """A time-chunked copy's layout (`series_chunks`): values found through the shard index
    (inner chunks of 8 × 8 cells read whole, of 32 × 32 block by block), empty inner chunks
    and missing shards read as the fill value."""
    monkeypatch.setattr("fewsmap.store.layout.SERIES_TILE", tile)
    inner, shards = series_chunks(5, 130)
    values = np.random.default_rng(7).normal(size=(2, 600, 40, 130, 2)).astype(np.float32)
    values[:, :, :, :, 1] = np.nan  # member 1 never written: no shard files
    values[0, :32] = np.nan  # empty inner chunks inside a written shard
    array = zarr.create_array(tmp_path / "a.zarr", shape=values.shape, chunks=inner,
                              shards=shards, dtype="float32", compressors=[data_codec()],
                              fill_value=np.nan)
    array[...] = values
    reader = DirectReader.of(tmp_path, "a.zarr", array.metadata)
    assert reader is not None and reader.read_window((0, 0, 0), slice(0, 8), slice(0, 8)) is None
    points = random_points(values.shape, 400, seed=8)
    points += [(0, 3, 5, k, 0) for k in range(130)] + [(1, 599, 39, 129, 0), (0, 0, 0, 0, 0)]
    expected = np.array([values[p] for p in points], dtype=np.float32)
    np.testing.assert_array_equal(reader.read_items(points), expected)


@pytest.mark.parametrize("entry", [
    b"\x10" * 16,  # offset and length far past the end
    struct.pack("<QQ", 2**64 - 2, 100),  # an offset no file reaches
    struct.pack("<QQ", 10**6, 100),  # past this file's end
    struct.pack("<QQ", 64, 2**40),  # a length no inner chunk has
], ids=["huge", "beyond any file", "past the end", "huge length"])
def test_a_shard_index_pointing_past_the_end_is_an_error(tmp_path: Path, entry: bytes) -> None:
    inner, shards = series_chunks(4, 3)
    array = zarr.create_array(tmp_path / "a.zarr", shape=(1, 40, 40, 3), chunks=inner,
                              shards=shards, dtype="float32", compressors=[data_codec()],
                              fill_value=np.nan)
    array[...] = 1.0
    shard = tmp_path / "a.zarr" / "c" / "0" / "0" / "0" / "0"
    shard.write_bytes(entry + shard.read_bytes()[16:])
    reader = DirectReader.of(tmp_path, "a.zarr", array.metadata)
    assert reader is not None
    with pytest.raises(StoreError, match="a chunk is damaged"):
        reader.read_items([(0, 1, 1, 0)])


@pytest.mark.parametrize("keep_blocks", [False, True], ids=["from files", "blocks kept"])
def test_a_damaged_blosc_header_is_a_store_error(tmp_path: Path, keep_blocks: bool) -> None:
    """A chunk whose header says its blocks are 0 bytes (or its size negative) fails as a
    damaged chunk, never as a division by zero (a 500 with a traceback in the log)."""
    array = _field(tmp_path / "a.zarr")
    chunk = tmp_path / "a.zarr" / "c" / "0" / "0" / "0"
    data = bytearray(chunk.read_bytes())
    data[8:12] = bytes(4)  # blocksize 0
    chunk.write_bytes(bytes(data))
    reader = DirectReader.of(tmp_path, "a.zarr", array.metadata, keep_blocks=keep_blocks)
    assert reader is not None
    with pytest.raises(StoreError, match="a chunk is damaged"):
        reader.read_window((0,), slice(0, 10), slice(0, 10))
