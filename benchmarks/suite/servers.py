"""The servers under test, each started as a subprocess on 127.0.0.1 and stopped by pid.

* fewsmap: ``python -m fewsmap.cli serve --stores DIR`` (default workers, or ``--workers``).
* xpublish-wms: in its own venv under the cache (created here with ``python -m venv`` and
  ``pip install xpublish xpublish-wms``), serving the same Zarr stores opened with xarray.
* MapServer 8 (Debian ``mapserver-bin`` + ``cgi-mapserver``) behind ``lighttpd`` FastCGI
  with 2 mapserv processes, reading GeoTIFF exports of exactly the slices requested, one
  layer per run with a time tile index; PNG at zlib level 1 (``COMPRESSION=1``).
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmarks.suite.client import fetch
from benchmarks.suite.data import COLOR_RANGE, VARIABLE, CubeSpec
from benchmarks.suite.procs import ProcessTree, free_port, launch, settle, wait_until
from fewsmap.time.instants import format_time

ROOT = Path(__file__).resolve().parents[2]
XPUBLISH_APP = Path(__file__).resolve().parent / "xpublish_app.py"
# zarr: xarray needs it to open the stores; xpublish does not pull it in.
XPUBLISH_PACKAGES = ("xpublish", "xpublish-wms", "zarr")
APT_COMMAND = ("apt-get update && apt-get install -y mapserver-bin cgi-mapserver lighttpd")
MAPSERV = Path("/usr/lib/cgi-bin/mapserv")
LIGHTTPD = "lighttpd"
# GeoTIFF nodata of the exports. Not NaN: MapServer 8.0.0 (Debian) aborts with "buffer
# overflow detected" on GetFeatureInfo at a NaN-nodata cell of these float rasters.
NODATA = -9999.0
MAPSERVER_RENDER = (
    "AGG/PNG RGBA, FORMATOPTION COMPRESSION=1 (zlib level 1), RESAMPLE=NEAREST, float data "
    "classified through SCALE=<colour range> + SCALE_BUCKETS=256 (256 levels, like fewsmap's "
    "255-colour palette; without them the same classes cost 9× per tile and 1.7× per map "
    "in a trial here) into 6 COLORRANGE "
    "classes approximating RdYlBu_r; GeoTIFF tiled 256², zstd level 1, nodata -9999, "
    "with internal overviews (factors 2, 4, … down to a tile, average: a COG's pyramid)")
# Bump when the export format changes: exports of another version are deleted.
EXPORT_VERSION = 4


@dataclass
class Server:
    """A running server: what it is, where, and its process tree."""

    name: str
    port: int
    tree: ProcessTree
    log: Path
    info: dict[str, object]

    def stop(self) -> None:
        self.tree.stop()


def _clean_env() -> dict[str, str]:
    """The environment without FEWSMAP_* settings, so only the command line configures."""
    return {k: v for k, v in os.environ.items() if not k.startswith("FEWSMAP_")}


def start_fewsmap(stores: Path, workers: int | None, logs: Path, label: str,
                  idle: bool = True) -> Server:
    """``fewsmap serve --stores STORES [--workers N]`` on a free port, ready to answer
    (and, with ``idle``, done with its start-up work)."""
    port = free_port()
    command = [sys.executable, "-m", "fewsmap.cli", "serve", "--stores", str(stores),
               "--host", "127.0.0.1", "--port", str(port)]
    if workers is not None:
        command += ["--workers", str(workers)]
    log = logs / f"fewsmap-{label}.log"
    tree = launch(command, f"fewsmap ({label})", log, env=_clean_env(), cwd=ROOT)
    wait_until(lambda: fetch(port, "/health", 5).status == 200, tree, 120, log)
    if idle:
        settle(tree)  # each worker compiles datashader's kernels in a background thread
    return Server("fewsmap", port, tree, log,
                  {"command": " ".join(command[1:]), "workers": workers or "default"})


# ---------------------------------------------------------------------------- xpublish-wms


def ensure_xpublish_venv(folder: Path, log: Path) -> tuple[Path, dict[str, str]]:
    """The peer venv (created on first use): its python and the versions installed."""
    python = folder / "bin" / "python"
    marker = folder / ".installed.json"
    recorded = json.loads(marker.read_text()) if marker.is_file() else {}
    if recorded.get("packages") != list(XPUBLISH_PACKAGES):
        env = _peer_env()
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as out:
            if not python.is_file():
                subprocess.run([sys.executable, "-m", "venv", "--clear", str(folder)],
                               check=True, stdout=out, stderr=subprocess.STDOUT, timeout=300,
                               env=env)
            subprocess.run([str(python), "-m", "pip", "install", "--quiet",
                            *XPUBLISH_PACKAGES], check=True, stdout=out,
                           stderr=subprocess.STDOUT, timeout=1800, env=env)
        freeze = subprocess.run([str(python), "-m", "pip", "freeze"], check=True,
                                capture_output=True, text=True, timeout=120, env=env).stdout
        versions = {name.lower().replace("_", "-"): version for name, version in
                    (line.split("==", 1) for line in freeze.splitlines() if "==" in line)}
        recorded = {"packages": list(XPUBLISH_PACKAGES), "versions": versions}
        marker.write_text(json.dumps(recorded, indent=1))
    wanted = ("xpublish", "xpublish-wms", "xarray", "zarr", "dask", "datashader", "fastapi",
              "uvicorn", "pillow")
    versions = recorded["versions"]
    return python, {k: versions[k] for k in wanted if k in versions}


def _peer_env() -> dict[str, str]:
    """The environment for peer processes: nothing of this project's Python path."""
    return {k: v for k, v in os.environ.items()
            if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}


def start_xpublish(python: Path, stores: dict[str, Path], logs: Path) -> Server:
    """xpublish.Rest over one dataset per run of each store, on a free port."""
    port = free_port()
    spec = json.dumps({name: str(path) for name, path in stores.items()})
    command = [str(python), str(XPUBLISH_APP), "--stores", spec, "--port", str(port),
               "--variable", VARIABLE]
    log = logs / "xpublish.log"
    tree = launch(command, "xpublish-wms", log, env=_peer_env())
    wait_until(lambda: fetch(port, "/datasets", 5).status == 200, tree, 300, log)
    settle(tree)
    return Server("xpublish-wms", port, tree, log, {"command": " ".join(command)})


# ---------------------------------------------------------------------------- MapServer


def mapserver_missing() -> list[str]:
    """What of MapServer + lighttpd is not installed (empty: all there)."""
    missing = []
    if not MAPSERV.is_file():
        missing.append(f"{MAPSERV} (cgi-mapserver)")
    if shutil.which("mapserv") is None:
        missing.append("mapserv (mapserver-bin)")
    if shutil.which(LIGHTTPD) is None and not Path("/usr/sbin/lighttpd").is_file():
        missing.append("lighttpd")
    return missing


def export_slices(folder: Path, stores: dict[str, Path], cubes: dict[str, CubeSpec],
                  keys: Iterable[tuple[str, int, int]], log: object = print) -> dict[str, int]:
    """Write each (store, run, step) slice as a tiled GeoTIFF (skipping existing ones)."""
    import rasterio
    from rasterio.enums import Resampling
    from rasterio.transform import from_origin

    from fewsmap.store.cube import ForecastStore

    written = existing = 0
    opened: dict[str, ForecastStore] = {}
    for name, run, step in sorted(set(keys)):
        target = folder / name / f"r{run:03d}" / f"s{step:03d}.tif"
        if target.is_file():
            existing += 1
            continue
        cube = cubes[name]
        store = opened.setdefault(name, ForecastStore(stores[name]))
        info = store.run(cube.reference_time(run))
        values = store.read_slice(VARIABLE, info, cube.valid_time(run, step))
        values = np.where(np.isnan(values), np.float32(NODATA), values)
        target.parent.mkdir(parents=True, exist_ok=True)
        west, south, east, north = cube.domain
        transform = from_origin(west, north, (east - west) / cube.nx, (north - south) / cube.ny)
        partial = target.with_suffix(".partial.tif")
        with rasterio.open(partial, "w", driver="GTiff", width=cube.nx, height=cube.ny,
                           count=1, dtype="float32", crs="EPSG:4326", transform=transform,
                           nodata=NODATA, tiled=True, blockxsize=256, blockysize=256,
                           compress="zstd", zstd_level=1) as out:
            out.write(values, 1)
            # Overviews as a COG has them: fewsmap's cubes have theirs (issue #18), so
            # zoomed-out tiles of either server read about a tile's cells.
            out.build_overviews(overview_factors(cube.ny, cube.nx), Resampling.average)
        partial.rename(target)
        written += 1
    return {"written": written, "existing": existing}


def overview_factors(ny: int, nx: int, tile: int = 256) -> list[int]:
    """GDAL overview factors 2, 4, … until the larger side fits a tile (none for a grid
    that does)."""
    factors = []
    while max(ny, nx) / (2 ** len(factors)) > tile:
        factors.append(2 ** (len(factors) + 1))
    return factors


def _shapefile(path: Path, bbox: tuple[float, float, float, float],
               rows: list[tuple[str, str]]) -> None:
    """A polygon shapefile (.shp/.shx/.dbf) with fields location and time: MapServer's
    raster tile index. Every polygon is ``bbox``; MapServer filters them by time."""
    xmin, ymin, xmax, ymax = bbox
    ring = [(xmin, ymin), (xmin, ymax), (xmax, ymax), (xmax, ymin), (xmin, ymin)]
    content = (struct.pack("<i4d2i", 5, xmin, ymin, xmax, ymax, 1, len(ring))
               + struct.pack("<i", 0) + b"".join(struct.pack("<2d", *p) for p in ring))
    words = len(content) // 2

    def header(length_words: int) -> bytes:
        return (struct.pack(">7i", 9994, 0, 0, 0, 0, 0, length_words)
                + struct.pack("<2i8d", 1000, 5, xmin, ymin, xmax, ymax, 0, 0, 0, 0))

    shp, shx = bytearray(), bytearray()
    shp += header(50 + len(rows) * (4 + words))
    shx += header(50 + len(rows) * 4)
    for number in range(1, len(rows) + 1):
        shx += struct.pack(">2i", len(shp) // 2, words)
        shp += struct.pack(">2i", number, words) + content
    path.with_suffix(".shp").write_bytes(bytes(shp))
    path.with_suffix(".shx").write_bytes(bytes(shx))
    widths = (254, 24)
    dbf = bytearray(struct.pack("<B3BIHH20x", 3, 126, 1, 1, len(rows), 32 + 32 * 2 + 1,
                                1 + sum(widths)))
    for name, width in zip((b"location", b"time"), widths, strict=True):
        dbf += struct.pack("<11sc4xBB14x", name, b"C", width, 0)
    dbf += b"\r"
    for location, when in rows:
        dbf += b" " + location.encode().ljust(widths[0]) + when.encode().ljust(widths[1])
    dbf += b"\x1a"
    path.with_suffix(".dbf").write_bytes(bytes(dbf))


RGB = tuple[int, int, int]


def _ramp(n: int = 6) -> list[tuple[float, float, RGB, RGB]]:
    """RdYlBu_r (fewsmap's temperature style) over COLOR_RANGE as ``n`` linear segments."""
    from matplotlib import colormaps

    cmap = colormaps["RdYlBu_r"]
    low, high = COLOR_RANGE
    edges = np.linspace(low, high, n + 1)
    colours: list[RGB] = []
    for i in range(n + 1):
        r, g, b = (round(float(c) * 255) for c in cmap(i / n)[:3])
        colours.append((r, g, b))
    return [(float(edges[i]), float(edges[i + 1]), colours[i], colours[i + 1])
            for i in range(n)]


def write_mapserver_config(folder: Path, cubes: dict[str, CubeSpec],
                           slices: Iterable[tuple[str, int, int]], port: int) -> Path:
    """Tile indexes, mapfile and MapServer CONFIG for the exported slices."""
    by_layer: dict[tuple[str, int], list[int]] = {}
    for name, run, step in sorted(set(slices)):
        by_layer.setdefault((name, run), []).append(step)
    classes = "\n".join(
        f"""    CLASS
      EXPRESSION ([pixel] >= {lo:g} AND [pixel] <= {hi:g})
      STYLE
        COLORRANGE {c0[0]} {c0[1]} {c0[2]} {c1[0]} {c1[1]} {c1[2]}
        DATARANGE {lo:g} {hi:g}
        RANGEITEM "pixel"
      END
    END""" for lo, hi, c0, c1 in _ramp())
    layers = []
    for (name, run), steps in by_layer.items():
        cube = cubes[name]
        west, south, east, north = cube.domain
        index = folder / "index" / f"{name}_r{run}"
        index.parent.mkdir(parents=True, exist_ok=True)
        times = [format_time(cube.valid_time(run, s)) for s in steps]
        _shapefile(index, cube.domain, [(str(folder / name / f"r{run:03d}" / f"s{s:03d}.tif"), t)
                                   for s, t in zip(steps, times, strict=True)])
        layers.append(f"""  LAYER
    NAME "{name}_r{run}"
    TYPE RASTER
    STATUS ON
    TILEINDEX "{index}.shp"
    TILEITEM "location"
    EXTENT {west} {south} {east} {north}
    PROJECTION
      "init=epsg:4326"
    END
    METADATA
      "wms_title" "{name} run {format_time(cube.reference_time(run))}"
      "wms_timeitem" "time"
      "wms_timeextent" "{','.join(times)}"
      "wms_timedefault" "{times[0]}"
      "wms_extent" "{west} {south} {east} {north}"
      "wms_include_items" "all"
    END
    PROCESSING "RESAMPLE=NEAREST"
    PROCESSING "SCALE={COLOR_RANGE[0]:g},{COLOR_RANGE[1]:g}"
    PROCESSING "SCALE_BUCKETS=256"
    TEMPLATE "query"
{classes}
  END""")
    domains = [cube.domain for cube in cubes.values()]
    west, south = min(d[0] for d in domains), min(d[1] for d in domains)
    east, north = max(d[2] for d in domains), max(d[3] for d in domains)
    mapfile = folder / "bench.map"
    mapfile.write_text(f"""MAP
  NAME "fewsmap_bench_peer"
  EXTENT {west} {south} {east} {north}
  SIZE 256 256
  MAXSIZE 4096
  IMAGETYPE "png_l1"
  PROJECTION
    "init=epsg:4326"
  END
  OUTPUTFORMAT
    NAME "png_l1"
    DRIVER "AGG/PNG"
    MIMETYPE "image/png"
    IMAGEMODE RGBA
    EXTENSION "png"
    TRANSPARENT ON
    FORMATOPTION "COMPRESSION=1"
  END
  WEB
    METADATA
      "wms_title" "fewsmap benchmark peer"
      "wms_onlineresource" "http://127.0.0.1:{port}/wms?"
      "wms_srs" "EPSG:4326 EPSG:3857"
      "wms_enable_request" "*"
      "wms_getmap_formatlist" "image/png"
    END
  END
{chr(10).join(layers)}
END
""")
    config = folder / "mapserver.conf"
    config.write_text(f"""CONFIG
  ENV
    MS_MAP_PATTERN "^{folder}/"
    MS_MAPFILE "{mapfile}"
    PROJ_LIB "/usr/share/proj"
  END
END
""")
    return config


def start_mapserver(folder: Path, config: Path, port: int, logs: Path,
                    processes: int = 2) -> Server:
    """lighttpd on ``port`` with ``processes`` mapserv FastCGI processes."""
    socket_path = folder / "mapserv.sock"
    www = folder / "www"
    www.mkdir(parents=True, exist_ok=True)
    conf = folder / "lighttpd.conf"
    conf.write_text(f"""server.modules = ("mod_fastcgi")
server.bind = "127.0.0.1"
server.port = {port}
server.document-root = "{www}"
server.errorlog = "{logs / 'lighttpd-error.log'}"
server.max-keep-alive-requests = 1000000
server.max-keep-alive-idle = 60
fastcgi.server = ("/wms" => ((
  "bin-path" => "{MAPSERV}",
  "socket" => "{socket_path}",
  "max-procs" => {processes},
  "check-local" => "disable",
  "bin-environment" => ("MAPSERVER_CONFIG_FILE" => "{config}")
)))
""")
    lighttpd = shutil.which(LIGHTTPD) or "/usr/sbin/lighttpd"
    log = logs / "lighttpd.log"
    tree = launch([lighttpd, "-D", "-f", str(conf)], "lighttpd + mapserv", log)
    path = "/wms?SERVICE=WMS&VERSION=1.3.0&REQUEST=GetCapabilities"
    wait_until(lambda: fetch(port, path, 10).status == 200, tree, 60, log)
    time.sleep(0.2)
    return Server("MapServer", port, tree, log,
                  {"command": f"{lighttpd} -D -f {conf}", "fastcgi_processes": processes})


def mapserver_version() -> str:
    try:
        out = subprocess.run(["mapserv", "-v"], capture_output=True, text=True, timeout=30)
    except OSError:
        return "?"
    return out.stdout.strip().splitlines()[0] if out.stdout.strip() else "?"


def lighttpd_version() -> str:
    try:
        out = subprocess.run([shutil.which(LIGHTTPD) or "/usr/sbin/lighttpd", "-v"],
                             capture_output=True, text=True, timeout=30)
    except OSError:
        return "?"
    return out.stdout.strip().splitlines()[0] if out.stdout.strip() else "?"
