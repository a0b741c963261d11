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
NEXT_RUN = T0 + np.timedelta64(6, "h")  # a store's second run (six-hourly runs)
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


def field_store(path: Path | str, grid: Grid, lon: np.ndarray, lat: np.ndarray,
                t0: np.datetime64 = T0, *, overviews: bool = True) -> Path | str:
    """Write one run on ``grid`` whose variables ``lon``/``lat`` hold these 2-D values (a
    local folder or an object-store URL), with its overview levels unless told not."""
    append_run(path, _run(grid, lon, lat, t0=t0), progress=False, overviews=overviews)
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


# A lagged ensemble as seasonal systems publish it (issue #13 item 7): 8 runs a week apart,
# each with the cube's 20 daily lead times and 28 members, of which it fills 7 members at 3
# steps; the rest is NaN. Run k holds members 7k..7k+6 (mod 28) at steps 2k..2k+2.
LAGGED_RUNS, LAGGED_MEMBERS, LAGGED_STEPS = 8, 28, 20
LAGGED_T0 = np.datetime64("2026-03-01T00:00:00", "s")


def lagged_members(k: int) -> list[int]:
    """The members run ``k`` of the lagged ensemble holds."""
    return sorted((7 * k + j) % LAGGED_MEMBERS for j in range(7))


def lagged_steps(k: int) -> list[int]:
    """The step indices (days of lead time) at which run ``k`` holds data."""
    return [2 * k, 2 * k + 1, 2 * k + 2]


def lagged_run_time(k: int) -> np.datetime64:
    return LAGGED_T0 + np.timedelta64(7 * k, "D")


def lagged_ensemble_store(path: Path) -> Path:
    """Write the lagged ensemble: variable ``t2m`` (value = member + step / 100 where held)
    and ``snow``, present at one step (its run's second held step) and without members."""
    lat, lon = np.arange(60.0, 39.5, -2.0), np.arange(0.0, 30.5, 2.0)
    grid = lonlat_grid(lat, lon)
    steps = (np.arange(LAGGED_STEPS) * 86400).astype("timedelta64[s]").astype("timedelta64[ns]")
    members = np.arange(LAGGED_MEMBERS)
    for k in range(LAGGED_RUNS):
        values = np.full((LAGGED_STEPS, LAGGED_MEMBERS, lat.size, lon.size), np.nan, "float32")
        for step in lagged_steps(k):
            for member in lagged_members(k):
                values[step, member] = member + step / 100
        t2m = xr.DataArray(values, dims=("step", "realization", *grid.dims),
                           coords={"step": steps, "realization": members},
                           attrs={"units": "degC", "long_name": "2 m temperature"})
        one = lagged_steps(k)[1]
        snow = xr.DataArray(np.ones((1, lat.size, lon.size), "float32"),
                            dims=("step", *grid.dims), coords={"step": steps[one:one + 1]},
                            attrs={"units": "m", "long_name": "snow depth"})
        run = RunData(lagged_run_time(k), {"t2m": (t2m,), "snow": (snow,)}, grid,
                      (SourceFile("synthetic", "0" * 64, 0),), "synthetic")
        append_run(path, run, progress=False)
    return path


def ragged_members_store(path: Path) -> Path:
    """One run of variable ``x`` on a 2 × 2 grid, 4 members, steps 0, 6 and 12 h: members 0
    and 1 hold 1.0 everywhere at step 0, member 3 holds 2.0 at step 12 h in the cell (lat 1,
    lon 0) only; step 6 h and member 2 hold nothing."""
    grid = lonlat_grid(np.array([1.0, 0.0]), np.array([0.0, 1.0]))
    values = np.full((3, 4, 2, 2), np.nan, "float32")
    values[0, :2] = 1.0
    values[2, 3, 0, 0] = 2.0
    field = xr.DataArray(values, dims=("step", "realization", *grid.dims), coords={
        "step": np.array([0, 6, 12], "timedelta64[h]").astype("timedelta64[ns]"),
        "realization": [0, 1, 2, 3]}, attrs={"units": "1"})
    run = RunData(T0, {"x": (field,)}, grid, (SourceFile("synthetic", "0" * 64, 0),),
                  "synthetic")
    append_run(path, run, progress=False)
    return path


def sparse_levels_store(path: Path) -> Path:
    """One run of variable ``t`` on a 2 × 2 grid at steps 0 and 6 h on 1000, 850 and 500 hPa,
    holding 1.0 at 1000 hPa and 3.0 at 500 hPa; 850 hPa holds nothing."""
    grid = lonlat_grid(np.array([1.0, 0.0]), np.array([0.0, 1.0]))
    values = np.full((2, 3, 2, 2), np.nan, "float32")
    values[:, 0], values[:, 2] = 1.0, 3.0
    levels = xr.DataArray([1000.0, 850.0, 500.0], dims="isobaricInhPa",
                          attrs={"units": "hPa", "axis": "Z", "positive": "down"})
    field = xr.DataArray(values, dims=("step", "isobaricInhPa", *grid.dims), coords={
        "step": np.array([0, 6], "timedelta64[h]").astype("timedelta64[ns]"),
        "isobaricInhPa": levels}, attrs={"units": "1"})  # not K: 1 K is below every class
    run = RunData(T0, {"t": (field,)}, grid, (SourceFile("synthetic", "0" * 64, 0),),
                  "synthetic")
    append_run(path, run, progress=False)
    return path


# ETRS89 / LAEA Europe (EPSG:3035) as the LISFLOOD/EFAS sample gives it: only an ESRI WKT
# (``esri_pe_string``), which pyproj matches to EPSG:3035 with 50 % confidence once written
# back as WKT2 (issue #17). And as a CF grid mapping without crs_wkt: datum unnamed.
LAEA_ESRI = pyproj.CRS.from_wkt(
    'PROJCS["ETRS_1989_LAEA",GEOGCS["GCS_ETRS_1989",DATUM["D_ETRS_1989",'
    'SPHEROID["GRS_1980",6378137.0,298.257222101]],PRIMEM["Greenwich",0.0],'
    'UNIT["Degree",0.0174532925199433]],PROJECTION["Lambert_Azimuthal_Equal_Area"],'
    'PARAMETER["false_easting",4321000.0],PARAMETER["false_northing",3210000.0],'
    'PARAMETER["central_meridian",10.0],PARAMETER["latitude_of_origin",52.0],'
    'UNIT["Meter",1.0]]')
LAEA_CF = {"grid_mapping_name": "lambert_azimuthal_equal_area",
           "latitude_of_projection_origin": 52.0, "longitude_of_projection_origin": 10.0,
           "false_easting": 4321000.0, "false_northing": 3210000.0,
           "semi_major_axis": 6378137.0, "inverse_flattening": 298.257222101}
# 5 km cells over the Rhine/Alps (EFAS-like); centres at odd multiples of 2.5 km.
LAEA_X = 4_002_500.0 + 5_000.0 * np.arange(100)
LAEA_Y = 2_302_500.0 + 5_000.0 * np.arange(80)


def projected_xy_store(path: Path, crs: pyproj.CRS, x: np.ndarray = LAEA_X,
                       y: np.ndarray = LAEA_Y) -> Path:
    """A projected grid on 1-D metre axes whose variables ``lon``/``lat`` hold each cell's
    own x and y (metres), to check positions in the grid's CRS."""
    grid = Grid(("y", "x"), {"y": xr.DataArray(y, dims="y"), "x": xr.DataArray(x, dims="x")},
                grid_attrs(crs))
    xx, yy = np.meshgrid(x, y)
    return field_store(path, grid, xx, yy)


def six_hourly_runs_store(path: Path, runs: int = 3, members: int = 0,
                          variable: str = "rain", attrs: dict[str, str] | None = None) -> Path:
    """Runs every 6 h, each of 8 six-hourly steps (0..42 h) of ``rain`` (mm per step: random
    gamma values, cell (0, 0) missing everywhere, cell (1, 1) missing at step 2 of each
    run) on a 1° grid of 6 × 9 cells; with ``members``, ``rain`` has that many members.
    ``variable`` and ``attrs`` name the field and give its attributes otherwise."""
    grid = lonlat_grid(np.arange(50.0, 44.5, -1.0), np.arange(0.0, 8.5, 1.0))
    rng = np.random.default_rng(15)
    steps = (np.arange(8) * 6 * 3600).astype("timedelta64[s]").astype("timedelta64[ns]")
    shape = (steps.size, *((members,) if members else ()), 6, 9)
    dims = ("step", *(("realization",) if members else ()), *grid.dims)
    coords: dict[str, object] = {"step": steps}
    if members:
        coords["realization"] = np.arange(members)
    for k in range(runs):
        values = rng.gamma(1.0, 2.0, shape).astype("float32")
        values[..., 0, 0] = np.nan
        values[2, ..., 1, 1] = np.nan
        field = xr.DataArray(values, dims=dims, coords=coords,
                             attrs=attrs if attrs is not None else {"units": "mm"})
        append_run(path, RunData(T0 + np.timedelta64(6 * k, "h"), {variable: (field,)}, grid,
                                 (SourceFile("synthetic", "0" * 64, 0),), "synthetic"),
                   progress=False)
    return path
