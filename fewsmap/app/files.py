"""Files as HTTP answers (store files, the viewer's page and files) with byte ranges whose
refusals are JSON errors like every other answer, not Starlette's plain text."""

from __future__ import annotations

from starlette.responses import FileResponse, MalformedRangeHeader, RangeNotSatisfiable
from starlette.types import Receive, Scope, Send

from fewsmap.app.api import api_error
from fewsmap.errors import FewsmapError


class UnsatisfiableRange(FewsmapError):
    """A byte range that starts beyond the end of the file."""

    ogc_code = "RangeNotSatisfiable"
    http_status = 416

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
    an invalid range set; Starlette answers 400. An unsatisfiable range stays a 416, in JSON.
    """

    @classmethod
    def _parse_range_header(cls, http_range: str, file_size: int) -> list[tuple[int, int]]:
        try:
            return super()._parse_range_header(http_range, file_size)
        except MalformedRangeHeader:
            return []  # Starlette sends the whole file for an empty range list
        except RangeNotSatisfiable as exc:  # raised on past FileResponse's plain-text 416
            raise UnsatisfiableRange(http_range, file_size) from exc

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        except UnsatisfiableRange as exc:  # the range is parsed before anything is sent
            await api_error(exc)(scope, receive, send)
