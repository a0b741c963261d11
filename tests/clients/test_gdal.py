"""GDAL's WMS driver (through rasterio, which bundles GDAL) reads fewsmap's layers and maps."""

from __future__ import annotations

import warnings
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import numpy as np
import pyproj
import pytest
import rasterio
import xarray as xr
from rasterio.errors import NotGeoreferencedWarning, RasterioIOError

from tests.clients.conftest import DATA_LAYERS, GROUPS, NAEFS_EDGES

SHAPE = (160, 280)  # rows, columns read from GDAL's (huge, tiled) WMS raster
TIME = "2022-08-10T00:00:00Z"


def get_map_url(base_url: str, crs: str, bbox: str, **extra: str) -> str:
    query = "&".join(f"{k.upper()}={v}" for k, v in extra.items())
    return (f"WMS:{base_url}/wms?SERVICE=WMS&VERSION=1.3.0&REQUEST=GetMap"
            f"&LAYERS=naefs-mean.QTF&CRS={crs}&BBOX={bbox}&FORMAT=image/png"
            f"&TRANSPARENT=TRUE&{query}")


def read(url: str, shape: tuple[int, int] = SHAPE) -> tuple[np.ndarray, rasterio.Affine, str]:
    """All bands at ``shape``, the transform of that read, and the dataset's CRS."""
    with rasterio.open(url) as dataset:
        pixels = dataset.read(out_shape=(dataset.count, *shape))
        transform = dataset.transform @ rasterio.Affine.scale(dataset.width / shape[1],
                                                               dataset.height / shape[0])
        return pixels, transform, dataset.crs.to_string()


def centres_lonlat(transform: rasterio.Affine, crs: str) -> tuple[np.ndarray, np.ndarray]:
    rows, cols = np.mgrid[0:SHAPE[0], 0:SHAPE[1]]
    x, y = transform @ (cols + 0.5, rows + 0.5)
    lon, lat = pyproj.Transformer.from_crs(crs, "EPSG:4326", always_xy=True).transform(x, y)
    return np.asarray(lon), np.asarray(lat)


def assert_on_the_grid(alpha: np.ndarray, lon: np.ndarray, lat: np.ndarray) -> None:
    """Opaque on the naefs grid, transparent off it, within a pixel of GDAL's resampling."""
    west, south, east, north = NAEFS_EDGES
    margin = 0.6
    inside = (lon > west + margin) & (lon < east - margin) & (lat > south + margin) & (
        lat < north - margin)
    outside = (lon < west - margin) | (lon > east + margin) | (lat < south - margin) | (
        lat > north + margin)
    assert inside.mean() > 0.3 and outside.mean() > 0.1
    assert (alpha[inside] == 255).all()
    assert (alpha[outside] == 0).all()


def subdatasets(base_url: str) -> dict[str, str]:
    """GDAL's subdatasets of the GetCapabilities URL, by layer name."""
    url = f"WMS:{base_url}/wms?SERVICE=WMS&VERSION=1.3.0&REQUEST=GetCapabilities"
    with warnings.catch_warnings():
        # The capabilities "raster" has no geotransform; only its subdatasets are rasters.
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(url) as dataset:
            names = dataset.subdatasets
    return {parse_qs(urlsplit(name[len("WMS:"):]).query)["LAYERS"][0]: name for name in names}


def test_gdal_version() -> None:
    major, minor = (int(part) for part in rasterio.__gdal_version__.split(".")[:2])
    assert (major, minor) >= (3, 6)


def test_capabilities_subdatasets_list_the_layers(base_url: str) -> None:
    layers = subdatasets(base_url)
    assert set(DATA_LAYERS) <= set(layers)
    qtf = parse_qs(urlsplit(layers["naefs-mean.QTF"][len("WMS:"):]).query)
    assert [float(v) for v in qtf["BBOX"][0].split(",")] == pytest.approx(NAEFS_EDGES)


# Least share of opaque pixels when a layer is read over its own advertised lon/lat box.
OPAQUE = {
    "ecmwf-ens-gust.fg10_6": 0.9,  # lon/lat grid in gust classes: calm cells transparent
    "naefs-mean.QTF": 0.99,
    "marfc-fmat.t": 0.45,  # a Polar Stereographic grid fills only part of its lon/lat box
    "naefs-mean.QPF": 0.05,  # dry cells lie below the first class break: transparent
}


@pytest.mark.parametrize("layer", DATA_LAYERS)
def test_every_data_layer_subdataset_reads(base_url: str, layer: str) -> None:
    pixels, _, crs = read(subdatasets(base_url)[layer] + "&TRANSPARENT=TRUE", (64, 64))
    assert pixels.shape == (4, 64, 64) and crs in ("OGC:CRS84", "EPSG:4326")
    assert (pixels[3] == 255).mean() > OPAQUE[layer]


@pytest.mark.parametrize("group", GROUPS)
def test_every_named_group_layer_subdataset_reads(base_url: str, group: str) -> None:
    # WMS 1.3.0 §7.2.4.6.3: a layer with a <Name> (here a FEWS gridPlotGroup) can be requested.
    layers = subdatasets(base_url)
    assert group in layers  # GDAL offers the group as a raster
    try:
        read(layers[group], (32, 32))
    except RasterioIOError as error:
        response = httpx.get(f"{base_url}/wms", params={
            "service": "WMS", "version": "1.3.0", "request": "GetMap", "layers": group,
            "styles": "", "crs": "CRS:84", "bbox": "-125,24,-65,54", "width": "32",
            "height": "32", "format": "image/png"}, timeout=30)
        pytest.fail(f"GDAL cannot read group layer {group!r} ({error}); the service says "
                    f"{response.status_code} {response.text[-160:]}")


def test_getmap_epsg4326_reads_georeferenced_pixels(base_url: str) -> None:
    # GDAL sends WMS 1.3.0 EPSG:4326 BBOX latitude first (its BBoxOrder yxYX) and reads it so.
    pixels, transform, crs = read(get_map_url(base_url, "EPSG:4326", "20,-130,60,-60",
                                              time=TIME))
    assert crs == "EPSG:4326" and pixels.shape == (4, *SHAPE)
    assert transform.c == pytest.approx(-130) and transform.f == pytest.approx(60)
    assert_on_the_grid(pixels[3], *centres_lonlat(transform, "EPSG:4326"))


def test_getmap_web_mercator_reads_georeferenced_pixels(base_url: str) -> None:
    bbox = "-15000000,2000000,-6000000,8000000"
    pixels, transform, crs = read(get_map_url(base_url, "EPSG:3857", bbox, time=TIME))
    assert crs == "EPSG:3857"
    assert_on_the_grid(pixels[3], *centres_lonlat(transform, "EPSG:3857"))


def test_time_is_passed_through(base_url: str) -> None:
    bbox = "-130,20,-60,60"
    first, _, _ = read(get_map_url(base_url, "CRS:84", bbox, time=TIME))
    again, _, _ = read(get_map_url(base_url, "CRS:84", bbox, time=TIME))
    later, _, _ = read(get_map_url(base_url, "CRS:84", bbox, time="2022-08-20T12:00:00Z"))
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, later)
    np.testing.assert_array_equal(first[3], later[3])  # same grid, other values


def test_bad_time_fails_the_read(base_url: str) -> None:
    with pytest.raises(RasterioIOError):
        read(get_map_url(base_url, "CRS:84", "-130,20,-60,60", time="2030-01-01T00:00:00Z"))
    # … because the service refused it with a WMS exception, not because GDAL failed
    response = httpx.get(f"{base_url}/wms", params={
        "service": "WMS", "version": "1.3.0", "request": "GetMap", "layers": "naefs-mean.QTF",
        "styles": "", "crs": "CRS:84", "bbox": "-130,20,-60,60", "width": "8", "height": "8",
        "format": "image/png", "time": "2030-01-01T00:00:00Z"}, timeout=30)
    assert response.status_code == 400 and 'code="InvalidDimensionValue"' in response.text


@pytest.mark.parametrize("store, variable", [("naefs-mean", "QPF"), ("marfc-fmat", "t"),
                                             ("ecmwf-ens-gust", "fg10_6")])
def test_gdal_zarr_driver_reads_the_raw_store_in_place(base_url: str, demo_stores: Path,
                                                       store: str, variable: str) -> None:
    # GDAL reads Zarr v2 only ("Unsupported codec: bytes" on the v3 store): /zarr-v2
    cube = xr.open_zarr(demo_stores / f"{store}.zarr", chunks=None)
    field = cube[variable]
    last = [0] * (field.ndim - 2)
    last[0] = field.sizes["forecast_reference_time"] - 1  # the latest run, first step, member
    index = ":".join(str(i) for i in last)
    with rasterio.open(f'ZARR:"/vsicurl/{base_url}/zarr-v2/{store}":/{variable}:{index}') as ds:
        values, crs, transform = ds.read(1), ds.crs, ds.transform
    np.testing.assert_array_equal(values, field[tuple(last)].values)
    assert pyproj.CRS(crs.to_wkt()) == pyproj.CRS(cube["crs"].attrs["crs_wkt"])
    y, x = (cube[dim].values for dim in field.dims[-2:])
    assert transform.a == pytest.approx(x[1] - x[0]) and transform.e == pytest.approx(y[1] - y[0])
    assert transform @ (0.5, 0.5) == pytest.approx((x[0], y[0]))  # the first cell's centre
