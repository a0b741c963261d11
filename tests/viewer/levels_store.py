"""A small store the demo lacks, for the viewer's browser session: pressure levels and two
forecast runs sharing valid times.

The demo stores have no level dimension and their runs (MARFC) share no valid time, so the
elevation selector, and picking a run while keeping the time on the map, need this one.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr

from fewsmap.store.run import Grid, RunData, SourceFile
from fewsmap.store.writer import append_run
from tests.synthetic import lonlat_grid

T0 = np.datetime64("2026-01-01T00:00:00", "s")
RUN_HOURS = (0, 6)  # two runs, six hours apart...
STEP_HOURS = (0, 6, 12)  # ...so they share two valid times
LEVELS_HPA = (500.0, 850.0, 1000.0)
LEVEL_DIM = "isobaricInhPa"
VARIABLE = "t"


def _grid() -> tuple[Grid, np.ndarray, np.ndarray]:
    """1° lon/lat grid over Europe (latitudes 72..34, longitudes -12..40) and its 2-D axes."""
    lat, lon = np.arange(72.0, 33.5, -1.0), np.arange(-12.0, 40.5, 1.0)
    lon2, lat2 = np.meshgrid(lon, lat)
    return lonlat_grid(lat, lon), lon2, lat2


def _field(pattern: np.ndarray) -> xr.DataArray:
    """``pattern`` on every step and level: each level and step shifted so each looks apart."""
    levels = np.array(LEVELS_HPA)
    shift = (1000.0 - levels)[None, :] / 10.0 + np.array(STEP_HOURS)[:, None] / 2.0
    values = pattern[None, None] + shift[..., None, None]
    steps = (np.array(STEP_HOURS) * 3600).astype("timedelta64[s]").astype("timedelta64[ns]")
    level = xr.DataArray(levels, dims=LEVEL_DIM, attrs={"axis": "Z", "units": "hPa"})
    return xr.DataArray(values.astype("float32"),
                        dims=("step", LEVEL_DIM, "latitude", "longitude"),
                        coords={"step": steps, LEVEL_DIM: level}, attrs={"units": "K"})


def levels_store(path: Path) -> Path:
    """Variable ``t`` on three pressure levels; its runs differ in pattern, not only offset.

    Colour ranges are per run, so a run that only added a constant would look the same:
    the first run's values grow northward, the second's eastward.
    """
    grid, lon, lat = _grid()
    for hours, pattern in zip(RUN_HOURS, (250.0 + lat, 260.0 + lon), strict=True):
        reference = T0 + np.timedelta64(hours, "h")
        run = RunData(reference, {VARIABLE: (_field(pattern),)}, grid,
                      (SourceFile("synthetic", "0" * 64, 0),), "synthetic")
        append_run(path, run, progress=False)
    return path
