"""Routing refusals (404 no such path, 405 method, a refused CORS preflight) in the format of
the endpoint asked.

Starlette answers them in plain text; a WMS client expects a ServiceExceptionReport, a WMTS
client an OWS ExceptionReport, an EDR client ``{"code", "description"}`` and everything else
the JSON error object of the JSON API.
"""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from fewsmap.app.api import api_error
from fewsmap.app.edr import edr_error
from fewsmap.app.limits import render
from fewsmap.errors import FewsmapError, RenderCancelled, ServiceUnavailable
from fewsmap.ogc.exceptions import exception_report
from fewsmap.ogc.getmap import wms_version
from fewsmap.ogc.wmts import exception_report as wmts_exception_report
from fewsmap.params import Params
from fewsmap.render.encode import error_png

WMS_PATHS = ("/wms", "/FewsWebServices")


class HTTPError(FewsmapError):
    """A refusal of the routing layer, with its own status and headers (Allow)."""

    def __init__(self, status: int, message: str, headers: Mapping[str, str] | None,
                 code: str | None = None) -> None:
        super().__init__(message)
        self.http_status = status
        self.ogc_code = code or status_code_name(status)
        self._headers = dict(headers or {})

    @property
    def headers(self) -> dict[str, str]:
        """The headers Starlette gave the refusal (``Allow`` for 405)."""
        return self._headers


def status_code_name(status: int) -> str:
    """The error code of an HTTP status: ``NotFound`` (404), ``RequestUriTooLong`` (414) …"""
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:  # a status without a registered phrase
        return f"HTTP{status}"
    return "".join(filter(str.isalnum, phrase.title()))


async def range_refused(request: Request, exc: Exception) -> Response:
    """Answer a byte range beyond the end of an answer (416) in the endpoint's format."""
    assert isinstance(exc, FewsmapError)
    return refusal(request, exc)


async def http_error(request: Request, exc: Exception) -> Response:
    """Answer a Starlette `HTTPException` in the format of the path's endpoint."""
    assert isinstance(exc, HTTPException)
    return refusal(request, HTTPError(exc.status_code, _message(request, exc), exc.headers))


def refusal(request: Request, error: FewsmapError) -> Response:
    """``error`` in the format of the endpoint under the request's path (JSON elsewhere)."""
    path = request.url.path
    if _under(path, WMS_PATHS):
        params = Params.for_errors(request.query_params.multi_items())
        body, media_type = exception_report(error, wms_version(params))
    elif _under(path, ("/wmts",)):
        body, media_type = wmts_exception_report(error), "application/xml"
    elif _under(path, ("/edr",)):
        return edr_error(error)
    else:
        return api_error(error)
    return Response(body, status_code=error.http_status, media_type=media_type,
                    headers=error.headers)


def _under(path: str, roots: tuple[str, ...]) -> bool:
    """Whether ``path`` is one of ``roots`` or below one (``/wmsx`` is not under ``/wms``)."""
    return any(path == root or path.startswith(root + "/") for root in roots)


class ReportingCORSMiddleware(CORSMiddleware):
    """CORS whose refused preflight says why in the endpoint's error format, not plain text.

    Browsers only read the status and headers of a preflight; a person or a script reading
    the body gets the same report as any other refusal of that path.
    """

    def preflight_response(self, request_headers: Headers) -> Response:
        response = super().preflight_response(request_headers)
        if response.status_code < 400:
            return response
        failures = bytes(response.body).decode().removeprefix("Disallowed CORS ")
        message = (f"CORS preflight refused ({failures}): method "
                   f"{request_headers['access-control-request-method'][:20]!r} from origin "
                   f"{request_headers['origin'][:80]!r}; allowed methods: "
                   f"{', '.join(self.allow_methods)}")
        headers = {k: v for k, v in response.headers.items()
                   if k not in ("content-length", "content-type")}
        return RefusedPreflight(HTTPError(response.status_code, message, headers,
                                          "CORSPreflightRefused"))


class RefusedPreflight(Response):
    """A refused preflight, rendered once the request's path is known."""

    def __init__(self, error: HTTPError) -> None:
        super().__init__(status_code=error.http_status)
        self.error = error

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await refusal(Request(scope), self.error)(scope, receive, send)


class ErrorImage(Response):
    """A failed GetMap answered as an image (``EXCEPTIONS=INIMAGE`` or ``BLANK``), drawn in a
    render thread when sent, within the render limits.

    Issue #13: drawn on the event loop, six clients asking for 4096² error images held
    `/health` up to a second. The caller keeps the image within ``max_image_pixels``.
    """

    def __init__(self, error: FewsmapError, size_px: tuple[int, int], blank: bool,
                 version: str) -> None:
        super().__init__(media_type="image/png")
        self.error, self.size_px, self.blank, self.version = error, size_px, blank, version

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            width, height = self.size_px
            png = await render(Request(scope, receive), width * height, error_png,
                               str(self.error), width, height, blank=self.blank)
            response = Response(png, media_type="image/png")  # OGC: image errors are 200
        except (ServiceUnavailable, RenderCancelled) as refused:  # no slot, or client gone
            body, media_type = exception_report(refused, self.version)
            response = Response(body, status_code=refused.http_status, media_type=media_type,
                                headers=refused.headers)
        await response(scope, receive, send)


def _message(request: Request, exc: HTTPException) -> str:
    path = request.url.path[:120]
    if exc.status_code == 404:
        return f"no resource at {path!r}"
    if exc.status_code == 405:
        allowed = exc.headers.get("Allow", "GET, HEAD") if exc.headers else "GET, HEAD"
        return f"{request.method[:20]!r} is not allowed on {path!r}; allowed: {allowed}"
    return str(exc.detail)[:200]
