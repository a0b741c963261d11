"""Documents built from the catalog (capabilities), kept until the catalog or clock moves on.

A long-running source's capabilities grow with every run: 20 layers × 10 runs take
100–200 ms to build, and dashboards ask for them on every page load. A document depends on
the catalog snapshot and the layers the request may see (``Catalog.cache_key``), the request,
the service URL and the minute (the ``now`` default time), so keyed by all of them it can be
reused until a run lands. The answer carries an ETag; a client revalidating gets a 304.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response

from fewsmap.app.conditional import content_etag, not_modified

# The XML capabilities of 20 layers are about 75 kB (the suite's 20 layers × 10 runs): this
# keeps hundreds of variants (hosts, versions, layer subsets, forecast periods, token views).
MAX_CACHED_BYTES = 64 * 2**20


@dataclass(frozen=True)
class Document:
    """A built document with its media type and entity tag."""

    body: bytes
    media_type: str
    etag: str

    @classmethod
    def of(cls, body: bytes, media_type: str) -> Document:
        return cls(body, media_type, content_etag(body))

    def response(self, request: Request, cache_control: str = "no-cache") -> Response:
        """The document, or 304 when the client already holds it. ``no-cache``: clients
        may keep it but ask again each time, since a run may land at any moment."""
        headers = {"ETag": self.etag, "Cache-Control": cache_control}
        unchanged = not_modified(request.headers, headers, request.method)
        return unchanged or Response(self.body, media_type=self.media_type, headers=headers)


class DocumentCache:
    """Recently used documents by key, within a byte budget; the least recently used go.

    Thread-safe: documents are built in the thread pool. Two requests missing the same key
    at once both build it (the same bytes), rather than one waiting on the other's lock.
    """

    def __init__(self, max_bytes: int = MAX_CACHED_BYTES) -> None:
        self.max_bytes = max_bytes
        self._documents: OrderedDict[Hashable, Document] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def get(self, key: Hashable, build: Callable[[], Document]) -> Document:
        """The document under ``key``, built by ``build`` if it is not kept."""
        with self._lock:
            document = self._documents.get(key)
            if document is not None:
                self._documents.move_to_end(key)
                self.hits += 1
                return document
            self.misses += 1
        document = build()
        self._keep(key, document)
        return document

    def _keep(self, key: Hashable, document: Document) -> None:
        if len(document.body) > self.max_bytes:
            return
        with self._lock:
            previous = self._documents.pop(key, None)
            self._bytes -= len(previous.body) if previous else 0
            self._documents[key] = document
            self._bytes += len(document.body)
            while self._bytes > self.max_bytes:
                _, dropped = self._documents.popitem(last=False)
                self._bytes -= len(dropped.body)
