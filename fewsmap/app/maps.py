"""Map images and their feature info as HTTP answers: worked out off the event loop, within
the render limits; images cacheable and saying what they show."""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Sequence
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response

from fewsmap.app.conditional import content_etag, not_modified
from fewsmap.app.limits import POINT_COST, map_cost, render, render_limiter, values_cost
from fewsmap.app.streaming import body_response
from fewsmap.catalog import Catalog
from fewsmap.export import FILE_SUFFIXES
from fewsmap.export.fields import export_filename, export_map
from fewsmap.formats.media import TIFF
from fewsmap.ogc.featureinfo import get_feature_info, nearest_warning
from fewsmap.params import Params
from fewsmap.products.ensemble import selection_cost
from fewsmap.render.pipeline import MapSpec, render_maps, render_uv_tiff
from fewsmap.resolve.maps import MapRequest, resolve_maps
from fewsmap.store.overviews import pyramid_of
from fewsmap.time.instants import format_time


async def map_response(catalog: Catalog, parsed: MapRequest, request: Request) -> Response:
    """Render a parsed map request (GetMap, a tile) with its caching and identity headers."""
    specs = resolve_maps(catalog, parsed)
    spec = specs[0]
    if parsed.format == TIFF:
        image = await render(request, maps_cost([spec]), render_uv_tiff, spec)
    elif parsed.format in FILE_SUFFIXES:  # raw values of the native grid, not a picture
        image = await render(request, export_cost(specs), export_map, specs, parsed.format,
                             parsed.layer)
    elif drawn_inline(specs, maps_cost(specs), catalog.settings.inline_render_cost):
        image = render_limiter(request).run_here(render_maps, specs, parsed.format)
    else:
        image = await render(request, maps_cost(specs), render_maps, specs, parsed.format)
    headers = {
        "ETag": content_etag(image),
        "Cache-Control": cache_control(catalog, parsed),
        "X-Fewsmap-Run": per_map([s.run.label for s in specs]),
        "X-Fewsmap-Valid-Time": per_map([valid_times(s) for s in specs]),
    }
    if parsed.format in FILE_SUFFIXES:
        name = export_filename(spec, parsed.layer, FILE_SUFFIXES[parsed.format])
        headers["Content-Disposition"] = attachment(name)
    warnings = time_warnings(specs)
    if warnings:
        headers["Warning"] = ", ".join(warnings)
    unchanged = not_modified(request.headers, headers, request.method)
    return unchanged or body_response(request, image, parsed.format, headers)


def per_map(values: list[str]) -> str:
    """A header value saying what each map drawn showed: one value when all showed the same,
    else one per map in drawing order (bottom first; a group's layers in its order),
    comma-separated."""
    return values[0] if len(set(values)) == 1 else ",".join(values)


def valid_times(spec: MapSpec) -> str:
    """The valid time a map shows, or ``first/last`` of the times it aggregates."""
    return "/".join(format_time(t) for t in (
        (spec.aggregate[0], spec.aggregate[-1]) if spec.aggregate else (spec.valid_time,)))


def time_warnings(specs: Sequence[MapSpec]) -> list[str]:
    """Warnings of every layer drawn that shows another valid time than TIME named: the
    nearest one (a layer's time tolerance), or the latest of a range."""
    served = tuple(dict.fromkeys(t for s in specs for _, t in s.time_substitutions))
    warnings = [nearest_warning(served)] if served else []
    for spec in specs:
        if spec.range_times:
            warnings.append(f"99 Latest of {spec.range_times} valid times in the TIME range "
                            f"used: time={format_time(spec.valid_time)}; "
                            "REDUCER=sum|max|min|mean draws their aggregate")
    return list(dict.fromkeys(warnings))


async def feature_info_response(catalog: Catalog, params: Params, request: Request,
                                max_pixels: int) -> Response:
    """Answer a GetFeatureInfo (WMS, or WMTS's for a tile pixel) in a render slot."""
    body, media_type, headers = await render(request, POINT_COST, get_feature_info, catalog,
                                             params, max_pixels)
    return Response(body, media_type=media_type, headers=dict(headers))


def maps_cost(specs: Sequence[MapSpec]) -> int:
    """The render cost of drawing ``specs`` (the layers of one image, or one frame):
    pixels × layers × components × times aggregated, contours counted extra; an ensemble
    statistic counts as the members it reads (`MemberStatistic.relative_cost`), a run
    change and an accumulation as the fields they read (`MapSpec.fields_per_value`: two,
    and the window's steps)."""
    spec = specs[0]
    layers = sum(math.ceil(len(s.variables) * max(1, len(s.aggregate)) *
                           selection_cost(s.labels) * s.fields_per_value) for s in specs)
    return map_cost(spec.canvas.width, spec.canvas.height, layers=layers,
                    contours=any(s.show_contours for s in specs))


# A grid of at most this many cells is read whole in a few ms even without overview levels.
INLINE_GRID_CELLS = 1 << 20


def drawn_inline(specs: Sequence[MapSpec], cost: int, limit: int) -> bool:
    """Whether a map is drawn on the event loop rather than in a render thread: its cost is
    at most ``limit`` (one 256² tile of one layer by default: no contours, statistics,
    aggregates or run change) and every layer reads local files (object storage waits on
    the network), a bounded window of them (overview levels zoomed out, or a small grid),
    no catchments (zonal means read whole regions).

    A tile's draw is 1-3 ms of numpy and compiled kernels; handed to a thread it cost its
    worker 0.4-0.6 ms more CPU in GIL hand-offs, and tiles per second at c=8 on 2 cores
    were 28 % fewer (benchmarks/results/operational.md)."""
    return cost <= limit and all(
        spec.catchments is None and spec.store.files is not None and _bounded(spec)
        for spec in specs)


def _bounded(spec: MapSpec) -> bool:
    rows, cols = spec.store.grid_shape
    return rows * cols <= INLINE_GRID_CELLS or bool(
        pyramid_of(spec.store).levels_for(spec.variables[0], spec.run.slot))


def export_cost(specs: Sequence[MapSpec]) -> int:
    """The render cost of exporting ``specs`` as raw values: at most their grids' cells
    (each read for every member an ensemble statistic reduces)."""
    return values_cost(sum(
        math.ceil(math.prod(s.store.array(variable).shape[-2:]) * max(1, len(s.aggregate)) *
                  selection_cost(s.labels) * s.fields_per_value)
        for s in specs for variable in s.variables))


def cache_control(catalog: Catalog, parsed: MapRequest) -> str:
    """Fixed run and time: the image never changes (replacing a run is a rare, deliberate act,
    and ETags still tell). "Latest" or "now" change when a run lands or the clock moves."""
    fixed_run = parsed.reference_time is not None or all(
        name not in catalog.groups and catalog.resolve(name)[1] is not None
        for name, _ in parsed.entries)
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
