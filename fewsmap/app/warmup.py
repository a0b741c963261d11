"""Warm-up before taking traffic, and the readiness that says when it is done.

Measured on the 2-core machine (issue #13 item 18): after the process starts, fewsmap's own
kernels load from numba's cache in ~0.2 s, but datashader's quadmesh kernels compile on first
use: ~1.7 s for a zoomed-out map of a lon/lat grid and 5-9 s for a curvilinear one (any
projected grid drawn in Web Mercator). Compiling them in a background thread while serving
(as before) held the GIL and a core for ~10 s, and tiles answered 2-3× slower meanwhile, with
``/health`` saying all was well. Imports, store opening, PNG encoding and legends add ~20-60
ms to the first map, nothing after.

So the worker warms up in a thread right after start: fewsmap's kernels, then for every store
one real whole-world tile (datashader's rectilinear quadmesh for a lon/lat grid, the
curvilinear one for a projected grid), one zoomed-in tile with and without contours and a
legend, through the same code requests use. Only what the stores need in Web Mercator is
compiled: a lon/lat-only service does not pay the curvilinear compile at start (a GetMap in
another CRS, e.g. EPSG:3035, compiles it on first use). Until that is done ``/health``
answers 503 with ``"ready": false`` and Retry-After; then 200 with ``"ready": true`` (load
balancers and ``tests/live_server.py`` wait for the 200).
"""

from __future__ import annotations

import logging
import math
import threading
import time

from fewsmap.catalog import Catalog, Layer
from fewsmap.ogc.getmap import resolve_maps
from fewsmap.ogc.legend import get_legend_graphic
from fewsmap.ogc.params import Params
from fewsmap.ogc.tiles import TileAddress, tile_request, tilejson
from fewsmap.render import kernels
from fewsmap.render.pipeline import render_maps

log = logging.getLogger(__name__)


class Readiness:
    """Whether the worker has warmed up; ready unless a warm-up was begun and not ended."""

    def __init__(self) -> None:
        self._done = threading.Event()
        self._done.set()  # an app whose lifespan never runs (in-process tests) is ready
        self.began = 0.0
        self.seconds: float | None = None

    @property
    def ready(self) -> bool:
        """Tell whether the warm-up (if any) has ended."""
        return self._done.is_set()

    def begin(self) -> None:
        """Mark the worker as warming up."""
        self._done.clear()
        self.began = time.monotonic()

    def end(self) -> None:
        """Mark the warm-up as done."""
        self.seconds = time.monotonic() - self.began
        self._done.set()

    def warm_up_in_background(self, catalog: Catalog, max_pixels: int) -> None:
        """Begin, and warm up in a daemon thread that ends the warm-up even if it fails."""
        self.begin()

        def work() -> None:
            try:
                warm_up(catalog, max_pixels)
            except Exception:  # a broken store must not keep the worker unready forever
                log.exception("warm-up failed; serving anyway")
            finally:
                self.end()

        threading.Thread(target=work, name="fewsmap-warm-up", daemon=True).start()


def warm_up(catalog: Catalog, max_pixels: int) -> None:
    """Compile the kernels and draw, for each store, what its first requests will draw."""
    kernels.warm_up()
    for layer in first_layer_of_each_store(catalog):
        try:
            draw_layer(catalog, layer, max_pixels)
        except Exception as exc:  # a store without runs yet, or broken: the next one
            log.info("warm-up skipped layer %s: %s", layer.id, exc)


def first_layer_of_each_store(catalog: Catalog) -> list[Layer]:
    """One layer per store (its first in catalog order)."""
    chosen: dict[str, Layer] = {}
    for layer in catalog.layers.values():
        chosen.setdefault(layer.store, layer)
    return list(chosen.values())


def draw_layer(catalog: Catalog, layer: Layer, max_pixels: int) -> None:
    """Draw the whole-world tile, the tile at the layer's TileJSON centre (with and without
    contours), and its legend."""
    document = tilejson(catalog, layer.id, Params([]), "http://warm-up")
    lon, lat, zoom = document["center"]
    centre = tile_at(lon, lat, int(zoom))
    for address, extra in ((TileAddress(0, 0, 0), []), (centre, []),
                           (centre, [("showContours", "true")])):
        parsed = tile_request(layer.id, address, Params(extra), max_pixels)
        render_maps(resolve_maps(catalog, parsed), parsed.format)
    get_legend_graphic(catalog, Params([("layers", layer.id), ("format", "image/png")]),
                       max_pixels)


def tile_at(lon: float, lat: float, zoom: int) -> TileAddress:
    """The Web Mercator tile holding (lon, lat) at ``zoom``."""
    n = 2**zoom
    lat = max(min(lat, 85.0), -85.0)
    y = (1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n
    return TileAddress(zoom, min(int((lon + 180) / 360 * n), n - 1), min(int(y), n - 1))
