"""Map images and their feature info as HTTP answers: worked out off the event loop, within
the render limits; images cacheable and saying what they show."""

from __future__ import annotations

import hashlib
import unicodedata
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response

from fewsmap.app.limits import render_limiter
from fewsmap.app.streaming import body_response
from fewsmap.catalog import Catalog
from fewsmap.export import FILE_SUFFIXES
from fewsmap.export.fields import export_filename, export_map
from fewsmap.ogc.featureinfo import get_feature_info, nearest_warning
from fewsmap.ogc.getmap import TIFF, GetMapRequest, resolve_maps
from fewsmap.ogc.params import Params
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
        headers["Content-Disposition"] = attachment(name)
    if spec.time_substitutions:
        headers["Warning"] = nearest_warning(tuple(dict.fromkeys(
            served for _, served in spec.time_substitutions)))
    if etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    return body_response(request, image, parsed.format, headers)


async def feature_info_response(catalog: Catalog, params: Params, request: Request,
                                max_pixels: int) -> Response:
    """Answer a GetFeatureInfo (WMS, or WMTS's for a tile pixel) in a render slot."""
    body, media_type, headers = await render_limiter(request).run(
        get_feature_info, catalog, params, max_pixels)
    return Response(body, media_type=media_type, headers=dict(headers))


def cache_control(catalog: Catalog, parsed: GetMapRequest) -> str:
    """Fixed run and time: the image never changes (replacing a run is a rare, deliberate act,
    and ETags still tell). "Latest" or "now" change when a run lands or the clock moves."""
    fixed_run = parsed.reference_time is not None or (
        parsed.layer not in catalog.groups and catalog.resolve(parsed.layer)[1] is not None)
    # Only instants and ranges named explicitly fix it: TIME=current (now, present) follows
    # the clock.
    fixed_time = parsed.lead_time is not None or (
        parsed.time is not None and bool(parsed.time.items))
    if fixed_run and fixed_time:
        return "public, max-age=31536000, immutable"
    return "public, max-age=60"


def attachment(filename: str) -> str:
    """Content-Disposition of a download named ``filename`` (layer ids may be any script).

    Header values travel as Latin-1, so a name beyond ASCII goes as ``filename*`` in UTF-8
    (RFC 6266 §4.3, RFC 8187) after an ASCII ``filename`` for clients that know only that.
    """
    if filename.isascii():
        return f'attachment; filename="{filename}"'
    unaccented = "".join(c for c in unicodedata.normalize("NFKD", filename)
                         if not unicodedata.combining(c))
    fallback = "".join(c if c.isascii() else "_" for c in unaccented)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"
