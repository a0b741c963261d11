"""One small store per kind of grid ingest can produce, for service-wide tests (issue #13).

Every store holds the variables ``lon`` and ``lat`` (value = the cell's longitude/latitude),
written by ``fewsmap.store.writer.append_run`` as ingest writes them. The reduced Gaussian
kind is the real ``tests/data/t_n48.grib`` (ingest unpacks it to the full Gaussian grid).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyproj
import xarray as xr

from fewsmap.ingest import ingest
from fewsmap.ingest.grids import grid_attrs
from fewsmap.store.run import Grid
from tests.conftest import sample_paths
from tests.synthetic import LAMBERT, field_store, lambert_store, lonlat_grid, lonlat_store

POLAR_STEREO = pyproj.CRS.from_proj4(  # HRAP-like: north pole, true at 60° N, sphere
    "+proj=stere +lat_0=90 +lat_ts=60 +lon_0=-105 +R=6371200 +units=m +no_defs")
# Rotated pole as COSMO-EU used it (pole at 40° N 170° W): rotated (0, 0) is 10° E 50° N.
ROTATED = pyproj.CRS.from_cf({"grid_mapping_name": "rotated_latitude_longitude",
                              "grid_north_pole_latitude": 40.0,
                              "grid_north_pole_longitude": -170.0})


def lonlat_values(path: Path, grid: Grid, lon: np.ndarray, lat: np.ndarray) -> Path:
    """A store on ``grid`` whose 1-D lon/lat axes become the 2-D value fields."""
    lon2, lat2 = np.meshgrid(lon, lat)
    return field_store(path, grid, lon2, lat2)


def projected_store(path: Path, crs: pyproj.CRS, x: np.ndarray, y: np.ndarray) -> Path:
    """A projected grid on 1-D metre axes with a CF grid_mapping."""
    grid = Grid(("y", "x"), {"y": xr.DataArray(y, dims="y"), "x": xr.DataArray(x, dims="x")},
                grid_attrs(crs))
    xx, yy = np.meshgrid(x, y)
    lon, lat = pyproj.Transformer.from_crs(crs, "EPSG:4326", always_xy=True).transform(xx, yy)
    return field_store(path, grid, lon, lat)


def curvilinear_store(path: Path, crs: pyproj.CRS, x: np.ndarray, y: np.ndarray) -> Path:
    """A grid on y/x with only 2-D latitude/longitude (no 1-D coordinates): a rotated-pole
    GRIB as ingest stores it."""
    xx, yy = np.meshgrid(x, y)
    lon, lat = pyproj.Transformer.from_crs(crs, "EPSG:4326", always_xy=True).transform(xx, yy)
    grid = Grid(("y", "x"), {"latitude": xr.DataArray(lat, dims=("y", "x")),
                             "longitude": xr.DataArray(lon, dims=("y", "x"))},
                grid_attrs(pyproj.CRS.from_epsg(4326)))
    return field_store(path, grid, lon, lat)


def regular(path: Path) -> Path:
    """1° lon/lat over Europe, latitudes descending (as GRIB)."""
    return lonlat_store(path)


def regular_0_360(path: Path) -> Path:
    """A global 5° grid with longitudes 0..355 (as ECMWF GRIB)."""
    lat, lon = np.arange(90.0, -90.5, -5.0), np.arange(0.0, 360.0, 5.0)
    return lonlat_values(path, lonlat_grid(lat, lon), lon, lat)


# The native axes of the projected and rotated kinds: (CRS, x, y).
KIND_AXES = {
    "lambert": (LAMBERT, np.arange(-700_000.0, -200_000.0, 10_000.0),
                np.arange(-300_000.0, 200_000.0, 10_000.0)),
    "polar_stereographic": (POLAR_STEREO, np.arange(1_000_000.0, 2_000_000.0, 20_000.0),
                            np.arange(-7_000_000.0, -6_000_000.0, 20_000.0)),
    "rotated_pole": (ROTATED, np.arange(-10.0, 10.0, 0.25), np.arange(-8.0, 8.0, 0.25)),
}


def lambert(path: Path) -> Path:
    """10 km Lambert conformal (AROME-like)."""
    return lambert_store(path)


def polar_stereographic(path: Path) -> Path:
    """An HRAP-like 20 km polar stereographic grid over the eastern United States."""
    crs, x, y = KIND_AXES["polar_stereographic"]
    return projected_store(path, crs, x, y)


def rotated_pole(path: Path) -> Path:
    """A 0.25° rotated-pole grid over Europe, kept as 2-D latitude/longitude."""
    crs, x, y = KIND_AXES["rotated_pole"]
    return curvilinear_store(path, crs, x, y)


def rotated_pole_axes(path: Path) -> Path:
    """The rotated-pole grid on its 1-D rotated axes with its CF grid mapping, as ingest
    stores a CF rotated-pole file (issue #18)."""
    crs, x, y = KIND_AXES["rotated_pole"]
    return projected_store(path, crs, x, y)


def curvilinear_antimeridian(path: Path) -> Path:
    """A curvilinear grid over the Bering Sea, longitudes jumping from 180 to -180."""
    x = np.arange(-2_000_000.0, -1_000_000.0, 50_000.0)
    y = np.arange(-4_000_000.0, -3_000_000.0, 50_000.0)
    stere = pyproj.CRS.from_proj4("+proj=stere +lat_0=90 +lat_ts=60 +lon_0=-135 +R=6371200")
    return curvilinear_store(path, stere, x, y)


def antimeridian(path: Path) -> Path:
    """A 0.5° lon/lat grid over the Pacific whose longitudes run 170..190."""
    lat, lon = np.arange(60.0, 39.5, -0.5), np.arange(170.0, 190.5, 0.5)
    return lonlat_values(path, lonlat_grid(lat, lon), lon, lat)


def single_point(path: Path) -> Path:
    """A lon/lat grid of one cell (a station-like point forecast)."""
    lat, lon = np.array([52.0]), np.array([5.0])
    return lonlat_values(path, lonlat_grid(lat, lon), lon, lat)


def single_row(path: Path) -> Path:
    """A lon/lat grid one cell high."""
    lat, lon = np.array([52.0]), np.arange(3.0, 8.0, 1.0)
    return lonlat_values(path, lonlat_grid(lat, lon), lon, lat)


def single_cell_projected(path: Path) -> Path:
    """A Lambert grid of one 10 km cell."""
    return projected_store(path, LAMBERT, np.array([-500_000.0]), np.array([0.0]))


def reduced_gaussian(path: Path) -> Path:
    """The real ECMWF reduced Gaussian N48 file, unpacked by ingest."""
    ingest(path, sample_paths("t_n48"), progress=False)
    return path


GRID_KINDS: dict[str, Callable[[Path], Path]] = {
    "regular": regular, "regular_0_360": regular_0_360, "lambert": lambert,
    "polar_stereographic": polar_stereographic, "rotated_pole": rotated_pole,
    "rotated_pole_axes": rotated_pole_axes,
    "curvilinear_antimeridian": curvilinear_antimeridian, "antimeridian": antimeridian,
    "single_point": single_point, "single_row": single_row,
    "single_cell_projected": single_cell_projected, "reduced_gaussian": reduced_gaussian,
}


def grid_kind_stores(folder: Path) -> Path:
    """A stores folder holding one store per grid kind, named after the kind."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, build in GRID_KINDS.items():
        build(folder / f"{name}.zarr")
    return folder


def unplaced(path: Path) -> Path:
    """A curvilinear grid none of whose cells has a position (all-NaN latitude/longitude):
    metadata no document can describe."""
    nan = np.full((3, 4), np.nan)
    grid = Grid(("y", "x"), {"latitude": xr.DataArray(nan, dims=("y", "x")),
                             "longitude": xr.DataArray(nan, dims=("y", "x"))},
                grid_attrs(pyproj.CRS.from_epsg(4326)))
    return field_store(path, grid, np.zeros((3, 4)), np.zeros((3, 4)))


JITTER_SPACING_M = 2500.0
# First x and y (south-west centre): where a float32 step is 1/32 m, so ±0.03 m survives.
JITTER_ORIGIN_M = (-450_000.0, 300_000.0)


def jittered_float32_file(folder: Path, shape: tuple[int, int] = (40, 60)) -> Path:
    """A CF NetCDF on a 2,500 m polar stereographic grid whose x/y axes are float32 and
    jitter by up to ±0.03 m (as NWS files are written); ``t`` holds the row × 1000 + column.
    """
    ny, nx = shape
    rng = np.random.default_rng(17)
    x0, y0 = JITTER_ORIGIN_M
    x = (x0 + JITTER_SPACING_M * np.arange(nx) + rng.uniform(-0.03, 0.03, nx)).astype("float32")
    y = (y0 + JITTER_SPACING_M * np.arange(ny) + rng.uniform(-0.03, 0.03, ny)).astype("float32")
    values = (np.arange(ny)[:, None] * 1000 + np.arange(nx)[None, :]).astype("float32")
    t0 = np.datetime64("2026-01-01T00:00:00", "ns")
    ds = xr.Dataset(
        {"t": (("time", "y", "x"), values[None], {"units": "K", "grid_mapping": "crs"}),
         "crs": ((), 0, POLAR_STEREO.to_cf())},
        coords={"time": ("time", [t0 + np.timedelta64(6, "h")], {"standard_name": "time"}),
                "forecast_reference_time": ((), t0,
                                            {"standard_name": "forecast_reference_time"}),
                "x": ("x", x, {"units": "m", "standard_name": "projection_x_coordinate"}),
                "y": ("y", y, {"units": "m", "standard_name": "projection_y_coordinate"})})
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "jittered.nc"
    ds.to_netcdf(path)
    return path
