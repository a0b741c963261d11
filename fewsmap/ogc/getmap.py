"""GetMap: parse the query into the typed `MapRequest` that `fewsmap.resolve.maps` resolves."""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from fewsmap.catalog import Style
from fewsmap.catalog.sld import parse_sld_body
from fewsmap.catalog.styles import AUTO_RANGE, ColorRange, colour_range_problem
from fewsmap.crs import canonical_crs, north_first
from fewsmap.errors import (
    InvalidDimensionValue,
    InvalidFormat,
    InvalidParameterValue,
    MissingParameterValue,
)
from fewsmap.export import EXPORT_FORMATS
from fewsmap.formats.media import JPEG, PNG, TIFF
from fewsmap.params import Params, finite_number
from fewsmap.products.accumulate import parse_window
from fewsmap.products.change import parse_baseline
from fewsmap.products.ensemble import EnsembleStatistic, parse_statistic
from fewsmap.render.regrid import MAX_SIDE_PX
from fewsmap.resolve.maps import DEFAULT_STYLE_NAMES, MapRequest
from fewsmap.time.axis import REDUCERS
from fewsmap.time.grammar import parse_duration, parse_instant, parse_time

FORMATS = {"image/png": PNG, "png": PNG, "image/png; mode=8bit": PNG, "image/png8": PNG,
           "image/jpeg": JPEG, "jpeg": JPEG, "image/jpg": JPEG,
           "image/tiff": TIFF, "image/geotiff": TIFF,
           **EXPORT_FORMATS}  # raw values: float32 COG and CF NetCDF (fewsmap.export)
# LAYERS one GetMap draws at most (advertised as the service's LayerLimit).
MAX_LAYERS = 16


def wms_version(params: Params) -> str:
    """The WMS version asked for, leniently: FEWS sends ``1.3``; absent means 1.3.0."""
    version = (params.get("version") or params.get("wmtver") or "1.3.0").strip()
    return "1.1.1" if version.startswith("1.1") else "1.3.0"


def parse_getmap(params: Params, max_pixels: int, *, embedded: bool = False,
                 formats: Mapping[str, str] = FORMATS) -> MapRequest:
    """Check a GetMap query and return it typed. Limits are enforced before any work.

    ``formats`` maps FORMAT values to media types (animations pass theirs).

    ``embedded`` parses the map part of a GetFeatureInfo request (WMS 1.3.0 §7.4.3.3): FORMAT
    is not checked, since no image is drawn, and TIME and ELEVATION are left to the caller,
    where they may be lists or ranges.

    Raises
    ------
    FewsmapError
        The OGC exception for the first problem found.
    """
    version = wms_version(params)
    layers = params.get("layers") or ""
    if "," in layers and params.get("sld_body"):
        raise InvalidParameterValue("SLD_BODY styles one layer; LAYERS names several")
    style, reducer = _style_and_reducer(params)
    stack = _stack(layers, params.get("styles") or params.get("style") or "")
    layers, style, sld_style = client_style(params, stack[0][0] if stack else layers,
                                            stack[0][1] if stack else style)
    width, height = image_size(params, max_pixels)
    # 1.3.0 names it CRS and 1.1.1 SRS; clients mix them up, so either is accepted.
    crs_name = params.get("crs") or params.get("srs")
    if not crs_name:
        raise MissingParameterValue("parameter CRS (SRS in WMS 1.1.1) is required")
    crs = canonical_crs(crs_name)
    bbox = _bbox(params.require("bbox"))
    if version == "1.3.0" and crs != "OGC:CRS84" and _north_first(crs):
        bbox = (bbox[1], bbox[0], bbox[3], bbox[2])
    image_format = PNG if embedded else (params.get("format") or PNG).strip().lower()
    if image_format not in formats:
        raise InvalidFormat(f"FORMAT={image_format[:60]!r} is not offered; offered: "
                            "image/png, image/jpeg, image/tiff (vector layers, "
                            "convertUVtoRG=true), image/gif, image/apng, image/webp "
                            "(animations over a TIME list or range), "
                            "image/tiff;subtype=float32, application/x-netcdf (raw values)")
    if stack and formats[image_format] not in (PNG, JPEG):
        raise InvalidFormat(f"FORMAT={image_format[:60]!r} holds one layer; LAYERS names "
                            f"{len(stack)} (several layers are drawn as image/png or "
                            "image/jpeg)")
    time = None if embedded else params.get("time")
    lead = params.get("dim_lead_time")
    return MapRequest(
        layer=layers,
        style=style,
        crs=crs,
        bbox=bbox,
        width=width,
        height=height,
        format=formats[image_format],
        time=parse_time(time) if time else None,
        reference_time=parse_reference_time(params),
        lead_time=parse_duration(lead, "DIM_LEAD_TIME", allow_zero=True) if lead else None,
        reducer=reducer,
        dimensions=_other_dimensions(params),
        elevation=None if embedded else _number(params, "elevation"),
        member=parse_member(params),
        color_range=parse_color_range(params.get("colorscalerange")),
        use_display_units=params.flag("useDisplayUnits", default=True),
        show_contours=params.flag("showContours"),
        # JPEG has no alpha: it is drawn over BGCOLOR, as TRANSPARENT=FALSE.
        transparent=params.flag("transparent", default=True) and formats[image_format] != JPEG,
        bgcolor=_colour(params.get("bgcolor")),
        convert_uv=params.flag("convertUVtoRG"),
        sld_style=sld_style,
        stack=stack,
        baseline=parse_baseline(params.get("baseline")),
        accumulate=parse_window(params.get("accumulate")),
    )


def _stack(layers: str, styles: str) -> tuple[tuple[str, str], ...]:
    """The (layer, style) pairs of a LAYERS list (empty for one name), bottom first.

    WMS 1.3.0 §7.3.3.4: STYLES has one entry per layer, empty entries (or an empty STYLES)
    meaning the default styles; the temporal reducer of the first entry (``rain:sum``) is
    the request's (`_style_and_reducer`).

    Raises
    ------
    InvalidParameterValue
        For an empty name, more than `MAX_LAYERS` names, or a STYLES count that differs.
    """
    if "," not in layers:
        return ()
    names = [name.strip() for name in layers.split(",")]
    if not all(names):
        raise InvalidParameterValue(f"LAYERS={layers[:80]!r} has an empty name")
    if len(names) > MAX_LAYERS:
        raise InvalidParameterValue(f"LAYERS names {len(names)} layers; a map draws at most "
                                    f"{MAX_LAYERS} (the LayerLimit of the capabilities)")
    entries = [entry.strip() for entry in styles.split(",")] if styles else [""] * len(names)
    if len(entries) != len(names):
        raise InvalidParameterValue(
            f"STYLES={styles[:80]!r} has {len(entries)} entries for {len(names)} LAYERS; "
            "give one per layer (empty for its default style), or STYLES= for all defaults")
    return tuple((name, split_reducer(entry)[0]) for name, entry in
                 zip(names, entries, strict=True))


def split_reducer(style: str) -> tuple[str, str | None]:
    """A STYLES entry as (style, the temporal reducer it names): ``sum``, ``rain:sum``."""
    name, _, suffix = style.rpartition(":")
    if style.lower() in REDUCERS:
        return "", style.lower()
    if name and suffix.lower() in REDUCERS:
        return name, suffix.lower()
    return style, None


def client_style(params: Params, layer: str, style: str) -> tuple[str, str, Style | None]:
    """The layer, style name and SLD style a request draws, from LAYERS, STYLES and
    SLD_BODY (whose NamedLayer may name the layer when LAYERS is absent, as the WMS SLD
    profile allows).

    Raises
    ------
    FewsmapError
        MissingParameterValue without a layer; InvalidParameterValue or StyleNotDefined
        for an SLD_BODY that cannot be drawn; InvalidParameterValue for SLD by URL.
    """
    if params.get("sld"):  # the app fetches allowed URLs into SLD_BODY (app/sld_urls.py)
        raise InvalidParameterValue(
            "SLD by URL is not enabled for this request; send the document as SLD_BODY")
    body = params.get("sld_body")
    if not body:
        if not layer:
            raise MissingParameterValue("parameter LAYERS is required")
        return layer, style, None
    choice = parse_sld_body(body, layer or None,
                            "" if style in DEFAULT_STYLE_NAMES else style)
    if choice.style is None:  # a NamedStyle: one of the layer's own styles
        return choice.layer, choice.style_name, None
    return choice.layer, style, choice.style


def parse_reference_time(params: Params, names: tuple[str, ...] = (
        "externalForecastTime", "dim_reference_time")) -> np.datetime64 | None:
    """The run a request names by the first of ``names`` it carries (None: the latest).

    GetMap, GetFeatureInfo and GetLegendGraphic read the same parameters, so a legend
    describes the run its map draws (issue #13).

    Raises
    ------
    InvalidParameterValue
        If the value is not an instant.
    """
    name = next((n for n in names if params.get(n)), None)
    text = params.get(name) if name else None
    if not text or text.strip().lower() in ("current", "latest", "present"):
        return None
    return parse_instant(text, name or names[0])


# DIM_* parameters with a meaning of their own; any other DIM_<NAME> selects that dimension.
NAMED_DIMENSIONS = ("reference_time", "lead_time", "ensemble_member", "realization")


def _other_dimensions(params: Params) -> tuple[tuple[str, str], ...]:
    return tuple((name, text) for name, text in sorted(params.prefixed("dim_").items())
                 if name not in NAMED_DIMENSIONS and text)


def _style_and_reducer(params: Params) -> tuple[str, str | None]:
    """STYLES, and a temporal reducer given as REDUCER=… or as a style (``sum``, ``rain:sum``)."""
    style, suffix = split_reducer(
        (params.get("styles") or params.get("style") or "").split(",")[0].strip())
    reducer = (params.get("reducer") or "").strip().lower() or suffix
    if reducer is not None and reducer not in REDUCERS:
        raise InvalidParameterValue(f"REDUCER={reducer[:20]!r}; offered: {', '.join(REDUCERS)}")
    return style, reducer


def image_size(params: Params, max_pixels: int,
               default: tuple[int, int] = (800, 600)) -> tuple[int, int]:
    """WIDTH and HEIGHT (FEWS defaults 800 × 600), refused beyond the pixel limit.

    Raises
    ------
    InvalidParameterValue
        If a side is not 1..16384 pixels or WIDTH×HEIGHT exceeds ``max_pixels``.
    """
    width = params.pixels("width", MAX_SIDE_PX) or default[0]
    height = params.pixels("height", MAX_SIDE_PX) or default[1]
    if width * height > max_pixels:
        raise InvalidParameterValue(
            f"WIDTH×HEIGHT={width}×{height}={width * height} pixels exceeds the limit of "
            f"{max_pixels}")
    return width, height


def _bbox(text: str) -> tuple[float, float, float, float]:
    parts = text.split(",")
    try:
        values = tuple(float(p) for p in parts)
    except ValueError as exc:
        raise InvalidParameterValue(f"BBOX={text[:80]!r} must be four numbers") from exc
    if len(values) != 4 or not all(math.isfinite(v) for v in values):
        raise InvalidParameterValue(f"BBOX={text[:80]!r} must be four finite numbers")
    minx, miny, maxx, maxy = values
    if not (minx < maxx and miny < maxy):
        raise InvalidParameterValue(f"BBOX={text[:80]!r}: minimum must be below maximum")
    if not (math.isfinite(maxx - minx) and math.isfinite(maxy - miny)):  # pixel sizes
        raise InvalidParameterValue(f"BBOX={text[:80]!r}: width and height must be finite")
    return minx, miny, maxx, maxy


def _north_first(crs: str) -> bool:
    try:
        return north_first(crs)
    except Exception:  # an unknown CRS is refused later, with the layer's list of CRSs
        return False


def _number(params: Params, name: str) -> float | None:
    text = params.get(name)
    return finite_number(text, name.upper()) if text else None


def parse_member(params: Params) -> int | EnsembleStatistic | None:
    """Member from FEWS ``dim_ensemble_member=<ens>_<id>``, ``ensembleMemberId`` or DIM_*:
    a member number or an ensemble statistic (``mean``, ``p90``, ``above:20`` …)."""
    for name in ("dim_ensemble_member", "ensembleMemberId", "dim_realization"):
        text = params.get(name)
        if text:
            token = text.rsplit("_", 1)[-1]
            statistic = parse_statistic(token)
            if statistic is not None:
                return statistic
            try:
                return int(token)
            except ValueError as exc:
                raise InvalidDimensionValue(
                    f"{name}={text[:40]!r}: the member must be a whole number or a statistic "
                    "(mean, median, min, max, std, p1 .. p99, above:<X>, below:<X>)") from exc
    return None


def parse_color_range(text: str | None) -> ColorRange:
    """Read COLORSCALERANGE: ``min,max``, or ``auto`` (ncWMS) for the drawn run's own range.

    Raises
    ------
    InvalidParameterValue
        If it is neither.
    """
    if not text:
        return None
    if text.strip().lower() == AUTO_RANGE:
        return AUTO_RANGE
    try:
        low, high = (float(v) for v in text.split(","))
    except ValueError as exc:
        raise InvalidParameterValue(
            f"COLORSCALERANGE={text[:40]!r} must be two numbers min,max or auto") from exc
    problem = colour_range_problem(low, high)
    if problem:
        raise InvalidParameterValue(f"COLORSCALERANGE={text[:40]!r}: {problem}")
    return low, high


def _colour(text: str | None) -> tuple[int, int, int]:
    if not text:
        return (255, 255, 255)
    digits = text.strip().lower().removeprefix("0x").removeprefix("#")
    if len(digits) != 6 or any(c not in "0123456789abcdef" for c in digits):
        raise InvalidParameterValue(f"BGCOLOR={text[:20]!r} must be 0xRRGGBB")
    return int(digits[0:2], 16), int(digits[2:4], 16), int(digits[4:6], 16)

