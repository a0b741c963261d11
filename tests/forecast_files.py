"""Small NetCDF forecast files with known values, for ingest under crashes, readers and load.

Every value says where it belongs: ``value = run hour * 1000 + step index * 10 + noise``
with ``noise`` in eighths in [0, 1) seeded by the run, so a reader can tell a run's fields
apart and a checksum can tell a complete run from a partial one.
"""

from __future__ import annotations

import gzip
import io
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
from scipy.io import netcdf_file

T0 = np.datetime64("2026-03-01T00:00:00", "s")
STEP_HOURS = 3


def run_time(index: int, every_hours: int = 6) -> np.datetime64:
    """Reference time of the ``index``-th run of a feed starting at ``T0``."""
    return T0 + np.timedelta64(index * every_hours, "h")


def expected_value(t0: np.datetime64, step_index: int) -> float:
    """The value every cell of step ``step_index`` of run ``t0`` rounds down to."""
    hours = int((t0 - T0) // np.timedelta64(1, "h"))
    return float(hours * 1000 + step_index * 10)


def forecast_file(folder: Path, t0: np.datetime64, *, steps: int = 4,
                  shape: tuple[int, int] = (60, 80), variables: tuple[str, ...] = ("tp",)
                  ) -> Path:
    """Write one run as a CF NetCDF-4 file on a 0.1° lon/lat grid; return its path.

    The grid's south-west corner is 50°N 0°E; ``shape`` is (latitudes, longitudes).
    """
    ny, nx = shape
    lat = 50.0 + 0.1 * np.arange(ny)
    lon = 0.0 + 0.1 * np.arange(nx)
    times = t0 + np.arange(1, steps + 1) * np.timedelta64(STEP_HOURS, "h")
    rng = np.random.default_rng(int(t0.astype("int64")))
    data = {}
    for offset, name in enumerate(variables):
        base = np.array([expected_value(t0, i) for i in range(steps)], "float32")
        # Eighths: different per cell and run, yet compressible like real fields.
        noise = rng.integers(0, 8, (steps, ny, nx)).astype("float32") / np.float32(8)
        values = base[:, None, None] + noise + np.float32(offset * 100_000)
        data[name] = (("time", "latitude", "longitude"), values, {"units": "mm"})
    ds = xr.Dataset(
        data,
        coords={
            "time": ("time", times.astype("datetime64[ns]"), {"standard_name": "time"}),
            "latitude": ("latitude", lat, {"units": "degrees_north",
                                           "standard_name": "latitude"}),
            "longitude": ("longitude", lon, {"units": "degrees_east",
                                             "standard_name": "longitude"}),
            "forecast_reference_time": ((), t0.astype("datetime64[ns]"),
                                        {"standard_name": "forecast_reference_time"}),
        },
    )
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"forecast_{str(t0)[:13].replace('-', '').replace('T', '')}.nc"
    ds.to_netcdf(path)
    return path


def read_gfe(path: Path) -> dict[str, Any]:
    """Read an NWS GFE NetCDF export (gzipped) with scipy alone, as its layout says.

    Returns the global attributes and, per variable, its values and attributes (bytes
    decoded), for tests to compare with what ingest made of the file.
    """
    with gzip.open(path) as packed, netcdf_file(io.BytesIO(packed.read()), mmap=False) as f:
        return {"attrs": {k: _text(v) for k, v in f._attributes.items()},
                "variables": {name: (np.array(var.data), var.dimensions,
                                     {k: _text(v) for k, v in var._attributes.items()})
                              for name, var in f.variables.items()}}


def gfe_copy(source: Path, target: Path, values: dict[str, np.ndarray],
             attrs: dict[str, dict[str, Any]] | None = None, like: str = "QPF_SFC") -> Path:
    """Write a copy of a GFE export, gzipped, with new values and attributes.

    ``values`` replaces a variable's values, or adds a weather element with the dimensions
    and attributes of ``like``; ``attrs`` updates a variable's attributes (``""``: global).
    """
    gfe = read_gfe(source)
    variables = dict(gfe["variables"])
    for name, data in values.items():
        _, dims, var_attrs = variables.get(name, variables[like])
        variables[name] = (data, dims, var_attrs)
    edits = attrs or {}
    buffer = io.BytesIO()
    with netcdf_file(buffer, "w", version=1) as f:
        f._attributes.update({**gfe["attrs"], **edits.get("", {})})
        for name, (data, dims, var_attrs) in variables.items():
            for dim, size in zip(dims, data.shape, strict=True):
                if dim not in f.dimensions:
                    f.createDimension(dim, size)
            var = f.createVariable(name, data.dtype, dims)
            var[...] = data
            var._attributes.update({**var_attrs, **edits.get(name, {})})
        f.flush()
        target.write_bytes(gzip.compress(buffer.getvalue()))
    return target


def _text(value: Any) -> Any:
    return value.decode() if isinstance(value, bytes) else value


def single_level_grib(folder: Path, level: int, short_name: str = "z") -> Path:
    """Copy the GRIB messages of ``short_name`` at ``level`` hPa from the shared
    multi_param sample (IFS, 4 steps, 1000/850/500/300 hPa) into their own file.

    cfgrib then reads the field with ``isobaricInhPa`` as a scalar coordinate, as an
    operational feed of one file per level and parameter gives it (issue #13 item 9).
    """
    import eccodes  # only this helper needs ecCodes' Python bindings

    from tests.conftest import sample_paths

    [source] = sample_paths("multi_param")
    target = folder / f"{short_name}{level}.grib"
    with source.open("rb") as messages, target.open("wb") as out:
        while (handle := eccodes.codes_grib_new_from_file(messages)) is not None:
            try:
                if (eccodes.codes_get(handle, "shortName") == short_name
                        and eccodes.codes_get(handle, "level") == level):
                    out.write(eccodes.codes_get_message(handle))
            finally:
                eccodes.codes_release(handle)
    return target
