"""The JSON API routes: ``/api/timeseries`` and its OpenAPI description."""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from fewsmap.app.limits import POINT_COST, render, render_limiter
from fewsmap.app.state import visible_catalog
from fewsmap.app.streaming import body_response
from fewsmap.catalog import Catalog
from fewsmap.errors import FewsmapError, InternalError
from fewsmap.ogc.exceptions import json_error
from fewsmap.ogc.timeseries import openapi_document, time_series
from fewsmap.params import Params
from fewsmap.resolve.series import ReadElsewhere

log = logging.getLogger(__name__)


def api_routes() -> list[Route]:
    """Routes of the JSON API."""

    async def timeseries(request: Request) -> Response:
        try:
            catalog = await visible_catalog(request)
            params = Params(request.query_params.multi_items())
            body, media_type = await _time_series(request, catalog, params)
            # "latest" changes whenever a run is published: short-lived, as GetMap's.
            return body_response(request, body, media_type,
                                 {"Cache-Control": "public, max-age=60"})
        except Exception as exc:  # every failure is a JSON error, never a traceback
            return api_error(exc)

    async def openapi(request: Request) -> Response:
        return JSONResponse(openapi_document())

    return [Route("/api/timeseries", timeseries), Route("/api/openapi.json", openapi)]


async def _time_series(request: Request, catalog: Catalog, params: Params
                       ) -> tuple[bytes, str]:
    """A time series: a few lines of local files read on the event loop where inline
    renders are on (``inline_render_cost``): its hand-off to a render thread cost a 10-run
    series a fifth of its time (benchmarks/results/point_series.md); anything else in a
    render thread."""
    if catalog.settings.inline_render_cost:
        try:
            return render_limiter(request).run_here(time_series, catalog, params, inline=True)
        except ReadElsewhere:
            pass
    return await render(request, POINT_COST, time_series, catalog, params)


def api_error(exc: Exception) -> Response:
    """An error as ``{"error": {"code", "message"}}`` with its HTTP status."""
    if not isinstance(exc, FewsmapError):  # a bug: log it, never show a traceback
        log.error("unexpected error", exc_info=exc)
        exc = InternalError("internal error; the server log has the details")
    return Response(json_error(exc), status_code=exc.http_status,
                    media_type="application/json", headers=exc.headers)
