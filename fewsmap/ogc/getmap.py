"""GetMap: parse the query into a typed request, then resolve it against the catalog."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np

from fewsmap.catalog import Catalog, Layer, Style
from fewsmap.catalog.sld import parse_sld_body
from fewsmap.catalog.styles import (
    AUTO_RANGE,
    PROBABILITY_STYLE,
    ColorRange,
    colour_range_problem,
    in_data_units,
)
from fewsmap.crs import canonical_crs, check_offered, north_first, offered_crs
from fewsmap.dimensions import layer_dimensions
from fewsmap.errors import (
    InvalidDimensionValue,
    InvalidFormat,
    InvalidParameterValue,
    MissingDimensionValue,
    MissingParameterValue,
    StyleNotDefined,
)
from fewsmap.export import EXPORT_FORMATS
from fewsmap.params import Params, finite_number
from fewsmap.products.accumulate import complete_times, parse_window, step_sum
from fewsmap.products.change import (
    Baseline,
    check_shared,
    parse_baseline,
    select_baseline,
    shared_times,
)
from fewsmap.products.ensemble import EnsembleStatistic, Selector, parse_statistic
from fewsmap.render.pipeline import MapSpec
from fewsmap.render.regrid import Canvas
from fewsmap.resolve.labels import check_statistic
from fewsmap.resolve.layers import resolve_layer
from fewsmap.store.cube import RunInfo
from fewsmap.time.axis import REDUCERS, limit_times, resolve_times
from fewsmap.time.grammar import TimeSelection, parse_duration, parse_instant, parse_time

PNG = "image/png"
JPEG = "image/jpeg"
TIFF = "image/tiff"
FORMATS = {"image/png": PNG, "png": PNG, "image/png; mode=8bit": PNG, "image/png8": PNG,
           "image/jpeg": JPEG, "jpeg": JPEG, "image/jpg": JPEG,
           "image/tiff": TIFF, "image/geotiff": TIFF,
           **EXPORT_FORMATS}  # raw values: float32 COG and CF NetCDF (fewsmap.export)
# Run changes (fewsmap.products.change): blue below zero, red above, white at zero (the
# colour range is symmetric about zero).
CHANGE_STYLE = Style("change", "Change since the baseline run", colormap="RdBu_r")
# Style names clients send when they mean "the default" (FEWS test page sends the prompt).
DEFAULT_STYLE_NAMES = ("", "default", "Select a style")
MAX_SIDE_PX = 16384
# LAYERS one GetMap draws at most (advertised as the service's LayerLimit).
MAX_LAYERS = 16


@dataclass(frozen=True)
class GetMapRequest:
    """A syntactically valid GetMap request; bbox in (east, north) order whatever the CRS."""

    version: str
    layer: str
    style: str
    crs: str
    bbox: tuple[float, float, float, float]
    width: int
    height: int
    format: str
    time: TimeSelection | None = None
    reference_time: np.datetime64 | None = None  # None: the latest run
    lead_time: np.timedelta64 | None = None  # DIM_LEAD_TIME: valid time = run + lead
    reducer: str | None = None  # a temporal aggregate of the TIME range
    elevation: float | None = None
    member: int | EnsembleStatistic | None = None  # a member label, or a statistic over them
    # DIM_<NAME> for any other dimension, as given: read as a number only for a dimension
    # the layer has (WMS 1.3.0 Annex C.4.1: a dimension the layer lacks is ignored)
    dimensions: tuple[tuple[str, str], ...] = ()
    color_range: ColorRange = None
    # FEWS useDisplayUnits: numbers in display units (°C, mm/h); false: the stored ones
    use_display_units: bool = True
    show_contours: bool = False
    transparent: bool = True
    bgcolor: tuple[int, int, int] = (255, 255, 255)
    convert_uv: bool = False
    sld_style: Style | None = None  # a UserStyle of SLD_BODY, drawn instead of ``style``
    # (layer, style) of every entry of a LAYERS list, bottom first; empty for one name, which
    # ``layer`` and ``style`` hold (they hold the first entry of a list)
    stack: tuple[tuple[str, str], ...] = ()
    baseline: Baseline | None = None  # run change: the run minus this baseline run
    accumulate: np.timedelta64 | None = None  # the sum over this window ending at TIME

    @property
    def entries(self) -> tuple[tuple[str, str], ...]:
        """(layer or group, style) of every map drawn, bottom first."""
        return self.stack or ((self.layer, self.style),)


def wms_version(params: Params) -> str:
    """The WMS version asked for, leniently: FEWS sends ``1.3``; absent means 1.3.0."""
    version = (params.get("version") or params.get("wmtver") or "1.3.0").strip()
    return "1.1.1" if version.startswith("1.1") else "1.3.0"


def parse_getmap(params: Params, max_pixels: int, *, embedded: bool = False,
                 formats: Mapping[str, str] = FORMATS) -> GetMapRequest:
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
    return GetMapRequest(
        version=version,
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


def resolve_maps(catalog: Catalog, request: GetMapRequest) -> list[MapSpec]:
    """The maps a request means: one layer, or every layer of a named group.

    WMS 1.3.0 §7.2.4.6.3: a layer with a Name can be requested; a group (a FEWS
    gridPlotGroup) draws its layers in order, leaving out those without data for the
    requested time, level or member.

    Raises
    ------
    FewsmapError
        LayerNotDefined, InvalidCRS, InvalidDimensionValue, StyleNotDefined …
    """
    if request.stack:
        return [spec for name, style in request.stack
                for spec in _entry_maps(catalog, replace(request, layer=name, style=style,
                                                         stack=()))]
    if request.layer in catalog.layers or request.layer not in catalog.groups:
        layer, run, baseline = resolve_layer(catalog, request.layer)
        return [resolve_map(catalog, layer, run, replace(
            request, baseline=request.baseline or baseline))]
    check_group_style(request.layer, request.style, request.sld_style)
    specs = []
    for layer in group_layers(catalog, request.layer):
        try:
            specs.append(resolve_map(catalog, layer, None, request))
        except (InvalidDimensionValue, MissingDimensionValue):
            continue
    if not specs:
        raise InvalidDimensionValue(
            f"no layer of group {request.layer!r} has data for the requested dimensions")
    return specs


def check_group_style(group: str, style: str, sld_style: Style | None) -> None:
    """Refuse a style for a group, which draws its layers in their default styles.

    Raises
    ------
    StyleNotDefined
        For a named style or an SLD_BODY style.
    """
    if style not in DEFAULT_STYLE_NAMES or sld_style is not None:
        asked = "an SLD_BODY style" if sld_style else f"STYLES={style[:60]!r}"
        raise StyleNotDefined(f"group {group[:80]!r} draws its layers in their default "
                              f"styles; {asked} is not one of them")


def group_layers(catalog: Catalog, group: str) -> list[Layer]:
    """The layers a group draws, bottom first (the catalog's order)."""
    return [layer for layer in catalog.layers.values() if layer.group == group]


def _entry_maps(catalog: Catalog, request: GetMapRequest) -> list[MapSpec]:
    """The maps of one entry of a LAYERS list: a layer without data for the requested
    dimensions fails the whole map, saying which (none is silently left out)."""
    try:
        return resolve_maps(catalog, request)
    except (InvalidDimensionValue, MissingDimensionValue) as exc:
        raise type(exc)(f"LAYERS entry {request.layer[:80]!r}: {exc}") from exc


def resolve_map(catalog: Catalog, layer: Layer, run: RunInfo | None,
                request: GetMapRequest) -> MapSpec:
    """Find the run, time, members/levels and style a request means for ``layer``.

    Raises
    ------
    FewsmapError
        InvalidCRS, InvalidDimensionValue, StyleNotDefined …
    """
    if request.format == TIFF and not (layer.is_vector and request.convert_uv):
        raise InvalidFormat("image/tiff is offered for vector (u/v) layers with "
                            f"convertUVtoRG=true; {layer.id!r} "
                            f"{'needs convertUVtoRG=true' if layer.is_vector else 'is scalar'}")
    store = catalog.store(layer)
    run = select_run(catalog, layer, run, request.reference_time)
    baseline = derived_baseline(catalog, layer, run, request)
    offered = offered_crs(store.geometry.crs_wkt)
    crs = check_offered(request.crs, offered)
    resolved = resolve_times(run if request.time is not None else defined_run(
        run, baseline, request.accumulate), request.time, request.lead_time,
        layer.time_tolerance, default=str(layer.defaults.get("time", "now")))
    times = resolved.times
    limit_times(request.time, len(times), catalog.settings.max_time_values)
    range_times = 0
    if len(times) > 1 and request.reducer is None:
        if not _one_range(request.time):
            raise InvalidDimensionValue(
                f"TIME names {len(times)} valid times of run {run.label}; GetMap draws one, "
                f"or their aggregate with REDUCER={'|'.join(REDUCERS)} (or STYLES=<style>:sum "
                "…); a start/end range draws the latest time inside it")
        # GeoServer's choice, which QGIS's temporal controller relies on: a range (the
        # frame's span) draws the latest valid time inside it, said in the headers.
        range_times, times = len(times), (max(times),)
    check_product_times(run, baseline, request.accumulate, times)
    return MapSpec(
        store=store,
        variables=layer.variables,
        run=run,
        valid_time=times[0],
        aggregate=times if request.reducer else (),
        reducer=request.reducer,
        time_substitutions=resolved.substitutions,
        range_times=range_times,
        labels=dimension_labels(catalog, layer, request, run, times[0]),
        canvas=Canvas(crs, request.bbox, request.width, request.height),
        style=request.sld_style or statistic_style(layer, request.style, request.member,
                                                   request.use_display_units,
                                                   change=baseline is not None),
        color_range=request.color_range,
        show_contours=request.show_contours,
        transparent=request.transparent,
        bgcolor=request.bgcolor,
        catchments=catalog.catchments.get(layer.catchments) if layer.catchments else None,
        baseline=baseline,
        baseline_labels=() if baseline is None else dimension_labels(
            catalog, layer, request, baseline, times[0]),
        window=request.accumulate,
    )


def derived_baseline(catalog: Catalog, layer: Layer, run: RunInfo,
                     request: GetMapRequest) -> RunInfo | None:
    """The baseline run of a change (None: no change asked), after checking that the
    layer and request can have a change or an accumulation.

    Raises
    ------
    InvalidDimensionValue
        For an unknown baseline, or no previous run.
    InvalidParameterValue
        For a vector layer, or together with a temporal REDUCER.
    """
    asked = [name for name, given in (("BASELINE", request.baseline),
                                      ("ACCUMULATE", request.accumulate)) if given is not None]
    if not asked:
        return None
    if layer.is_vector:
        raise InvalidParameterValue(f"{' and '.join(asked)}: run changes and accumulations "
                                    f"are offered for scalar layers; {layer.id!r} is a "
                                    "vector layer (ask its u and v layers)")
    if request.reducer is not None:
        raise InvalidParameterValue(f"{' and '.join(asked)} draw one valid time; REDUCER="
                                    f"{request.reducer} aggregates several (not combined)")
    if layer.catchments:
        raise InvalidParameterValue(f"{' and '.join(asked)}: a catchment layer draws a run's "
                                    f"means at one valid time; ask its layer "
                                    f"{layer.id.split(':', 1)[1]!r} for changes and sums")
    if request.baseline is None:
        return None
    return select_baseline(catalog.runs(layer), run, request.baseline, layer.id)


def check_product_times(run: RunInfo, baseline: RunInfo | None, window: np.timedelta64 | None,
                        times: Sequence[np.datetime64] | np.ndarray) -> None:
    """Refuse valid times a change or accumulation has no value at.

    Raises
    ------
    InvalidDimensionValue
        Naming the times the baseline lacks (`check_shared`), or a window that reaches
        before the run started or is not a whole number of its steps (`step_sum`).
    """
    if baseline is not None:
        check_shared(times, run, baseline)
    if window is not None:
        for when in times:
            step_sum(run, when, window)


def defined_run(run: RunInfo, baseline: RunInfo | None,
                window: np.timedelta64 | None) -> RunInfo:
    """``run`` narrowed to the valid times a change or accumulation has a value at (those
    the baseline shares, whose window lies within the run): where a default time is chosen.
    """
    times = run.valid_times if baseline is None else shared_times(run, baseline)
    if window is not None:
        times = complete_times(run, times, window)
    if times.size == run.valid_times.size:
        return run
    if times.size == 0:
        what = "share no valid time" if baseline is not None and window is None else \
            "have no valid time a value is defined at"
        raise InvalidDimensionValue(
            f"run {run.label}{f' and baseline run {baseline.label}' if baseline else ''} "
            f"{what}{' for this accumulation window' if window is not None else ''}")
    keep = np.isin(run.valid_times, times)
    return replace(run, valid_times=run.valid_times[keep], step_slots=run.step_slots[keep])


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


def select_run(catalog: Catalog, layer: Layer, from_id: RunInfo | None,
               reference_time: np.datetime64 | None) -> RunInfo:
    """The run a request means: from a per-run layer id, externalForecastTime, or latest.

    Raises
    ------
    InvalidDimensionValue
        If the run does not exist or the two ways of naming it disagree.
    """
    runs = catalog.runs(layer)
    if not runs:
        raise InvalidDimensionValue(f"layer {layer.id!r} has no published run yet")
    if reference_time is None:
        return from_id or runs[-1]
    if from_id is not None and from_id.reference_time != reference_time:
        raise InvalidParameterValue(
            f"externalForecastTime differs from the run in the layer id {from_id.label}")
    for run in runs:
        if run.reference_time == reference_time:
            return run
    raise InvalidDimensionValue(
        f"layer {layer.id!r} has no run at {np.datetime_as_string(reference_time)}Z; "
        f"runs: {', '.join(r.label for r in runs[-5:])}{' …' if len(runs) > 5 else ''}")


def select_style(layer: Layer, name: str) -> Style:
    """The named style of the layer, or its default for an empty/placeholder name.

    Raises
    ------
    StyleNotDefined
        Naming the styles the layer offers.
    """
    if name in DEFAULT_STYLE_NAMES:
        return layer.default_style
    style = layer.style(name)
    if style is None:
        raise StyleNotDefined(f"style {name[:60]!r} is not defined for layer {layer.id!r}; "
                              f"styles: {', '.join(s.name for s in layer.styles)}")
    return style


def statistic_style(layer: Layer, name: str, member: object, display_units: bool = True,
                    change: bool = False) -> Style:
    """The style a map or legend of ``member`` is drawn in: `select_style`, except that an
    exceedance probability without a named style (or STYLES=probability) is drawn 0..100 %,
    and a run change (``change``) in the diverging `CHANGE_STYLE` (or a named style); with
    ``display_units`` false (FEWS ``useDisplayUnits=false``) in the stored units.

    Raises
    ------
    StyleNotDefined
        Naming the styles the layer offers.
    """
    if change and (name in DEFAULT_STYLE_NAMES or name == CHANGE_STYLE.name):
        return CHANGE_STYLE
    probability = isinstance(member, EnsembleStatistic) and member.is_probability
    if probability and (name in DEFAULT_STYLE_NAMES or name == PROBABILITY_STYLE.name):
        return PROBABILITY_STYLE
    style = select_style(layer, name)
    return style if display_units else in_data_units(style)


def dimension_labels(catalog: Catalog, layer: Layer, request: GetMapRequest, run: RunInfo,
                     valid_time: np.datetime64 | None = None) -> tuple[Selector, ...]:
    """Store indices along members and levels for the request (defaults where absent), a
    statistic over the members where the member named is one.

    Only labels holding data in ``run`` are accepted; a member or level not named defaults
    to the layer's default if that holds data at ``valid_time``, else the lowest member
    (the level nearest the surface) holding data then (`fewsmap.dimensions.layer_dimensions`).

    Raises
    ------
    InvalidDimensionValue
        Also for a statistic asked of a layer without members, or of a vector layer.
    """
    named = {"elevation": request.elevation, "ensemble_member": request.member}
    given = dict(request.dimensions)
    wanted = {name: value for name, value in named.items() if value is not None}
    dimensions = layer_dimensions(catalog.store(layer), layer.variable, layer.defaults, (run,),
                                  valid_time, layer.statistics)
    for dimension in dimensions:
        if dimension.name not in wanted and dimension.name in given:
            wanted[dimension.name] = finite_number(given[dimension.name],
                                                   f"DIM_{dimension.name.upper()}")
    check_statistic(layer, request.member, dimensions)
    return tuple(dimension.select(wanted.get(dimension.name), layer.id)
                 for dimension in dimensions)


# DIM_* parameters with a meaning of their own; any other DIM_<NAME> selects that dimension.
NAMED_DIMENSIONS = ("reference_time", "lead_time", "ensemble_member", "realization")


def _one_range(time: TimeSelection | None) -> bool:
    """Whether TIME is one start/end range (or a reduced-precision instant such as a day),
    not a list of times nor a range with a period, which name their times one by one."""
    return (time is not None and len(time.items) == 1 and not time.items[0].is_instant()
            and time.items[0].period is None)


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

