"""Find the horizontal grid of an input dataset and put it in the cube's canonical form.

Canonical forms: regular lon/lat with dims ``(latitude, longitude)``; projected with dims
``(y, x)`` and 1-D metre coordinates; curvilinear with dims ``(y, x)`` and 2-D
``latitude``/``longitude``. Every grid carries a CF grid mapping with ``crs_wkt``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyproj
import xarray as xr

from fewsmap.errors import IngestError
from fewsmap.store.axes import on_regular_axis
from fewsmap.store.run import Grid

LONLAT = ("latitude", "longitude")
PROJECTED = ("y", "x")
WGS84 = pyproj.CRS.from_epsg(4326)
AXIS_ATTRS = {
    "latitude": {"standard_name": "latitude", "units": "degrees_north", "axis": "Y"},
    "longitude": {"standard_name": "longitude", "units": "degrees_east", "axis": "X"},
    "y": {"standard_name": "projection_y_coordinate", "units": "m", "axis": "Y"},
    "x": {"standard_name": "projection_x_coordinate", "units": "m", "axis": "X"},
}

# The 1-D axes of a CF rotated-pole grid (stored on y/x like a projected grid's).
ROTATED_AXIS_ATTRS = {
    "y": {"standard_name": "grid_latitude", "units": "degrees", "axis": "Y"},
    "x": {"standard_name": "grid_longitude", "units": "degrees", "axis": "X"},
}


def grid_attrs(crs: pyproj.CRS) -> dict[str, Any]:
    """CF grid-mapping attributes of ``crs``, always with ``crs_wkt``."""
    return {**crs.to_cf(), "crs_wkt": crs.to_wkt()}


def normalise_grid(ds: xr.Dataset, variables: list[str], path: Path) -> tuple[xr.Dataset, Grid]:
    """Return ``ds`` with its spatial dimensions renamed to canonical ones, and its grid.

    Raises
    ------
    IngestError
        If no supported horizontal grid is found; the message names the grid type.
    """
    grib_type = _grib_grid_type(ds, variables)
    if grib_type is not None:
        return _grib_grid(ds, variables, grib_type, path)
    return _cf_grid(ds, variables, path)


def _grib_grid_type(ds: xr.Dataset, variables: list[str]) -> str | None:
    for name in variables:
        if "GRIB_gridType" in ds[name].attrs:
            return str(ds[name].attrs["GRIB_gridType"])
    return None


def _grib_grid(
    ds: xr.Dataset, variables: list[str], grid_type: str, path: Path
) -> tuple[xr.Dataset, Grid]:
    attrs = ds[variables[0]].attrs
    if grid_type in ("regular_ll", "regular_gg"):
        return _lonlat(ds, "latitude", "longitude", WGS84)
    if grid_type == "reduced_gg":
        return _regular_from_reduced_gaussian(ds, variables, path)
    if "GRIB_projString" in attrs and "x" in ds.dims and "y" in ds.dims:
        projected = _grib_projected(ds, attrs, path)
        if projected is not None:
            return projected
    if ds.get("latitude") is not None and ds["latitude"].ndim == 2:
        return _curvilinear(ds, "latitude", "longitude")
    raise IngestError(f"{path}: GRIB grid type '{grid_type}' is not supported")


def _grib_projected(
    ds: xr.Dataset, attrs: dict[str, Any], path: Path
) -> tuple[xr.Dataset, Grid] | None:
    """Rebuild the 1-D projected axes of a GRIB grid from its first point and spacing."""
    crs = pyproj.CRS.from_proj4(str(attrs["GRIB_projString"]))
    to_xy = pyproj.Transformer.from_crs(crs.geodetic_crs, crs, always_xy=True)
    x0, y0 = to_xy.transform(
        attrs["GRIB_longitudeOfFirstGridPointInDegrees"],
        attrs["GRIB_latitudeOfFirstGridPointInDegrees"],
    )
    dx = float(attrs["GRIB_DxInMetres"]) * (-1 if attrs.get("GRIB_iScansNegatively") else 1)
    dy = float(attrs["GRIB_DyInMetres"]) * (1 if attrs.get("GRIB_jScansPositively") else -1)
    x = x0 + dx * np.arange(ds.sizes["x"])
    y = y0 + dy * np.arange(ds.sizes["y"])
    # Check against ecCodes' per-point coordinates: a wrong axis must never pass silently.
    # The same tolerance as every "evenly spaced" decision (fewsmap.store.axes); the real
    # HRAP and NDFD files land within 1e-11 of a cell.
    gx, gy = to_xy.transform(ds["longitude"].values, ds["latitude"].values)
    if not _reproduces(gx, gy, x, y, dx, dy):
        return None  # keep the exact 2-D coordinates instead (curvilinear)
    out = ds.drop_vars(["latitude", "longitude"]).assign_coords(
        y=("y", y, AXIS_ATTRS["y"]), x=("x", x, AXIS_ATTRS["x"])
    )
    return out, _grid(out, PROJECTED, crs)


def _fitted_projected(
    ds: xr.Dataset, lat_name: str, lon_name: str, crs: pyproj.CRS
) -> tuple[xr.Dataset, Grid] | None:
    """Regular x/y axes of a grid known by its 2-D latitude/longitude and a projected CRS.

    The axes are fitted (least squares) to the points taken into ``crs`` and must reproduce
    every point as a GRIB grid must (`_reproduces`); None otherwise, and the
    grid stays curvilinear. NWS GFE exports come this way (`fewsmap.ingest.gfe`).
    """
    lat, lon = ds[lat_name], ds[lon_name]
    to_xy = pyproj.Transformer.from_crs(crs.geodetic_crs, crs, always_xy=True)
    gx, gy = (np.asarray(v) for v in to_xy.transform(lon.values.astype("float64"),
                                                      lat.values.astype("float64")))
    if min(gx.shape) < 2 or not (np.isfinite(gx).all() and np.isfinite(gy).all()):
        return None
    cols, rows = np.arange(gx.shape[1]), np.arange(gx.shape[0])
    dx, x0 = np.polyfit(cols, gx.mean(axis=0), 1)
    dy, y0 = np.polyfit(rows, gy.mean(axis=1), 1)
    x, y = x0 + dx * cols, y0 + dy * rows
    if not _reproduces(gx, gy, x, y, dx, dy):
        return None
    out = ds.drop_vars([lat_name, lon_name]).rename({lat.dims[0]: "y", lat.dims[1]: "x"})
    out = out.assign_coords(y=("y", y, AXIS_ATTRS["y"]), x=("x", x, AXIS_ATTRS["x"]))
    return out, _grid(out, PROJECTED, crs)


def _reproduces(gx: np.ndarray, gy: np.ndarray, x: np.ndarray, y: np.ndarray, dx: float,
                dy: float) -> bool:
    """Tell whether axes ``x``/``y`` (spacing ``dx``/``dy``) land within the tolerance of
    every "evenly spaced" decision (`fewsmap.store.axes`) of every projected point ``gx``/``gy``."""
    return (on_regular_axis(gx, float(x[0]), dx, along=1)
            and on_regular_axis(gy, float(y[0]), dy, along=0))


def _regular_from_reduced_gaussian(
    ds: xr.Dataset, variables: list[str], path: Path
) -> tuple[xr.Dataset, Grid]:
    """Unpack a reduced Gaussian grid to the full Gaussian grid, as ``cdo setgridtype``.

    Each latitude row is interpolated linearly (periodic in longitude) onto the 4N
    longitudes of the full grid; latitudes stay the Gaussian ones.
    """
    attrs = ds[variables[0]].attrs
    points_per_row = np.asarray(attrs.get("GRIB_pl", []), dtype=int)
    n = int(attrs.get("GRIB_N", 0))
    if points_per_row.size == 0 or n == 0 or points_per_row.sum() != ds.sizes["values"]:
        raise IngestError(f"{path}: reduced Gaussian grid without a usable row layout (pl)")
    lat_points = ds["latitude"].values
    lon_points = ds["longitude"].values
    starts = np.concatenate([[0], np.cumsum(points_per_row)[:-1]])
    lats = lat_points[starts]
    lons = np.arange(4 * n) * (360.0 / (4 * n))

    def unpack(values: np.ndarray) -> np.ndarray:
        out = np.empty((*values.shape[:-1], lats.size, lons.size), dtype=values.dtype)
        flat_in = values.reshape(-1, values.shape[-1])
        flat_out = out.reshape(-1, lats.size, lons.size)
        for row, (start, count) in enumerate(zip(starts, points_per_row, strict=True)):
            row_lons = lon_points[start : start + count]
            for k in range(flat_in.shape[0]):
                flat_out[k, row] = np.interp(
                    lons, row_lons, flat_in[k, start : start + count], period=360.0
                )
        return out

    comment = f"unpacked from reduced Gaussian N{n} by linear interpolation along rows"
    new_vars = {}
    for name in variables:
        var = ds[name]
        dims = (*var.dims[:-1], "latitude", "longitude")
        new_vars[name] = xr.DataArray(
            unpack(np.asarray(var.values)), dims=dims,
            coords={d: var[d] for d in var.dims[:-1] if d in var.coords},
            attrs={**var.attrs, "GRIB_gridType": "regular_gg", "comment": comment},
        )
    out = xr.Dataset(new_vars, attrs=ds.attrs)
    for coord_name, coord in ds.coords.items():
        if "values" not in coord.dims:
            out = out.assign_coords({coord_name: coord})
    out = out.assign_coords(
        latitude=("latitude", lats, AXIS_ATTRS["latitude"]),
        longitude=("longitude", lons, AXIS_ATTRS["longitude"]),
    )
    return out, _grid(out, LONLAT, WGS84)


def _cf_grid(ds: xr.Dataset, variables: list[str], path: Path) -> tuple[xr.Dataset, Grid]:
    var = ds[variables[0]]
    crs = _cf_crs(ds, var)
    y_dim, x_dim = (str(d) for d in var.dims[-2:])
    # Only real coordinate variables: xarray answers a bare dimension with 0, 1, 2 … (which
    # would pass for metres on a projected grid).
    y_coord, x_coord = (ds[d] if d in ds.variables else None for d in (y_dim, x_dim))
    if y_coord is not None and x_coord is not None and y_coord.ndim == x_coord.ndim == 1:
        if _is_axis(y_coord, "latitude") and _is_axis(x_coord, "longitude"):
            return _lonlat(ds, y_dim, x_dim, crs or WGS84)
        rotated = crs is not None and _rotated_pole(crs)
        if crs is not None and (crs.is_projected or rotated):
            # A rotated pole's axes are rotated degrees: kept as they are, so tiles find
            # their cells by inverse projection (fewsmap.render.warp), not by placing 2-D
            # latitude/longitude.
            attrs = ROTATED_AXIS_ATTRS if rotated else AXIS_ATTRS
            out = ds.rename({y_dim: "y", x_dim: "x"})
            out = out.assign_coords(
                y=("y", _metres(out["y"]), attrs["y"]), x=("x", _metres(out["x"]), attrs["x"]))
            out = out.drop_vars([c for c in ("latitude", "longitude") if c in out.coords])
            return out, _grid(out, PROJECTED, crs)
    for lat_name, lon_name in (("latitude", "longitude"), ("lat", "lon")):
        lat = ds.get(lat_name)
        if lat is not None and lat.ndim == 2 and lat.dims == var.dims[-2:]:
            projected = _fitted_projected(ds, lat_name, lon_name, crs) if (
                crs is not None and crs.is_projected) else None
            return projected or _curvilinear(ds, lat_name, lon_name)
    raise IngestError(
        f"{path}: no horizontal grid found for '{variables[0]}' (dims {var.dims}): "
        "expected 1-D latitude/longitude, projected x/y with a CF grid_mapping, "
        "or 2-D latitude/longitude"
    )


def _cf_crs(ds: xr.Dataset, var: xr.DataArray) -> pyproj.CRS | None:
    """The CRS from a CF grid_mapping variable, or an ESRI WKT attribute."""
    mapping = var.attrs.get("grid_mapping") or var.encoding.get("grid_mapping")
    if mapping and mapping in ds.variables:
        attrs = ds[mapping].attrs
        wkt = attrs.get("crs_wkt") or attrs.get("spatial_ref")
        return pyproj.CRS.from_wkt(wkt) if wkt else pyproj.CRS.from_cf(dict(attrs))
    if "esri_pe_string" in var.attrs:
        return pyproj.CRS.from_wkt(str(var.attrs["esri_pe_string"]))
    return None


def _rotated_pole(crs: pyproj.CRS) -> bool:
    """Whether ``crs`` is a CF rotated pole (latitude/longitude about a moved pole)."""
    return bool(crs.to_cf().get("grid_mapping_name") == "rotated_latitude_longitude")


def _is_axis(coord: xr.DataArray, kind: str) -> bool:
    units = {"latitude": ("degrees_north", "degree_north", "degrees_n", "degree_n"),
             "longitude": ("degrees_east", "degree_east", "degrees_e", "degree_e")}[kind]
    return (coord.attrs.get("standard_name") == kind
            or str(coord.attrs.get("units", "")).lower() in units)


def _metres(coord: xr.DataArray) -> np.ndarray:
    factor = {"km": 1000.0, "kilometre": 1000.0, "kilometer": 1000.0}.get(
        str(coord.attrs.get("units", "m")).lower(), 1.0)
    return np.asarray(coord.values, dtype="float64") * factor


def _lonlat(
    ds: xr.Dataset, lat_dim: str, lon_dim: str, crs: pyproj.CRS
) -> tuple[xr.Dataset, Grid]:
    out = ds.rename({lat_dim: "latitude", lon_dim: "longitude"}) if lat_dim != "latitude" else ds
    out = out.assign_coords(
        latitude=("latitude", out["latitude"].values.astype("float64"),
                  AXIS_ATTRS["latitude"]),
        longitude=("longitude", out["longitude"].values.astype("float64"),
                   AXIS_ATTRS["longitude"]),
    )
    return out, _grid(out, LONLAT, crs)


def _curvilinear(ds: xr.Dataset, lat_name: str, lon_name: str) -> tuple[xr.Dataset, Grid]:
    lat, lon = ds[lat_name], ds[lon_name]
    out = ds.drop_vars([lat_name, lon_name])
    out = out.rename({lat.dims[0]: "y", lat.dims[1]: "x"})
    out = out.assign_coords(
        latitude=(("y", "x"), lat.values.astype("float64"), AXIS_ATTRS["latitude"]),
        longitude=(("y", "x"), lon.values.astype("float64"), AXIS_ATTRS["longitude"]),
    )
    return out, _grid(out, PROJECTED, WGS84)


def _grid(ds: xr.Dataset, dims: tuple[str, str], crs: pyproj.CRS) -> Grid:
    coords = {str(n): c.variable.to_base_variable() for n, c in ds.coords.items()
              if c.dims and set(c.dims) <= set(dims)}
    return Grid(dims, {n: xr.DataArray(v) for n, v in coords.items()}, grid_attrs(crs))
