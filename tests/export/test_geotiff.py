"""GetMap FORMAT=image/tiff;subtype=float32: native cells, untouched, as a valid COG."""

from __future__ import annotations

from pathlib import Path

import httpx
import numpy as np
import pyproj
import pytest
import rasterio
import xarray as xr
from lxml import etree
from rio_cogeo.cogeo import cog_validate

import fewsmap
from fewsmap.app.server import create_app
from fewsmap.ingest import ingest
from fewsmap.settings import Settings
from fewsmap.store.cube import ForecastStore
from fewsmap.store.layout import GRID_MAPPING
from fewsmap.time.instants import format_time
from tests.asgi_client import AppClient
from tests.export.conftest import BBOX_FORMS, get_export, get_map
from tests.grid_kinds import JITTER_SPACING_M, POLAR_STEREO, jittered_float32_file
from tests.synthetic import T0

FLOAT32 = "image/tiff;subtype=float32"
COG_MEDIA_TYPE = "image/tiff; application=geotiff; profile=cloud-optimized"
OGC = "{http://www.opengis.net/ogc}"
SIX_HOURS = T0 + np.timedelta64(6, "h")


def save(content: bytes, folder: Path, name: str = "export.tif") -> Path:
    path = folder / name
    path.write_bytes(content)
    return path


def centres(src: rasterio.DatasetReader) -> tuple[np.ndarray, np.ndarray]:
    """Cell centres (x of each column, y of each row) from the file's own transform."""
    a, _, c, _, e, f = tuple(src.transform)[:6]
    return c + (np.arange(src.width) + 0.5) * a, f + (np.arange(src.height) + 0.5) * e


def cube_window(store: Path, variable: str, run: np.datetime64, valid: np.datetime64,
                x: np.ndarray, y: np.ndarray, **labels: int) -> np.ndarray:
    """The cube's values at these cell centres, selected with xarray by coordinate."""
    ds = fewsmap.open_cube(store)
    y_dim, x_dim = ds[variable].dims[-2:]
    field = ds[variable].sel(forecast_reference_time=run, step=valid - run, **labels)
    if x_dim == "longitude":
        x = (x + 180.0) % 360.0 - 180.0 if ds.longitude.min() < 0 else x % 360.0
    tolerance = 1e-6 if x_dim == "longitude" else 0.01
    picked = field.sel({y_dim: y, x_dim: x}, method="nearest", tolerance=tolerance)
    return np.asarray(picked.values)


def error_code(response: httpx.Response) -> str:
    report = etree.fromstring(response.content)
    return str(report.find(f"{OGC}ServiceException").get("code"))


@pytest.mark.parametrize("form", BBOX_FORMS)
def test_lonlat_export_matches_the_cube_and_its_grid(export_url: str, export_stores: Path,
                                                     tmp_path: Path, form: str) -> None:
    store = export_stores / "naefs-mean.zarr"
    run = np.datetime64("2022-08-09T00:00:00", "s")
    valid = np.datetime64("2022-08-09T12:00:00", "s")
    response = get_export(export_url, "naefs-mean.QPF", form, (-100, 30, -90, 40), FLOAT32,
                          time=format_time(valid))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == COG_MEDIA_TYPE
    assert response.headers["content-disposition"] == (
        'attachment; filename="naefs-mean.QPF_20220809T000000Z_20220809T120000Z.tif"')
    with rasterio.open(save(response.content, tmp_path)) as src:
        band = src.read(1)
        assert src.dtypes == ("float32",) and src.count == 1
        assert np.isnan(src.nodata)
        assert src.crs.to_epsg() == 4326
        # every native cell the bbox touches: centres -100..-90 and 30..40 at 0.5°
        assert (src.width, src.height) == (21, 21)
        assert tuple(src.transform)[:6] == (0.5, 0.0, -100.25, 0.0, -0.5, 40.25)
        x, y = centres(src)
        assert src.descriptions == ("QPF",)
        assert src.tags()["valid_time"] == "2022-08-09T12:00:00Z"
    expected = cube_window(store, "QPF", run, valid, x, y)
    assert np.isfinite(expected).all()
    np.testing.assert_array_equal(band, expected)


def test_projected_export_keeps_the_native_grid(export_url: str, export_stores: Path,
                                                tmp_path: Path) -> None:
    store = export_stores / "marfc-fmat.zarr"
    run = np.datetime64("2022-06-01T12:00:00", "s")
    valid = np.datetime64("2022-06-02T00:00:00", "s")
    response = get_map(export_url, "marfc-fmat.t", "-80,38,-74,42", FLOAT32,
                       externalForecastTime=format_time(run), time=format_time(valid))
    assert response.status_code == 200, response.text
    with rasterio.open(save(response.content, tmp_path)) as src:
        band, exported_crs = src.read(1), pyproj.CRS.from_wkt(src.crs.to_wkt())
        x, y = centres(src)
        assert (src.transform.a, src.transform.e) == (4786.0, -4784.0)  # native resolution
    native = ForecastStore(store)
    stored_x, stored_y = native.coordinate("x"), native.coordinate("y")
    # the cells are the store's own: every centre is a stored coordinate
    assert np.abs(stored_x[np.searchsorted(stored_x, x - 1)] - x).max() < 1e-6
    assert np.abs(stored_y[np.searchsorted(stored_y, y - 1)] - y).max() < 1e-6
    np.testing.assert_array_equal(band, cube_window(store, "t", run, valid, x, y))
    # the file's CRS places the cells where the store's CRS does
    store_crs = pyproj.CRS.from_wkt(native.attributes(GRID_MAPPING)["crs_wkt"])
    xx, yy = np.meshgrid(x[[0, -1]], y[[0, -1]])
    for_file = pyproj.Transformer.from_crs(exported_crs, 4326, always_xy=True).transform(xx, yy)
    for_store = pyproj.Transformer.from_crs(store_crs, 4326, always_xy=True).transform(xx, yy)
    np.testing.assert_allclose(for_file, for_store, atol=1e-7)


@pytest.mark.parametrize("variable", ["lon", "lat"])
def test_lambert_export_is_georeferenced(export_url: str, export_stores: Path, tmp_path: Path,
                                         variable: str) -> None:
    """The synthetic Lambert store holds each cell's own longitude and latitude."""
    response = get_map(export_url, f"lambert.{variable}", "6,58,11,61", FLOAT32,
                       time=format_time(SIX_HOURS))
    assert response.status_code == 200, response.text
    with rasterio.open(save(response.content, tmp_path)) as src:
        band, exported_crs = src.read(1), pyproj.CRS.from_wkt(src.crs.to_wkt())
        x, y = centres(src)
        assert (src.transform.a, src.transform.e) == (10_000.0, -10_000.0)
    assert band.shape[0] > 10 and band.shape[1] > 10
    xx, yy = np.meshgrid(x, y)
    lon, lat = pyproj.Transformer.from_crs(exported_crs, 4326, always_xy=True).transform(xx, yy)
    np.testing.assert_allclose(band, lon if variable == "lon" else lat, atol=1e-4)
    np.testing.assert_array_equal(
        band, cube_window(export_stores / "lambert.zarr", variable, T0, SIX_HOURS, x, y))


def test_large_exports_are_valid_cogs_with_overviews(export_url: str, export_stores: Path,
                                                      tmp_path: Path) -> None:
    response = get_map(export_url, "wide.v", "-20,30,40,80", FLOAT32,
                       time=format_time(SIX_HOURS))
    assert response.status_code == 200, response.text
    path = save(response.content, tmp_path)
    valid, errors, warnings = cog_validate(str(path), strict=True)
    assert valid and not errors and not warnings, (errors, warnings)
    with rasterio.open(path) as src:
        assert (src.width, src.height) == (800, 600)
        assert src.profile["tiled"] and src.block_shapes == [(256, 256)]
        assert src.overviews(1) == [2, 4]
        band = src.read(1)
        x, y = centres(src)
    expected = cube_window(export_stores / "wide.zarr", "v", T0, SIX_HOURS, x, y)
    assert np.isnan(expected).any()  # missing values stay missing (nodata NaN)
    np.testing.assert_array_equal(band, expected)


def test_small_exports_are_valid_cogs(export_url: str, tmp_path: Path) -> None:
    response = get_map(export_url, "ecmwf-ens-gust.fg10_6", "0,40,10,50", FLOAT32,
                       time="2018-11-23T00:00:00Z")
    assert response.status_code == 200, response.text
    valid, errors, _ = cog_validate(str(save(response.content, tmp_path)))
    assert valid and not errors


def test_a_bbox_across_greenwich_wraps_a_0_360_grid(export_url: str, export_stores: Path,
                                                    tmp_path: Path) -> None:
    response = get_map(export_url, "global.v", "-10,-5,10,5", FLOAT32,
                       time=format_time(SIX_HOURS))
    assert response.status_code == 200, response.text
    with rasterio.open(save(response.content, tmp_path)) as src:
        band = src.read(1)
        x, y = centres(src)
        assert src.transform.c == -11.0 and src.transform.a == 2.0
    np.testing.assert_array_equal(x, np.arange(-10.0, 11.0, 2.0))
    np.testing.assert_array_equal(
        band, cube_window(export_stores / "global.zarr", "v", T0, SIX_HOURS, x, y))


def test_a_vector_layer_exports_both_components(export_url: str, export_stores: Path,
                                                tmp_path: Path) -> None:
    response = get_map(export_url, "grid.u-v", "0,40,10,50", FLOAT32,
                       time=format_time(SIX_HOURS))
    assert response.status_code == 200, response.text
    with rasterio.open(save(response.content, tmp_path)) as src:
        assert src.count == 2 and src.descriptions == ("u", "v")
        u, v = src.read(1), src.read(2)
        x, y = centres(src)
    np.testing.assert_array_equal(u, np.broadcast_to(x, u.shape))  # u holds the longitude
    np.testing.assert_array_equal(v, np.broadcast_to(y[:, None], v.shape))


def test_an_ensemble_member_is_exported(export_url: str, export_stores: Path,
                                        tmp_path: Path) -> None:
    run = np.datetime64("2018-11-20T12:00:00", "s")
    valid = np.datetime64("2018-11-23T00:00:00", "s")
    response = get_map(export_url, "ecmwf-ens-gust.fg10_6", "0,40,10,50", FLOAT32,
                       time=format_time(valid), dim_ensemble_member="3")
    assert response.status_code == 200, response.text
    with rasterio.open(save(response.content, tmp_path)) as src:
        band = src.read(1)
        x, y = centres(src)
        assert src.tags()["realization"] == "3"
    expected = cube_window(export_stores / "ecmwf-ens-gust.zarr", "fg10_6", run, valid, x, y,
                           realization=3)
    other = cube_window(export_stores / "ecmwf-ens-gust.zarr", "fg10_6", run, valid, x, y,
                        realization=4)
    assert not np.array_equal(expected, other)
    np.testing.assert_array_equal(band, expected)


@pytest.mark.parametrize(("layer", "bbox", "extra", "code"), [
    ("naefs-mean.QPF", "10,-40,20,-30", {}, "InvalidParameterValue"),  # outside the grid
    ("marfc-fmat.t", "100,10,110,20", {}, "InvalidParameterValue"),
    ("gaussian.v", "0,45,10,60", {}, "InvalidFormat"),  # uneven latitudes: no transform
    ("naefs-mean", "-100,30,-90,40", {}, "InvalidParameterValue"),  # a group
    ("naefs-mean.QPF", "-100,30,-90,40",
     {"time": "2022-08-09T06:00:00Z/2022-08-09T18:00:00Z", "reducer": "sum"},
     "InvalidParameterValue"),  # an aggregate is not raw data
])
def test_unusable_exports_are_refused(export_url: str, layer: str, bbox: str,
                                      extra: dict[str, str], code: str) -> None:
    params = {"time": format_time(SIX_HOURS)} if layer.startswith("gaussian") else {}
    response = get_map(export_url, layer, bbox, FLOAT32, **{**params, **extra})
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("text/xml")
    assert error_code(response) == code


def test_capabilities_offer_the_export_formats(export_url: str) -> None:
    xml = httpx.get(f"{export_url}/wms", params={"request": "GetCapabilities"}, timeout=30)
    root = etree.fromstring(xml.content)
    formats = [e.text for e in root.iter("{http://www.opengis.net/wms}Format")]
    assert FLOAT32 in formats and "application/x-netcdf" in formats


def test_cube_window_sees_the_time(export_stores: Path) -> None:
    """The helper selects by time: the two steps of the synthetic stores differ by one."""
    ds = xr.open_zarr(export_stores / "wide.zarr", consolidated=True, chunks=None)
    first, second = (cube_window(export_stores / "wide.zarr", "v", T0, T0 + lead,
                                 ds.longitude.values[:3], ds.latitude.values[-3:])
                     for lead in (np.timedelta64(0, "h"), np.timedelta64(6, "h")))
    np.testing.assert_array_equal(second, first + 1)


def test_a_jittered_float32_projected_grid_exports_with_its_spacing(tmp_path: Path) -> None:
    """Axes whose float32 centres jitter by ±0.03 m on 2,500 m are evenly spaced (#13)."""
    stores = tmp_path / "stores"
    source = jittered_float32_file(tmp_path)
    ingest(stores / "jitter.zarr", [source], progress=False)
    with xr.open_dataset(source) as ds:
        x, y = ds["x"].values.astype("float64"), ds["y"].values.astype("float64")
        values = ds["t"].values[0]
    to_lonlat = pyproj.Transformer.from_crs(POLAR_STEREO, "EPSG:4326", always_xy=True)
    west, south, east, north = to_lonlat.transform_bounds(x[0], y[0], x[-1], y[-1])
    client = AppClient(create_app(Settings(stores_dir=stores)))
    response = client.get("/wms", params={
        "service": "WMS", "version": "1.3.0", "request": "GetMap", "layers": "jitter.t",
        "styles": "", "crs": "CRS:84", "bbox": f"{west},{south},{east},{north}",
        "width": "256", "height": "256", "format": FLOAT32})
    assert response.status_code == 200, response.text
    with rasterio.open(save(response.content, tmp_path)) as src:
        a, b, _, d, e, _ = tuple(src.transform)[:6]
        assert (src.width, src.height) == (x.size, y.size)
        assert (b, d) == (0.0, 0.0)
        assert a == pytest.approx(JITTER_SPACING_M, abs=0.01)
        assert e == pytest.approx(-JITTER_SPACING_M, abs=0.01)
        column_x, row_y = centres(src)
        assert np.abs(column_x - x).max() < 0.1  # each cell where the source put it
        assert np.abs(row_y - y[::-1]).max() < 0.1  # rows north first
        np.testing.assert_array_equal(src.read(1), values[::-1])
