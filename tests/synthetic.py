"""Stores with known fields (value = longitude, value = latitude) for pixel-exact tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyproj
import xarray as xr

from fewsmap.ingest.grids import grid_attrs
from fewsmap.store.run import Grid, RunData, SourceFile
from fewsmap.store.writer import append_run

T0 = np.datetime64("2026-01-01T00:00:00", "s")
LAMBERT = pyproj.CRS.from_proj4(
    "+proj=lcc +lat_0=63 +lon_0=15 +lat_1=63 +lat_2=63 +R=6371000 +units=m +no_defs")


def _run(grid: Grid, lon: np.ndarray, lat: np.ndarray, vector: bool = False,
         t0: np.datetime64 = T0) -> RunData:
    step = np.array([0, 6 * 3600], "timedelta64[s]").astype("timedelta64[ns]")
    dims = ("step", *grid.dims)

    def field(values: np.ndarray, units: str) -> xr.DataArray:
        stacked = np.stack([values, values]).astype("float32")
        return xr.DataArray(stacked, dims=dims, coords={"step": step}, attrs={"units": units})

    fields: dict[str, tuple[xr.DataArray, ...]] = {
        "lon": (field(lon, "degrees_east"),), "lat": (field(lat, "degrees_north"),)}
    if vector:  # a vector field whose components are the longitude and the latitude
        fields |= {"u": (field(lon, "m s-1"),), "v": (field(lat, "m s-1"),)}
    return RunData(t0, fields, grid, (SourceFile("synthetic", "0" * 64, 0),), "synthetic")


def field_store(path: Path, grid: Grid, lon: np.ndarray, lat: np.ndarray,
                t0: np.datetime64 = T0) -> Path:
    """Write one run on ``grid`` whose variables ``lon``/``lat`` hold these 2-D values."""
    append_run(path, _run(grid, lon, lat, t0=t0), progress=False)
    return path


def lonlat_grid(lat: np.ndarray, lon: np.ndarray) -> Grid:
    """A regular EPSG:4326 grid on these 1-D axes."""
    return Grid(("latitude", "longitude"),
                {"latitude": xr.DataArray(lat, dims="latitude"),
                 "longitude": xr.DataArray(lon, dims="longitude")},
                grid_attrs(pyproj.CRS.from_epsg(4326)))


def lonlat_store(path: Path, t0: np.datetime64 = T0, offset: float = 0.0) -> Path:
    """1° grid, latitudes 60..30 (descending, as GRIB), longitudes -20..40; a run at ``t0``.

    Variables: ``lon`` and ``lat`` (value = the cell's longitude/latitude, plus ``offset``)
    and a vector ``u``/``v`` with the same values.
    """
    lat, lon = np.arange(60.0, 29.5, -1.0), np.arange(-20.0, 40.5, 1.0)
    grid = lonlat_grid(lat, lon)
    lon2, lat2 = np.meshgrid(lon, lat)
    append_run(path, _run(grid, lon2 + offset, lat2 + offset, vector=True, t0=t0),
               progress=False)
    return path


def lambert_store(path: Path) -> Path:
    """10 km Lambert conformal grid around southern Norway (AROME-like projection)."""
    x = np.arange(-700_000.0, -200_000.0, 10_000.0)
    y = np.arange(-300_000.0, 200_000.0, 10_000.0)
    grid = Grid(("y", "x"), {"y": xr.DataArray(y, dims="y"), "x": xr.DataArray(x, dims="x")},
                grid_attrs(LAMBERT))
    xx, yy = np.meshgrid(x, y)
    lon, lat = pyproj.Transformer.from_crs(LAMBERT, "EPSG:4326", always_xy=True).transform(
        xx, yy)
    append_run(path, _run(grid, lon, lat), progress=False)
    return path
