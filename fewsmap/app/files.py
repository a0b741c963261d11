"""Files as HTTP answers (store files, the viewer's page and files) and answers made in
memory (maps, exports), with byte ranges whose refusals are errors in the endpoint's format
like every other answer (the app's handler of `UnsatisfiableRange`), not Starlette's plain
text.

Issue #17: a float32 COG export is read in place by GDAL's ``/vsicurl/`` (a header, then
the tiles it needs), which needs single and multiple ranges, ``If-Range`` and 416 answers:
Starlette's file answer does all of that, so answers in memory are served by it too, from
their bytes instead of a file.
"""

from __future__ import annotations

import io
import os
import stat
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

import anyio
from starlette.responses import FileResponse, MalformedRangeHeader, RangeNotSatisfiable
from starlette.types import Receive, Scope, Send

from fewsmap.app.conditional import range_applies
from fewsmap.errors import FewsmapError


class UnsatisfiableRange(FewsmapError):
    """A byte range that starts beyond the end of the file."""

    ogc_code = "RangeNotSatisfiable"

    def __init__(self, http_range: str, size: int) -> None:
        super().__init__(f"Range {http_range[:80]!r} lies beyond the end of the file "
                         f"({size} bytes)")
        self.size = size

    @property
    def headers(self) -> dict[str, str]:
        """RFC 9110 §15.5.17: a 416 says the current length of the file."""
        return {"Content-Range": f"bytes */{self.size}"}


class RangeFileResponse(FileResponse):
    """A file answer that ignores a Range header it cannot use instead of refusing it.

    RFC 9110 §14.2: a server MUST ignore a range unit it does not understand and MAY ignore
    an invalid range set; Starlette answers 400. An unsatisfiable range stays a 416: it is
    raised before anything is sent, for the app to answer in the endpoint's format.
    """

    @classmethod
    def _parse_range_header(cls, http_range: str, file_size: int) -> list[tuple[int, int]]:
        try:
            return super()._parse_range_header(http_range, file_size)
        except MalformedRangeHeader:
            return []  # Starlette sends the whole file for an empty range list
        except RangeNotSatisfiable as exc:  # raised on past FileResponse's plain-text 416
            raise UnsatisfiableRange(http_range, file_size) from exc

    def _should_use_range(self, http_if_range: str) -> bool:
        """If-Range as every answer reads it (fewsmap/app/conditional.py)."""
        return range_applies(http_if_range, self.headers.get("etag"),
                             self.headers.get("last-modified"))


class RangeBytesResponse(RangeFileResponse):
    """Bytes already in memory answered as a file is: whole, or the ranges asked for.

    Sent in chunks of ``chunk_size``, each when the server took the previous one (the
    client's pace), never copied whole. The answer's own headers (ETag, no Last-Modified)
    are its validators.
    """

    chunk_size = 256 * 1024  # slices of memory: no disk read to size them for

    def __init__(self, content: bytes, media_type: str,
                 headers: Mapping[str, str] | None = None) -> None:
        self.content = content
        size = os.stat_result((stat.S_IFREG, 0, 0, 1, 0, 0, len(content), 0, 0, 0))
        super().__init__("", headers=dict(headers or {}), media_type=media_type,
                         stat_result=size)

    def set_stat_headers(self, stat_result: os.stat_result) -> None:
        """Only the length: a file's date and tag say nothing of bytes made for this answer."""
        self.headers.setdefault("content-length", str(stat_result.st_size))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Send a whole answer of one slice at once; ranges and larger answers as a file.

        A file answer watches for the client leaving in a task group and reads each slice
        in a worker thread: a task and a thread hop for every tile or time series of a few
        kB, sent here in one message that nothing can interrupt.
        """
        ranged = any(name == b"range" for name, _ in scope["headers"])
        if len(self.content) > self.chunk_size or ranged:
            await super().__call__(scope, receive, send)
            return
        await send({"type": "http.response.start", "status": self.status_code,
                    "headers": self.raw_headers})
        whole = scope["method"].upper() != "HEAD"
        await send({"type": "http.response.body", "body": self.content if whole else b""})
        if self.background is not None:
            await self.background()

    @asynccontextmanager
    async def _open_file(self) -> AsyncIterator[anyio.AsyncFile[bytes]]:
        yield BytesFile(io.BytesIO(self.content))  # shares the bytes until written

    async def _handle_simple(self, send: Send, send_header_only: bool,
                             send_pathsend: bool) -> None:
        await super()._handle_simple(send, send_header_only, send_pathsend=False)  # no path


class BytesFile(anyio.AsyncFile[bytes]):
    """Bytes in memory read as an async file, without a worker thread per read."""

    async def read(self, size: int = -1) -> bytes:
        """Read up to ``size`` bytes (all that remain by default)."""
        return self.wrapped.read(size)

    async def seek(self, offset: int, whence: int | None = os.SEEK_SET) -> int:
        """Move to ``offset`` (from ``whence``, the start by default)."""
        return self.wrapped.seek(offset, os.SEEK_SET if whence is None else whence)
