"""GetMap, GetLegendGraphic and exceptions of the real service, over HTTP."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pyproj
import pytest
import xarray as xr
from lxml import etree
from PIL import Image

from fewsmap.ingest import ingest
from tests.conftest import SAMPLES
from tests.forecast_files import gfe_copy, read_gfe
from tests.live_server import live_server
from tests.synthetic import lambert_store, lonlat_store

SCHEMAS = Path(__file__).resolve().parent.parent / "schemas" / "ogc"
OGC = "{http://www.opengis.net/ogc}"
VALUE_RANGE = (-30.0, 70.0)  # covers the test fields' longitudes and latitudes in Europe
# North America; CNRFC's cells (~0.05°) need colour bins narrower than a cell.
VALUE_RANGES = {"naefs": (-130.0, 60.0), "cnrfc.lon": (-126.0, -114.0),
                "cnrfc.lat": (31.0, 45.0)}


def ingested_with_coordinates_as_values(source: Path, variable: str, folder: Path,
                                        store: Path) -> None:
    """Ingest a copy of a real sample whose ``variable`` holds each cell's lon (and lat).

    The grid, CRS and file structure are the sample's own; only the values change, so the
    whole ingest path (CF grid mapping included) is exercised.
    """
    with xr.open_dataset(source) as ds:
        ds = ds.load()
    var = ds[variable]
    if "latitude" in ds and ds["latitude"].ndim == 2:  # AROME: 2-D lat/lon coordinates
        lon, lat = ds["longitude"].values, ds["latitude"].values
    else:  # NAEFS: 1-D y (latitude) and x (longitude)
        lon, lat = np.meshgrid(ds["x"].values, ds["y"].values)
    for name, values in (("lon", lon), ("lat", lat)):
        ds[name] = var.copy(data=np.broadcast_to(values, var.shape).astype("float32"))
        ds[name].attrs = {**var.attrs, "units": "degree", "long_name": name}
    keep = ["lon", "lat"] + [v for v in ds.data_vars if "grid_mapping_name" in ds[v].attrs
                             or v == "crs"]
    path = folder / f"{source.stem}-coordinates.nc"
    ds[keep].to_netcdf(path)
    ingest(store, [path], progress=False)


def gfe_with_coordinates_as_values(folder: Path, store: Path) -> None:
    """Ingest a copy of the CNRFC GFE export whose elements ``lon``/``lat`` hold each cell's
    longitude/latitude, as the file's 2-D latitude/longitude variables give them."""
    source = SAMPLES["cnrfc_qpf"][0]
    variables = read_gfe(source)["variables"]
    shape = variables["QPF_SFC"][0].shape
    values = {name: np.broadcast_to(variables[axis][0], shape).astype(">f4")
              for name, axis in (("lon", "longitude"), ("lat", "latitude"))}
    degrees = {"units": "degree", "rateDependent": np.int32(0)}  # a plain linear style
    ingest(store, [gfe_copy(source, folder / source.name, values,
                            {"lon": degrees, "lat": degrees})], progress=False)


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("wms")
    stores = folder / "stores"
    lonlat_store(stores / "grid.zarr")
    lambert_store(stores / "lambert.zarr")
    ingested_with_coordinates_as_values(SAMPLES["arome"], "x_wind_10m", folder,
                                        stores / "arome.zarr")
    ingested_with_coordinates_as_values(SAMPLES["naefs"], "QTF", folder, stores / "naefs.zarr")
    gfe_with_coordinates_as_values(folder, stores / "cnrfc.zarr")
    with live_server("--stores", str(stores)) as base:
        yield f"{base}/wms"


def get(url: str, **params: str) -> httpx.Response:
    return httpx.get(url, params={"service": "WMS", **params}, timeout=60)


def get_map(url: str, layer: str, crs: str, bbox: tuple[float, ...], size: tuple[int, int],
            version: str = "1.3.0", value_range: tuple[float, float] = VALUE_RANGE,
            **extra: str) -> np.ndarray:
    """Fetch a GetMap and return the decoded values of its palette indices (NaN: none)."""
    crs_key = "srs" if version == "1.1.1" else "crs"
    response = get(url, request="GetMap", version=version, layers=layer, styles="",
                   bbox=",".join(f"{v:.6f}" for v in bbox), width=str(size[0]),
                   height=str(size[1]), format="image/png",
                   colorscalerange=f"{value_range[0]},{value_range[1]}",
                   **{crs_key: crs}, **extra)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    image = Image.open(io.BytesIO(response.content))
    assert image.mode == "P" and image.size == size
    index = np.asarray(image).astype("float64")
    low, high = value_range
    values = low + (index - 0.5) * (high - low) / 255
    values[index == 0] = np.nan
    return values


def pixel_lonlat(crs: str, bbox: tuple[float, float, float, float],
                 size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Longitude and latitude of every pixel centre (bbox in east/north order)."""
    width, height = size
    minx, miny, maxx, maxy = bbox
    x = minx + (np.arange(width) + 0.5) * (maxx - minx) / width
    y = maxy - (np.arange(height) + 0.5) * (maxy - miny) / height
    xx, yy = np.meshgrid(x, y)
    to_lonlat = pyproj.Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
    lon, lat = to_lonlat.transform(xx, yy)
    return np.asarray(lon), np.asarray(lat)


MERC = 20037508.342789244 / 180
CASES = [
    # layer store, CRS, bbox as sent (1.3.0 axis order), bbox east/north, version
    ("grid", "EPSG:3857", (-25 * MERC, 3.3e6, 45 * MERC, 9.0e6), None, "1.3.0"),
    ("grid", "EPSG:4326", (25.0, -25.0, 65.0, 45.0), (-25.0, 25.0, 45.0, 65.0), "1.3.0"),
    ("grid", "CRS:84", (-25.0, 25.0, 45.0, 65.0), None, "1.3.0"),
    ("grid", "EPSG:4326", (-25.0, 25.0, 45.0, 65.0), None, "1.1.1"),
    ("lambert", "EPSG:3857", (-1.0e5, 7.4e6, 1.5e6, 9.6e6), None, "1.3.0"),
    ("lambert", "EPSG:4326", (55.0, -2.0, 66.0, 14.0), (-2.0, 55.0, 14.0, 66.0), "1.3.0"),
    # Grids ingested from the real samples: AROME (Lambert, CF grid_mapping), NAEFS (0.5°).
    ("arome", "EPSG:3857", (0.5e5, 8.4e6, 1.0e6, 9.3e6), None, "1.3.0"),
    ("arome", "EPSG:4326", (60.0, 0.5, 64.5, 9.0), (0.5, 60.0, 9.0, 64.5), "1.3.0"),
    ("naefs", "EPSG:3857", (-130 * MERC, 2.5e6, -60 * MERC, 7.5e6), None, "1.3.0"),
    ("naefs", "EPSG:4326", (20.0, -130.0, 58.0, -60.0), (-130.0, 20.0, -60.0, 58.0), "1.3.0"),
    # CNRFC QPF, an NWS GFE export: HRAP polar stereographic from 2-D lat/lon (issue #13).
    ("cnrfc", "EPSG:3857", (-124 * MERC, 4.0e6, -116 * MERC, 5.2e6), None, "1.3.0"),
    ("cnrfc", "EPSG:4326", (33.0, -124.0, 43.0, -116.0), (-124.0, 33.0, -116.0, 43.0), "1.3.0"),
]
CELL_DEGREES = {"grid": 1.0, "lambert": 0.25, "arome": 0.1, "naefs": 0.5, "cnrfc": 0.06}


@pytest.mark.parametrize(("store", "crs", "bbox", "east_north", "version"), CASES)
def test_colours_land_where_the_values_are(url: str, store: str, crs: str,
                                           bbox: tuple[float, float, float, float],
                                           east_north: tuple[float, float, float, float] | None,
                                           version: str) -> None:
    size = (240, 200)
    lon, lat = pixel_lonlat("EPSG:4326" if crs == "CRS:84" else crs, east_north or bbox, size)
    # A pixel shows the cell it falls in: off by at most half a cell, plus one colour bin.
    cell = CELL_DEGREES[store]
    for variable, expected in (("lon", lon), ("lat", lat)):
        value_range = VALUE_RANGES.get(f"{store}.{variable}",
                                       VALUE_RANGES.get(store, VALUE_RANGE))
        bin_width = (value_range[1] - value_range[0]) / 255
        shown = get_map(url, f"{store}.{variable}", crs, bbox, size, version, value_range)
        drawn = np.isfinite(shown)
        assert drawn.mean() > 0.2, "most of the map shows data"
        error = np.abs(shown[drawn] - expected[drawn])
        assert np.percentile(error, 99) <= cell / 2 + bin_width + 1e-6
        assert error.max() <= cell + bin_width


def test_outside_the_grid_is_transparent(url: str) -> None:
    bbox = (-60.0, 0.0, 80.0, 80.0)  # CRS:84, much larger than the grid
    shown = get_map(url, "grid.lon", "CRS:84", bbox, (280, 160))
    lon, lat = pixel_lonlat("EPSG:4326", bbox, (280, 160))
    far = (lon < -21.5) | (lon > 41.5) | (lat < 28.5) | (lat > 61.5)
    assert np.isnan(shown[far]).all()
    inside = (lon > -19) & (lon < 39) & (lat > 31) & (lat < 59)
    assert np.isfinite(shown[inside]).all()


def test_identical_requests_give_identical_bytes_and_etag(url: str) -> None:
    params = {"request": "GetMap", "layers": "grid.lat", "crs": "EPSG:3857",
              "bbox": "0,4000000,2000000,6000000", "width": "256", "height": "256",
              "showContours": "true"}
    first, second = get(url, **params), get(url, **params)
    assert first.content == second.content and first.headers["etag"] == second.headers["etag"]
    assert first.headers["cache-control"] == "public, max-age=60"  # latest run
    again = httpx.get(url, params={"service": "WMS", **params},
                      headers={"If-None-Match": first.headers["etag"]}, timeout=30)
    assert again.status_code == 304
    run_only = get(url, **{**params, "layers": "grid.lat-2026-01-01T00:00:00Z"})
    assert run_only.headers["cache-control"] == "public, max-age=60"  # the default time moves
    assert run_only.headers["x-fewsmap-run"] == "2026-01-01T00:00:00Z"
    assert run_only.content == first.content  # the same (only) run
    fixed = get(url, **{**params, "layers": "grid.lat-2026-01-01T00:00:00Z",
                        "time": run_only.headers["x-fewsmap-valid-time"]})
    assert fixed.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert fixed.content == first.content


def test_time_selects_the_step_and_defaults_to_the_first(url: str) -> None:
    params = {"request": "GetMap", "layers": "grid.lon", "crs": "CRS:84",
              "bbox": "-20,30,40,60", "width": "64", "height": "32"}
    default = get(url, **params)
    assert default.headers["x-fewsmap-valid-time"] == "2026-01-01T00:00:00Z"
    later = get(url, **params, time="2026-01-01T06:00:00.000Z")
    assert later.headers["x-fewsmap-valid-time"] == "2026-01-01T06:00:00Z"


def test_contours_and_background_give_rgba(url: str) -> None:
    response = get(url, request="GetMap", layers="grid.lat", crs="CRS:84",
                   bbox="-20,30,40,60", width="300", height="150", showContours="true",
                   transparent="false", bgcolor="0x000000")
    image = np.asarray(Image.open(io.BytesIO(response.content)))
    assert image.shape == (150, 300, 4) and (image[..., 3] == 255).all()


def test_legend_json_and_png_agree_with_the_map_palette(url: str) -> None:
    legend = get(url, request="GetLegendGraphic", layers="grid.lon",
                 format="application/json", colorscalerange="-30,70").json()
    assert legend["unit"] == "degrees_east"
    values = [entry["lowerValue"] for entry in legend["legend"]]
    assert values == sorted(values) and values[0] == -30 and values[-1] == 70
    assert all(entry["colorSmoothing"] for entry in legend["legend"])
    png = get(url, request="GetLegendGraphic", layers="grid.lon")
    image = Image.open(io.BytesIO(png.content))
    assert image.size == (150, 15 * 13)  # the title and units rows, 11 rows of entries


@pytest.mark.parametrize(("width", "height"), [(1, 1), (2, 40), (3, 3), (26, 500)])
def test_legends_of_any_size_are_drawn(url: str, width: int, height: int) -> None:
    png = get(url, request="GetLegendGraphic", layers="grid.lon", width=str(width),
              height=str(height))
    assert png.status_code == 200, png.text
    assert Image.open(io.BytesIO(png.content)).size == (width, height)


def test_vector_layers_pair_u_and_v_and_encode_them_as_fews_tiff(url: str) -> None:
    caps = get(url, request="GetCapabilities", format="application/json").json()
    vector = next(layer for layer in caps["layers"] if layer["name"] == "grid.u-v")
    assert vector["uv"] is True
    bbox, size = (-25.0, 25.0, 45.0, 65.0), (140, 80)
    response = get(url, request="GetMap", layers="grid.u-v", crs="CRS:84",
                   bbox=",".join(map(str, bbox)), width=str(size[0]), height=str(size[1]),
                   format="image/tiff", convertUVToRG="true")  # FEWS clients' spelling
    assert response.status_code == 200 and response.headers["content-type"] == "image/tiff"
    image = Image.open(io.BytesIO(response.content))
    rgba = np.asarray(image).astype("float64")
    u_scale, v_scale, _ = image.tag_v2[33550]
    u_offset, v_offset = image.tag_v2[33922][:2]
    lon, lat = pixel_lonlat("EPSG:4326", bbox, size)
    on_grid = rgba[..., 3] == 255
    assert on_grid.mean() > 0.5 and not on_grid[lon < -21].any()
    u = rgba[..., 0] * u_scale + u_offset
    v = rgba[..., 1] * v_scale + v_offset
    assert np.abs(u[on_grid] - lon[on_grid]).max() <= 0.5 + u_scale
    assert np.abs(v[on_grid] - lat[on_grid]).max() <= 0.5 + v_scale
    scalar = get(url, request="GetMap", layers="grid.lon", crs="CRS:84", bbox="0,30,10,40",
                 width="10", height="10", format="image/tiff", convertUVtoRG="true")
    assert scalar.status_code == 400 and b"InvalidFormat" in scalar.content


def test_capabilities_validate_against_the_ogc_schema(url: str) -> None:
    os.environ["XML_CATALOG_FILES"] = str(SCHEMAS / "catalog.xml")
    schema = etree.XMLSchema(etree.parse(str(SCHEMAS / "sld/1.1.0/sld_capabilities.xsd")))
    document = etree.fromstring(get(url, request="GetCapabilities").content)
    assert schema.validate(document), schema.error_log
    lambert = document.xpath("//w:Layer[w:Name='lambert.lon']",
                             namespaces={"w": "http://www.opengis.net/wms"})[0]
    boxes = {b.get("CRS"): b for b in lambert.findall("{http://www.opengis.net/wms}BoundingBox")}
    assert float(boxes["EPSG:4326"].get("minx")) > 50  # latitude first in 1.3.0


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"layers": "nope"}, "LayerNotDefined"),
        ({"styles": "fancy"}, "StyleNotDefined"),
        ({"crs": "EPSG:32632"}, "InvalidCRS"),
        ({"version": "1.1.1", "srs": "EPSG:32632", "crs": ""}, "InvalidSRS"),
        ({"format": "image/bmp"}, "InvalidFormat"),  # image/gif is an animation format
        ({"time": "2026-01-02T00:00:00Z"}, "InvalidDimensionValue"),
        # several named times without REDUCER (a plain range draws its latest time)
        ({"time": "2026-01-01T00:00:00Z,2026-01-01T06:00:00Z"}, "InvalidDimensionValue"),
        ({"externalForecastTime": "2025-01-01T00:00:00Z"}, "InvalidDimensionValue"),
        ({"width": "2000", "height": "1153"}, "InvalidParameterValue"),
        ({"bbox": "10,0,0,10"}, "InvalidParameterValue"),
        ({"bbox": "nan,0,1,1"}, "InvalidParameterValue"),
        ({"bgcolor": "purple"}, "InvalidParameterValue"),
        ({"colorscalerange": "5,1"}, "InvalidParameterValue"),
        ({"bbox": ""}, "MissingParameterValue"),
        ({"request": "PutStyles"}, "OperationNotSupported"),
    ],
)
def test_each_exception_code(url: str, params: dict[str, str], code: str) -> None:
    base = {"request": "GetMap", "version": "1.3.0", "layers": "grid.lon", "crs": "CRS:84",
            "bbox": "-20,30,40,60", "width": "100", "height": "50"}
    response = get(url, **{**base, **params})
    assert response.status_code == 400, response.text
    report = etree.fromstring(response.content)
    assert report.tag in (f"{OGC}ServiceExceptionReport", "ServiceExceptionReport")
    exception = report.find(f"{OGC}ServiceException")
    if exception is None:  # WMS 1.1.1 reports have no namespace
        exception = report.find("ServiceException")
    assert exception.get("code") == code
    assert exception.text and len(exception.text) > 10


def test_pixel_limit_is_exact(url: str) -> None:
    base = {"request": "GetMap", "layers": "grid.lon", "crs": "CRS:84", "bbox": "-20,30,40,60"}
    assert get(url, **base, width="1920", height="1200").status_code == 200  # 2,304,000
    assert get(url, **base, width="1920", height="1201").status_code == 400


@pytest.mark.parametrize("mode", ["INIMAGE", "BLANK", "application/vnd.ogc.se_inimage"])
def test_exceptions_in_image(url: str, mode: str) -> None:
    response = get(url, request="GetMap", layers="nope", crs="CRS:84", bbox="0,0,1,1",
                   width="120", height="60", exceptions=mode)
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    image = np.asarray(Image.open(io.BytesIO(response.content)).convert("RGBA"))
    assert image.shape == (60, 120, 4)
    assert (image[..., 3] > 0).any() == (mode != "BLANK")


def test_jpeg_is_drawn_over_the_background(url: str) -> None:
    response = get(url, request="GetMap", layers="grid.lat", crs="CRS:84",
                   bbox="-60,0,80,80", width="140", height="80", format="image/jpeg",
                   bgcolor="0x0000FF")
    assert response.headers["content-type"] == "image/jpeg"
    image = Image.open(io.BytesIO(response.content))
    assert image.format == "JPEG" and image.mode == "RGB"
    corner = np.asarray(image)[2, 2].astype(int)  # off the grid: the background
    assert corner[2] > 200 and corner[0] < 40 and corner[1] < 40
