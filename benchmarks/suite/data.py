"""The suite's data: synthetic forecast cubes written through fewsmap's own writer.

Fields follow reference/perf-anchors.md: a latitude gradient, a moving synoptic wave, a
diurnal term, spatially correlated "orography" detail (0.8 K at about 0.75°), 0.05 K white
noise, values quantised to 1/64 K as GRIB packing would, and about 29 % missing "sea".

Every dataset lives in its own folder under the cache with a ``manifest.json`` written last:
a folder whose manifest matches the wanted parameters is reused, anything else is rebuilt.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import dask
import dask.array as da
import numpy as np
import pyproj
import xarray as xr

from fewsmap.ingest.grids import grid_attrs
from fewsmap.store.layout import data_codec
from fewsmap.store.run import Grid, RunData, SourceFile
from fewsmap.store.writer import append_run

# Bump when the generator changes: cached data with another version is rebuilt.
GENERATOR_VERSION = 1
DOMAIN = (-25.0, 27.0, 45.0, 72.0)  # lon west, lat south, lon east, lat north
GLOBE = (-180.0, -90.0, 180.0, 90.0)
FIRST_RUN = np.datetime64("2026-01-01T00:00:00", "s")
RUN_INTERVAL_H = 6
VARIABLE = "t2m"
COLOR_RANGE = (-20.0, 40.0)  # sent to every server, so all draw the same colour scale


@dataclass(frozen=True)
class CubeSpec:
    """One store: a grid over ``domain`` (cell edges), ``runs`` runs of ``steps`` hourly
    steps."""

    name: str
    ny: int
    nx: int
    runs: int
    steps: int
    variables: tuple[str, ...] = (VARIABLE,)
    seed: int = 0
    members: int = 0  # ensemble members (a realization dimension); 0: none
    domain: tuple[float, float, float, float] = DOMAIN  # lon west, lat south, lon east, lat north

    def reference_time(self, run: int) -> np.datetime64:
        """Reference time of run number ``run`` (6-hourly from ``FIRST_RUN``)."""
        return FIRST_RUN + np.timedelta64(RUN_INTERVAL_H * run, "h")

    def valid_time(self, run: int, step: int) -> np.datetime64:
        """Valid time of ``step`` (hours) of run ``run``."""
        return self.reference_time(run) + np.timedelta64(step, "h")

    @property
    def lon(self) -> np.ndarray:
        """Cell-centre longitudes, west to east."""
        west, _, east, _ = self.domain
        step = (east - west) / self.nx
        return west + (np.arange(self.nx) + 0.5) * step

    @property
    def lat(self) -> np.ndarray:
        """Cell-centre latitudes, north to south (row 0 north, as GRIB writes them)."""
        _, south, _, north = self.domain
        step = (north - south) / self.ny
        return north - (np.arange(self.ny) + 0.5) * step

    def raw_bytes(self) -> int:
        """float32 bytes of every field of the store."""
        return (4 * self.ny * self.nx * self.runs * self.steps * len(self.variables)
                * max(1, self.members))


class FieldMaker:
    """Fields of one grid: ``field(run, step)`` is deterministic for a seed."""

    def __init__(self, spec: CubeSpec) -> None:
        self.spec = spec
        lon, lat = spec.lon, spec.lat
        self.lonr = np.radians(lon).astype(np.float32)
        self.latr = np.radians(lat).astype(np.float32)
        relief = (np.cos(self.latr * 7)[:, None] * np.sin(self.lonr * 5)[None, :]
                  + 0.6 * np.sin(self.latr * 13 + 2)[:, None] * np.sin(self.lonr * 11 + 1)[None, :]
                  + 0.3 * np.cos(self.latr * 19 + 0.5)[:, None] * np.cos(self.lonr * 23)[None, :])
        self.sea = relief < -0.35
        self.base = ((25 - 0.7 * (lat - 27)).astype(np.float32)[:, None]
                     + (2 * np.cos(self.lonr * 3))[None, :]).astype(np.float32)
        rng = np.random.default_rng(spec.seed + 12345)
        west, south, east, north = spec.domain
        dlon, dlat = (east - west) / spec.nx, (north - south) / spec.ny
        self.detail = [_smooth_noise(rng, spec.ny, spec.nx, dlat, dlon) for _ in range(2)]

    def field(self, run: int, step: int, variable: int = 0) -> np.ndarray:
        """The (ny, nx) float32 field, NaN over the sea."""
        hours = RUN_INTERVAL_H * run + step
        phase = 2 * np.pi * hours / 120.0
        wave = np.sin(self.lonr * 6 - phase).astype(np.float32)
        envelope = (6 * np.cos(self.latr * 4 + 0.3 * np.sin(phase))).astype(np.float32)
        diurnal = (4 * np.cos(2 * np.pi * (hours % 24) / 24 + self.lonr)).astype(np.float32)
        rng = np.random.default_rng(self.spec.seed + 100_003 * run + 101 * step + variable)
        out = rng.standard_normal((self.spec.ny, self.spec.nx), dtype=np.float32)
        out *= 0.05
        out += self.base
        out += np.float32(0.8 * np.cos(phase)) * self.detail[0]
        out += np.float32(0.8 * np.sin(phase)) * self.detail[1]
        out += envelope[:, None] * wave[None, :]
        out += diurnal[None, :]
        if variable:
            out += np.float32(3 * variable)
        np.multiply(out, 64, out=out)
        np.round(out, out=out)
        out *= 1 / 64
        out[self.sea] = np.nan
        return out


def _smooth_noise(rng: np.random.Generator, ny: int, nx: int, dlat: float,
                  dlon: float, degrees: float = 0.75) -> np.ndarray:
    """Unit-variance noise correlated over about ``degrees`` (two box filters)."""
    ky, kx = max(2, round(degrees / dlat)), max(2, round(degrees / dlon))
    noise = rng.standard_normal((ny + 2 * ky, nx + 2 * kx), dtype=np.float32)
    for _ in range(2):
        acc = np.cumsum(noise, axis=0, dtype=np.float64)
        noise = (acc[ky:] - acc[:-ky]).astype(np.float32)
        acc = np.cumsum(noise, axis=1, dtype=np.float64)
        noise = (acc[:, kx:] - acc[:, :-kx]).astype(np.float32)
    noise = noise[:ny, :nx]
    noise /= noise.std()
    return np.ascontiguousarray(noise)


def grid_of(spec: CubeSpec) -> Grid:
    """The store grid: regular lon/lat, EPSG:4326."""
    return Grid(("latitude", "longitude"),
                {"latitude": xr.DataArray(spec.lat, dims="latitude",
                                          attrs={"units": "degrees_north"}),
                 "longitude": xr.DataArray(spec.lon, dims="longitude",
                                           attrs={"units": "degrees_east"})},
                grid_attrs(pyproj.CRS.from_epsg(4326)))


def run_data(spec: CubeSpec, maker: FieldMaker, run: int) -> RunData:
    """Run ``run`` as fewsmap's writer takes it; fields are computed lazily, one step at a
    time, so a 4000 × 3000 × 73 run never sits in memory at once."""
    shape = (spec.ny, spec.nx)
    steps = (np.arange(spec.steps) * 3600).astype("timedelta64[s]").astype("timedelta64[ns]")
    fields = {}
    members = {"realization": np.arange(spec.members)} if spec.members else {}
    for v, name in enumerate(spec.variables):
        lazy = [da.stack([da.from_delayed(dask.delayed(_member)(maker, run, s, v, m), shape,
                                          dtype=np.float32) for m in range(spec.members)])
                if spec.members else
                da.from_delayed(dask.delayed(maker.field)(run, s, v), shape, dtype=np.float32)
                for s in range(spec.steps)]
        values = da.stack(lazy).rechunk((1, *(1,) * len(members), *shape))
        fields[name] = (xr.DataArray(
            values, dims=("step", *members, "latitude", "longitude"),
            coords={"step": steps, **members},
            attrs={"units": "degC", "long_name": "2 m temperature" if v == 0 else name,
                   "standard_name": "air_temperature"}),)
    return RunData(spec.reference_time(run), fields, grid_of(spec),
                   (SourceFile(f"synthetic:{spec.name}:{run}", "0" * 64, 0),), "synthetic")


def _member(maker: FieldMaker, run: int, step: int, variable: int, member: int
            ) -> np.ndarray:
    """Member ``member`` of an ensemble: the field plus a member's own offset (0.1 K a
    member; member 0 is the field itself)."""
    return maker.field(run, step, variable) + np.float32(0.1 * member)


@dataclass
class Built:
    """A dataset on disk: its stores and what was written."""

    folder: Path
    specs: list[CubeSpec]
    seconds: float
    reused: bool

    def store(self, spec: CubeSpec) -> Path:
        return self.folder / f"{spec.name}.zarr"


def build_stores(folder: Path, specs: list[CubeSpec], log: Any = print,
                 overviews: bool = True) -> Built:
    """Write ``specs`` as stores in ``folder`` (one stores folder), or reuse them;
    ``overviews`` False writes no overview levels (as fewsmap before issue #18)."""
    manifest = folder / "manifest.json"
    # The chunk codec is part of what a store is: data written with another is rebuilt; so
    # are overviews (a cache written before them would be served at full resolution).
    # A cube without members, over the suite's domain, is described as before members and
    # domains existed: its cache stays valid.
    described = [{k: v for k, v in asdict(s).items()
                  if (k != "members" or v) and (k != "domain" or v != DOMAIN)} for s in specs]
    wanted = {"generator": GENERATOR_VERSION, "stores": described,
              "codec": data_codec().to_dict(), "overviews": overviews}
    if manifest.is_file():
        try:
            if json.loads(manifest.read_text()) == json.loads(json.dumps(wanted)):
                return Built(folder, specs, 0.0, reused=True)
        except ValueError:
            pass
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    start = time.perf_counter()
    with dask.config.set(scheduler="threads", num_workers=2):
        for spec in specs:
            maker = FieldMaker(spec)
            for run in range(spec.runs):
                t = time.perf_counter()
                append_run(folder / f"{spec.name}.zarr", run_data(spec, maker, run),
                           progress=False, overviews=overviews)
                if spec.ny * spec.nx >= 1_000_000:
                    log(f"  {folder.name}/{spec.name}: run {run + 1}/{spec.runs} written "
                        f"in {time.perf_counter() - t:.1f} s")
    manifest.write_text(json.dumps(wanted, indent=1))
    return Built(folder, specs, time.perf_counter() - start, reused=False)


def folder_bytes(folder: Path) -> int:
    """Bytes allocated on disk under ``folder``."""
    return sum(p.stat().st_blocks * 512 for p in folder.rglob("*") if p.is_file())
