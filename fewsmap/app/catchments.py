"""Routes of the catchment API (`fewsmap.ogc.catchments`, `fewsmap.resolve.catchments`):
``/api/catchments`` and below."""

from __future__ import annotations

from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from fewsmap.app.api import api_error
from fewsmap.app.limits import POINT_COST, render
from fewsmap.app.links import public_base
from fewsmap.app.state import visible_catalog
from fewsmap.app.streaming import body_response
from fewsmap.catalog import Catalog
from fewsmap.errors import InvalidParameterValue
from fewsmap.ogc.catchments import (
    GEOJSON,
    catchment_request,
    catchment_series,
    set_geojson,
    sets_json,
)
from fewsmap.params import Params
from fewsmap.resolve.catchments import (
    Catchment,
    catchment_set_named,
    given_catchment,
    layer_and_store,
    set_catchment,
)
from fewsmap.store.cube import ForecastStore

# A polygon sent as a POST body: GeoJSON or WKT of at most 10 000 vertices fits well within.
MAX_BODY_BYTES = 1 << 20
CACHE = {"Cache-Control": "public, max-age=60"}  # "latest" changes when a run is published


def catchment_routes() -> list[Route]:
    """Routes of the catchment API (on the token's view of the catalog: protected layers
    stay protected here)."""

    async def collection(request: Request) -> Response:
        try:
            catalog = await visible_catalog(request)
            params = Params(request.query_params.multi_items())
            geometry = await _geometry(request, params)
            if geometry is None:
                return Response(sets_json(catalog, public_base(request)),
                                media_type="application/json")
            return await _series(request, catalog, params,
                                 lambda store: given_catchment(geometry, store))
        except Exception as exc:  # every failure is a JSON error, never a traceback
            return api_error(exc)

    async def one_set(request: Request) -> Response:
        try:
            catalog = await visible_catalog(request)
            params = Params(request.query_params.multi_items())
            catchments = catchment_set_named(catalog, request.path_params["name"])
            body = await render(request, POINT_COST, set_geojson, catalog, catchments, params)
            return body_response(request, body, GEOJSON, CACHE)
        except Exception as exc:
            return api_error(exc)

    async def one_catchment(request: Request) -> Response:
        try:
            catalog = await visible_catalog(request)
            params = Params(request.query_params.multi_items())
            return await _series(request, catalog, params, lambda store: set_catchment(
                catalog, request.path_params["name"], request.path_params["id"], store))
        except Exception as exc:
            return api_error(exc)

    return [Route("/api/catchments", collection, methods=["GET", "HEAD", "POST"]),
            Route("/api/catchments/{name}", one_set),
            Route("/api/catchments/{name}/{id}", one_catchment)]


async def _series(request: Request, catalog: Catalog, params: Params,
                  pick: Callable[[ForecastStore], Catchment]) -> Response:
    """Answer a catchment's series; ``pick`` finds the catchment and its weights on the
    layer's store (in the render thread: weights may take a while the first time)."""
    query = catchment_request(params, request.headers.get("accept", ""))
    layer, _, store = layer_and_store(catalog, query)

    def answer() -> tuple[bytes, str]:
        return catchment_series(catalog, query, layer, pick(store))

    body, media_type = await render(request, POINT_COST, answer)
    return body_response(request, body, media_type, CACHE)


async def _geometry(request: Request, params: Params) -> str | None:
    """The request's polygon: ``geometry=`` (GET) or the body (POST); None for neither.

    Raises
    ------
    InvalidParameterValue
        If a body is larger than `MAX_BODY_BYTES` or not UTF-8.
    """
    if request.method != "POST":
        return params.get("geometry")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise InvalidParameterValue(f"the geometry sent is larger than {MAX_BODY_BYTES} "
                                        "bytes; simplify the polygon")
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidParameterValue("the geometry sent is not UTF-8 text") from exc
