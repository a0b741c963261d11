"""The cache of object-storage data chunks (fewsmap/store/chunk_cache.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fewsmap import ForecastStore
from fewsmap.errors import StorageUnavailable
from fewsmap.ingest import ingest
from fewsmap.store.chunk_cache import CHUNKS, ENTRY_BYTES, ChunkCache
from tests.forecast_files import forecast_file, run_time
from tests.s3server import s3_server


def test_the_least_recently_used_chunks_go_first_within_the_bound() -> None:
    entry = 100 + ENTRY_BYTES  # an entry counts its bytes and its bookkeeping
    cache = ChunkCache(max_bytes=8 * entry)
    for key in "abcd":
        cache.put(key, bytes(100))
    assert cache.get("a") is not None  # now the most recently used
    for key in "efghij":
        cache.put(key, bytes(100))
    assert cache.size == 8 * entry
    assert cache.get("b") is None and cache.get("a") is not None
    cache.put("huge", bytes(entry))  # more than an eighth of the bound: not kept
    assert cache.get("huge") is None
    cache.put("a", bytes(10))  # replaced: counted once
    assert cache.size == 7 * entry + 10 + ENTRY_BYTES
    cache.resize(3 * entry)
    assert cache.size <= 3 * entry


def test_many_small_entries_count_their_bookkeeping() -> None:
    cache = ChunkCache(max_bytes=100 * ENTRY_BYTES)
    for key in range(1000):
        cache.put(("chunk", key), b"")  # a chunk never written: remembered as empty
    assert len(cache._entries) == 100 and cache.size == 100 * ENTRY_BYTES


def test_published_data_chunks_are_read_from_storage_once(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    files = [forecast_file(tmp_path, run_time(0), steps=2, shape=(300, 400),
                           variables=("t2m",))]
    with s3_server() as storage:
        for key, value in storage.env.items():
            monkeypatch.setenv(key, value)
        url = f"s3://{storage.new_bucket()}/feed.zarr"
        ingest(url, files, progress=False)
        store = ForecastStore(url)
        run = store.runs[0]
        first = store.read_slice("t2m", run, run.valid_times[0])
        storage.stop()  # from here on every request to the storage fails
        again = store.read_slice("t2m", run, run.valid_times[0])
        np.testing.assert_array_equal(first, again)
        assert any(key.startswith(url) for key in CHUNKS._entries)
        with pytest.raises(StorageUnavailable):  # never read: not in the cache
            store.read_slice("t2m", run, run.valid_times[1])
