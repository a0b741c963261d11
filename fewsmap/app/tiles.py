"""Tile routes: XYZ tiles with their TileJSON, and OGC WMTS 1.0.0 (KVP and REST): tiles and
their feature info."""

from __future__ import annotations

import logging
import re

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from fewsmap.app.api import api_error
from fewsmap.app.documents import Document
from fewsmap.app.links import public_base
from fewsmap.app.maps import feature_info_response, map_response
from fewsmap.app.state import service, visible_catalog
from fewsmap.catalog import Catalog
from fewsmap.dimensions import current_minute
from fewsmap.errors import (
    FewsmapError,
    InternalError,
    InvalidParameterValue,
    MissingParameterValue,
    OperationNotSupported,
)
from fewsmap.ogc import wmts
from fewsmap.ogc.tiles import TileAddress, parse_tile_number, tile_request, tilejson
from fewsmap.params import Params

log = logging.getLogger(__name__)
# "12.png", "12@2x.png": the row, and whether the tile is 512 pixels for high-DPI screens.
TILE_NAME = re.compile(r"(?P<y>[0-9]{1,9})(?P<retina>@2x)?\.png")


def tile_routes() -> list[Route]:
    """``/tiles/{layer}/{z}/{x}/{y}[@2x].png`` and ``/tiles/{layer}/tilejson.json``."""

    async def tile(request: Request) -> Response:
        try:
            catalog = await visible_catalog(request)
            path = request.path_params
            name = TILE_NAME.fullmatch(path["tile"])
            if name is None:
                raise InvalidParameterValue(
                    f"tile {path['tile'][:40]!r}: expected <row>.png or <row>@2x.png")
            address = TileAddress(parse_tile_number(path["z"], "zoom"),
                                  parse_tile_number(path["x"], "column"),
                                  int(name["y"]), 2 if name["retina"] else 1)
            own = service(request)
            params = await own.sld_documents.resolve(Params(request.query_params.multi_items()))
            parsed = tile_request(path["layer"], address, params, own.settings.max_image_pixels)
            return await map_response(catalog, parsed, request)
        except Exception as exc:  # every failure is a JSON error, never a traceback
            return api_error(exc)

    async def tile_json(request: Request) -> Response:
        try:
            catalog = await visible_catalog(request)
            params = Params(request.query_params.multi_items())
            base = public_base(request)
            document = await run_in_threadpool(
                tilejson, catalog, request.path_params["layer"], params, base)
        except Exception as exc:
            return api_error(exc)
        return JSONResponse(document, headers={"Cache-Control": "public, max-age=60"})

    return [
        Route("/tiles/{layer}/tilejson.json", tile_json, methods=["GET", "HEAD"]),
        Route("/tiles/{layer}/{z}/{x}/{tile}", tile, methods=["GET", "HEAD"]),
    ]


def wmts_routes() -> list[Route]:
    """OGC WMTS 1.0.0: ``/wmts`` (KVP) and ``/wmts/1.0.0/…`` (RESTful)."""

    async def kvp(request: Request) -> Response:
        try:
            catalog = await visible_catalog(request)
            params = await service(request).sld_documents.resolve(
                Params(request.query_params.multi_items()))
            operation = (params.get("request") or "").lower()
            if operation == "getcapabilities":
                return await _capabilities(catalog, request)
            if operation == "gettile":
                return await _answer(catalog, wmts.kvp_tile(catalog, params), request)
            if operation == "getfeatureinfo":
                return await _answer(catalog, wmts.kvp_feature_info(catalog, params), request)
            if not operation:
                raise MissingParameterValue("parameter REQUEST is required")
            raise OperationNotSupported(f"request {operation[:40]!r} is not offered; "
                                        "offered: GetCapabilities, GetTile, GetFeatureInfo")
        except Exception as exc:
            return wmts_error(exc)

    async def rest_capabilities(request: Request) -> Response:
        try:
            return await _capabilities(await visible_catalog(request), request)
        except Exception as exc:
            return wmts_error(exc)

    async def rest_resource(request: Request) -> Response:
        try:
            catalog = await visible_catalog(request)
            query = wmts.rest_query(catalog, request.path_params["layer"],
                                    request.path_params["path"])
            return await _answer(catalog, query, request)
        except Exception as exc:
            return wmts_error(exc)

    async def _answer(catalog: Catalog, query: wmts.TileQuery | wmts.PixelQuery,
                      request: Request) -> Response:
        """A tile is its GetMap; a pixel of it, that GetMap's WMS GetFeatureInfo."""
        max_pixels = service(request).settings.max_image_pixels
        if isinstance(query, wmts.PixelQuery):
            return await feature_info_response(catalog, wmts.feature_info_params(query),
                                               request, max_pixels)
        parsed = tile_request(query.layer, query.tile, Params(query.selectors), max_pixels)
        return await map_response(catalog, parsed, request)

    return [
        Route("/wmts", kvp, methods=["GET", "HEAD"]),
        Route("/wmts/1.0.0/WMTSCapabilities.xml", rest_capabilities, methods=["GET", "HEAD"]),
        Route("/wmts/1.0.0/{layer}/{path:path}", rest_resource, methods=["GET", "HEAD"]),
    ]


async def _capabilities(catalog: Catalog, request: Request) -> Response:
    base = public_base(request)

    def build() -> Document:
        return Document.of(wmts.capabilities(catalog, catalog.layers.values(), base),
                           "application/xml")

    key = ("wmts", catalog.cache_key, current_minute(), base)
    document = await run_in_threadpool(service(request).documents.get, key, build)
    return document.response(request, "public, max-age=60")


def wmts_error(exc: Exception) -> Response:
    """An OWS ExceptionReport with the error's HTTP status; bugs are logged, not shown."""
    if not isinstance(exc, FewsmapError):
        log.error("unexpected error", exc_info=exc)
        exc = InternalError("internal error; the server log has the details")
    return Response(wmts.exception_report(exc), status_code=exc.http_status,
                    media_type="application/xml", headers=exc.headers)
