"""Animated GetMap as an HTTP answer: parsed and checked here, drawn in a render thread."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from fewsmap.app.conditional import content_etag, not_modified
from fewsmap.app.limits import render
from fewsmap.app.maps import cache_control, maps_cost
from fewsmap.app.streaming import body_response
from fewsmap.catalog import Catalog
from fewsmap.ogc.animation import frame_times, parse_animation, resolve_animation
from fewsmap.ogc.featureinfo import nearest_warning
from fewsmap.params import Params
from fewsmap.render.animate import render_animation
from fewsmap.settings import Settings


async def animation_response(catalog: Catalog, settings: Settings, params: Params,
                             request: Request) -> Response:
    """Answer an animated GetMap, cacheable by ETag; run and frame times in the headers.

    The limits are checked while resolving, on the event loop, before a frame is drawn; the
    animation costs its frames × pixels (a heavy render, stopped between frames when its
    client goes away or its time runs out).
    """
    asked = parse_animation(params, settings.max_image_pixels)
    animation = resolve_animation(catalog, asked)
    cost = maps_cost([animation.frames[0]]) * len(animation.frames)
    body = await render(request, cost, render_animation,
                        [[frame] for frame in animation.frames], asked.map.format,
                        asked.frame_ms, asked.timestamp)
    headers = {
        "ETag": content_etag(body),
        "Cache-Control": cache_control(catalog, asked.map),
        "X-Fewsmap-Run": animation.frames[0].run.label,
        "X-Fewsmap-Valid-Time": frame_times(animation),
    }
    if animation.substitutions:
        headers["Warning"] = nearest_warning(tuple(dict.fromkeys(
            served for _, served in animation.substitutions)))
    unchanged = not_modified(request.headers, headers, request.method)
    return unchanged or body_response(request, body, asked.map.format, headers)
