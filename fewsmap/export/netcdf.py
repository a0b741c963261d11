"""CF NetCDF-4 answers: a native-grid slice with its grid mapping, and point time series
as a CF discrete sampling geometry (featureType timeSeries)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr

from fewsmap import __version__
from fewsmap.export.fields import FieldSlice
from fewsmap.store.layout import GRID_MAPPING, RUN_DIM

CONVENTIONS = "CF-1.10"
# Store attributes that describe the cube's layout, not the exported values.
LAYOUT_ATTRS = ("grid_mapping", "coordinates", "_FillValue", "missing_value")
TIME_ENCODING = {"units": "seconds since 1970-01-01T00:00:00Z", "dtype": "float64",
                 "calendar": "proleptic_gregorian"}


@dataclass(frozen=True, eq=False)
class PointSeries:
    """Values at one point for one run (and one member/level), in valid-time order."""

    reference_time: np.datetime64
    # ("member", 3), ("member", "mean"): an ensemble statistic, ("elevation", 850)
    dimensions: tuple[tuple[str, float | int | str], ...]
    times: np.ndarray  # datetime64[s]
    values: Mapping[str, np.ndarray]  # variable name → float32 values


def field_netcdf(field: FieldSlice) -> bytes:
    """Encode a native-grid slice as CF NetCDF-4: the values untouched, the grid's own
    coordinates and its CF grid mapping (``crs``, with ``crs_wkt``)."""
    store, window = field.store, field.window
    y_dim, x_dim = store.spatial_dims
    dims = (y_dim, x_dim)
    coords: dict[str, Any] = {}
    if window.curvilinear:
        geometry, cells = store.geometry, np.ix_(window.rows, window.cols)
        for name, centres in (("latitude", geometry.lat), ("longitude", geometry.lon)):
            coords[name] = (dims, centres[cells], _cf_attrs(store.attributes(name)))
    else:
        coords[y_dim] = (y_dim, window.y, _cf_attrs(store.attributes(y_dim)))
        coords[x_dim] = (x_dim, window.x, _cf_attrs(store.attributes(x_dim)))
    coords["time"] = ((), field.valid_time, {"standard_name": "time"})
    coords[RUN_DIM] = ((), field.run.reference_time, {"standard_name": RUN_DIM})
    lead = (field.valid_time - field.run.reference_time).astype("timedelta64[s]")
    coords["forecast_period"] = ((), lead.astype("int64"),
                                 {"standard_name": "forecast_period", "units": "seconds"})
    for name, value in field.labels:
        coords[name] = ((), value, _cf_attrs(store.attributes(name)))
    coords[GRID_MAPPING] = ((), np.int32(0), _cf_attrs(store.attributes(GRID_MAPPING)))
    variables = {
        name: (dims, values, {**_cf_attrs(store.attributes(name)), "grid_mapping": GRID_MAPPING,
                              **{f"fewsmap:{key}": value for key, value in field.derived}})
        for name, values in zip(field.variables, field.values, strict=True)}
    dataset = xr.Dataset(variables, coords=coords, attrs=_global_attrs(
        f"fewsmap store {store.name}: run {field.run.label}, one valid time, native grid"))
    encoding: dict[str, dict[str, Any]] = {
        name: {"zlib": True, "complevel": 4, "_FillValue": np.float32(np.nan)}
        for name in field.variables}
    encoding |= {"time": TIME_ENCODING, RUN_DIM: TIME_ENCODING}
    return _to_bytes(dataset, encoding)


def timeseries_netcdf(series: Sequence[PointSeries], lon: float, lat: float,
                      attrs: Mapping[str, Mapping[str, Any]], title: str) -> bytes:
    """Encode point series as CF DSG ``timeSeries`` (incomplete multidimensional array).

    Each (run, member, level) series is one instance along ``series``; ``obs`` runs over its
    valid times, padded with missing values where series differ in length (CF-1.10 §9.3.2).
    ``attrs`` gives each variable's CF attributes (units, long_name …).
    """
    length = max((s.times.size for s in series), default=0)
    names = list(series[0].values) if series else []
    times = np.full((len(series), length), np.datetime64("NaT"), dtype="datetime64[s]")
    values = {name: np.full((len(series), length), np.nan, dtype=np.float32) for name in names}
    for i, item in enumerate(series):
        times[i, : item.times.size] = item.times
        for name in names:
            values[name][i, : item.times.size] = item.values[name]
    instance = "series"
    coords: dict[str, Any] = {
        "time": ((instance, "obs"), times, {"standard_name": "time", "axis": "T"}),
        RUN_DIM: (instance, np.array([s.reference_time for s in series], "datetime64[s]"),
                  {"standard_name": RUN_DIM}),
        "longitude": (instance, np.full(len(series), lon), {
            "standard_name": "longitude", "units": "degrees_east", "axis": "X"}),
        "latitude": (instance, np.full(len(series), lat), {
            "standard_name": "latitude", "units": "degrees_north", "axis": "Y"}),
        "series_id": (instance, np.array([_series_id(s) for s in series], dtype=object),
                      {"cf_role": "timeseries_id"}),
    }
    for name in {name for s in series for name, _ in s.dimensions}:
        labels = [dict(s.dimensions).get(name, np.nan) for s in series]
        strings = any(isinstance(label, str) for label in labels)  # ensemble statistics
        coords[name] = (instance, np.array([str(label) for label in labels], dtype=object)
                        if strings else np.array(labels, dtype="float64"), {})
    # xarray writes each variable's CF ``coordinates`` attribute from these coordinates.
    variables = {name: ((instance, "obs"), data, _cf_attrs(attrs.get(name, {})))
                 for name, data in values.items()}
    dataset = xr.Dataset(variables, coords=coords,
                         attrs={**_global_attrs(title), "featureType": "timeSeries"})
    encoding: dict[str, dict[str, Any]] = {
        name: {"zlib": True, "_FillValue": np.float32(np.nan)} for name in names}
    encoding |= {"time": TIME_ENCODING, RUN_DIM: TIME_ENCODING}
    for name, (_, data, _) in coords.items():
        if name not in encoding and name != "series_id" and data.dtype != object:
            encoding[name] = {"_FillValue": None}
    return _to_bytes(dataset, encoding)


def _series_id(series: PointSeries) -> str:
    run = np.datetime_as_string(series.reference_time, unit="s") + "Z"
    return "/".join([run, *(f"{name}={value}" for name, value in series.dimensions)])


def _cf_attrs(attrs: Mapping[str, Any]) -> dict[str, Any]:
    """Attributes worth carrying into a NetCDF file (no layout keys, no nested values)."""
    out: dict[str, Any] = {}
    for key, value in attrs.items():
        if key in LAYOUT_ATTRS or isinstance(value, dict | bool):
            continue
        if isinstance(value, list) and not all(isinstance(v, int | float) for v in value):
            continue
        out[key] = value
    return out


def _global_attrs(title: str) -> dict[str, str]:
    return {"Conventions": CONVENTIONS, "title": title,
            "source": f"fewsmap {__version__}"}


def _to_bytes(dataset: xr.Dataset, encoding: dict[str, dict[str, Any]]) -> bytes:
    """NetCDF-4 (HDF5) in memory, through netCDF4: compressed, with int64 and strings."""
    return bytes(dataset.to_netcdf(engine="netcdf4", encoding=encoding))
