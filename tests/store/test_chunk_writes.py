"""Whole fields' chunks written without zarr's codec pipeline (fewsmap/store/chunk_writes.py).

They must be the files zarr writes, byte for byte: edge chunks padded with the fill value,
chunks of NaN only not stored, any store indices; other layouts go through zarr itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zarr
from zarr.codecs import ZstdCodec

from fewsmap.store.chunk_writes import blosc_of, write_fields
from fewsmap.store.layout import data_codec


def chunk_files(root: Path) -> dict[str, bytes]:
    """The store's chunk files by path (metadata left out)."""
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*")
            if p.is_file() and p.name != "zarr.json"}


def field_array(root: Path, codec: Any, chunks: tuple[int, ...] = (1, 1, 1, 512, 512)
                ) -> zarr.Array[Any]:
    """A forecast variable's array (run, step, member, y, x) as fewsmap creates it."""
    group = zarr.open_group(root, mode="w", zarr_format=3)
    return group.create_array("t2m", shape=(3, 4, 5, 700, 1100), chunks=chunks,
                              dtype="float32", fill_value=np.nan, compressors=codec)


@pytest.fixture
def fields() -> np.ndarray:
    """Three steps × two members of noisy fields, with tiles of NaN only and NaN cells."""
    rng = np.random.default_rng(7)
    values = (rng.integers(0, 16, (3, 2, 700, 1100)) / 8 + 250).astype("float32")
    values[0, 1, :512, 512:1024] = np.nan  # one whole chunk of NaN: not stored
    values[1, 0, 512:, 1024:] = np.nan  # an edge chunk of NaN only: not stored
    values[2, 1, 5:9, 7] = np.nan  # a few missing cells
    return values


@pytest.mark.parametrize("flush_bytes", [32 << 20, 1])  # stored at once, one by one
@pytest.mark.parametrize("where", [(slice(1, 4), slice(2, 4)),
                                   (np.array([3, 0, 2]), np.array([4, 1]))])
def test_fields_are_written_as_zarr_writes_them(tmp_path: Path, fields: np.ndarray,
                                                where: tuple[Any, ...], flush_bytes: int,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("fewsmap.store.chunk_writes.FLUSH_BYTES", flush_bytes)
    ours = field_array(tmp_path / "ours.zarr", data_codec())
    theirs = field_array(tmp_path / "zarr.zarr", data_codec())
    assert blosc_of(ours) is not None
    write_fields(ours, 2, where, fields)
    theirs.oindex[(2, *where)] = fields
    written = chunk_files(tmp_path / "ours.zarr")
    assert written == chunk_files(tmp_path / "zarr.zarr")
    # 6 fields × 2 × 3 chunks, less the two of NaN only
    assert len(written) == 6 * 6 - 2
    np.testing.assert_array_equal(ours.oindex[(2, *where)], fields)


@pytest.mark.parametrize(("codec", "chunks"), [
    (ZstdCodec(level=3), (1, 1, 1, 512, 512)),  # another codec
    (data_codec(), (1, 4, 5, 16, 16)),  # chunks holding several fields
])
def test_other_layouts_are_written_by_zarr(tmp_path: Path, fields: np.ndarray, codec: Any,
                                           chunks: tuple[int, ...]) -> None:
    ours = field_array(tmp_path / "ours.zarr", codec, chunks)
    theirs = field_array(tmp_path / "zarr.zarr", codec, chunks)
    where = (slice(0, 3), np.array([1, 3]))
    write_fields(ours, 0, where, fields)
    theirs.oindex[(0, *where)] = fields
    assert chunk_files(tmp_path / "ours.zarr") == chunk_files(tmp_path / "zarr.zarr")
    np.testing.assert_array_equal(ours.oindex[(0, *where)], fields)
