"""The Starlette application: a thin edge that parses, delegates and maps errors."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from fewsmap import __version__
from fewsmap.app.animation import animation_response
from fewsmap.app.api import api_routes
from fewsmap.app.catchments import catchment_routes
from fewsmap.app.documents import Document, DocumentCache
from fewsmap.app.edr import edr_routes
from fewsmap.app.files import UnsatisfiableRange
from fewsmap.app.health import health_routes
from fewsmap.app.http_errors import (
    ErrorImage,
    ReportingCORSMiddleware,
    http_error,
    range_refused,
)
from fewsmap.app.limits import POINT_COST, render
from fewsmap.app.links import public_url
from fewsmap.app.maps import feature_info_response, map_response
from fewsmap.app.metrics import MetricsMiddleware, metrics_routes
from fewsmap.app.security import TokenMiddleware
from fewsmap.app.state import Service, service
from fewsmap.app.tiles import tile_routes, wmts_routes
from fewsmap.app.viewer import viewer_routes
from fewsmap.app.zarr_http import zarr_routes
from fewsmap.catalog import Catalog, Layer
from fewsmap.dimensions import current_minute
from fewsmap.errors import (
    FewsmapError,
    InternalError,
    InvalidParameterValue,
    MissingParameterValue,
    OperationNotSupported,
)
from fewsmap.ogc.animation import is_animation
from fewsmap.ogc.capabilities import capabilities_json, capabilities_xml
from fewsmap.ogc.describelayer import describe_layer
from fewsmap.ogc.exceptions import exception_report, json_error
from fewsmap.ogc.getmap import parse_getmap, wms_version
from fewsmap.ogc.getstyles import get_styles
from fewsmap.ogc.legend import get_legend_graphic
from fewsmap.params import Params
from fewsmap.settings import Settings
from fewsmap.store.chunk_cache import BLOCKS, CHUNKS
from fewsmap.time.grammar import parse_instant

log = logging.getLogger(__name__)
JSON_FORMATS = ("application/json", "json")
# WMS operations an SLD styles (SLD=<url> is fetched for them only).
STYLED_OPERATIONS = ("getmap", "getlegendgraphic", "getfeatureinfo")


def create_app(settings: Settings, catalog: Catalog | None = None) -> Starlette:
    """Build the service for ``settings`` (the catalog is opened now, once).

    Handlers get the worker's `Service` one way: the lifespan's state (fewsmap/app/state.py).
    """
    CHUNKS.resize(settings.object_cache_mb << 20)
    BLOCKS.resize(settings.block_cache_mb << 20)
    own = Service(settings, catalog or Catalog(settings))

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Service]]:
        # Kernels and a real map of each store are drawn before /health says ready
        # (fewsmap/app/warmup.py). A single worker answers meanwhile, only slower; one of
        # several has warmed up before its socket listens (fewsmap/app/serve.py).
        own.readiness.warm_up_in_background()
        yield {"service": own}

    routes = [
        *viewer_routes(),  # the forecast viewer at / and its files under /viewer/
        Route("/health", health),
        *health_routes(),  # /health/live, /health/ready for orchestrators
        *metrics_routes(),  # /metrics for Prometheus
        Route("/wms", wms),
        Route("/FewsWebServices/wms", wms),  # drop-in path of the Delft-FEWS web service
        *api_routes(),
        *catchment_routes(),  # /api/catchments: means over polygons
        *tile_routes(),
        *wmts_routes(),
        *zarr_routes(),  # raw store files for Zarr clients (read-only)
        *edr_routes(),  # OGC API - EDR
    ]
    # FewsmapError is answered by Starlette's exception middleware; anything else reaches
    # the outermost error middleware, which answers with on_error too.
    # Dashboards (FEWS Web OC, Leaflet, OpenLayers) run on other origins and read JSON
    # capabilities, legends and feature info with fetch: by default (cors_origins) every
    # answer allows any origin; tokens travel in Authorization.
    # Zarr readers in browsers send Range and conditional requests and read their answers.
    cors = Middleware(ReportingCORSMiddleware, allow_origins=list(settings.cors_origins),
                      allow_methods=["GET", "HEAD"],
                      allow_headers=["Range", "If-None-Match", "If-Modified-Since",
                                     "If-Range", "Authorization"],
                      expose_headers=["ETag", "Warning", "X-Fewsmap-Run",
                                      "X-Fewsmap-Valid-Time", "Content-Range",
                                      "Accept-Ranges", "Content-Length", "Last-Modified",
                                      "Retry-After", "WWW-Authenticate"])
    tokens = [Middleware(TokenMiddleware, security=own.security)] if own.security else []
    # Outermost: every request is counted, refusals of the CORS and token layers too.
    counted = Middleware(MetricsMiddleware, metrics=own.metrics)
    app = Starlette(routes=routes, lifespan=lifespan, middleware=[counted, cors, *tokens],
                    exception_handlers={HTTPException: http_error, FewsmapError: on_error,
                                        UnsatisfiableRange: range_refused,
                                        Exception: on_error})
    app.state.service = own  # for the process set-up in serve.py only, not for handlers
    return app


async def health(request: Request) -> Response:
    """``/health``: the stores, the layers and whether every worker is warm."""
    own = service(request)
    current = await own.visible_catalog()
    stores = [{
        "name": store.name,
        "runs": len(store.runs),
        "latest_run": store.latest_run.label if store.latest_run else None,
        "variables": store.variables,
    } for store in current.stores.values()]
    # 503 until every worker is warm: load balancers send no traffic yet.
    ready = own.readiness.ready
    return JSONResponse({"status": "ok" if ready else "warming up", "ready": ready,
                         "workers": own.readiness.workers(),
                         "version": __version__, "layers": len(current.layers),
                         "stores": stores,
                         "renders": own.render_limiter.stats()},
                        status_code=200 if ready else 503,
                        headers={} if ready else {"Retry-After": "1"})


async def wms(request: Request) -> Response:
    """The WMS (and Delft-FEWS) endpoint: every operation, every failure in the client's
    format."""
    own = service(request)
    settings = own.settings
    current = await own.visible_catalog()
    try:
        params = Params(request.query_params.multi_items())
        operation = (params.get("request") or "").lower()
        if operation in STYLED_OPERATIONS:
            params = await own.sld_documents.resolve(params)
        if operation == "getcapabilities":
            document = await run_in_threadpool(
                get_capabilities, current, params, public_url(request), own.documents)
            return document.response(request)
        if operation == "getmap":
            return await get_map(current, settings, params, request)
        if operation == "getfeatureinfo":
            return await feature_info_response(current, params, request,
                                               settings.max_image_pixels)
        if operation == "getlegendgraphic":
            legend, media_type = await render(
                request, POINT_COST, get_legend_graphic, current, params,
                settings.max_image_pixels)
            if isinstance(legend, dict):
                return JSONResponse(legend)
            return Response(legend, media_type=media_type)
        if operation == "describelayer":
            description, media_type = describe_layer(current, params)
            if isinstance(description, dict):
                return JSONResponse(description)
            return Response(description, media_type=media_type)
        if operation == "getstyles":
            styles, media_type = await run_in_threadpool(get_styles, current, params)
            return Response(styles, media_type=media_type)
        if not operation:
            raise MissingParameterValue("parameter REQUEST is required")
        raise OperationNotSupported(
            f"request {operation[:40]!r} is not offered; offered: GetCapabilities, "
            "GetMap, GetFeatureInfo, GetLegendGraphic, DescribeLayer, GetStyles")
    except Exception as exc:  # every failure becomes the answer the client asked for
        return error_response(exc, Params.for_errors(request.query_params.multi_items()),
                              settings.max_image_pixels)


async def on_error(request: Request, exc: Exception) -> Response:
    """Any failure outside the WMS handler, answered as the client asked."""
    return error_response(exc, Params.for_errors(request.query_params.multi_items()),
                          service(request).settings.max_image_pixels)


async def get_map(catalog: Catalog, settings: Settings, params: Params,
                  request: Request) -> Response:
    """Answer GetMap with an image, cacheable by ETag; the run's identity in the headers."""
    if is_animation(params):  # GIF/APNG/WebP over a TIME list or range
        return await animation_response(catalog, settings, params, request)
    parsed = parse_getmap(params, settings.max_image_pixels)
    return await map_response(catalog, parsed, request)


def error_response(exc: Exception, params: Params, max_pixels: int) -> Response:
    """Render a failure as the client asked: OGC XML (by version), an image of at most
    ``max_pixels`` (beyond them: XML), or JSON."""
    if not isinstance(exc, FewsmapError):  # a bug: log it, never show a traceback
        log.error("unexpected error", exc_info=exc)
        exc = InternalError("internal error; the server log has the details")
    operation = (params.get("request") or "").lower()
    mode = (params.get("exceptions") or "").lower()
    if operation == "getmap" and mode.endswith(("inimage", "blank")) and exc.http_status < 500:
        try:
            width, height = int(params.get("width") or 0), int(params.get("height") or 0)
        except ValueError:
            width = height = 0
        # The map's own pixel limit (issue #13: error images of 4096² were drawn unasked).
        if 0 < width * height <= max_pixels and max(width, height) <= 16384:
            return ErrorImage(exc, (width, height), mode.endswith("blank"), wms_version(params))
    if (params.get("format") or "").lower() in JSON_FORMATS or "json" in mode:
        return Response(json_error(exc), status_code=exc.http_status,
                        media_type="application/json", headers=exc.headers)
    body, media_type = exception_report(exc, wms_version(params))
    return Response(body, status_code=exc.http_status, media_type=media_type,
                    headers=exc.headers)


def get_capabilities(catalog: Catalog, params: Params, service_url: str,
                     documents: DocumentCache) -> Document:
    """GetCapabilities in XML (default) or FEWS JSON, built once per catalog snapshot."""
    layers = _requested_layers(catalog, params)
    only_headers = params.flag("onlyHeaders")
    period = _forecast_period(catalog, params, layers)
    as_json = (params.get("format") or "").lower() in JSON_FORMATS
    version = wms_version(params)
    periods = period and tuple((k, tuple(run.label for run in v)) for k, v in period.items())
    key = ("wms", catalog.cache_key, current_minute(), None if as_json else service_url,
           tuple(layer.id for layer in layers), only_headers, periods, as_json, version)

    def build() -> Document:
        if as_json:
            content = capabilities_json(catalog, layers, only_headers, period)
            body = json.dumps(content, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
            return Document.of(body.encode(), "application/json")
        xml = capabilities_xml(catalog, layers, service_url, only_headers, period, version)
        return Document.of(xml, "application/vnd.ogc.wms_xml" if version == "1.1.1"
                           else "text/xml")

    return documents.get(key, build)


def _requested_layers(catalog: Catalog, params: Params) -> list[Layer]:
    name = params.get("layers")
    if not name:
        return list(catalog.layers.values())
    return [catalog.resolve(name)[0]]


def _forecast_period(catalog: Catalog, params: Params,
                     layers: list[Layer]) -> dict[str, list[Any]] | None:
    """The runs asked for by startForecastTime/endForecastTime/forecastCount (FEWS)."""
    start, end = params.get("startForecastTime"), params.get("endForecastTime")
    if not start and not end:
        return None
    if not params.get("layers"):
        raise MissingParameterValue("a forecast period needs the LAYERS parameter (FEWS rule)")
    try:  # the TIME parser's instants: time zones, reduced precision, clear messages
        first = parse_instant(start, "startForecastTime") if start else None
        last = parse_instant(end, "endForecastTime") if end else None
        count = int(params.get("forecastCount") or 1)
    except (FewsmapError, ValueError) as exc:
        raise InvalidParameterValue(f"invalid forecast period: {exc}") from exc
    if count < 1:
        raise InvalidParameterValue("forecastCount must be at least 1")
    layer = layers[0]
    runs = [run for run in catalog.runs(layer)
            if (first is None or run.reference_time >= first)
            and (last is None or run.reference_time <= last)]
    return {layer.id: runs[-count:]}
