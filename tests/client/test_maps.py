"""fewsmap in Python: `render_map` and the ``.fewsmap`` accessor draw what the service draws."""

from __future__ import annotations

import io
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import xarray as xr
from PIL import Image

import fewsmap
from fewsmap import Catalog, open_cube
from fewsmap.catalog import Style
from fewsmap.client.maps import render_map
from fewsmap.errors import (
    InvalidDimensionValue,
    InvalidParameterValue,
    LayerNotDefined,
    StyleNotDefined,
)
from fewsmap.render.colour import palette_for
from fewsmap.settings import Settings
from tests.live_server import live_server

NAEFS_BBOX = (-11_000_000.0, 3_500_000.0, -8_000_000.0, 6_000_000.0)


@pytest.fixture(scope="module")
def catalog(demo_stores: Path) -> Catalog:
    return Catalog(Settings(stores_dir=demo_stores))


@pytest.fixture(scope="module")
def wms(demo_stores: Path) -> Iterator[str]:
    """The real service over the same stores."""
    with live_server("--stores", str(demo_stores)) as url:
        yield url


def getmap(wms: str, **params: str) -> Image.Image:
    """The service's GetMap answer, decoded; run and valid time from its headers."""
    response = httpx.get(f"{wms}/wms", timeout=60, params={
        "service": "WMS", "version": "1.3.0", "request": "GetMap", "format": "image/png",
        **params})
    assert response.status_code == 200, response.text
    image = Image.open(io.BytesIO(response.content))
    image.load()
    image.info.update(run=response.headers["X-Fewsmap-Run"],
                      valid_time=response.headers["X-Fewsmap-Valid-Time"])
    return image


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGBA"))


def assert_same_map(mine: Image.Image, theirs: Image.Image) -> None:
    """Pixel for pixel, in the same PNG mode, showing the same run and valid time; and a
    real map, not a blank one."""
    assert (mine.mode, mine.size) == (theirs.mode, theirs.size)
    np.testing.assert_array_equal(pixels(mine), pixels(theirs))
    assert (mine.info["run"], mine.info["valid_time"]) == \
        (theirs.info["run"], theirs.info["valid_time"])
    assert len(np.unique(pixels(mine).reshape(-1, 4), axis=0)) > 4  # a few classes at least


def bbox_text(bbox: tuple[float, ...]) -> str:
    return ",".join(repr(v) for v in bbox)


@pytest.mark.parametrize(("mine", "theirs"), [
    ({"layer": "naefs-mean.QTF", "time": "2022-08-10T12:00:00Z", "bbox": NAEFS_BBOX,
      "width": 400, "height": 300},
     {"layers": "naefs-mean.QTF", "time": "2022-08-10T12:00:00Z", "crs": "EPSG:3857",
      "bbox": bbox_text(NAEFS_BBOX), "width": "400", "height": "300"}),
    # east first for every CRS in Python; WMS 1.3.0 EPSG:4326 is latitude first
    ({"layer": "naefs-mean.QPF", "time": "2022-08-11T00:00:00Z", "crs": "EPSG:4326",
      "bbox": (-110.0, 30.0, -80.0, 50.0), "width": 300, "height": 200,
      "color_range": (0.0, 20.0), "show_contours": True},
     {"layers": "naefs-mean.QPF", "time": "2022-08-11T00:00:00Z", "crs": "EPSG:4326",
      "bbox": "30,-110,50,-80", "width": "300", "height": "200",
      "colorscalerange": "0,20", "showContours": "true"}),
    ({"layer": "ecmwf-ens-gust.fg10_6", "member": 7, "lead_time": "P3D", "bbox":
      (-2_000_000.0, 4_500_000.0, 3_000_000.0, 12_000_000.0), "width": 200, "height": 300,
      "transparent": False},
     {"layers": "ecmwf-ens-gust.fg10_6", "dim_ensemble_member": "7", "dim_lead_time": "P3D",
      "crs": "EPSG:3857", "bbox": "-2000000,4500000,3000000,12000000", "width": "200",
      "height": "300", "transparent": "false"}),
    ({"layer": "marfc-fmat.t", "run": "2022-06-01T06:00:00Z",
      "bbox": (-8_800_000.0, 4_500_000.0, -8_000_000.0, 5_200_000.0), "width": 256,
      "height": 256},
     {"layers": "marfc-fmat.t-2022-06-01T06:00:00Z", "crs": "EPSG:3857",
      "bbox": "-8800000,4500000,-8000000,5200000", "width": "256", "height": "256"}),
    ({"layer": "naefs-mean", "time": "2022-08-12T00:00:00Z", "bbox": NAEFS_BBOX,
      "width": 300, "height": 250},
     {"layers": "naefs-mean", "time": "2022-08-12T00:00:00Z", "crs": "EPSG:3857",
      "bbox": bbox_text(NAEFS_BBOX), "width": "300", "height": "250"}),
], ids=["scalar", "epsg4326-contours-range", "member-lead-opaque", "per-run-id", "group"])
def test_render_map_is_the_services_getmap_pixel_for_pixel(
        catalog: Catalog, wms: str, mine: dict[str, object],
        theirs: dict[str, str]) -> None:
    assert_same_map(render_map(catalog=catalog, **mine), getmap(wms, **theirs))


def test_render_map_defaults_to_the_whole_grid_at_its_aspect_ratio(catalog: Catalog) -> None:
    image = render_map("naefs-mean.QTF", time="2022-08-10T00:00:00Z", width=500,
                       catalog=catalog)
    alpha = pixels(image)[..., 3]
    # The grid's edges are the image's edges: every border has data, and the regular
    # lon/lat grid fills the Web Mercator frame without stretching
    assert image.width == 500
    assert all(edge.mean() > 0.95 for edge in (alpha[0] > 0, alpha[-1] > 0, alpha[:, 0] > 0,
                                               alpha[:, -1] > 0))
    store = catalog.stores["naefs-mean"]
    assert image.info["run"] == store.latest_run.label


def test_fewsmap_render_map_is_the_library_function_and_import_stays_light() -> None:
    assert fewsmap.render_map is render_map
    code = "import sys, fewsmap; print(sorted({'datashader', 'matplotlib'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"


def test_the_image_shows_inline_in_jupyter(catalog: Catalog) -> None:
    image = render_map("naefs-mean.QTF", width=64, catalog=catalog)
    png = image._repr_png_()  # what IPython displays
    assert png is not None and png.startswith(b"\x89PNG")
    np.testing.assert_array_equal(pixels(Image.open(io.BytesIO(png))), pixels(image))


@pytest.mark.parametrize(("options", "error", "words"), [
    ({"layer": "naefs-mean.NOPE"}, LayerNotDefined, "naefs-mean.NOPE"),
    ({"layer": "naefs-mean.QTF", "time": "2031-01-01T00:00:00Z"}, InvalidDimensionValue,
     "no valid time of run 2022-08-09T00:00:00Z"),
    ({"layer": "naefs-mean.QTF", "run": "2022-08-08T00:00:00Z"}, InvalidDimensionValue,
     "2022-08-09T00:00:00Z"),
    ({"layer": "naefs-mean.QTF", "style": "rainbow"}, StyleNotDefined, "rainbow"),
    ({"layer": "naefs-mean.QTF", "bbox": (10.0, 0.0, 5.0, 1.0)}, InvalidParameterValue,
     "minx < maxx"),
    ({"layer": "naefs-mean.QTF", "width": 0}, InvalidParameterValue, "width=0"),
    ({"layer": "naefs-mean.QTF", "color_range": (5.0, 5.0)}, InvalidParameterValue,
     "color_range"),
    ({"layer": "naefs-mean.QTF", "reducer": "median"}, InvalidParameterValue, "median"),
    ({"layer": "ecmwf-ens-gust.fg10_6", "member": 51}, InvalidDimensionValue, "1,2,3"),
    ({"layer": "ecmwf-ens-gust.fg10_6", "member": 7.5}, InvalidDimensionValue, "whole"),
])
def test_render_map_refuses_what_the_service_refuses(
        catalog: Catalog, options: dict[str, object], error: type[Exception],
        words: str) -> None:
    with pytest.raises(error, match=words.replace(".", r"\.")):
        render_map(catalog=catalog, **options)


def test_a_stored_field_is_drawn_like_getmap_from_its_selection(
        demo_stores: Path, catalog: Catalog, wms: str) -> None:
    cube = open_cube(demo_stores / "naefs-mean.zarr")
    field = cube.QTF.isel(forecast_reference_time=-1).sel(step="36h")
    valid = str(np.datetime_as_string(field.valid_time.values, unit="s")) + "Z"
    image = field.fewsmap.map(bbox=NAEFS_BBOX, width=320, height=240)
    assert image.info["valid_time"] == valid
    assert_same_map(image, getmap(wms, layers="naefs-mean.QTF", time=valid, crs="EPSG:3857",
                                  bbox=bbox_text(NAEFS_BBOX), width="320", height="240"))
    # the Dataset accessor names the variable; explicit options win over the selection
    other = cube.fewsmap.map("QTF", lead_time="PT36H", bbox=NAEFS_BBOX, width=320,
                             height=240)
    np.testing.assert_array_equal(pixels(other), pixels(image))


def test_a_selected_member_is_the_member_getmap_draws(demo_stores: Path,
                                                      wms: str) -> None:
    cube = open_cube(demo_stores / "ecmwf-ens-gust.zarr")
    bbox = "-2000000,4500000,3000000,12000000"
    for member in (7, 30):
        image = cube.fg10_6.sel(realization=member).isel(step=2).fewsmap.map(
            bbox=(-2e6, 4.5e6, 3e6, 12e6), width=200, height=300)
        valid = image.info["valid_time"]
        assert_same_map(image, getmap(wms, layers="ecmwf-ens-gust.fg10_6", crs="EPSG:3857",
                                      bbox=bbox, width="200", height="300", time=valid,
                                      dim_ensemble_member=str(member)))
    # one variable: the Dataset accessor needs no name
    assert cube.fewsmap.map(width=50).size[0] == 50


def test_a_field_read_over_http_is_drawn_by_the_services_getmap(wms: str) -> None:
    cube = open_cube(f"{wms}/zarr/naefs-mean")
    field = cube.QTF.isel(forecast_reference_time=-1).sel(step="36h")
    valid = str(np.datetime_as_string(field.valid_time.values, unit="s")) + "Z"
    assert_same_map(field.fewsmap.map(bbox=NAEFS_BBOX, width=320, height=240),
                    getmap(wms, layers="naefs-mean.QTF", time=valid, crs="EPSG:3857",
                           bbox=bbox_text(NAEFS_BBOX), width="320", height="240"))
    gust = open_cube(f"{wms}/zarr/ecmwf-ens-gust").fg10_6
    member = gust.sel(realization=7).isel(forecast_reference_time=0, step=2)
    image = member.fewsmap.map(bbox=(-2e6, 4.5e6, 3e6, 12e6), width=200, height=300)
    assert_same_map(image, getmap(wms, layers="ecmwf-ens-gust.fg10_6", crs="EPSG:3857",
                                  bbox="-2000000,4500000,3000000,12000000", width="200",
                                  height="300", time=image.info["valid_time"],
                                  dim_ensemble_member="7"))


@pytest.mark.parametrize("read", ["store", "http"])
@pytest.mark.parametrize(("variable", "style"), [("QTF", "temperature"),
                                                 ("QPF", "precipitation")])
def test_a_computed_field_takes_its_layers_style_by_name(
        demo_stores: Path, wms: str, read: str, variable: str, style: str) -> None:
    source = demo_stores / "naefs-mean.zarr" if read == "store" else f"{wms}/zarr/naefs-mean"
    field = open_cube(source)[variable].isel(forecast_reference_time=-1).sel(step="36h")
    valid = str(np.datetime_as_string(field.valid_time.values, unit="s")) + "Z"
    served = getmap(wms, layers=f"naefs-mean.{variable}", time=valid, crs="EPSG:3857",
                    bbox=bbox_text(NAEFS_BBOX), width="320", height="240")
    computed = field * 1  # the stored values, but no longer drawn from the store
    drawn = computed.fewsmap.map(style=style, bbox=NAEFS_BBOX, width=320, height=240)
    np.testing.assert_array_equal(pixels(drawn), pixels(served))
    if style == "temperature":  # unnamed, its attributes name the quantity: the same classes
        own = computed.fewsmap.map(bbox=NAEFS_BBOX, width=320, height=240)
        np.testing.assert_array_equal(pixels(own), pixels(served))


def lonlat_field(values: np.ndarray, name: str = "field", **attrs: str) -> xr.DataArray:
    """A field on a 1° lon/lat grid over 0..(n-1)°E, 40..(m-1+40)°N, north row first."""
    rows, cols = values.shape
    return xr.DataArray(values, name=name, dims=("lat", "lon"), attrs=attrs, coords={
        "lat": np.arange(rows, dtype="float64")[::-1] + 40.0,
        "lon": np.arange(cols, dtype="float64")})


@pytest.mark.parametrize("crs", ["EPSG:4326", "EPSG:3857"])
def test_a_field_held_in_memory_is_drawn_with_the_services_colours(crs: str) -> None:
    values = np.zeros((10, 20), dtype="float32")
    values[:, 10:] = 10.0
    values[0, 0] = np.nan
    image = lonlat_field(values).fewsmap.map(style="viridis", color_range=(0.0, 10.0),
                                             crs=crs, width=200)
    rgba = pixels(image)
    lut = palette_for(Style("viridis", "viridis", colormap="viridis"), (0.0, 10.0), None).lut
    middle = rgba.shape[0] // 2
    np.testing.assert_array_equal(rgba[middle, 5], lut[1])  # the low end of the scale
    np.testing.assert_array_equal(rgba[middle, -5], lut[255])  # the high end
    assert rgba[0, 0, 3] == 0  # missing: transparent
    if crs == "EPSG:4326":  # 20° × 10° of cells, edges included, at 200 pixels wide
        assert image.size == (200, 100)


def test_a_computed_field_is_drawn_from_its_values_not_from_the_store(
        demo_stores: Path) -> None:
    cube = open_cube(demo_stores / "naefs-mean.zarr")
    field = cube.QTF.isel(forecast_reference_time=-1).sel(step="36h")
    constant = field * 0 + 5  # xarray keeps the attributes, store name included
    assert constant.attrs == field.attrs
    rgba = pixels(constant.fewsmap.map(style="viridis", color_range=(0.0, 10.0), width=100))
    covered = rgba[rgba[..., 3] > 0]
    assert covered.size and (covered == covered[0]).all()  # one value, one colour
    stored = pixels(field.fewsmap.map(width=100))
    assert len(np.unique(stored.reshape(-1, 4), axis=0)) > 4  # a few classes at least


def test_a_difference_of_runs_and_an_ensemble_spread_are_drawn(demo_stores: Path) -> None:
    fmat = open_cube(demo_stores / "marfc-fmat.zarr").t.isel(step=0)
    change = fmat.isel(forecast_reference_time=-1) - fmat.isel(forecast_reference_time=-2)
    # a projected (Lambert) grid: cells placed by its CF grid mapping
    image = change.fewsmap.map(style="RdBu_r", color_range=(-5.0, 5.0), width=300)
    assert (pixels(image)[..., 3] > 0).mean() > 0.5
    gust = open_cube(demo_stores / "ecmwf-ens-gust.zarr").fg10_6
    spread = gust.isel(forecast_reference_time=0, step=2).std("realization")
    member = gust.isel(forecast_reference_time=0, step=2).sel(realization=1)
    assert not np.array_equal(pixels(spread.fewsmap.map(width=100)),
                              pixels(member.fewsmap.map(width=100)))


def test_what_cannot_be_drawn_is_refused_clearly(demo_stores: Path) -> None:
    cube = open_cube(demo_stores / "naefs-mean.zarr")
    with pytest.raises(InvalidParameterValue, match="QPF, QTF"):
        cube.fewsmap.map()
    with pytest.raises(InvalidParameterValue, match="select"):
        (cube.QTF * 1.0).fewsmap.map()  # computed, still a cube of runs and steps
    with pytest.raises(InvalidParameterValue, match="run"):
        (cube.QTF.isel(forecast_reference_time=0, step=0) * 1.0).fewsmap.map(run="latest")
    with pytest.raises(InvalidParameterValue, match="longitude/latitude"):
        xr.DataArray(np.ones((3, 4)), name="bare").fewsmap.map()
    with pytest.raises(StyleNotDefined, match="colour map"):
        lonlat_field(np.ones((3, 4))).fewsmap.map(style="not-a-colormap")
