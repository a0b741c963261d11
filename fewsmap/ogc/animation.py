"""Animated GetMap: the maps of one run over a TIME list or range, as GIF, APNG or WebP.

The request is a GetMap (same selectors, styles, contours, CRS) with an animation FORMAT,
and the vendor parameters ``FRAME_DURATION`` (milliseconds per frame) and
``ANIMATION_TIMESTAMP=true`` (valid time, run and lead time drawn on each frame). The frames
are the run's valid times TIME names, in time order: every listed instant must be a step of
the run holding data (or have one within the layer's ``time_tolerance``); ranges and periods
take the steps inside them that hold data, and one holding none is refused
(`fewsmap.resolve.maps.resolve_frames`). Frame count and frames × WIDTH × HEIGHT are checked
against the settings' limits before any frame is drawn.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fewsmap.catalog import Catalog
from fewsmap.errors import InvalidParameterValue
from fewsmap.ogc.getmap import parse_getmap
from fewsmap.params import Params
from fewsmap.render.animate import APNG, GIF, WEBP
from fewsmap.render.pipeline import MapSpec
from fewsmap.resolve.maps import MapRequest, resolve_frames
from fewsmap.time.instants import format_time

ANIMATION_FORMATS = {
    "image/gif": GIF, "gif": GIF,
    "image/apng": APNG, "apng": APNG, "image/vnd.mozilla.apng": APNG,
    "image/png;mode=animated": APNG, "image/png; mode=animated": APNG,
    "image/webp": WEBP, "webp": WEBP,
}
DEFAULT_FRAME_MS = 500
# Browsers show GIF delays below 20 ms as 100 ms; beyond 10 s it is a slide show.
MIN_FRAME_MS, MAX_FRAME_MS = 20, 10_000


@dataclass(frozen=True)
class AnimationRequest:
    """A syntactically valid animated GetMap."""

    map: MapRequest
    frame_ms: int = DEFAULT_FRAME_MS
    timestamp: bool = False


@dataclass(frozen=True)
class Animation:
    """The frames a request means (one map each, in time order) and what was substituted."""

    request: AnimationRequest
    frames: tuple[MapSpec, ...]
    substitutions: tuple[tuple[np.datetime64, np.datetime64], ...] = ()  # (asked, served)


def is_animation(params: Params) -> bool:
    """Tell whether a GetMap asks for an animation format."""
    return (params.get("format") or "").strip().lower() in ANIMATION_FORMATS


def parse_animation(params: Params, max_image_pixels: int) -> AnimationRequest:
    """Check an animated GetMap and return it typed.

    Raises
    ------
    FewsmapError
        The OGC exception for the first problem found (as GetMap, and for REDUCER,
        FRAME_DURATION and ANIMATION_TIMESTAMP).
    """
    request = parse_getmap(params, max_image_pixels, formats=ANIMATION_FORMATS)
    if request.reducer is not None:
        raise InvalidParameterValue(
            f"an animation draws each valid time; REDUCER={request.reducer} (an aggregate of "
            "the times) is for single images (image/png, image/jpeg)")
    return AnimationRequest(request, _frame_ms(params.get("frame_duration")),
                            params.flag("animation_timestamp"))


def resolve_animation(catalog: Catalog, request: AnimationRequest) -> Animation:
    """Find the frames an animated GetMap means (`fewsmap.resolve.maps.resolve_frames`).

    Raises
    ------
    FewsmapError
        As `resolve_frames`.
    """
    frames, substitutions = resolve_frames(catalog, request.map)
    return Animation(request, frames, substitutions)


def frame_times(animation: Animation) -> str:
    """The frames' valid times as a comma list (the X-Fewsmap-Valid-Time header)."""
    return ",".join(format_time(frame.valid_time) for frame in animation.frames)


def _frame_ms(text: str | None) -> int:
    if not text:
        return DEFAULT_FRAME_MS
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not MIN_FRAME_MS <= value <= MAX_FRAME_MS:
        raise InvalidParameterValue(f"FRAME_DURATION={text[:20]!r} must be whole milliseconds "
                                    f"from {MIN_FRAME_MS} to {MAX_FRAME_MS}")
    return value
