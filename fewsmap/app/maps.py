"""Map images as HTTP answers: rendered off the event loop, cacheable, saying what they show."""

from __future__ import annotations

import hashlib

from starlette.requests import Request
from starlette.responses import Response

from fewsmap.app.limits import render_limiter
from fewsmap.catalog import Catalog
from fewsmap.export import FILE_SUFFIXES
from fewsmap.export.fields import export_filename, export_map
from fewsmap.ogc.featureinfo import nearest_warning
from fewsmap.ogc.getmap import TIFF, GetMapRequest, resolve_maps
from fewsmap.render.pipeline import render_maps, render_uv_tiff
from fewsmap.store.run import format_time


async def map_response(catalog: Catalog, parsed: GetMapRequest, request: Request) -> Response:
    """Render a parsed map request (GetMap, a tile) with its caching and identity headers."""
    specs = resolve_maps(catalog, parsed)
    spec = specs[0]
    limiter = render_limiter(request)  # at most N renders at once; 503 beyond the queue
    if parsed.format == TIFF:
        image = await limiter.run(render_uv_tiff, spec)
    elif parsed.format in FILE_SUFFIXES:  # raw values of the native grid, not a picture
        image = await limiter.run(export_map, specs, parsed.format, parsed.layer)
    else:
        image = await limiter.run(render_maps, specs, parsed.format)
    etag = '"' + hashlib.sha256(image).hexdigest()[:32] + '"'
    headers = {
        "ETag": etag,
        "Cache-Control": cache_control(catalog, parsed),
        "X-Fewsmap-Run": spec.run.label,
        "X-Fewsmap-Valid-Time": "/".join(format_time(t) for t in (
            (spec.aggregate[0], spec.aggregate[-1]) if spec.aggregate else (spec.valid_time,))),
    }
    if parsed.format in FILE_SUFFIXES:
        name = export_filename(spec, parsed.layer, FILE_SUFFIXES[parsed.format])
        headers["Content-Disposition"] = f'attachment; filename="{name}"'
    if spec.time_substitutions:
        headers["Warning"] = nearest_warning(tuple(dict.fromkeys(
            served for _, served in spec.time_substitutions)))
    if etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    return Response(image, media_type=parsed.format, headers=headers)


def cache_control(catalog: Catalog, parsed: GetMapRequest) -> str:
    """Fixed run and time: the image never changes (replacing a run is a rare, deliberate act,
    and ETags still tell). "Latest" or "now" change when a run lands or the clock moves."""
    fixed_run = parsed.reference_time is not None or (
        parsed.layer not in catalog.groups and catalog.resolve(parsed.layer)[1] is not None)
    fixed_time = parsed.time is not None or parsed.lead_time is not None
    if fixed_run and fixed_time:
        return "public, max-age=31536000, immutable"
    return "public, max-age=60"
