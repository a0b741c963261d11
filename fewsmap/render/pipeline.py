"""The render pipeline: select → regrid → colour → contours → encode, one typed value in."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from fewsmap.cancel import checkpoint
from fewsmap.catalog.styles import AUTO_RANGE, ColorRange, Style, in_data_units
from fewsmap.products.accumulate import StepSelector, most_steps, step_sum, summed_range
from fewsmap.products.catchments import CatchmentSet
from fewsmap.products.change import change_range, difference
from fewsmap.products.ensemble import EnsembleStatistic, Selector, statistic_of
from fewsmap.render.catchments import catchment_means, rasterise
from fewsmap.render.colour import Palette, palette_for
from fewsmap.render.contours import composite, contour_levels, contour_overlay
from fewsmap.render.encode import jpeg, png_palette, png_rgba, uv_tiff
from fewsmap.render.regrid import Canvas, SourceWindow, read_window, regrid
from fewsmap.store.cube import ForecastStore, RunInfo


@dataclass(frozen=True, eq=False)
class MapSpec:
    """Everything needed to draw one map; built by the protocol layer from a request.

    ``labels`` gives the store index along every dimension between ``step`` and the grid
    (members, levels), in the variable's dimension order.
    """

    store: ForecastStore
    variables: tuple[str, ...]  # one scalar, or the (u, v) components of a vector
    run: RunInfo
    valid_time: np.datetime64
    labels: tuple[Selector, ...]  # a member's index, or a statistic over the members
    canvas: Canvas
    style: Style
    color_range: ColorRange = None
    show_contours: bool = False
    transparent: bool = True
    bgcolor: tuple[int, int, int] = (255, 255, 255)
    # A temporal aggregate: these valid times reduced by ``reducer`` (sum, max, min, mean).
    aggregate: tuple[np.datetime64, ...] = ()
    reducer: str | None = None
    # Where a layer's nearest-time matching served another time than asked: (asked, served).
    time_substitutions: tuple[tuple[np.datetime64, np.datetime64], ...] = ()
    # How many valid times a TIME range without REDUCER held; the latest of them is drawn.
    range_times: int = 0
    # A catchment layer: each polygon of the set filled with its mean (render/catchments.py).
    catchments: CatchmentSet | None = None
    # Run change: this run's values (with its own member/level selectors) are subtracted.
    baseline: RunInfo | None = None
    baseline_labels: tuple[Selector, ...] = ()
    # An accumulation: each value is the sum of the run's steps in (time - window, time].
    window: np.timedelta64 | None = None

    @property
    def fields_per_value(self) -> int:
        """Fields read for each value drawn: the steps of an accumulation, twice for a
        change (the limiter's cost, `fewsmap.app.maps.maps_cost`)."""
        steps = 1 if self.window is None else len(
            step_sum(self.run, self.valid_time, self.window).steps)
        return steps * (1 if self.baseline is None else 2)


def run_range(run: RunInfo, variables: tuple[str, ...]) -> tuple[float, float] | None:
    """The value range over the whole run (computed at ingest), so tiles have no seams.

    For a vector, the speed range: 0 up to the largest speed the components allow.
    """
    ranges = []
    for variable in variables:
        stats = run.statistics.get(variable, {})
        low, high = stats.get("min"), stats.get("max")
        if low is None or high is None:
            return None
        ranges.append((float(low), float(high)))
    if len(ranges) == 1:
        return ranges[0]
    largest = [max(abs(low), abs(high)) for low, high in ranges]
    return 0.0, float(np.sqrt(sum(c * c for c in largest)))


def layer_range(store: ForecastStore, run: RunInfo, variables: tuple[str, ...],
                color_range: ColorRange = None) -> tuple[float, float] | None:
    """The automatic colour range of a layer: over all its runs, so one colour means one
    value in every run, or over ``run`` alone when asked (``COLORSCALERANGE=auto``).

    Statistics are per run (computed at ingest), so this reads no data.
    """
    runs = (run,) if color_range == AUTO_RANGE else store.runs_holding(variables) or (run,)
    ranges = [found for found in (run_range(r, variables) for r in runs) if found is not None]
    if not ranges:
        return None
    return min(low for low, _ in ranges), max(high for _, high in ranges)


def automatic_range(store: ForecastStore, run: RunInfo, variables: tuple[str, ...],
                    style: Style, color_range: ColorRange = None,
                    statistic: EnsembleStatistic | None = None,
                    window: np.timedelta64 | None = None,
                    baseline: RunInfo | None = None) -> tuple[float, float] | None:
    """The colour range drawn when none is given, in the style's display units: the
    layer's (`layer_range`) widened to round numbers, or that of the ensemble statistic
    drawn (0..100 for a probability), of an accumulation's sums (`summed_range`), and for a
    change from ``baseline`` symmetric about zero (`change_range`). A style's configured
    range pins it (the range its maps are drawn with) unless ``color_range`` asks for the
    drawn run's own (``auto``), as a given COLORSCALERANGE overrides it too. Maps, legends,
    tiles and GetStyles all use it."""
    if style.value_range is not None and color_range != AUTO_RANGE:
        return style.value_range
    found = product_range(store, run, variables, color_range, statistic, window)
    if baseline is not None:
        found = change_range(found, product_range(store, baseline, variables, color_range,
                                                  statistic, window))
    if statistic is not None and statistic.is_probability:
        return found
    found = shown_style(style, statistic, difference=baseline is not None).display_range(found)
    return None if found is None else round_range(*found)


def product_range(store: ForecastStore, run: RunInfo, variables: tuple[str, ...],
                  color_range: ColorRange, statistic: EnsembleStatistic | None,
                  window: np.timedelta64 | None) -> tuple[float, float] | None:
    """The stored-unit range of what ``run`` draws: the layer's (`layer_range`), a
    statistic's over it, scaled to an accumulation's sums (`summed_range`)."""
    found = layer_range(store, run, variables, color_range)
    if statistic is not None:
        found = statistic.value_range(found)
    return found if window is None else summed_range(found, most_steps(run, window))


# Steps an automatic range spans at most: with steps of 1 or 5 × 10ⁿ, rounding widens a
# range by at most a fifth of its span where the step divides it 20 times, half where 4.
MAX_STEPS = 20
MAX_ROUNDINGS = 8
ON_STEP = 1e-9  # of a step


def round_range(low: float, high: float) -> tuple[float, float]:
    """Widen a range to the nearest multiples of a round step, so legends read 5 … 35 °C
    rather than 5.85 … 31.65, and a colour keeps its value as runs arrive.

    The step is the smallest 1 or 5 × 10ⁿ that spans the range in at most `MAX_STEPS`, and
    the range is rounded again until that holds of the rounded range itself. Each of these
    steps divides the larger ones (1, 5, 10, 50 …; 2 and 5 would not), so the result is the
    smallest such range holding the input: a new run whose values lie within it leaves it
    exactly as it is, and one beyond it widens it by whole steps.
    """
    rounded = (low, high)
    for _ in range(MAX_ROUNDINGS):  # two or three suffice; a bound whatever floats do
        span = rounded[1] - rounded[0]
        if not (math.isfinite(span) and span > 0):
            break
        step = 10.0 ** math.floor(math.log10(span / MAX_STEPS))
        step *= next(m for m in (1, 5, 10) if span / (step * m) <= MAX_STEPS)
        wider = (_on_step(rounded[0], step, -1), _on_step(rounded[1], step, 1))
        if wider == rounded:
            break
        rounded = wider
    return rounded


def _on_step(bound: float, step: float, outwards: int) -> float:
    """The multiple of ``step`` nearest ``bound`` on its ``outwards`` side (-1: below, 1:
    above), ``bound`` itself when it is one up to float error (a rounded bound stays)."""
    multiple = round(bound / step)
    if abs(bound / step - multiple) > ON_STEP:
        multiple = math.ceil(bound / step) if outwards > 0 else math.floor(bound / step)
    value = float(np.round(multiple * step, 12))
    if (value - bound) * outwards < 0:  # float error put it inside: one step further out
        value = float(np.round((multiple + outwards) * step, 12))
    return value


def shown_style(style: Style, statistic: EnsembleStatistic | None,
                display_units: bool = True, difference: bool = False) -> Style:
    """The style's conversion for the values shown (maps, GetFeatureInfo): none for a
    probability or with ``display_units`` false (FEWS ``useDisplayUnits=false``); a standard
    deviation or a run change (``difference``) scales but takes no offset (a spread or a
    change of 2 K is 2 °C)."""
    if not display_units or (statistic is not None and statistic.is_probability):
        return in_data_units(style)
    spread = difference or (statistic is not None and statistic.kind == "std")
    return replace(style, offset=0.0) if spread and style.offset else style


def value_range(spec: MapSpec) -> tuple[float, float] | None:
    """The automatic colour range of a spec (`automatic_range`)."""
    return automatic_range(spec.store, spec.run, spec.variables, spec.style, spec.color_range,
                           statistic_of(spec.labels), spec.window, spec.baseline)


def read_windows(spec: MapSpec) -> list[SourceWindow | None]:
    """Read the source window of each variable (same cells for all), reduced over time
    when the spec is an aggregate."""
    times = spec.aggregate or (spec.valid_time,)
    per_time = []
    for when in times:  # an aggregate reads up to max_time_values fields: stop if cancelled
        checkpoint()
        per_time.append([_read_field(spec, variable, when) for variable in spec.variables])
    if len(per_time) == 1:
        return per_time[0]
    return [_reduce([windows[i] for windows in per_time], spec.reducer or "mean")
            for i in range(len(spec.variables))]


def field_prefix(spec: MapSpec, run: RunInfo, labels: tuple[Selector, ...],
                 when: np.datetime64) -> tuple[Selector | StepSelector, ...]:
    """The selectors of ``run``'s field at ``when``: its run slot, its step (or the steps
    an accumulation sums) and ``labels``."""
    steps: StepSelector = int(run.step_slots[np.flatnonzero(run.valid_times == when)[0]]) \
        if spec.window is None else step_sum(run, when, spec.window)
    return (run.slot, steps, *labels)


def _read_field(spec: MapSpec, variable: str, when: np.datetime64) -> SourceWindow | None:
    """One variable's window at ``when``: the run's, or its change from the baseline's."""
    prefix = field_prefix(spec, spec.run, spec.labels, when)
    window = read_window(spec.store, variable, prefix, spec.canvas)
    if spec.baseline is None or window is None:
        return window
    base_prefix = field_prefix(spec, spec.baseline, spec.baseline_labels, when)
    base = read_window(spec.store, variable, base_prefix, spec.canvas)
    if base is None or base.values.shape != window.values.shape:
        # The runs have other overview levels: both at full resolution, cell for cell.
        window = read_window(spec.store, variable, prefix, spec.canvas, overviews=False)
        base = read_window(spec.store, variable, base_prefix, spec.canvas, overviews=False)
        if window is None or base is None:
            return None
    return window.with_values(difference(window.values, base.values))


def _reduce(windows: list[SourceWindow | None], reducer: str) -> SourceWindow | None:
    """Reduce one variable's windows over time, ignoring missing values; a cell missing at
    every time stays missing."""
    present = [w for w in windows if w is not None]
    if not present:
        return None
    stack = np.stack([w.values for w in present]).astype(np.float64)
    valid = np.isfinite(stack)
    count = valid.sum(axis=0)
    total = np.where(valid, stack, 0.0).sum(axis=0)
    if reducer == "sum":
        reduced = total
    elif reducer == "mean":
        reduced = total / np.maximum(count, 1)
    elif reducer == "max":
        reduced = np.where(valid, stack, -np.inf).max(axis=0)
    else:
        reduced = np.where(valid, stack, np.inf).min(axis=0)
    reduced = np.where(count > 0, reduced, np.nan).astype(np.float32)
    return present[0].with_values(reduced)


def render_map(spec: MapSpec) -> bytes:
    """Draw the map described by ``spec`` as PNG bytes (deterministic for equal specs)."""
    return render_maps([spec])


def render_maps(specs: list[MapSpec], image_format: str = "image/png") -> bytes:
    """Draw one map, or several layers on top of each other (a named layer group).

    PNG: one transparent layer without contours is a palette PNG, anything else RGBA.
    JPEG: drawn over the background. The first spec's background settings apply.
    """
    if image_format == "image/png" and draws_palette(specs):
        indices, palette = draw_palette(specs[0])
        return png_palette(indices, palette.lut)
    rgba = draw_rgba(specs)
    return jpeg(rgba) if image_format == "image/jpeg" else png_rgba(rgba)


def draws_palette(specs: list[MapSpec]) -> bool:
    """Tell whether the maps are exactly a palette image: one transparent layer, no contours."""
    return len(specs) == 1 and specs[0].transparent and not specs[0].show_contours


def draw_palette(spec: MapSpec) -> tuple[np.ndarray, Palette]:
    """Draw one layer as palette indices (H, W) uint8 and the palette they index."""
    indices, palette, _ = _draw(spec)
    return indices, palette


def draw_rgba(specs: list[MapSpec]) -> np.ndarray:
    """Draw the layers on top of each other as RGBA (H, W, 4) uint8, with their contours,
    over the first spec's background unless it is transparent."""
    drawn = [_draw(spec) for spec in specs]
    first = specs[0]
    rgba = np.zeros((first.canvas.height, first.canvas.width, 4), dtype=np.uint8)
    for spec, (indices, palette, window) in zip(specs, drawn, strict=True):
        rgba = composite(rgba, palette.rgba(indices))
        if spec.show_contours:
            automatic = value_range(spec)
            levels = contour_levels(spec.style, palette, automatic[0] if automatic else None)
            rgba = composite(rgba, contour_overlay(window, spec.canvas, levels))
    if not first.transparent:
        background = np.empty_like(rgba)
        background[..., :3] = first.bgcolor
        background[..., 3] = 255
        rgba = composite(background, rgba)
    return rgba


def _draw(spec: MapSpec) -> tuple[np.ndarray, Palette, SourceWindow | None]:
    """Read, regrid and colour one layer: palette indices, the palette, the source cells."""
    if spec.catchments is not None:
        means = catchment_means(spec.store, spec.variables, spec.run, spec.valid_time,
                                spec.labels, spec.catchments)
        shown = shown_style(spec.style, statistic_of(spec.labels))
        means = shown.to_display(means) if shown.converts else means  # a run's means only
        palette = palette_for(spec.style, spec.color_range, value_range(spec))
        return palette.indices(rasterise(spec.catchments, means, spec.canvas)), palette, None
    windows = read_windows(spec)
    window = _in_display_units(windows[0] if len(windows) == 1 else _speed(windows),
                               shown_style(spec.style, statistic_of(spec.labels),
                                           difference=spec.baseline is not None))
    field = regrid(window, spec.canvas)
    automatic = None
    if not isinstance(spec.color_range, tuple):  # a range given makes the palette alone
        automatic = value_range(spec)
        if spec.reducer == "sum" and len(spec.aggregate) > 1:
            automatic = _data_range(field)  # a sum exceeds the run's per-step range
    palette = palette_for(spec.style, spec.color_range, automatic)
    return palette.indices(field), palette, window


def _in_display_units(window: SourceWindow | None, style: Style) -> SourceWindow | None:
    """Convert the source cells to the style's display units (K → °C …), so colours,
    contours and legends all read display values."""
    if window is None or not style.converts:
        return window
    return window.with_values(style.to_display(window.values))


def _data_range(field: np.ndarray) -> tuple[float, float] | None:
    finite = field[np.isfinite(field)]
    return (float(finite.min()), float(finite.max())) if finite.size else None


def render_uv_tiff(spec: MapSpec) -> bytes:
    """Encode a vector field as FEWS does: 8-bit RGBA TIFF with u in R and v in G.

    ``value = byte * scale + offset`` per component, with scale and offset in the
    ModelPixelScale and ModelTiepoint tags (re-purposed, not georeferencing); a missing
    value is R = G = 255; alpha is 0 outside the grid (reference/fews-wms-t.md §4.4).
    """
    fields = [regrid(window, spec.canvas) for window in read_windows(spec)]
    return uv_tiff(fields[0], fields[1])


def _speed(windows: list[SourceWindow | None]) -> SourceWindow | None:
    u, v = windows
    if u is None or v is None:
        return None
    return u.with_values(np.hypot(u.values, v.values).astype(np.float32))
