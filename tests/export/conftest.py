"""A service over stores with known grids: demo stores, Lambert, wide, global and Gaussian."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pyproj
import pytest
import xarray as xr

from fewsmap.ingest.grids import grid_attrs
from fewsmap.store.run import Grid, RunData, SourceFile
from fewsmap.store.writer import append_run
from tests.live_server import live_server
from tests.synthetic import T0, lambert_store, lonlat_store

STEPS = np.array([0, 6 * 3600], "timedelta64[s]").astype("timedelta64[ns]")


def lonlat_field_store(path: Path, lat: np.ndarray, lon: np.ndarray) -> Path:
    """One run of ``v`` on a lon/lat grid: a smooth field with a NaN hole, +1 at 6 h."""
    grid = Grid(("latitude", "longitude"),
                {"latitude": xr.DataArray(lat, dims="latitude"),
                 "longitude": xr.DataArray(lon, dims="longitude")},
                grid_attrs(pyproj.CRS.from_epsg(4326)))
    lon2, lat2 = np.meshgrid(lon, lat)
    field = (np.sin(np.radians(lon2)) * 10 + lat2 / 7).astype("float32")
    field[: lat.size // 4, : lon.size // 5] = np.nan
    values = xr.DataArray(np.stack([field, field + 1]), dims=("step", *grid.dims),
                          coords={"step": STEPS}, attrs={"units": "K", "long_name": "test"})
    run = RunData(T0, {"v": (values,)}, grid, (SourceFile("synthetic", "0" * 64, 0),),
                  "synthetic")
    append_run(path, run, progress=False)
    return path


def curvilinear_store(path: Path) -> Path:
    """A grid given only by 2-D latitude/longitude (sheared); ``v`` = its longitude."""
    rows, cols = np.meshgrid(np.arange(20.0), np.arange(30.0), indexing="ij")
    lat, lon = 40.0 + rows * 0.5, 0.0 + cols * 0.5 + rows * 0.2
    grid = Grid(("y", "x"), {"latitude": xr.DataArray(lat, dims=("y", "x")),
                             "longitude": xr.DataArray(lon, dims=("y", "x"))},
                grid_attrs(pyproj.CRS.from_epsg(4326)))
    values = xr.DataArray(np.stack([lon, lon]).astype("float32"), dims=("step", "y", "x"),
                          coords={"step": STEPS}, attrs={"units": "degrees_east"})
    run = RunData(T0, {"v": (values,)}, grid, (SourceFile("synthetic", "0" * 64, 0),),
                  "synthetic")
    append_run(path, run, progress=False)
    return path


@pytest.fixture(scope="package")
def export_stores(demo_stores: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("export") / "stores"
    folder.mkdir()
    for name in ("naefs-mean", "marfc-fmat", "ecmwf-ens-gust"):
        (folder / f"{name}.zarr").symlink_to(demo_stores / f"{name}.zarr")
    lambert_store(folder / "lambert.zarr")
    lonlat_store(folder / "grid.zarr")
    # 600 × 800 cells: larger than a COG tile, so the export carries overviews
    lonlat_field_store(folder / "wide.zarr", np.arange(70.0, 40.0, -0.05)[:600],
                       np.arange(-10.0, 30.0, 0.05)[:800])
    # a global 0..358 grid: a bbox across Greenwich wraps the longitude axis
    lonlat_field_store(folder / "global.zarr", np.arange(88.0, -89.0, -2.0),
                       np.arange(0.0, 360.0, 2.0))
    # unevenly spaced latitudes, like a Gaussian grid: no affine transform
    lonlat_field_store(folder / "gaussian.zarr", np.array([60.0, 57.1, 54.3, 51.2, 48.4]),
                       np.arange(0.0, 10.0, 1.0))
    curvilinear_store(folder / "curvi.zarr")
    return folder


@pytest.fixture(scope="package")
def export_url(export_stores: Path) -> Iterator[str]:
    with live_server("--stores", str(export_stores)) as url:
        yield url


def get_map(url: str, layer: str, bbox: str, image_format: str, crs: str = "CRS:84",
            **extra: str) -> httpx.Response:
    """GetMap 1.3.0 (CRS:84 bboxes are lon/lat) asking for an export format."""
    params = {"service": "WMS", "version": "1.3.0", "request": "GetMap", "layers": layer,
              "crs": crs, "bbox": bbox, "width": "256", "height": "256",
              "format": image_format, **extra}
    return httpx.get(f"{url}/wms", params=params, timeout=60)


# How WMS clients write one lon/lat box: the version, its CRS parameter and axis order.
BBOX_FORMS = ("1.3.0 CRS:84", "1.3.0 EPSG:4326", "1.3.0 EPSG:3857", "1.1.1 EPSG:4326")


def bbox_query(form: str, west: float, south: float, east: float,
               north: float) -> dict[str, str]:
    """VERSION, CRS or SRS and BBOX of a lon/lat box as a client of ``form`` sends it: WMS
    1.3.0 EPSG:4326 is latitude first, 1.1.1 longitude first, EPSG:3857 in metres."""
    version, crs = form.split()
    corners = (west, south, east, north)
    if crs == "EPSG:3857":
        to_3857 = pyproj.Transformer.from_crs(4326, 3857, always_xy=True)
        corners = to_3857.transform_bounds(*corners)
    elif version == "1.3.0" and crs == "EPSG:4326":
        corners = (south, west, north, east)
    return {"version": version, "crs" if version == "1.3.0" else "srs": crs,
            "bbox": ",".join(repr(float(v)) for v in corners)}


def get_export(url: str, layer: str, form: str, lonlat_box: tuple[float, float, float, float],
               image_format: str, **extra: str) -> httpx.Response:
    """GetMap asking for an export of a lon/lat box written in a client's ``form``."""
    params = {"service": "WMS", "request": "GetMap", "layers": layer, "styles": "",
              "width": "256", "height": "256", "format": image_format,
              **bbox_query(form, *lonlat_box), **extra}
    return httpx.get(f"{url}/wms", params=params, timeout=60)
