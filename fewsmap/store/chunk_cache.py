"""A process-wide cache of data chunks read from object storage.

A chunk of a forecast variable in a published run's slot never changes (docs/design/cube.md:
a run is written into a new slot before it is published, a replaced run goes to another
slot, slots are never reused, a retired slot's chunks are only deleted), so its bytes can be
kept without ever asking the storage again, and every store and server on the machine may
share them. Coordinates and metadata are rewritten at each publish and are never cached
here. Local stores need no such cache: the page cache holds their files.

One S3 request costs milliseconds where a local read costs microseconds (issue #14 target:
warm tiles from S3 within 2x of local disk; benchmarks/object_store.py).

`BLOCKS`, the same kind of cache, holds decompressed blosc blocks of local chunk files
(`fewsmap.store.direct`): the page cache keeps their bytes, not the decompression.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Collection, Hashable

from zarr.abc.store import ByteRequest, Store
from zarr.core.buffer import Buffer, BufferPrototype
from zarr.storage import WrapperStore

DEFAULT_BYTES = 256 << 20
# What an entry costs beyond its bytes (key, dict slot, bytes object): counted so that many
# small entries (a chunk's block table) cannot hold far more memory than the bound.
ENTRY_BYTES = 200


class ChunkCache:
    """Bytes by key, least recently used dropped first, within ``max_bytes`` (each entry
    counted with `ENTRY_BYTES` more)."""

    def __init__(self, max_bytes: int = DEFAULT_BYTES) -> None:
        self.max_bytes = max_bytes
        self.size = 0
        self._entries: OrderedDict[Hashable, bytes] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> bytes | None:
        """The bytes kept for ``key`` (now the most recently used), or None."""
        with self._lock:
            data = self._entries.get(key)
            if data is not None:
                self._entries.move_to_end(key)
            return data

    def put(self, key: Hashable, data: bytes) -> None:
        """Keep ``data`` for ``key``, dropping the least recently used beyond the bound."""
        if len(data) + ENTRY_BYTES > self.max_bytes // 8:  # one never evicts most of it
            return
        with self._lock:
            old = self._entries.pop(key, None)
            self.size += len(data) - (len(old) if old is not None else -ENTRY_BYTES)
            self._entries[key] = data
            while self.size > self.max_bytes:
                _, dropped = self._entries.popitem(last=False)
                self.size -= len(dropped) + ENTRY_BYTES

    def resize(self, max_bytes: int) -> None:
        """Change the bound (the service sets it from ``object_cache_mb`` or
        ``block_cache_mb``)."""
        with self._lock:
            self.max_bytes = max_bytes
            while self.size > self.max_bytes and self._entries:
                _, dropped = self._entries.popitem(last=False)
                self.size -= len(dropped) + ENTRY_BYTES


#: The cache every object-store reader of this process shares.
CHUNKS = ChunkCache()
#: Decompressed blocks of local chunk files, shared by every direct reader of this process.
BLOCKS = ChunkCache()


class CachedChunks(WrapperStore[Store]):
    """A read-only zarr store that keeps the data chunks of ``arrays`` in `CHUNKS`."""

    def __init__(self, store: Store, location: str, arrays: Collection[str]) -> None:
        super().__init__(store)
        self.location = location
        self.arrays = frozenset(arrays)

    def _with_store(self, store: Store) -> CachedChunks:
        return type(self)(store, self.location, self.arrays)

    def _immutable(self, key: str) -> bool:
        # An array's path may hold slashes (an overview level's: overviews/2/t2m/c/0/…).
        name, chunks, _ = key.partition("/c/")
        return bool(chunks) and name in self.arrays

    async def get(self, key: str, prototype: BufferPrototype,
                  byte_range: ByteRequest | None = None) -> Buffer | None:
        if byte_range is not None or not self._immutable(key):
            return await self._store.get(key, prototype, byte_range)
        cache_key = f"{self.location}/{key}"
        data = CHUNKS.get(cache_key)
        if data is None:
            found = await self._store.get(key, prototype)
            if found is None:
                return None  # a chunk never written: the fill value (not kept: it may come)
            data = found.to_bytes()
            CHUNKS.put(cache_key, data)
        return prototype.buffer.from_bytes(data)
