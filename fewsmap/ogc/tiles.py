"""Web Mercator tiles (XYZ, WMTS): a tile address becomes a GetMap request.

Tiles are GetMaps with a fixed grid of bboxes, so they share every rule of GetMap: the same
selectors, styles, colour ranges (per-run statistics, so tiles have no seams), limits and
errors. Only the addressing is new.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import numpy as np

from fewsmap.catalog import Catalog, Layer
from fewsmap.catalog.extent import MERCATOR_HALF_WORLD_M, longitude_width, lonlat_bbox
from fewsmap.catalog.styles import style_as_config
from fewsmap.dimensions import layer_dimensions
from fewsmap.errors import FewsmapError, InvalidDimensionValue, InvalidParameterValue
from fewsmap.formats.media import PNG
from fewsmap.ogc.capabilities import change_run, change_runs
from fewsmap.ogc.getmap import parse_color_range, parse_getmap, parse_reference_time
from fewsmap.params import Params
from fewsmap.products.accumulate import parse_window
from fewsmap.products.change import CHANGE_SUFFIX, parse_baseline
from fewsmap.products.ensemble import parse_statistic
from fewsmap.resolve.layers import resolve_layer
from fewsmap.resolve.legends import drawn_range
from fewsmap.resolve.maps import CHANGE_STYLE, select_run, statistic_style
from fewsmap.resolve.maps import MapRequest as GetMapRequest
from fewsmap.store.cube import RunInfo
from fewsmap.time.instants import format_time

TILE_SIZE = 256
MAX_ZOOM = 24
# Selectors of a tile URL under their GetMap names; any other parameter (TIME, ELEVATION,
# COLORSCALERANGE, DIM_*, showContours …) keeps its GetMap name.
SELECTOR_NAMES = {"run": "dim_reference_time", "member": "dim_ensemble_member",
                  "style": "styles"}
# What the tile address decides; a query cannot override it.
ADDRESS_NAMES = ("request", "version", "layers", "crs", "srs", "bbox", "width", "height",
                 "format")


class TileOutOfRange(FewsmapError):
    """A tile address outside the tile matrix (OGC WMTS 1.0.0 Table 28)."""

    ogc_code = "TileOutOfRange"


@dataclass(frozen=True)
class TileAddress:
    """A tile of the Web Mercator quadtree; ``scale`` 2 for 512-pixel (``@2x``) tiles."""

    z: int
    x: int
    y: int
    scale: int = 1

    def __post_init__(self) -> None:
        if not 0 <= self.z <= MAX_ZOOM:
            raise TileOutOfRange(f"zoom {self.z} is outside 0..{MAX_ZOOM}")
        last = 2**self.z - 1
        if not (0 <= self.x <= last and 0 <= self.y <= last):
            raise TileOutOfRange(f"tile {self.z}/{self.x}/{self.y}: column and row must be "
                                 f"0..{last} at zoom {self.z}")

    @property
    def bbox(self) -> tuple[float, float, float, float]:
        """The tile's extent in EPSG:3857 metres (row 0 at the north)."""
        size = 2 * MERCATOR_HALF_WORLD_M / 2**self.z
        west = -MERCATOR_HALF_WORLD_M + self.x * size
        north = MERCATOR_HALF_WORLD_M - self.y * size
        return west, north - size, west + size, north


def tile_request(layer: str, tile: TileAddress, params: Params,
                 max_pixels: int) -> GetMapRequest:
    """The GetMap a tile means: the tile's bbox and size, the query's selectors.

    Raises
    ------
    FewsmapError
        As GetMap would, for the first problem in the selectors.
    """
    return parse_getmap(Params(getmap_params(layer, tile, params)), max_pixels)


def getmap_params(layer: str, tile: TileAddress, params: Params) -> list[tuple[str, str]]:
    """The GetMap parameters of a tile: its address first, then the query's selectors under
    their GetMap names (a query cannot override the address)."""
    selectors = [(SELECTOR_NAMES.get(name, name), value) for name, value in params.items()
                 if name not in ADDRESS_NAMES]
    size = str(TILE_SIZE * tile.scale)
    address = {"request": "GetMap", "version": "1.3.0", "layers": layer, "crs": "EPSG:3857",
               "bbox": ",".join(repr(v) for v in tile.bbox), "width": size, "height": size,
               "format": PNG}
    return [*address.items(), *selectors]


def parse_tile_number(text: str, name: str) -> int:
    """A zoom, column or row: a whole number (no sign, no spaces).

    Raises
    ------
    InvalidParameterValue
        Naming the parameter.
    """
    if not text.isascii() or not text.isdigit() or len(text) > 9:
        raise InvalidParameterValue(f"{name}={text[:20]!r} must be a whole number")
    return int(text)


def zoom_range(catalog: Catalog, layer: Layer) -> tuple[int, int]:
    """Zooms worth requesting: from the whole world to about 8–16 screen pixels per grid cell."""
    store = catalog.store(layer)
    columns = store.grid_shape[1]  # curvilinear grids have no 1-D axis to count (#13)
    degrees_per_cell = max(longitude_width(store), 1e-9) / columns
    # At zoom z a 256-pixel tile spans 360 / 2**z degrees of longitude.
    native = math.log2(360.0 / (TILE_SIZE * degrees_per_cell))
    return 0, max(0, min(MAX_ZOOM, math.ceil(native) + 3))


def tilejson(catalog: Catalog, name: str, params: Params, base_url: str) -> dict[str, Any]:
    """TileJSON 2.2.0 for a layer; the query's selectors are carried into the tile URLs.

    Without ``run`` the URLs follow the latest run. The ``fewsmap`` member says what the
    URLs show: runs, valid times, styles (names, and each definition as a ``[[styles]]``
    table, so clients colour values alike) and the run's colour range (from its statistics,
    computed at ingest, which is why adjacent tiles never disagree). FEWS JSON capabilities
    carry none of this: they keep to the fields FEWS clients know.

    Raises
    ------
    FewsmapError
        LayerNotDefined; InvalidParameterValue for a list of layers, whose tiles exist
        (drawn on top of each other) but whose runs, styles and ranges are each layer's.
    """
    if "," in name:
        raise InvalidParameterValue(
            f"TileJSON describes one layer; {name[:80]!r} names several (their tiles "
            "/tiles/<a>,<b>/{z}/{x}/{y}.png draw them on top of each other: ask the TileJSON "
            "of each)")
    layer, from_id, derived = resolve_layer(catalog, name)
    run = select_run(catalog, layer, from_id, _reference_time(params))
    styles = layer.styles
    runs = catalog.runs(layer)
    if derived:  # <layer>:change: what WMS and WMTS capabilities list of it
        run = _change_shown(catalog, layer, run, name)
        styles, runs = (CHANGE_STYLE,), change_runs(catalog, layer)
    west, south, east, north = lonlat_bbox(catalog.store(layer))
    minzoom, maxzoom = zoom_range(catalog, layer)
    selectors = [(n, v) for n, v in params.items() if n not in ADDRESS_NAMES]
    query = f"?{urlencode(selectors)}" if selectors else ""
    # the colour range of what the tiles show, in the style they are drawn in (a pinned
    # range, a statistic's, a sum's, a change's), as their legend says
    member = parse_statistic(params.get("member") or "0")
    baseline = parse_baseline(params.get("baseline")) or derived
    drawn = statistic_style(layer, params.get("style") or "", member,
                            change=baseline is not None)
    value_range = drawn_range(catalog, layer, run, drawn,
                              parse_color_range(params.get("colorscalerange")), member,
                              parse_window(params.get("accumulate")), baseline)
    return {
        "tilejson": "2.2.0",
        "name": layer.id + (CHANGE_SUFFIX if derived else ""),
        "description": layer.abstract or layer.title,
        "version": "1.0.0",
        "scheme": "xyz",
        "tiles": [f"{base_url}/tiles/{quote(name, safe='')}/{{z}}/{{x}}/{{y}}.png{query}"],
        "minzoom": minzoom,
        "maxzoom": maxzoom,
        "bounds": [round(v, 6) for v in (west, south, east, north)],
        "center": [round((west + east) / 2, 6), round((south + north) / 2, 6),
                   min(maxzoom, max(minzoom, maxzoom - 3))],
        "legend": f"{base_url}/wms?{urlencode(_legend_query(name, params))}",
        "fewsmap": {
            "layer": layer.id,
            "run": run.label,
            "latest": from_id is None and _reference_time(params) is None,
            "runs": [r.label for r in runs],
            "times": [format_time(t) for t in run.valid_times],
            "styles": [s.name for s in styles],
            "styleDefinitions": [style_as_config(s) for s in styles],
            "valueRange": list(value_range) if value_range else None,
            **_members(catalog, layer, run),
        },
    }


def _change_shown(catalog: Catalog, layer: Layer, run: RunInfo, name: str) -> RunInfo:
    """``run`` narrowed to the valid times its change from the previous run has values at.

    Raises
    ------
    InvalidDimensionValue
        Where the change would draw nothing (no capabilities list it then).
    """
    shown = change_run(catalog, layer, run)
    if shown is None:
        why = "it is a vector layer" if layer.is_vector else \
            f"run {run.label} has no previous run sharing a valid time with it"
        raise InvalidDimensionValue(f"layer {name[:80]!r} draws no change: {why}")
    return shown


def _members(catalog: Catalog, layer: Layer, run: RunInfo) -> dict[str, list[str]]:
    """The ``member=`` values of an ensemble layer in ``run``: members, then statistics."""
    for dimension in layer_dimensions(catalog.store(layer), layer.variable, layer.defaults,
                                      (run,), statistics=layer.statistics):
        if dimension.name == "ensemble_member":
            return {"members": dimension.values()}
    return {}


def _reference_time(params: Params) -> np.datetime64 | None:
    return parse_reference_time(params, ("run", "dim_reference_time"))


def _legend_query(name: str, params: Params) -> dict[str, str]:
    """The legend of what the tiles show: the layer as named (a per-run id names a run)."""
    query = {"service": "WMS", "request": "GetLegendGraphic", "version": "1.3.0",
             "layer": name, "format": "image/png"}
    for name in ("style", "colorscalerange"):
        if params.get(name):
            query[name] = params.get(name) or ""
    if params.get("member"):  # a probability's legend is in %
        query["dim_ensemble_member"] = params.get("member") or ""
    for name in ("baseline", "accumulate"):  # a change's or sum's colour range
        if params.get(name):
            query[name] = params.get(name) or ""
    run = params.get("run") or params.get("dim_reference_time")
    if run:  # the legend of the run the tiles show (its colour range)
        query["dim_reference_time"] = run
    return query
