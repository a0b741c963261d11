"""Maps: what a map request means to draw (DESIGN.md §7: resolution in one place).

A `MapRequest` names a layer (or a group, or a LAYERS stack), a style, the canvas and the
dimensions; `resolve_maps` finds the run, valid time, members, levels, style, baseline run
and accumulation window each map draws, as the `MapSpec` the render pipeline takes. The WMS
parser (`fewsmap.ogc.getmap`), tiles, WMTS, animations and the Python client
(`fewsmap.client.maps`) build the request; none of them decides what to read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from fewsmap.catalog import Catalog, Layer, Style
from fewsmap.catalog.styles import PROBABILITY_STYLE, ColorRange, in_data_units
from fewsmap.crs import check_offered, offered_crs
from fewsmap.dimensions import layer_dimensions
from fewsmap.errors import (
    InvalidDimensionValue,
    InvalidFormat,
    InvalidParameterValue,
    MissingDimensionValue,
    StyleNotDefined,
)
from fewsmap.formats.media import TIFF
from fewsmap.params import finite_number
from fewsmap.products.accumulate import complete_times, step_sum
from fewsmap.products.change import Baseline, check_shared, select_baseline, shared_times
from fewsmap.products.ensemble import EnsembleStatistic, Selector
from fewsmap.render.pipeline import MapSpec
from fewsmap.render.regrid import Canvas
from fewsmap.resolve.labels import check_statistic
from fewsmap.resolve.layers import resolve_layer
from fewsmap.settings import Settings
from fewsmap.store.cube import RunInfo
from fewsmap.time.axis import REDUCERS, limit_times, resolve_times
from fewsmap.time.grammar import TimeInterval, TimeSelection

# Run changes (fewsmap.products.change): blue below zero, red above, white at zero (the
# colour range is symmetric about zero).
CHANGE_STYLE = Style("change", "Change since the baseline run", colormap="RdBu_r")
# Style names clients send when they mean "the default" (FEWS test page sends the prompt).
DEFAULT_STYLE_NAMES = ("", "default", "Select a style")


@dataclass(frozen=True)
class MapRequest:
    """A map to draw, as every front names it (WMS GetMap, tiles, WMTS, the Python client):
    layer or group, style, canvas and dimensions; bbox in (east, north) order whatever the
    CRS, ``format`` the media type drawn."""

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


def resolve_maps(catalog: Catalog, request: MapRequest) -> list[MapSpec]:
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


def _entry_maps(catalog: Catalog, request: MapRequest) -> list[MapSpec]:
    """The maps of one entry of a LAYERS list: a layer without data for the requested
    dimensions fails the whole map, saying which (none is silently left out)."""
    try:
        return resolve_maps(catalog, request)
    except (InvalidDimensionValue, MissingDimensionValue) as exc:
        raise type(exc)(f"LAYERS entry {request.layer[:80]!r}: {exc}") from exc


def resolve_map(catalog: Catalog, layer: Layer, run: RunInfo | None,
                request: MapRequest) -> MapSpec:
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
                     request: MapRequest) -> RunInfo | None:
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


def dimension_labels(catalog: Catalog, layer: Layer, request: MapRequest, run: RunInfo,
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


def _one_range(time: TimeSelection | None) -> bool:
    """Whether TIME is one start/end range (or a reduced-precision instant such as a day),
    not a list of times nor a range with a period, which name their times one by one."""
    return (time is not None and len(time.items) == 1 and not time.items[0].is_instant()
            and time.items[0].period is None)


def resolve_frames(catalog: Catalog, request: MapRequest,
                   ) -> tuple[tuple[MapSpec, ...], tuple[tuple[np.datetime64, np.datetime64], ...]]:
    """Find the frames of an animation: the run, the valid times TIME names (each frame one
    of them, in time order), the limits checked, one map each; and the (asked, served) times
    nearest-time matching substituted.

    The limits are the catalog's settings ``max_animation_frames`` and
    ``max_animation_pixels``.

    Raises
    ------
    FewsmapError
        InvalidParameterValue (a group, too many frames or pixels), InvalidDimensionValue (a
        listed time that is not a step of the run), and whatever GetMap raises.
    """
    if request.layer not in catalog.layers and request.layer in catalog.groups:
        raise InvalidParameterValue(f"LAYERS={request.layer[:60]!r} is a group; an animation "
                                    "draws one layer")
    layer, from_id, derived = resolve_layer(catalog, request.layer)
    request = replace(request, baseline=request.baseline or derived)
    run = select_run(catalog, layer, from_id, request.reference_time)
    resolved = resolve_times(run, request.time, request.lead_time, layer.time_tolerance,
                             default=str(layer.defaults.get("time", "now")))
    _check_limits(len(resolved.times), request, catalog.settings)
    first = resolved.times[0]
    one_time = replace(request, time=TimeSelection((TimeInterval(first, first),)),
                       lead_time=None)
    spec = resolve_map(catalog, layer, run, one_time)  # style, CRS, levels, members
    frames = tuple(replace(spec, valid_time=when) for when in resolved.times)
    check_product_times(run, spec.baseline, spec.window, resolved.times)
    return frames, resolved.substitutions


def _check_limits(frames: int, request: MapRequest, settings: Settings) -> None:
    """Refuse an animation beyond the frame or pixel budget, before anything is drawn."""
    if frames > settings.max_animation_frames:
        raise InvalidParameterValue(
            f"TIME names {frames} frames; an animation has at most "
            f"{settings.max_animation_frames} (max_animation_frames): ask for fewer times "
            "or a longer period")
    pixels = frames * request.width * request.height
    if pixels > settings.max_animation_pixels:
        raise InvalidParameterValue(
            f"{frames} frames of {request.width}×{request.height} are {pixels} pixels; an "
            f"animation has at most {settings.max_animation_pixels} (max_animation_pixels): "
            "ask for fewer frames or a smaller map")
