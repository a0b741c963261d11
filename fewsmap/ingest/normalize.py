"""Turn one opened input dataset into run pieces: (reference time, fields, grid).

A field ends up with dimensions ``(step, [realization], [levels...], y, x)``. The reference
time comes from the file when it has one (CF ``forecast_reference_time``, cfgrib ``time``,
wgrib2's ``reference_time``), else from ``--reference-time``, else from the path; every
choice is recorded as ``reference_time_from`` so a user can check it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from fewsmap.errors import IngestError
from fewsmap.ingest.gfe import gfe_as_cf, is_gfe
from fewsmap.ingest.grids import normalise_grid
from fewsmap.store.layout import MEMBER_DIM, STEP_DIM
from fewsmap.store.run import Grid
from fewsmap.time.instants import as_seconds, format_time

# Units strings seen in real files that are not UDUNITS, and their UDUNITS spelling.
UNIT_ALIASES = {
    "mm": "mm", "degc": "degC", "deg c": "degC", "celsius": "degC", "percent": "%",
    "m s**-1": "m s-1", "m/s": "m s-1", "kg m**-2": "kg m-2", "m**2 s**-2": "m2 s-2",
    "w/m^2": "W m-2", "w m**-2": "W m-2", "in": "in",
}
LEVEL_STANDARD_NAMES = {"air_pressure", "height", "depth", "altitude", "model_level_number",
                        "atmosphere_hybrid_sigma_pressure_coordinate"}
# Ensemble files named per member, as NCEP's GEFS: gec00/c00 control, gep01/p01 perturbed,
# geavg/avg mean and gespr/spr spread (statistics become their own variables).
MEMBER_TOKEN = re.compile(r"(?:^|[_.\-])(?:ge)?([cp])(\d{2})(?=[_.\-]|$)")
STATISTIC_TOKEN = re.compile(r"(?:^|[_.\-])(?:ge)?(avg|mean|spr|sprd)(?=[_.\-]|$)")
STATISTICS = {"avg": ("ens_mean", "realization: mean"), "mean": ("ens_mean", "realization: mean"),
              "spr": ("ens_spread", "realization: standard_deviation"),
              "sprd": ("ens_spread", "realization: standard_deviation")}
RUN_IN_PATH = re.compile(r"(?<!\d)(\d{4})(\d{2})(\d{2})(\d{2})(?!\d)")
DATE_IN_PATH = re.compile(r"(?<!\d)(\d{4})(\d{2})(\d{2})(?!\d)")


@dataclass(frozen=True, eq=False)
class RunPiece:
    """The part of one run that one input dataset holds."""

    reference_time: np.datetime64
    reference_time_from: str
    fields: dict[str, xr.DataArray]
    grid: Grid
    attrs: dict[str, Any]
    source: Path


def normalise(
    ds: xr.Dataset, path: Path, reference_time: np.datetime64 | None = None
) -> list[RunPiece]:
    """Split ``ds`` into one piece per forecast run it holds.

    Raises
    ------
    IngestError
        If the dataset has no forecast variable, no time axis, or no usable grid.
    """
    if is_gfe(ds):  # NWS GFE exports keep their times and run in attributes
        ds = gfe_as_cf(ds, path)
    variables = _forecast_variables(ds)
    if not variables:
        raise IngestError(f"{path}: no gridded variable with a time axis found")
    runs = _split_runs(ds, variables, path, reference_time)
    pieces = []
    for t0, origin, run_ds in runs:
        # The grid-mapping variables go along: they hold the CRS of a projected grid.
        selected = run_ds[[*variables, *_grid_mappings(run_ds, variables)]]
        run_ds, grid = normalise_grid(selected, variables, path)
        fields = {}
        for name in variables:
            field_name, field = _normalise_field(run_ds, name, t0, grid, path)
            fields[field_name] = field
        pieces.append(RunPiece(t0, origin, fields, grid, dict(ds.attrs), path))
    return pieces


def _forecast_variables(ds: xr.Dataset) -> list[str]:
    """Numeric variables with a time axis (valid time or lead time) and a 2-D field."""
    names = []
    for name, var in ds.data_vars.items():
        if var.dtype.kind not in "fiu" or var.ndim < 2:
            continue
        # GRIB reduced/unstructured grids have one point dimension, others two.
        spatial = 1 if var.dims[-1] == "values" else 2
        time_dim = any(
            np.issubdtype(ds[d].dtype, np.datetime64) for d in var.dims if d in ds.coords
        )
        if (STEP_DIM in var.coords and var.ndim >= spatial) or \
                (time_dim and var.ndim >= spatial + 1):
            names.append(str(name))
    return names


def _grid_mappings(ds: xr.Dataset, variables: list[str]) -> list[str]:
    """Names of the CF grid-mapping variables that ``variables`` refer to."""
    names = {ds[name].attrs.get("grid_mapping") or ds[name].encoding.get("grid_mapping")
             for name in variables}
    return sorted(str(n) for n in names if n in ds.data_vars and n not in variables)


def _split_runs(
    ds: xr.Dataset, variables: list[str], path: Path, override: np.datetime64 | None
) -> list[tuple[np.datetime64, str, xr.Dataset]]:
    """Find the reference time(s) of ``ds``; a dataset with a run dimension is split."""
    ref = _reference_coordinate(ds)
    if ref is not None and ref.ndim == 1 and ref.size > 1:
        if ref.dims[0] not in ds[variables[0]].dims:
            raise IngestError(f"{path}: {ref.size} reference times but no run dimension")
        return [(_checked(ds[ref.name].values[i], override, path), "file",
                 ds.isel({ref.dims[0]: i})) for i in range(ref.size)]
    if ref is not None:
        t0 = _checked(np.asarray(ref.values).reshape(-1)[0], override, path)
        if ref.ndim == 1:
            ds = ds.isel({ref.dims[0]: 0}) if ref.dims[0] in ds[variables[0]].dims else ds
        return [(t0, "file", ds)]
    wgrib2 = _wgrib2_reference_time(ds)
    if wgrib2 is not None:
        return [(_checked(wgrib2, override, path), "file (wgrib2 reference_time)", ds)]
    if override is not None:
        return [(as_seconds(override), "--reference-time", ds)]
    return [(*_reference_time_from_path(ds, path), ds)]


def _reference_coordinate(ds: xr.Dataset) -> xr.DataArray | None:
    for name, var in ds.variables.items():
        if var.attrs.get("standard_name") == "forecast_reference_time" and \
                np.issubdtype(var.dtype, np.datetime64):
            return ds[name]
    return None


def _wgrib2_reference_time(ds: xr.Dataset) -> np.datetime64 | None:
    for name in ds.coords:
        seconds = ds[name].attrs.get("reference_time")
        if seconds is not None and np.issubdtype(ds[name].dtype, np.datetime64):
            return np.datetime64(int(seconds), "s")
    return None


def _checked(value: Any, override: np.datetime64 | None, path: Path) -> np.datetime64:
    t0 = as_seconds(value)
    if override is not None and as_seconds(override) != t0:
        raise IngestError(
            f"{path}: the file's reference time {format_time(t0)} differs from "
            f"--reference-time {format_time(override)}"
        )
    return t0


def _reference_time_from_path(ds: xr.Dataset, path: Path) -> tuple[np.datetime64, str]:
    """Take the run from a ``YYYYMMDDHH`` in the path, or a date matching the first step."""
    for part in reversed(path.parts):
        match = RUN_IN_PATH.search(part)
        if match:
            y, m, d, h = match.groups()
            return np.datetime64(f"{y}-{m}-{d}T{h}:00:00", "s"), f"path ('{part}')"
    first = _valid_times(ds).min()
    match = DATE_IN_PATH.search(path.name)
    if match and str(first)[:10] == "-".join(match.groups()):
        return first, f"first valid time (date {match.group(0)} in the file name)"
    raise IngestError(
        f"{path}: no forecast reference time in the file or its path; "
        "pass --reference-time YYYY-MM-DDTHH:MM:SSZ"
    )


def _valid_times(ds: xr.Dataset) -> np.ndarray:
    for name in ds.coords:
        if np.issubdtype(ds[name].dtype, np.datetime64) and ds[name].ndim == 1:
            return np.asarray(ds[name].values).astype("datetime64[s]")
    raise IngestError("no valid-time coordinate")


def _normalise_field(
    ds: xr.Dataset, name: str, t0: np.datetime64, grid: Grid, path: Path
) -> tuple[str, xr.DataArray]:
    var = ds[name]
    var = _with_step_dim(var, t0, path)
    var, name = _with_members(var, name, path)
    for level in _single_levels(var):  # keep it: the level is part of what the field is
        var = var.expand_dims(level)
    extra = [str(d) for d in var.dims if d not in (STEP_DIM, MEMBER_DIM, *grid.dims)]
    for dim in extra:
        if dim not in var.coords:
            var = var.assign_coords({dim: np.arange(var.sizes[dim])})
        var[dim].attrs.setdefault("axis", "Z") if _is_level(var[dim]) else None
    members = [MEMBER_DIM] if MEMBER_DIM in var.dims else []
    var = var.transpose(STEP_DIM, *members, *extra, *grid.dims)
    keep = {STEP_DIM, *members, *extra}
    var = var.drop_vars([c for c in var.coords if c not in keep])
    var.attrs = _clean_attrs(var.attrs)
    return name, var


def _with_step_dim(var: xr.DataArray, t0: np.datetime64, path: Path) -> xr.DataArray:
    """Index ``var`` by lead time ``step`` (timedelta64), whatever its time axis was."""
    if STEP_DIM in var.dims:
        return var
    if STEP_DIM in var.coords:  # cfgrib, one step per message: make it a dimension
        return var.expand_dims(STEP_DIM)
    for dim in var.dims:
        if dim in var.coords and np.issubdtype(var[dim].dtype, np.datetime64):
            steps = np.asarray(var[dim].values).astype("datetime64[s]") - t0
            return var.rename({dim: STEP_DIM}).assign_coords(
                {STEP_DIM: (STEP_DIM, steps.astype("timedelta64[ns]"))}
            )
    raise IngestError(f"{path}: variable '{var.name}' has no time axis")


def _with_members(var: xr.DataArray, name: str, path: Path) -> tuple[xr.DataArray, str]:
    """Give ensemble fields a ``realization`` dimension; name ensemble statistics."""
    for coord in ("number", MEMBER_DIM):
        if coord in var.dims:
            return var.rename({coord: MEMBER_DIM}) if coord != MEMBER_DIM else var, name
    statistic = STATISTIC_TOKEN.search(path.stem)
    if statistic:
        suffix, method = STATISTICS[statistic.group(1)]
        var = var.assign_attrs(cell_methods=method)
        return var, f"{name}_{suffix}"
    member = MEMBER_TOKEN.search(path.stem)
    if member:
        return var.expand_dims({MEMBER_DIM: [int(member.group(2))]}), name
    number = var.coords.get("number")
    is_ensemble = var.attrs.get("GRIB_dataType") in ("pf", "cf") or \
        int(var.attrs.get("GRIB_totalNumber", 0) or 0) > 0
    if number is not None and number.ndim == 0 and is_ensemble:
        return var.expand_dims({MEMBER_DIM: [int(number.values)]}), name
    return var, name


def _single_levels(var: xr.DataArray) -> list[str]:
    """Scalar level coordinates of ``var`` worth a length-1 level dimension.

    A GRIB message of geopotential at 850 hPa comes with ``isobaricInhPa = 850`` as a scalar
    coordinate; without it the layer could say neither its level nor take ELEVATION, and
    files of one level each would overwrite each other (issue #13 item 9). Heights above
    ground (2 m temperature, 10 m wind) are left out: the variable's name says them already.
    """
    return [str(name) for name, coord in var.coords.items()
            if coord.ndim == 0 and name not in var.dims and _is_level(coord)
            and coord.attrs.get("standard_name") != "height"
            and not str(name).startswith("heightAbove")
            and np.issubdtype(coord.dtype, np.number)]


def _is_level(coord: xr.DataArray) -> bool:
    return (coord.attrs.get("standard_name") in LEVEL_STANDARD_NAMES
            or "positive" in coord.attrs or coord.attrs.get("axis") == "Z"
            or str(coord.name).startswith(("isobaric", "height", "depth", "hybrid")))


def _clean_attrs(attrs: dict[str, Any]) -> dict[str, Any]:
    """Keep CF attributes (units in UDUNITS spelling) and scalar GRIB provenance keys."""
    out = {k: v for k, v in attrs.items()
           if k not in ("coordinates", "grid_mapping", "_FillValue", "missing_value")
           and not (k.startswith("GRIB_") and not np.isscalar(v))}
    units = out.get("units")
    if isinstance(units, str) and units.lower() in UNIT_ALIASES and \
            UNIT_ALIASES[units.lower()] != units:
        out["units"], out["source_units"] = UNIT_ALIASES[units.lower()], units
    return out
