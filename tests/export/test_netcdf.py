"""CF NetCDF exports: GetMap FORMAT=application/x-netcdf and /api/timeseries format=netcdf."""

from __future__ import annotations

from pathlib import Path

import httpx
import numpy as np
import pyproj
import pytest
import xarray as xr

from fewsmap.store.cube import ForecastStore
from fewsmap.store.layout import GRID_MAPPING
from fewsmap.time.instants import format_time
from tests.export.conftest import BBOX_FORMS, get_export, get_map
from tests.export.test_geotiff import cube_window
from tests.synthetic import T0

NETCDF = "application/x-netcdf"


def open_netcdf(content: bytes, folder: Path) -> xr.Dataset:
    path = folder / "export.nc"
    path.write_bytes(content)
    return xr.load_dataset(path)


def grid_mapping_crs(ds: xr.Dataset, variable: str) -> pyproj.CRS:
    """The CRS a CF reader finds through the variable's ``grid_mapping``."""
    name = ds[variable].encoding.get("grid_mapping") or ds[variable].attrs["grid_mapping"]
    return pyproj.CRS.from_cf(ds[name].attrs)


# The lon/lat grid in every bbox form is test_geotiff's; here the projected one.
@pytest.mark.parametrize(("store", "layer", "run", "valid", "lonlat_box", "shape", "form"), [
    ("naefs-mean", "QPF", "2022-08-09T00:00:00", "2022-08-09T12:00:00", (-100, 30, -90, 40),
     (21, 21), "1.3.0 CRS:84"),
    *(("marfc-fmat", "t", "2022-06-01T12:00:00", "2022-06-02T00:00:00", (-80, 38, -74, 42),
       (151, 157), form) for form in BBOX_FORMS),
])
def test_a_slice_as_cf_netcdf(export_url: str, export_stores: Path, tmp_path: Path, store: str,
                              layer: str, run: str, valid: str,
                              lonlat_box: tuple[float, float, float, float],
                              shape: tuple[int, int], form: str) -> None:
    t0, when = np.datetime64(run, "s"), np.datetime64(valid, "s")
    response = get_export(export_url, f"{store}.{layer}", form, lonlat_box, NETCDF,
                          externalForecastTime=format_time(t0), time=format_time(when))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == NETCDF
    assert response.headers["content-disposition"].endswith('.nc"')
    ds = open_netcdf(response.content, tmp_path)
    assert ds.attrs["Conventions"].startswith("CF-")
    values = ds[layer]
    assert values.dtype == np.float32
    assert values.shape == shape  # the native cells the box touches, whatever its form
    y_dim, x_dim = values.dims
    expected = cube_window(export_stores / f"{store}.zarr", layer, t0, when,
                           ds[x_dim].values, ds[y_dim].values)
    np.testing.assert_array_equal(values.values, expected)
    assert ds["time"].values == when and ds["forecast_reference_time"].values == t0
    native = ForecastStore(export_stores / f"{store}.zarr")
    store_crs = pyproj.CRS.from_wkt(native.attributes(GRID_MAPPING)["crs_wkt"])
    assert grid_mapping_crs(ds, layer).equals(store_crs)
    assert ds[x_dim].attrs["standard_name"] == native.attributes(x_dim)["standard_name"]
    assert values.attrs["units"] == native.attributes(layer)["units"]


def test_an_uneven_grid_exports_as_netcdf(export_url: str, export_stores: Path,
                                          tmp_path: Path) -> None:
    when = T0 + np.timedelta64(6, "h")
    response = get_map(export_url, "gaussian.v", "0,45,10,60", NETCDF, time=format_time(when))
    assert response.status_code == 200, response.text
    ds = open_netcdf(response.content, tmp_path)
    np.testing.assert_array_equal(ds.latitude.values, [60.0, 57.1, 54.3, 51.2, 48.4])
    np.testing.assert_array_equal(ds.v.values, cube_window(
        export_stores / "gaussian.zarr", "v", T0, when, ds.longitude.values,
        ds.latitude.values))


def as_float32(values: list[float | None]) -> np.ndarray:
    """JSON numbers (shortest float32 text, null = missing) back to float32."""
    return np.array([np.nan if v is None else v for v in values], dtype=np.float32)


def test_a_curvilinear_grid_exports_its_2d_coordinates(export_url: str, export_stores: Path,
                                                       tmp_path: Path) -> None:
    when = format_time(T0 + np.timedelta64(6, "h"))
    response = get_map(export_url, "curvi.v", "3,42,6,45", NETCDF, time=when)
    assert response.status_code == 200, response.text
    ds = open_netcdf(response.content, tmp_path)
    assert ds.longitude.dims == ds.v.dims == ("y", "x")
    inside = ((ds.longitude >= 3) & (ds.longitude <= 6) & (ds.latitude >= 42)
              & (ds.latitude <= 45))
    assert inside.any(dim="x").all() and inside.any(dim="y").all()  # the index box, no more
    np.testing.assert_array_equal(ds.v.values, ds.longitude.values.astype("float32"))
    stored = ForecastStore(export_stores / "curvi.zarr")
    lat, lon = stored.coordinate("latitude"), stored.coordinate("longitude")
    r0, c0 = np.argwhere((lat == ds.latitude.values[0, 0]) & (lon == ds.longitude.values[0, 0]))[0]
    box = (slice(r0, r0 + ds.sizes["y"]), slice(c0, c0 + ds.sizes["x"]))
    np.testing.assert_array_equal(ds.latitude.values, lat[box])  # the store's own cells
    np.testing.assert_array_equal(ds.longitude.values, lon[box])
    tiff = get_map(export_url, "curvi.v", "3,42,6,45", "image/tiff;subtype=float32", time=when)
    assert tiff.status_code == 400 and b"InvalidFormat" in tiff.content


def timeseries(url: str, **params: str) -> httpx.Response:
    return httpx.get(f"{url}/api/timeseries", params=params, timeout=30)


@pytest.mark.parametrize("params", [
    {"layer": "ecmwf-ens-gust.fg10_6", "x": "10", "y": "50", "member": "all"},
    {"layer": "marfc-fmat.t", "x": "-77", "y": "40", "runs": "all"},
    {"layer": "grid.u-v", "x": "5", "y": "45"},
])
def test_point_series_as_cf_timeseries(export_url: str, tmp_path: Path,
                                       params: dict[str, str]) -> None:
    answer = timeseries(export_url, **params)
    response = timeseries(export_url, **params, format="netcdf")
    assert answer.status_code == 200 and response.status_code == 200, response.text
    assert response.headers["content-type"] == NETCDF
    expected = answer.json()
    ds = open_netcdf(response.content, tmp_path)
    assert ds.attrs["featureType"] == "timeSeries"
    assert ds["series_id"].attrs["cf_role"] == "timeseries_id"
    name = "speed" if "components" in expected else expected["variable"]
    assert ds[name].dims == ("series", "obs")
    assert ds.sizes["series"] == len(expected["series"]) > 0
    assert float(ds.longitude[0]) == expected["cell"]["lon"]
    assert float(ds.latitude[0]) == expected["cell"]["lat"]
    for i, series in enumerate(expected["series"]):
        count = len(series["times"])
        times = [format_time(t) for t in ds["time"].values[i, :count]]
        assert times == series["times"]
        assert format_time(ds["forecast_reference_time"].values[i]) == series["reference_time"]
        np.testing.assert_array_equal(ds[name].values[i, :count], as_float32(series["values"]))
        assert np.isnan(ds[name].values[i, count:]).all()  # padding is missing, not zero
        if "member" in series:
            assert float(ds["member"].values[i]) == series["member"]
        for component, values in series.get("components", {}).items():
            np.testing.assert_array_equal(ds[component].values[i, :count], as_float32(values))


def test_timeseries_offers_netcdf_in_openapi(export_url: str) -> None:
    document = httpx.get(f"{export_url}/api/openapi.json", timeout=10).json()
    parameter = next(p for p in document["paths"]["/api/timeseries"]["get"]["parameters"]
                     if p["name"] == "format")
    assert "netcdf" in parameter["schema"]["enum"]
    bad = timeseries(export_url, layer="marfc-fmat.t", x="-77", y="40", format="grib")
    assert bad.status_code == 400 and "netcdf" in bad.json()["error"]["message"]
