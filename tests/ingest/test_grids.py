"""Grids stored as the source defines them: projected axes checked against cfgrib's own
latitudes/longitudes, CF grid mappings kept, reduced Gaussian rows unpacked without changing
the values that exist on the source grid."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyproj
import pytest
import xarray as xr

from fewsmap import ForecastStore, open_cube
from fewsmap.errors import IngestError
from fewsmap.ingest import ingest
from fewsmap.ingest.grids import grid_attrs
from fewsmap.store.axes import is_evenly_spaced
from tests.conftest import assert_values, open_source, sample_paths, seconds
from tests.grid_kinds import POLAR_STEREO, ROTATED, jittered_float32_file
from tests.synthetic import LAMBERT

Sample = Callable[[str], list[Path]]
Ingested = Callable[[str], Path]
RUN = "forecast_reference_time"
# A wrong axis or CRS is off by kilometres; pyproj round trips agree to ~1e-13 degrees.
DEGREES_TOLERANCE = 1e-6


def stored_crs(fs: ForecastStore) -> pyproj.CRS:
    return pyproj.CRS.from_wkt(fs.attributes("crs")["crs_wkt"])


def assert_projected_axes_match(fs: ForecastStore, latitude: xr.DataArray,
                                longitude: xr.DataArray) -> None:
    """The store's 1-D x/y, taken back to lon/lat with its CRS, land on the source's points."""
    assert fs.spatial_dims == ("y", "x")
    assert fs.dims("x") == ("x",) and fs.dims("y") == ("y",)
    assert fs.attributes("x")["units"] == "m"
    crs = stored_crs(fs)
    assert crs.is_projected
    to_lonlat = pyproj.Transformer.from_crs(crs, crs.geodetic_crs, always_xy=True)
    x, y = np.meshgrid(fs.coordinate("x"), fs.coordinate("y"))
    lon, lat = to_lonlat.transform(x, y)
    assert latitude.shape == lat.shape
    np.testing.assert_allclose(lat, latitude.values, rtol=0, atol=DEGREES_TOLERANCE)
    lon_error = (lon - longitude.values + 180.0) % 360.0 - 180.0  # cfgrib gives 0..360
    np.testing.assert_allclose(lon_error, 0.0, rtol=0, atol=DEGREES_TOLERANCE)


def test_fmat_four_files_are_four_runs_on_polar_stereographic(
    ingested: Ingested, sample: Sample
) -> None:
    paths = sample("fmat")
    store = ingested("fmat")
    fs = ForecastStore(store)

    assert [r.label for r in fs.runs] == [
        f"2022-06-01T{hour}:00:00Z" for hour in ("00", "06", "12", "18")]
    crs = stored_crs(fs)
    assert crs.to_cf()["grid_mapping_name"] == "polar_stereographic"
    assert fs.attributes("crs")["grid_mapping_name"] == "polar_stereographic"
    assert fs.attributes("t")["grid_mapping"] == "crs"
    assert "latitude" not in fs.group and "longitude" not in fs.group

    ds = open_cube(store)
    assert ds.t.dims == (RUN, "step", "y", "x")
    np.testing.assert_array_equal(ds.step.values, [np.timedelta64(12, "h")])
    for run, path in zip(fs.runs, paths, strict=True):
        src = open_source(path)
        assert run.record["sources"][0]["path"] == str(path.resolve())
        np.testing.assert_array_equal(run.valid_times, [seconds(src.valid_time.values)])
        assert_values(fs.read_slice("t", run, run.valid_times[0]), src.t.values)
        assert_values(ds.t.sel({RUN: run.reference_time}).isel(step=0).values, src.t.values)
        assert_projected_axes_match(fs, src.latitude, src.longitude)


def test_maxt_lambert_grib2_with_wmo_header(ingested: Ingested, sample: Sample) -> None:
    [path] = sample("maxt")
    assert not path.read_bytes().startswith(b"GRIB")  # the WMO bulletin header comes first
    src = open_source(path)
    store = ingested("maxt")
    fs = ForecastStore(store)

    [run] = fs.runs
    assert run.label == "2011-09-29T22:00:00Z"
    np.testing.assert_array_equal(run.valid_times, seconds(src.valid_time))
    assert stored_crs(fs).to_cf()["grid_mapping_name"] == "lambert_conformal_conic"
    assert fs.attributes("tmax")["units"] == "K"
    assert_projected_axes_match(fs, src.latitude, src.longitude)

    assert np.isnan(src.tmax.values).any()  # outside CONUS: missing in the source too
    for index, vt in enumerate(run.valid_times):
        assert_values(fs.read_slice("tmax", run, vt), src.tmax.isel(step=index).values)
    ds = open_cube(store)
    assert_values(ds.tmax.isel({RUN: 0}).values, src.tmax.values)


def test_arome_keeps_its_cf_lambert_grid_mapping(ingested: Ingested, sample: Sample) -> None:
    [path] = sample("arome")
    src = open_source(path)
    store = ingested("arome")
    fs = ForecastStore(store)

    # No reference time in the file; the date in its name matches the first valid time.
    [run] = fs.runs
    assert run.label == "2016-01-14T00:00:00Z"
    assert "first valid time" in run.record["reference_time_from"]
    assert "20160114" in run.record["reference_time_from"]
    np.testing.assert_array_equal(run.valid_times, seconds(src.time))

    cf = stored_crs(fs).to_cf()
    assert cf["grid_mapping_name"] == "lambert_conformal_conic"
    assert cf["longitude_of_central_meridian"] == 15.0
    assert cf["latitude_of_projection_origin"] == 63.0
    np.testing.assert_array_equal(fs.coordinate("x"), src.x.values.astype("float64"))
    np.testing.assert_array_equal(fs.coordinate("y"), src.y.values.astype("float64"))
    assert_projected_axes_match(fs, src.latitude, src.longitude)

    assert fs.variables == ["x_wind_10m", "y_wind_10m"]
    assert fs.attributes("x_wind_10m")["units"] == "m s-1"
    assert fs.attributes("x_wind_10m")["source_units"] == "m/s"
    ds = open_cube(store)
    for name in fs.variables:
        assert_values(ds[name].isel({RUN: 0}).values, src[name].values)
        assert_values(fs.read_slice(name, run, run.valid_times[1]), src[name].isel(time=1))


@pytest.fixture(scope="module")
def n48(ingested: Ingested) -> tuple[xr.DataArray, xr.Dataset]:
    """The stored field (step, latitude, longitude) at its one level (1000 hPa, kept as a
    level of length 1) and the source as cfgrib reads it."""
    [path] = sample_paths("t_n48")
    stored = open_cube(ingested("t_n48")).t.isel({RUN: 0}).sel(isobaricInhPa=1000)
    return stored.load(), open_source(path)


def rows(latitude: np.ndarray) -> list[slice]:
    """The reduced grid's rows: runs of points with the same latitude."""
    starts = np.flatnonzero(np.r_[True, np.diff(latitude) != 0])
    ends = np.r_[starts[1:], latitude.size]
    return [slice(int(a), int(b)) for a, b in zip(starts, ends, strict=True)]


def test_t_n48_is_unpacked_to_the_full_gaussian_grid(
    n48: tuple[xr.DataArray, xr.Dataset], ingested: Ingested
) -> None:
    stored, src = n48
    lat = src.latitude.values
    [run] = ForecastStore(ingested("t_n48")).runs

    assert run.label == "2019-05-09T12:00:00Z"
    np.testing.assert_array_equal(run.valid_times, seconds(src.valid_time))
    assert stored.dims == ("step", "latitude", "longitude")
    assert stored.shape == (4, 96, 192)
    np.testing.assert_array_equal(stored.latitude.values, [lat[r.start] for r in rows(lat)])
    np.testing.assert_allclose(stored.longitude.values, np.arange(192) * 1.875,
                               rtol=0, atol=1e-12)
    assert stored.attrs["units"] == "K"


def test_t_n48_points_of_the_reduced_grid_keep_their_values(
    n48: tuple[xr.DataArray, xr.Dataset], ingested: Ingested
) -> None:
    stored, src = n48
    lat, lon, values = src.latitude.values, src.longitude.values, src.t.values
    row_slices = rows(lat)
    assert len(row_slices) == 96
    assert len({r.stop - r.start for r in row_slices}) > 10  # really a reduced grid

    # Every row starts at longitude 0, which the full grid has too: no interpolation there.
    firsts = [r.start for r in row_slices]
    assert (lon[firsts] == 0).all()
    assert_values(stored.values[:, :, 0], values[:, firsts])
    fs = ForecastStore(ingested("t_n48"))
    [run] = fs.runs
    assert_values(fs.read_slice("t", run, run.valid_times[2])[:, 0], values[2, firsts])

    # So does every other point whose longitude is a multiple of 360/192.
    compared = 0
    for index, row in enumerate(row_slices):
        k = lon[row] / 1.875
        on_grid = np.abs(k - np.round(k)) < 1e-9
        columns = np.round(k[on_grid]).astype(int)
        assert_values(stored.values[:, index, columns], values[:, row][:, on_grid])
        compared += on_grid.sum()
    assert compared > 7000  # per step, of 13280 points


def test_t_n48_interpolation_stays_within_each_row(
    n48: tuple[xr.DataArray, xr.Dataset],
) -> None:
    stored, src = n48
    for index, row in enumerate(rows(src.latitude.values)):
        source_row = src.t.values[:, row]
        unpacked = stored.values[:, index, :]
        assert (unpacked >= source_row.min(axis=1, keepdims=True)).all()
        assert (unpacked <= source_row.max(axis=1, keepdims=True)).all()


def test_projected_dimensions_without_coordinates_are_not_taken_as_metres(
        tmp_path: Path) -> None:
    # xarray answers a bare dimension with 0, 1, 2 …: once stored as x/y metres, the field
    # sat on a 1 m grid at the projection's origin.
    times = np.array(["2026-01-01T06", "2026-01-01T12"], dtype="datetime64[ns]")
    ds = xr.Dataset(
        {"t": (("time", "y", "x"), np.ones((2, 3, 4), "float32"),
               {"units": "K", "grid_mapping": "crs"}),
         "crs": ((), np.int32(0), grid_attrs(LAMBERT))},
        coords={"time": ("time", times)})
    path = tmp_path / "bare.nc"
    ds.to_netcdf(path)
    with pytest.raises(IngestError, match="no horizontal grid found for 't'"):
        ingest(tmp_path / "s.zarr", [path], reference_time=np.datetime64("2026-01-01T00"),
               progress=False)


def test_2d_latitude_longitude_with_a_projected_grid_mapping_become_x_y_axes(
        tmp_path: Path) -> None:
    # A CF file that locates its cells only by 2-D latitude/longitude and names its
    # projection (as the GFE exports do once read): regular x/y axes are fitted and checked.
    x, y = np.arange(-700_000.0, -600_000.0, 10_000.0), np.arange(-300_000.0, -240_000.0, 10_000.0)
    to_lonlat = pyproj.Transformer.from_crs(LAMBERT, "EPSG:4326", always_xy=True)
    lon, lat = to_lonlat.transform(*np.meshgrid(x, y))
    times = np.array(["2026-01-01T06"], dtype="datetime64[ns]")
    ds = xr.Dataset(
        {"t": (("time", "rows", "cols"), np.ones((1, y.size, x.size), "float32"),
               {"units": "K", "grid_mapping": "crs", "coordinates": "latitude longitude"}),
         "crs": ((), np.int32(0), grid_attrs(LAMBERT))},
        coords={"time": ("time", times), "latitude": (("rows", "cols"), lat),
                "longitude": (("rows", "cols"), lon)})
    ds.to_netcdf(tmp_path / "lambert.nc")
    store = tmp_path / "s.zarr"
    ingest(store, [tmp_path / "lambert.nc"], reference_time=np.datetime64("2026-01-01T00"),
           progress=False)
    fs = ForecastStore(store)
    assert fs.spatial_dims == ("y", "x") and "latitude" not in fs.group
    np.testing.assert_allclose(fs.coordinate("x"), x, rtol=0, atol=1e-3)
    np.testing.assert_allclose(fs.coordinate("y"), y, rtol=0, atol=1e-3)


def test_a_jittered_float32_projected_grid_is_stored_as_its_axes(tmp_path: Path) -> None:
    """±0.03 m of float32 jitter on 2,500 m: a projected grid, centres kept (#13 item 17)."""
    source = jittered_float32_file(tmp_path)
    ingest(tmp_path / "jitter.zarr", [source], progress=False)
    fs = ForecastStore(tmp_path / "jitter.zarr")
    assert fs.spatial_dims == ("y", "x") and not fs.curvilinear
    assert stored_crs(fs).equals(POLAR_STEREO)
    with xr.open_dataset(source) as ds:
        for axis in ("x", "y"):
            stored, given = fs.coordinate(axis), ds[axis].values.astype("float64")
            np.testing.assert_array_equal(stored, given)
            assert np.ptp(np.diff(given)) > 0  # the jitter is really there
            assert is_evenly_spaced(stored)


def test_a_cf_rotated_pole_grid_keeps_its_rotated_axes(tmp_path: Path) -> None:
    """A CF rotated-pole file (CORDEX, COSMO: 1-D rlat/rlon in degrees, a
    rotated_latitude_longitude grid mapping, 2-D latitude/longitude alongside) is stored on
    its rotated axes with its grid mapping, so tiles find cells by inverse projection
    (issue #18); the cells stay where the 2-D latitude/longitude put them."""
    rlon, rlat = np.arange(-10.0, 10.0, 0.5), np.arange(-8.0, 8.0, 0.5)
    to_lonlat = pyproj.Transformer.from_crs(ROTATED, "EPSG:4326", always_xy=True)
    lon, lat = to_lonlat.transform(*np.meshgrid(rlon, rlat))
    times = np.array(["2026-01-01T06"], dtype="datetime64[ns]")
    ds = xr.Dataset(
        {"t": (("time", "rlat", "rlon"), np.ones((1, rlat.size, rlon.size), "float32"),
               {"units": "K", "grid_mapping": "rotated_pole",
                "coordinates": "lat lon"}),
         "rotated_pole": ((), np.int32(0), {
             "grid_mapping_name": "rotated_latitude_longitude",
             "grid_north_pole_latitude": 40.0, "grid_north_pole_longitude": -170.0})},
        coords={"time": ("time", times),
                "rlat": ("rlat", rlat, {"standard_name": "grid_latitude",
                                        "units": "degrees"}),
                "rlon": ("rlon", rlon, {"standard_name": "grid_longitude",
                                        "units": "degrees"}),
                "lat": (("rlat", "rlon"), lat, {"standard_name": "latitude",
                                                "units": "degrees_north"}),
                "lon": (("rlat", "rlon"), lon, {"standard_name": "longitude",
                                                "units": "degrees_east"})})
    ds.to_netcdf(tmp_path / "rotated.nc")
    ingest(tmp_path / "s.zarr", [tmp_path / "rotated.nc"],
           reference_time=np.datetime64("2026-01-01T00"), progress=False)
    fs = ForecastStore(tmp_path / "s.zarr")
    assert fs.spatial_dims == ("y", "x") and not fs.curvilinear
    assert stored_crs(fs).to_wkt() == ROTATED.to_wkt()  # (equals() fails a WKT round trip)
    np.testing.assert_array_equal(fs.coordinate("x"), rlon)
    np.testing.assert_array_equal(fs.coordinate("y"), rlat)
    cell = fs.geometry.cell_at("EPSG:4326", float(lon[5, 7]), float(lat[5, 7]))
    assert cell is not None and (cell.row, cell.col) == (5, 7)
