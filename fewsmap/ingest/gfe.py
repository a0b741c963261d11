"""Read NWS GFE NetCDF exports (AWIPS Graphical Forecast Editor: the RFCs' QPF) as CF.

The layout (``fileFormatVersion`` 20010816) is not CF, so it is translated here before the
generic steps (`fewsmap.ingest.normalize`, `fewsmap.ingest.grids`) see it:

- Each weather element (``QPF_SFC``) has its own time dimension without a coordinate; its
  times are (start, end) pairs of epoch seconds in the ``validTimes`` attribute. A grid holds
  the value over its period (QPF: the precipitation accumulated in those 6 hours), so its
  valid time is the **end** of the period, as for GRIB accumulations (cfgrib's
  ``valid_time``); rate-dependent elements (accumulations) get ``cell_methods: time: sum``.
- The run is the global ``startProcTime`` (``20221201_1200``).
- ``fillValue`` (-30000) marks missing values: NaN. Units stay as written (``in``).
- The grid: 2-D ``latitude``/``longitude`` variables, plus ``projectionType`` and
  ``lonOrigin`` on each element. POLAR_STEREOGRAPHIC is AWIPS's polar stereographic true at
  60°N on a sphere of radius 6,371,200 m (the HRAP's definition; its cells are 4,762.5 m).
  The grid mapping goes along, and `fewsmap.ingest.grids` keeps the grid projected only if
  regular x/y axes reproduce the file's latitudes/longitudes; other projection types (or a
  mismatch) stay curvilinear on the file's own 2-D latitude/longitude.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyproj
import xarray as xr

from fewsmap.errors import IngestError
from fewsmap.ingest.grids import grid_attrs

GRID_MAPPING = "gfe_projection"
# AWIPS map projections: the earth as a sphere of this radius, polar stereographic true at
# 60°N (the HRAP grid of the River Forecast Centers).
AWIPS_EARTH_RADIUS_M = 6_371_200.0
POLAR_STEREOGRAPHIC_TRUE_LATITUDE = 60.0


def is_gfe(ds: xr.Dataset) -> bool:
    """Tell whether ``ds`` is a GFE export: an element with ``validTimes`` and a projection."""
    return any("validTimes" in var.attrs and "projectionType" in var.attrs
               for var in ds.data_vars.values())


def gfe_as_cf(ds: xr.Dataset, path: Path) -> xr.Dataset:
    """Translate a GFE export into a CF dataset: elements on a valid-time axis, the run as
    ``forecast_reference_time``, the grid mapping and 2-D latitude/longitude.

    Raises
    ------
    IngestError
        If ``validTimes`` does not match the element's grids, or ``startProcTime`` is not a
        time.
    """
    names = [str(name) for name, var in ds.data_vars.items()
             if "validTimes" in var.attrs and var.ndim == 3 and var.dtype.kind in "fiu"]
    out = xr.Dataset({name: _element(ds[name], name, path) for name in names},
                     attrs=dict(ds.attrs))  # provenance: creationTime, startProcTime …
    crs = _projection(ds[names[0]].attrs) if names else None
    if crs is not None:
        out[GRID_MAPPING] = xr.DataArray(np.int32(0), attrs=grid_attrs(crs))
        for name in names:
            out[name].attrs["grid_mapping"] = GRID_MAPPING
    for axis in ("latitude", "longitude"):
        if axis in ds and ds[axis].ndim == 2:
            out = out.assign_coords({axis: ds[axis]})
    run = _text(ds.attrs.get("startProcTime"))
    if run:
        out = out.assign_coords(forecast_reference_time=(
            (), _start_proc_time(run, path), {"standard_name": "forecast_reference_time"}))
    return out


def _element(var: xr.DataArray, name: str, path: Path) -> xr.DataArray:
    """One weather element on its valid times (period ends), fill values as NaN."""
    grids = var.shape[0]
    pairs = np.asarray(var.attrs["validTimes"], dtype="int64").reshape(-1)
    if pairs.size != 2 * grids:
        raise IngestError(f"{path}: {name}: validTimes holds {pairs.size} numbers; its "
                          f"{grids} grids need {grids} (start, end) pairs")
    starts, ends = pairs.reshape(grids, 2).T
    if not (ends > starts).all():
        raise IngestError(f"{path}: {name}: validTimes has a period that does not end after "
                          "it starts")
    fill = var.attrs.get("fillValue")
    values = var.where(var != fill) if fill is not None else var
    time_dim = f"{name}_valid_time"
    values.attrs = {}
    attrs = {"units": _text(var.attrs.get("units")) or "1",
             "long_name": _text(var.attrs.get("descriptiveName")) or name,
             "comment": "GFE grid valid over the period ending at its valid time"}
    if int(var.attrs.get("rateDependent", 0)):  # accumulated over the period
        attrs["cell_methods"] = "time: sum"
    times = ends.astype("datetime64[s]").astype("datetime64[ns]")
    return values.rename({var.dims[0]: time_dim}).assign_coords(
        {time_dim: (time_dim, times)}).assign_attrs(attrs)


def _projection(attrs: dict[str, Any]) -> pyproj.CRS | None:
    """The CRS of a GFE projection, for the types whose parameters the file carries."""
    if _text(attrs.get("projectionType")) == "POLAR_STEREOGRAPHIC" and "lonOrigin" in attrs:
        return pyproj.CRS.from_proj4(
            f"+proj=stere +lat_0=90 +lat_ts={POLAR_STEREOGRAPHIC_TRUE_LATITUDE:g} "
            f"+lon_0={float(attrs['lonOrigin']):g} +R={AWIPS_EARTH_RADIUS_M:g} +units=m +no_defs")
    return None  # LAMBERT_CONFORMAL, MERCATOR…: curvilinear on the 2-D latitude/longitude


def _start_proc_time(text: str, path: Path) -> np.datetime64:
    try:
        run = datetime.strptime(text, "%Y%m%d_%H%M")
    except ValueError as exc:
        raise IngestError(f"{path}: startProcTime {text[:40]!r} is not YYYYMMDD_HHMM") from exc
    return np.datetime64(run, "s")


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else "" if value is None else str(value)
