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

With several workers (``fewsmap serve --workers N``) each one warms up before its
SO_REUSEPORT socket listens, so the kernel hands it no connection while it is cold (with the
warm-up in the background, tiles reaching a worker still compiling took 11-15 s after
others had been answered). ``/health`` of any worker says ready only when every worker is
warm (`WarmWorkers`, shared memory). Warm-up is best effort: a layer that cannot be drawn
is logged as a warning and the worker joins anyway.
"""

from __future__ import annotations

import logging
import math
import mmap
import threading
import time
from collections.abc import Callable

from fewsmap.catalog import Catalog, Layer
from fewsmap.ogc.legend import get_legend_graphic
from fewsmap.ogc.tiles import TileAddress, tile_request, tilejson
from fewsmap.params import Params
from fewsmap.render import kernels
from fewsmap.render.pipeline import render_maps
from fewsmap.resolve.maps import resolve_maps

log = logging.getLogger(__name__)


class WarmWorkers:
    """Which workers of a several-worker service have warmed up: one byte per worker in
    memory the parent maps before forking, so every worker's ``/health`` sees them all."""

    def __init__(self, count: int) -> None:
        self.count = count
        self._flags = mmap.mmap(-1, count)  # anonymous and MAP_SHARED: shared across fork

    def mark_warm(self, index: int) -> None:
        """Record that worker ``index`` has warmed up."""
        self._flags[index] = 1

    @property
    def warm(self) -> int:
        """How many workers have warmed up."""
        return sum(self._flags[:])


class Readiness:
    """Whether the worker (and every worker of its service) has warmed up; ready unless a
    warm-up was begun and not ended."""

    def __init__(self, job: Callable[[], None] | None = None) -> None:
        self._job = job  # what warming up does (compile, draw each store)
        self._done = threading.Event()
        self._done.set()  # ready until a warm-up begins (lifespan or worker start)
        self.began = 0.0
        self.seconds: float | None = None
        self._group: WarmWorkers | None = None
        self._index = 0

    @property
    def ready(self) -> bool:
        """Tell whether the warm-up (if any) has ended, here and in every other worker."""
        return self._done.is_set() and (self._group is None
                                        or self._group.warm == self._group.count)

    def workers(self) -> dict[str, int]:
        """How many workers of the service have warmed up, of how many."""
        if self._group is None:
            return {"warm": int(self._done.is_set()), "count": 1}
        return {"warm": self._group.warm, "count": self._group.count}

    def join(self, group: WarmWorkers, index: int) -> None:
        """Be worker ``index`` of ``group``: ready only once every worker of it is warm."""
        self._group, self._index = group, index

    def begin(self) -> None:
        """Mark the worker as warming up."""
        self._done.clear()
        self.began = time.monotonic()

    def end(self) -> None:
        """Mark the warm-up as done (in the group too)."""
        self.seconds = time.monotonic() - self.began
        if self._group is not None:
            self._group.mark_warm(self._index)
        self._done.set()
        log.info("warmed up in %.1f s", self.seconds)

    def warm_up(self) -> None:
        """Warm up now, in this thread (a worker of several does, before it listens)."""
        self.begin()
        self._run_job()

    def warm_up_in_background(self) -> None:
        """Begin, and warm up in a daemon thread, unless the worker has warmed up already."""
        if self.seconds is not None:  # warmed up before listening
            return
        self.begin()
        threading.Thread(target=self._run_job, name="fewsmap-warm-up", daemon=True).start()

    def _run_job(self) -> None:
        try:
            if self._job is not None:
                self._job()
        except Exception:  # best effort: a broken store must not keep the worker out
            log.exception("warm-up failed; serving anyway")
        finally:
            self.end()


def warm_up(catalog: Catalog, max_pixels: int) -> None:
    """Compile the kernels and draw, for each store, what its first requests will draw."""
    kernels.warm_up()
    for layer in first_layer_of_each_store(catalog):
        try:
            draw_layer(catalog, layer, max_pixels)
        except Exception as exc:  # a store without runs yet, or broken: the next one
            log.warning("warm-up skipped layer %s (its first maps will be slower): %s",
                        layer.id, exc)


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
