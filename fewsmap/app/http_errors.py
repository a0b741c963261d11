"""Routing refusals (404 no such path, 405 method) in the format of the endpoint asked.

Starlette answers them in plain text; a WMS client expects a ServiceExceptionReport, a WMTS
client an OWS ExceptionReport, an EDR client ``{"code", "description"}`` and everything else
the JSON error object of the JSON API.
"""

from __future__ import annotations

from collections.abc import Mapping

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from fewsmap.app.api import api_error
from fewsmap.app.edr import edr_error
from fewsmap.errors import FewsmapError
from fewsmap.ogc.exceptions import exception_report
from fewsmap.ogc.getmap import wms_version
from fewsmap.ogc.params import Params
from fewsmap.ogc.wmts import exception_report as wmts_exception_report

CODES = {404: "NotFound", 405: "MethodNotAllowed"}
WMS_PATHS = ("/wms", "/FewsWebServices/")


class HTTPError(FewsmapError):
    """A refusal of the routing layer, with its own status and headers (Allow)."""

    def __init__(self, status: int, message: str, headers: Mapping[str, str] | None) -> None:
        super().__init__(message)
        self.http_status = status
        self.ogc_code = CODES.get(status)
        self._headers = dict(headers or {})

    @property
    def headers(self) -> dict[str, str]:
        """The headers Starlette gave the refusal (``Allow`` for 405)."""
        return self._headers


async def http_error(request: Request, exc: Exception) -> Response:
    """Answer a Starlette `HTTPException` in the format of the path's endpoint."""
    assert isinstance(exc, HTTPException)
    path = request.url.path
    error = HTTPError(exc.status_code, _message(request, exc), exc.headers)
    if path.startswith(WMS_PATHS):
        params = Params.for_errors(request.query_params.multi_items())
        body, media_type = exception_report(error, wms_version(params))
    elif path.startswith("/wmts"):
        body, media_type = wmts_exception_report(error), "application/xml"
    elif path.startswith("/edr"):
        return edr_error(error)
    else:
        return api_error(error)
    return Response(body, status_code=error.http_status, media_type=media_type,
                    headers=error.headers)


def _message(request: Request, exc: HTTPException) -> str:
    path = request.url.path[:120]
    if exc.status_code == 404:
        return f"no resource at {path!r}"
    if exc.status_code == 405:
        allowed = exc.headers.get("Allow", "GET, HEAD") if exc.headers else "GET, HEAD"
        return f"{request.method[:20]!r} is not allowed on {path!r}; allowed: {allowed}"
    return str(exc.detail)[:200]
