"""Maps in Python and Jupyter, drawn by the service's own pipeline.

`render_map` resolves a layer, run, time and style as WMS GetMap does
(`fewsmap.resolve.maps.resolve_maps`) and draws with `fewsmap.render.pipeline.render_maps`, so a
notebook image is the service's PNG for the same request, pixel for pixel. `draw` serves the
``.fewsmap`` accessor (`fewsmap.client.accessor`): a field from `open_cube` is drawn from its store
(its run/time/member selection applies), or, read over HTTP from a service, by that
service's GetMap; any other 2-D field held in memory (a difference of runs, an ensemble
percentile) with the same regrid and colour stages, in a style from its CF attributes, a
matplotlib colour map or a style of the layer it came from. Drawing it beats refusing it:
computed fields are what analysts look at, and they then look like the service's maps.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import numpy as np
import pyproj
import xarray as xr
from matplotlib import colormaps
from PIL import Image

from fewsmap.catalog import Catalog, Layer, Style
from fewsmap.catalog.extent import lonlat_bbox, lonlat_to_mercator
from fewsmap.catalog.styles import default_style
from fewsmap.client.service import (
    Bbox,
    Client,
    Instant,
    ServiceError,
    aspect_height,
    duration_text,
    instant_text,
    styles_in,
)
from fewsmap.crs import canonical_crs
from fewsmap.dimensions import layer_dimensions
from fewsmap.errors import (
    InvalidDimensionValue,
    InvalidParameterValue,
    LayerNotDefined,
    StyleNotDefined,
)
from fewsmap.formats.media import PNG
from fewsmap.products.ensemble import EnsembleStatistic, parse_statistic
from fewsmap.render.colour import palette_for
from fewsmap.render.contours import composite, contour_levels, contour_overlay
from fewsmap.render.pipeline import MapSpec, automatic_range, render_maps
from fewsmap.render.regrid import MAX_SIDE_PX, Canvas, SourceWindow, regrid
from fewsmap.resolve.maps import MapRequest, resolve_maps
from fewsmap.settings import Settings, load_settings
from fewsmap.store.cube import SOURCE_ATTR, is_store, open_cube
from fewsmap.store.geometry import (
    LONLAT,
    LONLAT_SEPARABLE,
    cell_edges,
    lat_axis_in,
    lon_axis_in,
    lonlat_to,
    transform_finite,
    transformer,
)
from fewsmap.store.layout import MEMBER_DIM, RUN_DIM, STEP_DIM, VALID_TIME
from fewsmap.time.axis import REDUCERS
from fewsmap.time.grammar import parse_duration, parse_instant, parse_time
from fewsmap.time.instants import format_time

# Options of a field held in memory: run, time and members are chosen with .sel() there.
IN_MEMORY_OPTIONS = frozenset({"style", "bbox", "crs", "width", "height", "color_range",
                               "show_contours"})
ColourRange = tuple[float, float]


def render_map(layer: str, *, run: Instant | None = None, time: Instant | None = None,
               lead_time: str | np.timedelta64 | None = None, style: str = "",
               bbox: Bbox | None = None, crs: str = "EPSG:3857", width: int = 800,
               height: int | None = None, member: float | str | None = None,
               elevation: float | None = None, dimensions: Mapping[str, float] | None = None,
               color_range: tuple[float, float] | None = None, reducer: str | None = None,
               show_contours: bool = False, transparent: bool = True,
               catalog: Catalog | None = None) -> Image.Image:
    """Draw a layer as the service's GetMap does, as a PIL image (shown inline in Jupyter).

    Parameters
    ----------
    layer
        A layer id (``naefs-mean.QTF``), a per-run id ``<layer>-<T0>`` or a layer group.
    run
        The run's reference time; default the latest run.
    time
        A valid time, or a WMS TIME value (a range needs ``reducer``); default the layer's
        default time (the first step at or after now). ``lead_time`` instead picks by lead.
    style, color_range, show_contours, transparent, reducer, member, elevation, dimensions
        As STYLES, COLORSCALERANGE, showContours, TRANSPARENT, REDUCER, the member label
        or an ensemble statistic (``"mean"``, ``"p90"``, ``"above:20"`` …), ELEVATION and
        DIM_<NAME> of GetMap.
    bbox
        ``(minx, miny, maxx, maxy)`` in ``crs``, east first in every CRS (longitude first for
        EPSG:4326, unlike a WMS 1.3.0 BBOX); default the layer's extent.
    width, height
        Size in pixels; the default height keeps the bbox's aspect ratio.
    catalog
        Default: the catalog the service publishes here (`default_catalog`).

    Returns
    -------
    PIL.Image.Image
        The map; ``info["run"]`` and ``info["valid_time"]`` say what it shows.

    Raises
    ------
    FewsmapError
        The service's error for the same request (LayerNotDefined, InvalidDimensionValue …).
    """
    catalog = catalog or default_catalog()
    crs = canonical_crs(crs)
    bbox = bbox or layer_extent(catalog, layer, crs)
    request = MapRequest(
        layer=layer, style=style, crs=crs, bbox=_checked_bbox(bbox),
        width=_pixels(width, "width"),
        height=_pixels(height or aspect_height(bbox, width), "height"), format=PNG,
        time=parse_time(instant_text(time)) if time is not None else None,
        reference_time=_run(run), lead_time=_lead_time(lead_time),
        reducer=_reducer(reducer), elevation=elevation,
        member=_member(member),
        dimensions=tuple(sorted((k, repr(float(v))) for k, v in (dimensions or {}).items())),
        color_range=_checked_range(color_range), show_contours=show_contours,
        transparent=transparent)
    specs = resolve_maps(catalog, request)
    return _image(render_maps(specs, PNG), specs[0])


def default_catalog() -> Catalog:
    """The catalog a service started here would publish (``FEWSMAP_*``, config file).

    Opened once per settings and refreshed at every call, so new runs show at once.
    """
    return _fresh(load_settings())


def layer_extent(catalog: Catalog, name: str, crs: str) -> Bbox:
    """The extent of a layer (or of a group's layers) in ``crs``, east first."""
    layers = _layers_named(catalog, name)
    boxes = np.array([lonlat_bbox(catalog.store(layer)) for layer in layers])
    west, south = boxes[:, :2].min(axis=0)
    east, north = boxes[:, 2:].max(axis=0)
    if canonical_crs(crs) == "EPSG:3857":
        return lonlat_to_mercator((float(west), float(south), float(east), float(north)))
    minx, miny, maxx, maxy = transformer(LONLAT, crs).transform_bounds(west, south, east, north,
                                                          densify_pts=21)
    return float(minx), float(miny), float(maxx), float(maxy)


def draw(field: xr.DataArray, **options: Any) -> Image.Image:
    """Draw a DataArray: while it holds stored values, from its store (or, read over HTTP,
    by its service's GetMap), else from memory.

    Raises
    ------
    FewsmapError
        The service's error for a stored field (`ServiceError` over HTTP);
        InvalidParameterValue when a field held in memory cannot be placed on a map or an
        option does not apply to it.
    """
    stored = stored_layer(field)
    if stored is not None:
        return draw_stored(field, *stored, **options)
    served = served_layer(field)
    if served is not None:
        return draw_served(field, *served, **options)
    unknown = sorted(set(options) - IN_MEMORY_OPTIONS)
    if unknown:
        raise InvalidParameterValue(
            f"{', '.join(unknown)}: {_name(field)} is drawn from its values in memory (it is "
            "computed, read over HTTP or a part of the grid); select its run, time and "
            f"members with .sel()/.isel() first (options here: "
            f"{', '.join(sorted(IN_MEMORY_OPTIONS))})")
    return draw_array(field, **options)


def stored_layer(field: xr.DataArray) -> tuple[Catalog, Layer] | None:
    """The layer whose stored values ``field`` still holds, or None for a computed field.

    `open_cube` records the store in ``attrs``, but xarray keeps attrs through arithmetic and
    reductions; those drop the on-disk ``encoding``, though, and a reduction also loses a
    stored dimension. So a field counts as stored while it has its encoding, the store's
    variable name, every stored dimension (as a dimension or a selected coordinate) and
    the whole grid. (``roll``/``shift`` keep the encoding: they count as stored.)
    """
    source = field.attrs.get(SOURCE_ATTR)
    if not (isinstance(source, str) and "://" not in source and field.encoding
            and is_store(Path(source))):
        return None
    try:
        catalog, layer = layer_of(Path(source), str(field.name))
    except LayerNotDefined:
        return None
    store = catalog.store(layer)
    stored = zip(store.dims(layer.variable), store.array(layer.variable).shape, strict=True)
    return (catalog, layer) if holds_stored_values(field, dict(stored)) else None


def holds_stored_values(field: xr.DataArray, stored: Mapping[str, int]) -> bool:
    """Tell whether ``field`` is a selection of a stored variable with these dimension sizes
    (grid last): the whole grid, and each other dimension kept or selected to one value."""
    dims = list(stored)
    whole_grid = all(field.sizes.get(dim) == stored[dim] for dim in dims[-2:])
    selected = all(dim in field.dims or _scalar(field, dim) is not None for dim in dims[:-2])
    return whole_grid and selected


def draw_stored(field: xr.DataArray, catalog: Catalog, layer: Layer,
                **options: Any) -> Image.Image:
    """Draw a stored field with `render_map`; its scalar run, valid time (or lead time),
    member and level coordinates are the defaults."""
    chosen = _with_options(selection_of(field, catalog, layer), options)
    return render_map(layer.id, catalog=catalog, **chosen)


def served_layer(field: xr.DataArray) -> tuple[str, str, tuple[str, ...]] | None:
    """The service, layer and member/level dimensions of a field read over HTTP from a
    fewsmap service (``/zarr/<store>``, as `Client.open_cube` reads it) that still holds
    the stored values (as `stored_layer` tells); None otherwise.

    The layer is the zero-configuration one, ``<store>.<variable>``: the service does not
    publish which store a configured layer reads, so a field of a layer configured under
    another id is drawn from memory.
    """
    service = service_store(field)
    if service is None or not field.encoding:
        return None
    url, store = service
    variable = str(field.name)
    with open_cube(str(field.attrs[SOURCE_ATTR])) as cube:
        if variable not in cube.data_vars:
            return None
        stored = {str(dim): size for dim, size in cube[variable].sizes.items()}
    if not holds_stored_values(field, stored):
        return None
    layer = f"{store}.{variable}"
    with Client(url) as client:
        if layer not in client.layers().index:
            return None
    return url, layer, tuple(stored)[2:-2]


def service_store(field: xr.DataArray) -> tuple[str, str] | None:
    """The service URL and store name of a field read from ``<url>/zarr/<store>``."""
    source = field.attrs.get(SOURCE_ATTR)
    if not isinstance(source, str) or "://" not in source:
        return None
    url, found, store = source.rstrip("/").rpartition("/zarr/")
    if not found or not store or "/" in store:
        return None
    return url, unquote(store)


def draw_served(field: xr.DataArray, url: str, layer: str, dims: tuple[str, ...],
                **options: Any) -> Image.Image:
    """Draw a field read over HTTP with its service's GetMap (`Client.map`); its scalar run,
    valid time (or lead time), member and level coordinates are the defaults."""
    with Client(url) as client:
        return client.map(layer, **_with_options(served_selection(field, dims), options))


def served_selection(field: xr.DataArray, dims: tuple[str, ...]) -> dict[str, Any]:
    """Defaults from a field read over HTTP: its run, valid or lead time, and its selected
    ``dims`` named as GetMap names them (`fewsmap.dimensions.layer_dimensions`: the member
    dimension is the ensemble member, an axis Z coordinate the elevation)."""
    chosen = _time_selection(field)
    others = {}
    for dim in dims:
        value = _scalar(field, dim)
        if value is None:
            continue
        if dim == MEMBER_DIM:
            chosen["member"] = float(value)
        elif field.coords[dim].attrs.get("axis") == "Z":
            chosen["elevation"] = float(value)
        else:
            others[dim] = float(value)
    if others:
        chosen["dimensions"] = others
    return chosen


def _with_options(selected: dict[str, Any], options: Mapping[str, Any]) -> dict[str, Any]:
    """The field's selection overridden by the options given (a time option replaces both
    ways of naming the time; dimensions merge)."""
    given = {name: value for name, value in options.items() if value is not None}
    if "time" in given or "lead_time" in given:
        selected.pop("time", None)
        selected.pop("lead_time", None)
    dimensions = {**selected.pop("dimensions", {}), **given.pop("dimensions", {})}
    return {**selected, **given, "dimensions": dimensions}


def layer_of(path: Path, variable: str) -> tuple[Catalog, Layer]:
    """The service's layer drawing ``variable`` of the store at ``path``, else the
    zero-configuration layer of it (a catalog of its folder).

    Raises
    ------
    LayerNotDefined
        If the store has no such variable.
    """
    path = path.resolve()
    for catalog in (default_catalog(), _fresh(Settings(stores_dir=path.parent))):
        for layer in catalog.layers.values():
            store = catalog.store(layer)
            if layer.variables == (variable,) and store.files is not None and \
                    store.path.resolve() == path:
                return catalog, layer
    raise LayerNotDefined(f"no layer draws variable {variable!r} of the store {path}")


def selection_of(field: xr.DataArray, catalog: Catalog, layer: Layer) -> dict[str, Any]:
    """Defaults from the field's selection: its run, valid or lead time, member and level."""
    chosen = _time_selection(field)
    selected = {}
    for dimension in layer_dimensions(catalog.store(layer), layer.variable, layer.defaults):
        value = _scalar(field, dimension.dim)
        if value is not None:
            selected[dimension.name] = float(value)
    if selected:
        chosen["dimensions"] = selected
    return chosen


def _time_selection(field: xr.DataArray) -> dict[str, Any]:
    """The field's selected run and valid time (else lead time), where it has them."""
    chosen: dict[str, Any] = {}
    if _scalar(field, RUN_DIM) is not None:
        chosen["run"] = _scalar(field, RUN_DIM)
    valid, lead = _scalar(field, VALID_TIME), _scalar(field, STEP_DIM)
    if valid is not None:
        if np.isnat(valid):
            raise InvalidDimensionValue(f"{_name(field)}: the selected run has no data for "
                                        "the selected step (its valid time is NaT)")
        chosen["time"] = valid
    elif lead is not None:
        chosen["lead_time"] = lead
    return chosen


def draw_array(field: xr.DataArray, *, style: str | Style | None = None,
               bbox: Bbox | None = None, crs: str = "EPSG:3857", width: int = 800,
               height: int | None = None, color_range: tuple[float, float] | None = None,
               show_contours: bool = False) -> Image.Image:
    """Draw a 2-D field held in memory with the service's regrid and colour stages.

    The grid is found from CF: 1-D or 2-D longitude/latitude coordinates, or projected x/y
    with a grid mapping holding ``crs_wkt`` (as `open_cube` cubes have). ``style`` is a
    `Style`, a style of the layer the field came from (`layer_style`: its colours and the
    range the service gives them) or a matplotlib colour map name; default from the CF
    attributes. The colour range defaults to the style's, else the field's own.

    Raises
    ------
    InvalidParameterValue
        If the field is not 2-D or has no coordinates placing it on the Earth.
    """
    field = field.squeeze()
    crs = canonical_crs(crs)
    x, y, values = canvas_cells(field, crs)
    bbox = bbox or _cells_extent(x, y)
    canvas = Canvas(crs, _checked_bbox(bbox), _pixels(width, "width"),
                    _pixels(height or aspect_height(bbox, width), "height"))
    chosen, style_range = _style_of(field, style)
    values = chosen.to_display(values)  # the style's numbers are in its display units
    window = SourceWindow(values, x, y)
    finite = values[np.isfinite(values)]
    data_range = (float(finite.min()), float(finite.max())) if finite.size else None
    palette = palette_for(chosen, _checked_range(color_range), style_range or data_range)
    rgba = palette.rgba(palette.indices(regrid(window, canvas)))
    if show_contours:
        levels = contour_levels(chosen, palette, data_range[0] if data_range else None)
        rgba = composite(rgba, contour_overlay(window, canvas, levels))
    return Image.fromarray(rgba, "RGBA")


def canvas_cells(field: xr.DataArray, crs: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cell centres of a 2-D field in ``crs`` and its float32 values, as regrid takes them:
    1-D ascending axes where the mapping is separable, else 2-D.

    Raises
    ------
    InvalidParameterValue
        If the field is not 2-D or cannot be placed on the Earth.
    """
    if field.ndim != 2:
        raise InvalidParameterValue(
            f"{_name(field)} has dimensions {list(field.dims)}: draw one 2-D field, selecting "
            "the others with .sel()/.isel()")
    lon, lat = _coordinate(field, "longitude"), _coordinate(field, "latitude")
    if lon is not None and lat is not None:
        if lon.ndim == 1 and lat.ndim == 1:
            field = field.transpose(lat.dims[0], lon.dims[0])
            values = np.asarray(field.values, dtype=np.float32)
            if crs in LONLAT_SEPARABLE:
                x, y = lon_axis_in(crs, lon.values), lat_axis_in(crs, lat.values)
                cols, rows = np.argsort(x, kind="stable"), np.argsort(y, kind="stable")
                return x[cols], y[rows], values[rows][:, cols]
            lon2, lat2 = np.meshgrid(lon.values, lat.values)
        else:
            lon2, lat2 = (np.asarray(c.transpose(*field.dims).values) for c in (lon, lat))
            values = np.asarray(field.values, dtype=np.float32)
        return (*lonlat_to(crs, lon2, lat2), values)
    return _projected_cells(field, crs)


def _projected_cells(field: xr.DataArray,
                     crs: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cells of a projected grid: its 1-D dimension coordinates and a grid mapping."""
    mapping = _grid_mapping(field)
    y_dim, x_dim = field.dims
    if mapping is None or y_dim not in field.coords or x_dim not in field.coords:
        raise InvalidParameterValue(
            f"{_name(field)} cannot be placed on a map: it has no longitude/latitude "
            "coordinates (CF standard_name or names lon/lat) and no projected x/y with a CF "
            "grid mapping holding crs_wkt")
    source = pyproj.CRS.from_wkt(mapping)
    values = np.asarray(field.values, dtype=np.float32)
    x, y = field[x_dim].values.astype("float64"), field[y_dim].values.astype("float64")
    if source.equals(pyproj.CRS.from_user_input(crs), ignore_axis_order=True):
        cols, rows = np.argsort(x, kind="stable"), np.argsort(y, kind="stable")
        return x[cols], y[rows], values[rows][:, cols]
    xx, yy = np.meshgrid(x, y)
    lon, lat = transform_finite(mapping, LONLAT, xx, yy)
    return (*lonlat_to(crs, lon, lat), values)


def _coordinate(field: xr.DataArray, standard_name: str) -> xr.DataArray | None:
    """A coordinate by CF standard_name, else by its usual names (latitude, lat …)."""
    names = {"longitude": ("longitude", "lon"), "latitude": ("latitude", "lat")}[standard_name]
    tagged = [str(name) for name, coord in field.coords.items()
              if coord.attrs.get("standard_name") == standard_name]
    for name in (*tagged, *names):
        if name in field.coords and field.coords[name].ndim in (1, 2):
            return xr.DataArray(field.coords[name])
    return None


def _grid_mapping(field: xr.DataArray) -> str | None:
    """The WKT of the field's CF grid mapping (kept as a coordinate by arithmetic)."""
    named = field.attrs.get("grid_mapping") or field.encoding.get("grid_mapping")
    candidates = [field.coords[named]] if named in field.coords else list(field.coords.values())
    for coord in candidates:
        wkt = coord.attrs.get("crs_wkt") or coord.attrs.get("spatial_ref")
        if isinstance(wkt, str) and coord.ndim == 0:
            return wkt
    return None


def _cells_extent(x: np.ndarray, y: np.ndarray) -> Bbox:
    """The cells' extent: half a cell beyond the outer centres of 1-D axes (as the service's
    layer extents), the outer centres of 2-D ones."""
    if x.ndim == 1:
        xs, ys = _edges(x), _edges(y)
    else:
        finite = np.isfinite(x) & np.isfinite(y)
        xs, ys = x[finite], y[finite]
    if xs.size == 0 or ys.size == 0:
        raise InvalidParameterValue("the field has no cell inside the CRS's area of use")
    return float(xs.min()), float(ys.min()), float(xs.max()), float(ys.max())


def _edges(centres: np.ndarray) -> np.ndarray:
    """The outer edges of a 1-D axis, half a cell beyond its outer centres."""
    return centres if centres.size < 2 else cell_edges(centres, 0.0)[[0, -1]]


def _style_of(field: xr.DataArray,
              style: str | Style | None) -> tuple[Style, ColourRange | None]:
    """The style to draw a field held in memory with, and the colour range it brings (None:
    the field's own range unless the style has one)."""
    if isinstance(style, Style):
        return style, None
    if style is None:
        return default_style(_name(field), dict(field.attrs)), None
    found = layer_style(field, style)
    if found is not None:
        return found
    if style not in colormaps:
        raise StyleNotDefined(f"style {style!r}: a field held in memory takes a Style, a "
                              "style of the layer it came from or a matplotlib colour map "
                              "name (viridis, RdBu_r …)")
    return Style(style, style, colormap=style, units=str(field.attrs.get("units", ""))), None


def layer_style(field: xr.DataArray, name: str) -> tuple[Style, ColourRange | None] | None:
    """The style ``name`` of the layer whose variable the field's values come from (from its
    store's catalog, or its service when read over HTTP), with the range GetMap spreads it
    over for the field's run (the latest when the field has none): the style's own, else
    the run's statistics. None when the field has no such layer, or the layer no such style.
    """
    run = _scalar(field, RUN_DIM)
    service = service_store(field)
    if service is not None:
        return _served_style(*service, str(field.name), name, run)
    source = field.attrs.get(SOURCE_ATTR)
    if isinstance(source, str) and "://" not in source and is_store(Path(source)):
        return _stored_style(Path(source), str(field.name), name, run)
    return None


def _stored_style(path: Path, variable: str, name: str,
                  run: np.datetime64 | None) -> tuple[Style, ColourRange | None] | None:
    try:
        catalog, layer = layer_of(path, variable)
    except LayerNotDefined:
        return None
    style = layer.style(name)
    runs = catalog.runs(layer)
    if style is None or not runs:
        return None
    chosen = next((r for r in runs if run is not None and r.reference_time == run), runs[-1])
    return style, automatic_range(catalog.store(layer), chosen, layer.variables, style)


def _served_style(url: str, store: str, variable: str, name: str,
                  run: np.datetime64 | None) -> tuple[Style, ColourRange | None] | None:
    """The service's style ``name`` of the zero-config layer ``<store>.<variable>`` and the
    run's range, both from the run's TileJSON."""
    with Client(url) as client:
        try:
            tile_json = client.tile_json(f"{store}.{variable}", run=run)
        except ServiceError as error:
            if error.ogc_code == "LayerNotDefined":
                return None
            raise
    style = styles_in(tile_json).get(name)
    low_high = tile_json["fewsmap"]["valueRange"]
    if style is None:
        return None
    return style, (float(low_high[0]), float(low_high[1])) if low_high else None


def _fresh(settings: Settings) -> Catalog:
    catalog = _catalog_of(settings)
    catalog.refresh(force=True)
    return catalog


@cache
def _catalog_of(settings: Settings) -> Catalog:
    return Catalog(settings)


def _layers_named(catalog: Catalog, name: str) -> list[Layer]:
    if name in catalog.groups and name not in catalog.layers:
        members = [layer for layer in catalog.layers.values() if layer.group == name]
        if members:
            return members
    return [catalog.resolve(name)[0]]


def _image(png: bytes, spec: MapSpec) -> Image.Image:
    image = Image.open(io.BytesIO(png))
    image.load()
    times = (spec.aggregate[0], spec.aggregate[-1]) if spec.aggregate else (spec.valid_time,)
    image.info.update(run=spec.run.label, valid_time="/".join(format_time(t) for t in times))
    return image


def _run(run: Instant | None) -> np.datetime64 | None:
    if run is None or (isinstance(run, str) and run.strip().lower() == "latest"):
        return None
    return parse_instant(instant_text(run), "run")


def _lead_time(lead: str | np.timedelta64 | None) -> np.timedelta64 | None:
    if lead is None:
        return None
    return parse_duration(duration_text(lead), "lead_time", allow_zero=True)


def _member(member: float | str | None) -> int | EnsembleStatistic | None:
    statistic = parse_statistic(member) if isinstance(member, str) else None
    if statistic is not None:
        return statistic
    if member is not None and not float(member).is_integer():
        raise InvalidDimensionValue(f"member={member!r}: members are whole numbers")
    return None if member is None else int(member)


def _reducer(reducer: str | None) -> str | None:
    if reducer is not None and reducer not in REDUCERS:
        raise InvalidParameterValue(f"reducer={reducer!r}; offered: {', '.join(REDUCERS)}")
    return reducer


def _pixels(value: int, name: str) -> int:
    if not 0 < int(value) <= MAX_SIDE_PX:
        raise InvalidParameterValue(f"{name}={value}: allowed 1..{MAX_SIDE_PX} pixels")
    return int(value)


def _checked_bbox(bbox: Bbox) -> Bbox:
    minx, miny, maxx, maxy = (float(v) for v in bbox)
    if not (np.isfinite([minx, miny, maxx, maxy]).all() and minx < maxx and miny < maxy):
        raise InvalidParameterValue(f"bbox={tuple(bbox)}: need finite minx < maxx, miny < maxy")
    return minx, miny, maxx, maxy


def _checked_range(value: tuple[float, float] | None) -> tuple[float, float] | None:
    if value is None:
        return None
    low, high = (float(v) for v in value)
    if not (np.isfinite([low, high]).all() and low < high):
        raise InvalidParameterValue(f"color_range={tuple(value)}: need finite low < high")
    return low, high


def _scalar(field: xr.DataArray, name: str) -> Any:
    coord = field.coords.get(name)
    return coord.values[()] if coord is not None and coord.ndim == 0 else None


def _name(field: xr.DataArray) -> str:
    return str(field.name) if field.name is not None else "the field"
