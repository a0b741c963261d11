"""Routes of OGC API - Environmental Data Retrieval under ``/edr`` (fewsmap/edr does the work).

Errors are JSON ``{"code", "description"}`` with the HTTP status of the error (400, 404,
413, 503), the exception schema of OGC API - EDR and OGC API Common.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Iterator
from functools import wraps
from typing import Any

import numpy as np
from numpy.lib.array_utils import byte_bounds
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from fewsmap.app.limits import POINT_COST, render, values_cost
from fewsmap.app.links import public_base
from fewsmap.app.state import service, visible_catalog
from fewsmap.app.streaming import SLICE_BYTES, StreamedResponse, send_budget
from fewsmap.edr import metadata
from fewsmap.edr.data import EdrAnswer, answer_query, find_layer, find_run
from fewsmap.edr.encode import covjson_chunks, csv_chunks
from fewsmap.edr.openapi import openapi_document
from fewsmap.edr.query import QUERY_TYPES, EdrQuery, parse_query
from fewsmap.errors import FewsmapError, InternalError, InvalidFormat, NotFound
from fewsmap.formats.media import CSV, JSON
from fewsmap.params import Params

log = logging.getLogger(__name__)
Handler = Callable[[Request], Awaitable[Response]]
METADATA_FORMATS = ("", "json", "application/json")


def edr_routes() -> list[Route]:
    """The EDR routes."""

    @_answering
    async def landing(request: Request) -> Response:
        _metadata_format(request)
        return _json(metadata.landing_page((await visible_catalog(request)).title, _root(request)))

    @_answering
    async def api(request: Request) -> Response:
        return _json(openapi_document(_root(request)), metadata.OPENAPI)

    @_answering
    async def conformance(request: Request) -> Response:
        _metadata_format(request)
        return _json(metadata.conformance())

    @_answering
    async def collections(request: Request) -> Response:
        _metadata_format(request)
        catalog = await visible_catalog(request)
        return _json(await run_in_threadpool(metadata.collections, catalog, _root(request)))

    @_answering
    async def collection(request: Request) -> Response:
        _metadata_format(request)
        catalog = await visible_catalog(request)
        layer = find_layer(catalog, request.path_params["layer"])
        return _json(await run_in_threadpool(metadata.collection, catalog, layer,
                                             _root(request)))

    @_answering
    async def instances(request: Request) -> Response:
        _metadata_format(request)
        catalog = await visible_catalog(request)
        layer = find_layer(catalog, request.path_params["layer"])
        return _json(await run_in_threadpool(metadata.instances, catalog, layer,
                                             _root(request)))

    @_answering
    async def instance(request: Request) -> Response:
        _metadata_format(request)
        catalog = await visible_catalog(request)
        layer = find_layer(catalog, request.path_params["layer"])
        run = find_run(catalog, layer, request.path_params["run"])
        return _json(await run_in_threadpool(metadata.instance, catalog, layer, run,
                                             _root(request)))

    @_answering
    async def data(request: Request) -> Response:
        kind = request.path_params["query"]
        if kind not in QUERY_TYPES:
            raise NotFound(f"{request.url.path[:120]!r} is not an EDR resource; queries: "
                           f"{', '.join(QUERY_TYPES)}")
        catalog = await visible_catalog(request)
        run_id = request.path_params.get("run")
        # An unknown collection or instance is 404 whatever the parameters say.
        find_run(catalog, find_layer(catalog, request.path_params["layer"]), run_id)
        query = parse_query(kind, Params(request.query_params.multi_items()))
        max_values = service(request).settings.max_edr_values  # most values in one answer
        # A position reads one cell; other queries count their values while resolving (in
        # the render thread), so they declare their bound and run as heavy renders.
        cost = POINT_COST if query.point is not None else values_cost(max_values)
        answer = await render(request, cost, answer_query, catalog,
                              request.path_params["layer"], run_id, query, max_values)
        held = send_budget(request).hold(held_bytes(answer))
        chunks, media_type = answer_chunks(answer, query)
        # A named run does not change (replacing one is rare and deliberate); the latest
        # run changes whenever a run is published.
        return StreamedResponse(chunks, held, media_type, headers={
            "Cache-Control": f"public, max-age={3600 if run_id else 60}"})

    @_answering
    async def not_found(request: Request) -> Response:
        raise NotFound(f"{request.url.path[:120]!r} is not an EDR resource; start at /edr")

    return [
        Route("/edr", landing), Route("/edr/", landing),
        Route("/edr/api", api),
        Route("/edr/conformance", conformance),
        Route("/edr/collections", collections),
        Route("/edr/collections/{layer}", collection),
        Route("/edr/collections/{layer}/instances", instances),
        Route("/edr/collections/{layer}/instances/{run}", instance),
        Route("/edr/collections/{layer}/instances/{run}/{query}", data),
        Route("/edr/collections/{layer}/{query}", data),
        Route("/edr/{rest:path}", not_found),
    ]


def answer_chunks(answer: EdrAnswer, query: EdrQuery) -> tuple[Iterator[bytes], str]:
    """The answer's body in the format asked, as chunks, and its media type."""
    if query.format == CSV:
        return csv_chunks(answer), "text/csv; charset=utf-8"
    return covjson_chunks(answer), query.format


def held_bytes(answer: EdrAnswer) -> int:
    """The memory an answer holds while it is sent: the arrays it is written from (values,
    cell coordinates) and a chunk being written and one being sent."""
    window = answer.window
    arrays = (*answer.values.values(), window.rows, window.cols, window.x, window.y,
              window.lon, window.lat, window.inside)
    return sum(_memory(a) for a in arrays) + 2 * SLICE_BYTES


def _memory(array: np.ndarray) -> int:
    """Bytes of memory an array spans (a broadcast view: those of what it repeats)."""
    low, high = byte_bounds(array)
    return int(high - low)


def edr_error(exc: Exception) -> Response:
    """An error as ``{"code", "description"}`` with its HTTP status."""
    if not isinstance(exc, FewsmapError):  # a bug: log it, never show a traceback
        log.error("unexpected error", exc_info=exc)
        exc = InternalError("internal error; the server log has the details")
    body = {"code": exc.ogc_code or type(exc).__name__, "description": str(exc)}
    return Response(json.dumps(body), status_code=exc.http_status,
                    media_type="application/json", headers=exc.headers)


def _answering(handler: Handler) -> Handler:
    """Turn every failure of ``handler`` into an EDR JSON error."""

    @wraps(handler)
    async def answer(request: Request) -> Response:
        try:
            return await handler(request)
        except Exception as exc:
            return edr_error(exc)

    return answer


def _metadata_format(request: Request) -> None:
    name = (request.query_params.get("f") or "").strip()
    if name.lower() not in METADATA_FORMATS:
        raise InvalidFormat(f"f={name[:60]!r} is not offered for metadata; offered: json")


def _root(request: Request) -> str:
    return public_base(request)


def _json(body: dict[str, Any], media_type: str = JSON) -> Response:
    return Response(json.dumps(body, allow_nan=False), media_type=media_type,
                    headers={"Cache-Control": "public, max-age=60"})
