"""The requests: seeded, server-neutral descriptions, turned into each server's URLs.

A ``MapRequest`` names a cube, a run, a lead time, an EPSG:3857 bbox and a size; every
server gets the same list in the same order (peers a prefix of it, as their loops are
shorter). Tiles are web-mercator tiles at zoom 3–9 around a random point of the data.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from urllib.parse import urlencode

import numpy as np

from benchmarks.suite.data import COLOR_RANGE, VARIABLE, CubeSpec
from fewsmap.time.instants import format_time

EARTH_RADIUS = 6378137.0
WORLD = math.pi * EARTH_RADIUS
MAP_SIZE = (1920, 1200)
MERCATOR_LAT = 85.0511287798  # Web Mercator's square world ends here
TILE_SIZE = (256, 256)


def mercator(lon: float, lat: float) -> tuple[float, float]:
    """EPSG:4326 degrees to EPSG:3857 metres."""
    x = math.radians(lon) * EARTH_RADIUS
    y = EARTH_RADIUS * math.log(math.tan(math.pi / 4 + math.radians(lat) / 2))
    return x, y


def tile_bbox(z: int, x: int, y: int) -> tuple[float, float, float, float]:
    """The EPSG:3857 bbox of XYZ tile (z, x, y) (y counted from the north)."""
    size = 2 * WORLD / 2**z
    minx, maxy = -WORLD + x * size, WORLD - y * size
    return minx, maxy - size, minx + size, maxy


def mercator_domain(cube: CubeSpec) -> tuple[float, float, float, float]:
    """``cube``'s domain in degrees, its latitudes clipped to Web Mercator's world."""
    west, south, east, north = cube.domain
    return west, max(south, -MERCATOR_LAT), east, min(north, MERCATOR_LAT)


def domain_map_bbox(cube: CubeSpec, width: int, height: int
                    ) -> tuple[float, float, float, float]:
    """``cube``'s domain in EPSG:3857, widened to the image's aspect ratio."""
    west, south, east, north = mercator_domain(cube)
    minx, miny = mercator(west, south)
    maxx, maxy = mercator(east, north)
    want = width / height
    w, h = maxx - minx, maxy - miny
    if w / h < want:
        pad = (h * want - w) / 2
        minx, maxx = minx - pad, maxx + pad
    else:
        pad = (w / want - h) / 2
        miny, maxy = miny - pad, maxy + pad
    return minx, miny, maxx, maxy


@dataclass(frozen=True)
class MapRequest:
    """One GetMap, server-neutral."""

    cube: CubeSpec
    run: int
    step: int
    bbox: tuple[float, float, float, float]
    width: int
    height: int

    @property
    def reference_time(self) -> str:
        return format_time(self.cube.reference_time(self.run))

    @property
    def valid_time(self) -> str:
        return format_time(self.cube.valid_time(self.run, self.step))

    @property
    def slice_key(self) -> tuple[str, int, int]:
        return (self.cube.name, self.run, self.step)


@dataclass(frozen=True)
class PointRequest:
    """A point query: a lon/lat, and the tile, pixel, run and step of a GetFeatureInfo."""

    cube: CubeSpec
    lon: float
    lat: float
    run: int
    step: int
    bbox: tuple[float, float, float, float]
    i: int
    j: int


def tiles(cube: CubeSpec, n: int, seed: int, zooms: tuple[int, int] = (3, 9)) -> list[MapRequest]:
    """``n`` 256 × 256 tiles at random zooms around random points of the domain."""
    rng = np.random.default_rng(seed)
    west, south, east, north = mercator_domain(cube)
    out = []
    for _ in range(n):
        z = int(rng.integers(zooms[0], zooms[1] + 1))
        lon, lat = rng.uniform(west, east), rng.uniform(south, north)
        mx, my = mercator(lon, lat)
        size = 2 * WORLD / 2**z
        tx, ty = int((mx + WORLD) // size), int((WORLD - my) // size)
        out.append(MapRequest(cube, int(rng.integers(cube.runs)), int(rng.integers(cube.steps)),
                              tile_bbox(z, tx, ty), *TILE_SIZE))
    return out


def maps(cube: CubeSpec, n: int, seed: int) -> list[MapRequest]:
    """``n`` 1920 × 1200 maps of the whole domain at random (run, step)."""
    rng = np.random.default_rng(seed)
    bbox = domain_map_bbox(cube, *MAP_SIZE)
    return [MapRequest(cube, int(rng.integers(cube.runs)), int(rng.integers(cube.steps)),
                       bbox, *MAP_SIZE) for _ in range(n)]


def points(cube: CubeSpec, n: int, seed: int) -> list[PointRequest]:
    """``n`` points over the domain, each with a zoom-6 tile and pixel that show it."""
    rng = np.random.default_rng(seed)
    west, south, east, north = mercator_domain(cube)
    out = []
    for _ in range(n):
        lon, lat = float(rng.uniform(west, east)), float(rng.uniform(south, north))
        mx, my = mercator(lon, lat)
        size = 2 * WORLD / 2**6
        tx, ty = int((mx + WORLD) // size), int((WORLD - my) // size)
        bbox = tile_bbox(6, tx, ty)
        i = min(int((mx - bbox[0]) / size * 256), 255)
        j = min(int((bbox[3] - my) / size * 256), 255)
        out.append(PointRequest(cube, lon, lat, int(rng.integers(cube.runs)),
                                int(rng.integers(cube.steps)), bbox, i, j))
    return out


def _bbox_text(bbox: tuple[float, float, float, float]) -> str:
    return ",".join(f"{v:.3f}" for v in bbox)


WMS = {"service": "WMS", "version": "1.3.0"}
COLOR_RANGE_TEXT = f"{COLOR_RANGE[0]:g},{COLOR_RANGE[1]:g}"


class FewsmapUrls:
    """fewsmap's URL forms (layer ``<store>.<variable>``, run by externalForecastTime)."""

    name = "fewsmap"

    def getmap(self, r: MapRequest) -> str:
        return "/wms?" + urlencode({
            **WMS, "request": "GetMap", "layers": f"{r.cube.name}.{VARIABLE}", "styles": "",
            "crs": "EPSG:3857", "bbox": _bbox_text(r.bbox), "width": r.width,
            "height": r.height, "format": "image/png", "transparent": "true",
            "time": r.valid_time, "externalForecastTime": r.reference_time,
            "colorscalerange": COLOR_RANGE_TEXT})

    def capabilities(self, json_format: bool) -> str:
        query = {**WMS, "request": "GetCapabilities"}
        if json_format:
            query["format"] = "application/json"
        return "/wms?" + urlencode(query)

    def legend(self, cube: CubeSpec) -> str:
        return "/wms?" + urlencode({
            **WMS, "request": "GetLegendGraphic", "layers": f"{cube.name}.{VARIABLE}",
            "format": "image/png", "colorscalerange": COLOR_RANGE_TEXT})

    def featureinfo(self, p: PointRequest) -> str:
        layer = f"{p.cube.name}.{VARIABLE}"
        return "/wms?" + urlencode({
            **WMS, "request": "GetFeatureInfo", "layers": layer, "query_layers": layer,
            "styles": "", "crs": "EPSG:3857", "bbox": _bbox_text(p.bbox), "width": 256,
            "height": 256, "i": p.i, "j": p.j, "info_format": "application/json",
            "time": format_time(p.cube.valid_time(p.run, p.step)),
            "externalForecastTime": format_time(p.cube.reference_time(p.run))})

    def timeseries(self, p: PointRequest) -> str:
        return "/api/timeseries?" + urlencode({
            "layer": f"{p.cube.name}.{VARIABLE}", "x": f"{p.lon:.5f}", "y": f"{p.lat:.5f}",
            "runs": "all"})


class XpublishUrls:
    """xpublish-wms: one dataset per run (``<store>-r<run>``), time × lat × lon."""

    name = "xpublish-wms"

    def getmap(self, r: MapRequest) -> str:
        return f"/datasets/{r.cube.name}-r{r.run}/wms?" + urlencode({
            **WMS, "request": "GetMap", "layers": VARIABLE, "styles": "raster/RdYlBu_r",
            "crs": "EPSG:3857", "bbox": _bbox_text(r.bbox), "width": r.width,
            "height": r.height, "format": "image/png", "transparent": "true",
            "time": r.valid_time, "colorscalerange": COLOR_RANGE_TEXT, "autoscale": "false"})

    def capabilities(self, cube: CubeSpec) -> str:
        return f"/datasets/{cube.name}-r0/wms?" + urlencode({**WMS, "request": "GetCapabilities"})

    def legend(self, cube: CubeSpec) -> str:
        return f"/datasets/{cube.name}-r0/wms?" + urlencode({
            **WMS, "request": "GetLegendGraphic", "layers": VARIABLE,
            "styles": "raster/RdYlBu_r", "width": 20, "height": 200, "format": "image/png",
            "colorscalerange": COLOR_RANGE_TEXT})

    def featureinfo(self, p: PointRequest) -> str:
        return f"/datasets/{p.cube.name}-r{p.run}/wms?" + urlencode({
            **self._point(p), "time": format_time(p.cube.valid_time(p.run, p.step))})

    def timeseries_run(self, p: PointRequest, run: int) -> str:
        """One run's steps at the point: GetFeatureInfo over the run's time range."""
        first = format_time(p.cube.valid_time(run, 0))
        last = format_time(p.cube.valid_time(run, p.cube.steps - 1))
        return f"/datasets/{p.cube.name}-r{run}/wms?" + urlencode({
            **self._point(p), "time": f"{first}/{last}"})

    @staticmethod
    def _point(p: PointRequest) -> dict[str, object]:
        """Its GetFeatureInfo takes EPSG:4326 only, with the bbox in lon,lat order (and x/y,
        not i/j): a 1° box centred on the point, queried at its centre pixel."""
        bbox = (p.lon - 0.5, p.lat - 0.5, p.lon + 0.5, p.lat + 0.5)
        return {**WMS, "request": "GetFeatureInfo", "layers": VARIABLE,
                "query_layers": VARIABLE, "styles": "raster/RdYlBu_r", "crs": "EPSG:4326",
                "bbox": ",".join(f"{v:.6f}" for v in bbox), "width": 256, "height": 256,
                "x": 128, "y": 128, "info_format": "text/json"}


class MapServerUrls:
    """MapServer through lighttpd FastCGI: one layer per run (``<store>_r<run>``) with a
    time tile index of the exported slices."""

    name = "MapServer"

    def getmap(self, r: MapRequest) -> str:
        return "/wms?" + urlencode({
            **WMS, "request": "GetMap", "layers": f"{r.cube.name}_r{r.run}", "styles": "",
            "crs": "EPSG:3857", "bbox": _bbox_text(r.bbox), "width": r.width,
            "height": r.height, "format": "image/png", "transparent": "true",
            "time": r.valid_time})

    def capabilities(self) -> str:
        return "/wms?" + urlencode({**WMS, "request": "GetCapabilities"})

    def legend(self, cube: CubeSpec) -> str:
        return "/wms?" + urlencode({
            **WMS, "request": "GetLegendGraphic", "layer": f"{cube.name}_r0",
            "format": "image/png", "sld_version": "1.1.0"})

    def featureinfo(self, p: PointRequest) -> str:
        layer = f"{p.cube.name}_r{p.run}"
        return "/wms?" + urlencode({
            **WMS, "request": "GetFeatureInfo", "layers": layer, "query_layers": layer,
            "styles": "", "crs": "EPSG:3857", "bbox": _bbox_text(p.bbox), "width": 256,
            "height": 256, "i": p.i, "j": p.j, "info_format": "text/plain",
            "time": format_time(p.cube.valid_time(p.run, p.step))})
