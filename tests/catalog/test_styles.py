"""Styles users see: each sample's layer drawn in its quantity's classes and display units,
and one colour scale across the runs of a layer."""

from __future__ import annotations

import io
import shutil
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xarray as xr
from matplotlib.colors import to_rgba
from PIL import Image

from fewsmap.app.server import create_app
from fewsmap.catalog.quantities import (
    CLOUD_COVER,
    PRECIPITABLE_WATER,
    PRECIPITATION_IN,
    PRECIPITATION_RATE,
)
from fewsmap.catalog.styles import (
    Style,
    bind_units,
    continuous_variant,
    in_data_units,
    offered_styles,
)
from fewsmap.ingest import ingest
from fewsmap.settings import Settings, load_settings
from fewsmap.store.run import RunData, SourceFile
from fewsmap.store.writer import append_run
from tests.asgi_client import AppClient
from tests.synthetic import T0, lonlat_grid

WMS = "{http://www.opengis.net/wms}"
SHARED = Path("/work/shared/data")
ALR_QPF = SHARED / "usace-cumulus" / "ALR_QPF_SFC_2022040100_006.grb"
# West half of the constant fields below, east half: -20..10 and 10..40 °E.
GETMAP = {"request": "GetMap", "crs": "CRS:84", "bbox": "-20,30,40,60", "width": "60",
          "height": "30", "format": "image/png"}


def constant_halves(path: Path, name: str, attrs: dict[str, Any], west: float, east: float,
                    t0: np.datetime64 = T0) -> Path:
    """Write a run of ``name``: ``west`` on the west half of a 1° grid, ``east`` on the east."""
    lat, lon = np.arange(60.0, 29.5, -1.0), np.arange(-20.0, 40.5, 1.0)
    values = np.where(lon < 10, west, east)[None, None, :] * np.ones((1, lat.size, 1))
    step = np.array([0], "timedelta64[ns]")
    data = xr.DataArray(values.astype("float32"), dims=("step", "latitude", "longitude"),
                        coords={"step": step}, attrs=attrs)
    append_run(path, RunData(t0, {name: (data,)}, lonlat_grid(lat, lon),
                             (SourceFile("synthetic", "0" * 64, 0),), "synthetic"),
               progress=False)
    return path


def rgba(response: Any) -> np.ndarray:
    assert response.status_code == 200, response.text
    return np.asarray(Image.open(io.BytesIO(response.content)).convert("RGBA"))


def west_east(image: np.ndarray) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The colours drawn at the middle of the west and of the east half."""
    row = image.shape[0] // 2
    return tuple(image[row, 10]), tuple(image[row, -10])


def colour(hex_colour: str) -> tuple[int, ...]:
    return tuple(round(c * 255) for c in to_rgba(hex_colour))


def class_colour(breaks: tuple[float, ...], colors: tuple[str, ...],
                 value: float) -> tuple[int, ...]:
    """The colour of the class ``value`` falls in (each colour from its break up)."""
    index = int(np.searchsorted(np.asarray(breaks, dtype="float64"), value, side="right")) - 1
    assert index >= 0, f"{value} is below the first class"
    return colour(colors[index])


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> AppClient:
    stores = tmp_path_factory.mktemp("styles") / "stores"
    # precipitable water as GFS writes it (kg m-2, 5–78), and an ECMWF precipitation rate
    constant_halves(stores / "gfs.zarr", "pwat", {"units": "kg m**-2", "GRIB_shortName":
                    "pwat", "long_name": "Precipitable water"}, 7.0, 42.0)
    constant_halves(stores / "ifs.zarr", "tprate", {
        "units": "kg m**-2 s**-1", "GRIB_shortName": "tprate",
        "long_name": "Total precipitation rate"}, 1e-4, 5e-3)
    constant_halves(stores / "temp.zarr", "t2m", {"units": "K", "GRIB_shortName": "2t"},
                    273.15 - 10, 273.15 + 21)
    # two runs of one layer with different ranges: 0..10 and 10..100
    constant_halves(stores / "runs.zarr", "x", {"units": "furlong"}, 0.0, 10.0)
    constant_halves(stores / "runs.zarr", "x", {"units": "furlong"}, 10.0, 100.0,
                    T0 + np.timedelta64(6, "h"))
    return AppClient(create_app(Settings(stores_dir=stores)))


def test_precipitable_water_gets_its_own_classes(client: AppClient) -> None:
    image = rgba(client.get("/wms", params={**GETMAP, "layers": "gfs.pwat"}))
    west, east = west_east(image)
    assert west == class_colour(PRECIPITABLE_WATER.breaks, PRECIPITABLE_WATER.colors, 7.0)
    assert east == class_colour(PRECIPITABLE_WATER.breaks, PRECIPITABLE_WATER.colors, 42.0)
    assert west != east  # before: both in the 5–10 / 20–50 mm precipitation classes


def test_a_rate_in_kg_m2_s1_draws_in_mm_per_hour(client: AppClient) -> None:
    image = rgba(client.get("/wms", params={**GETMAP, "layers": "ifs.tprate"}))
    west, east = west_east(image)  # 1e-4 kg m-2 s-1 = 0.36 mm/h; 5e-3 = 18 mm/h
    assert west == class_colour(PRECIPITATION_RATE.breaks, PRECIPITATION_RATE.colors, 0.36)
    assert east == class_colour(PRECIPITATION_RATE.breaks, PRECIPITATION_RATE.colors, 18.0)
    legend = client.get("/wms", params={"request": "GetLegendGraphic", "layer": "ifs.tprate",
                                        "format": "application/json"}).json()
    assert legend["unit"] == "mm h-1"
    assert [row["lowerValue"] for row in legend["legend"]][:3] == [0.1, 0.2, 0.5]


def test_use_display_units_false_keeps_the_colours_and_shows_stored_numbers(
        client: AppClient) -> None:
    shown = {"layers": "temp.t2m"}
    celsius = rgba(client.get("/wms", params={**GETMAP, **shown}))
    kelvin = rgba(client.get("/wms", params={**GETMAP, **shown, "useDisplayUnits": "false"}))
    np.testing.assert_array_equal(celsius, kelvin)
    legend = {"request": "GetLegendGraphic", "layer": "temp.t2m", "format": "application/json"}
    display = client.get("/wms", params=legend).json()
    stored = client.get("/wms", params={**legend, "useDisplayUnits": "false"}).json()
    assert display["unit"] == "degC" and stored["unit"] == "K"
    assert [row["lowerValue"] for row in display["legend"]][:2] == [-72.0, -68.0]
    assert [row["lowerValue"] for row in stored["legend"]][:2] == pytest.approx(
        [201.15, 205.15])
    assert [row["color"] for row in display["legend"]] == \
        [row["color"] for row in stored["legend"]]


def test_a_value_has_one_colour_in_every_run(client: AppClient) -> None:
    runs = [{"layers": "runs.x", "externalForecastTime": t} for t in
            ("2026-01-01T00:00:00Z", "2026-01-01T06:00:00Z")]
    (_, ten_first), (ten_second, _) = (west_east(rgba(client.get(
        "/wms", params={**GETMAP, **run}))) for run in runs)
    assert ten_first == ten_second  # 10 is the top of the first run, the bottom of the second
    (_, auto_first), (auto_second, _) = (west_east(rgba(client.get(
        "/wms", params={**GETMAP, **run, "colorscalerange": "auto"}))) for run in runs)
    assert auto_first != auto_second  # each run its own range, only when asked


def test_colorscalerange_auto_follows_ncwms_and_a_bad_range_names_it(client: AppClient) -> None:
    legend = {"request": "GetLegendGraphic", "layer": "runs.x", "format": "application/json",
              "externalForecastTime": "2026-01-01T00:00:00Z"}
    stable = client.get("/wms", params=legend).json()["legend"]
    own = client.get("/wms", params={**legend, "colorscalerange": "auto"}).json()["legend"]
    assert (stable[0]["lowerValue"], own[0]["lowerValue"]) == (0.0, 0.0)
    assert stable[-1]["lowerValue"] > 90 and own[-1]["lowerValue"] <= 10
    bad = client.get("/wms", params={**GETMAP, "layers": "runs.x", "colorscalerange": "autumn"})
    assert bad.status_code == 400 and "min,max or auto" in bad.text


def test_configured_styles_convert_to_their_units() -> None:
    configured = Style("warm", "Warm", kind="classes", breaks=(0.0, 20.0),
                       colors=("#0000ff", "#ff0000"), units="degC")
    bound = bind_units(configured, "K")
    assert (bound.scale, bound.offset) == (1.0, -273.15)
    assert in_data_units(bound).breaks == pytest.approx((273.15, 293.15))
    rain = Style("rain", "Rain", kind="classes", breaks=(1.0,), colors=("#0000ff",), units="mm")
    assert bind_units(rain, "kg m**-2", "tp").converts is False  # 1 kg m-2 of water is 1 mm
    assert bind_units(rain, "m", "tp").scale == 1000.0


@pytest.fixture(scope="module")
def samples(ingested: Callable[[str], Path],
            tmp_path_factory: pytest.TempPathFactory) -> AppClient:
    stores = tmp_path_factory.mktemp("samples") / "stores"
    stores.mkdir()
    for name in ("naefs", "cnrfc_qpf", "gefs"):
        shutil.copytree(ingested(name), stores / f"{name}.zarr")
    ingest(stores / "serfc.zarr", [ALR_QPF], progress=False)
    return AppClient(create_app(Settings(stores_dir=stores)))


def capability_styles(client: AppClient) -> dict[str, str]:
    """Each layer's first style name, as WMS capabilities list them."""
    response = client.get("/wms", params={"service": "WMS", "request": "GetCapabilities"})
    root = ET.fromstring(response.content)
    return {layer.findtext(f"{WMS}Name", ""): layer.findtext(f"{WMS}Style/{WMS}Name", "")
            for layer in root.iter(f"{WMS}Layer") if layer.find(f"{WMS}Style") is not None}


def test_each_sample_is_published_in_its_quantity_style(samples: AppClient) -> None:
    styles = capability_styles(samples)
    assert styles["naefs.QPF"] == "precipitation"
    assert styles["naefs.QTF"] == "temperature"
    assert styles["cnrfc_qpf.QPF_SFC"] == "precipitation"
    assert styles["serfc.tp"] == "precipitation"
    assert styles["gefs.tcdc"] == "cloud_cover"  # not viridis
    assert styles["gefs.t2m"] == "temperature"
    assert styles["gefs.si10"] == "wind"
    assert styles["gefs.dswrf"] == "default"  # unknown: a continuous ramp
    # a stored ensemble spread (cell_methods standard_deviation): a ramp, not -273 °C classes
    assert styles["gefs.t2m_ens_spread"] == styles["gefs.si10_ens_spread"] == "spread"


def test_an_inch_qpf_has_inch_classes_that_show_a_trace_and_a_storm(samples: AppClient) -> None:
    legend = samples.get("/wms", params={"request": "GetLegendGraphic", "format":
                                         "application/json",
                                         "layer": "cnrfc_qpf.QPF_SFC"}).json()
    assert legend["unit"] == "in"
    lower = [row["lowerValue"] for row in legend["legend"]]
    assert lower == list(PRECIPITATION_IN.breaks)
    assert len([b for b in lower if b <= 2.6]) >= 10  # a 2.6-inch storm spans ten classes
    image = rgba(samples.get("/wms", params={
        "request": "GetMap", "layers": "cnrfc_qpf.QPF_SFC", "crs": "CRS:84",
        "bbox": "-126,31,-112,45", "width": "400", "height": "400", "format": "image/png",
        "time": "2022-12-10T12:00:00Z"}))  # the 6 h holding the storm's 2.62 in
    drawn = {tuple(c) for c in image.reshape(-1, 4) if c[3]}
    trace = colour(PRECIPITATION_IN.colors[0])  # 0.01–0.1 in: drawn, not invisible
    storm = class_colour(PRECIPITATION_IN.breaks, PRECIPITATION_IN.colors, 2.6)
    assert trace in drawn and storm in drawn and len(drawn) >= 10


def test_cloud_cover_is_drawn_in_greys(samples: AppClient) -> None:
    legend = samples.get("/wms", params={"request": "GetLegendGraphic", "layer": "gefs.tcdc",
                                         "format": "application/json"}).json()
    assert legend["unit"] == "%"
    assert [row["color"] for row in legend["legend"]] == list(CLOUD_COVER.colors)
    assert all(len({row["color"][i:i + 2] for i in (1, 3, 5)}) == 1 for row in legend["legend"])


def test_a_kg_m2_qpf_stays_in_millimetre_classes(samples: AppClient) -> None:
    legend = samples.get("/wms", params={"request": "GetLegendGraphic", "layer": "serfc.tp",
                                         "format": "application/json"}).json()
    assert legend["unit"] == "mm"
    assert legend["legend"][0]["lowerValue"] == 0.1


def test_getfeatureinfo_values_follow_use_display_units(client: AppClient) -> None:
    query = {**GETMAP, "request": "GetFeatureInfo", "layers": "temp.t2m",
             "query_layers": "temp.t2m", "info_format": "application/json", "i": "10",
             "j": "15"}
    shown = client.get("/wms", params=query)
    assert shown.status_code == 200, shown.text
    stored = client.get("/wms", params={**query, "useDisplayUnits": "false"}).json()
    [celsius], [kelvin] = shown.json()["features"], stored["features"]
    assert (celsius["properties"]["value"], celsius["properties"]["units"]) == \
        (pytest.approx(-10.0, abs=1e-4), "degC")
    assert (kelvin["properties"]["value"], kelvin["properties"]["units"]) == \
        (pytest.approx(263.15, abs=1e-4), "K")


def test_a_configured_layer_picks_the_library_wind_in_m_s(tmp_path: Path) -> None:
    stores = tmp_path / "stores"
    constant_halves(stores / "wind.zarr", "si10", {"units": "m/s", "long_name": "Wind Speed"},
                    3.0, 12.0)
    config = tmp_path / "fewsmap.toml"
    config.write_text('[[layers]]\nid = "wind"\nstore = "wind"\nvariable = "si10"\n'
                      'styles = ["wind_ms", "wind_kmh"]\n\n[[styles]]\nid = "wind_kmh"\n'
                      'units = "km h-1"\nbreaks = [0, 36]\ncolors = ["#0000ff", "#ff0000"]\n')
    client = AppClient(create_app(Settings(stores_dir=stores, config_file=config)))
    legend = {"request": "GetLegendGraphic", "layer": "wind", "format": "application/json"}
    metres = client.get("/wms", params=legend).json()
    assert metres["unit"] == "m s-1" and metres["legend"][0]["lowerValue"] == 2.5
    west, east = west_east(rgba(client.get("/wms", params={**GETMAP, "layers": "wind",
                                                            "styles": "wind_kmh"})))
    assert (west, east) == (colour("#0000ff"), colour("#ff0000"))  # 10.8 and 43.2 km/h


def test_a_configured_range_pins_the_colours_in_every_answer(tmp_path: Path) -> None:
    """A style's ``range`` is what maps, legends, TileJSON and GetStyles all say, whatever
    runs arrive (issue #16); without it the range is the layer's, rounded."""
    stores = tmp_path / "stores"
    constant_halves(stores / "runs.zarr", "x", {"units": "furlong"}, 2.5, 25.0)
    constant_halves(stores / "runs.zarr", "x", {"units": "furlong"}, -40.0, 70.0,
                    T0 + np.timedelta64(6, "h"))
    config = tmp_path / "fewsmap.toml"
    config.write_text('[[styles]]\nid = "pinned"\ncolormap = "viridis"\nrange = [0, 20]\n\n'
                      '[[layers]]\nid = "x"\nstore = "runs"\nvariable = "x"\n'
                      'styles = ["pinned"]\n')
    client = AppClient(create_app(load_settings(config, environ={}, stores_dir=stores)))
    about = client.get("/tiles/x/tilejson.json").json()["fewsmap"]
    assert about["valueRange"] == [0.0, 20.0]
    legend = client.get("/wms", params={"request": "GetLegendGraphic", "layer": "x",
                                        "format": "application/json"}).json()["legend"]
    assert (legend[0]["lowerValue"], legend[-1]["lowerValue"]) == pytest.approx((0.0, 20.0),
                                                                                 abs=0.1)
    sld = ET.fromstring(client.get("/wms", params={"request": "GetStyles",
                                                   "layers": "x"}).content)
    quantities = [float(e.get("quantity", "nan")) for e in sld.iter(
        "{http://www.opengis.net/sld}ColorMapEntry")]
    assert quantities[0] == 0.0 and quantities[-1] == pytest.approx(20.0, abs=0.1)
    first, second = (rgba(client.get("/wms", params={
        **GETMAP, "layers": "x", "externalForecastTime": t}))
        for t in ("2026-01-01T00:00:00Z", "2026-01-01T06:00:00Z"))
    assert west_east(first)[0] != west_east(second)[0]  # 2.5 and -40 (below: first colour)
    assert west_east(first)[1] == west_east(second)[1]  # 25 and 70 (above: last colour)


# Styles offered beside the default (issue #16): one list per layer, every style drawable.
OWS = "{http://www.opengis.net/ows/1.1}"
WMTS = "{http://www.opengis.net/wmts/1.0}"
SLD = "{http://www.opengis.net/sld}"


def test_a_layer_offers_its_library_styles_a_continuous_variant_and_ramps() -> None:
    kelvin = {"units": "K", "GRIB_shortName": "2t"}
    assert [s.name for s in offered_styles("t2m", kelvin)] == [
        "temperature", "temperature_continuous", "viridis", "cividis", "magma"]
    assert all(s.units == "degC" and s.offset == -273.15 for s in offered_styles("t2m", kelvin))
    # log-like classes get no continuous variant; the library's other scheme is offered
    assert [s.name for s in offered_styles("tp", {"units": "kg m**-2"})] == [
        "precipitation", "precipitation_in", "viridis", "cividis", "magma"]
    assert [s.name for s in offered_styles("x", {"units": "furlong"})] == [
        "default", "viridis", "cividis", "magma"]
    continuous = continuous_variant(offered_styles("tcc", {"units": "%",
                                                           "GRIB_shortName": "tcc"})[0])
    assert continuous is not None and continuous.color_map_type == "ramp"
    # colours at the breaks, fading out below the first break, as classes draw nothing there
    assert [(e.quantity, e.opacity) for e in continuous.color_map[:2]] == [(0.0, 0.0),
                                                                          (10.0, 1.0)]
    assert [e.color for e in continuous.color_map[1:]] == list(CLOUD_COVER.colors)


@pytest.fixture(scope="module")
def everything(samples: AppClient, demo_stores: Path, ingested: Callable[[str], Path],
               tmp_path_factory: pytest.TempPathFactory) -> AppClient:
    """The demo stores and real samples (NAEFS, CNRFC QPF, GEFS, multi-parameter GRIB)."""
    stores = tmp_path_factory.mktemp("everything") / "stores"
    stores.mkdir()
    for store in demo_stores.iterdir():
        (stores / store.name).symlink_to(store)
    for name in ("naefs", "cnrfc_qpf", "gefs", "multi_param"):
        if not (stores / f"{name}.zarr").exists():
            (stores / f"{name}.zarr").symlink_to(ingested(name))
    return AppClient(create_app(Settings(stores_dir=stores)))


def listed_styles(client: AppClient) -> dict[str, dict[str, list[str]]]:
    """Each layer's style names as WMS XML, FEWS JSON and WMTS capabilities and GetStyles
    list them."""
    xml = ET.fromstring(client.get("/wms", params={"request": "GetCapabilities"}).content)
    fews = client.get("/wms", params={"request": "GetCapabilities",
                                      "format": "application/json"}).json()
    wmts = ET.fromstring(client.get("/wmts", params={"service": "WMTS",
                                                     "request": "GetCapabilities"}).content)
    found: dict[str, dict[str, list[str]]] = {}
    for layer in xml.iter(f"{WMS}Layer"):
        if layer.find(f"{WMS}Style") is not None:
            found.setdefault(layer.findtext(f"{WMS}Name", ""), {})["xml"] = [
                s.findtext(f"{WMS}Name", "") for s in layer.findall(f"{WMS}Style")]
    for entry in fews["layers"]:
        found.setdefault(entry["name"], {})["json"] = [s["name"] for s in entry["styles"]]
    for layer in wmts.iter(f"{WMTS}Layer"):
        found.setdefault(layer.findtext(f"{OWS}Identifier", ""), {})["wmts"] = [
            s.findtext(f"{OWS}Identifier", "") for s in layer.findall(f"{WMTS}Style")]
    for name in found:
        sld = ET.fromstring(client.get("/wms", params={"request": "GetStyles",
                                                       "layers": name}).content)
        found[name]["getstyles"] = [s.findtext(f"{SLD}Name", "")
                                    for s in sld.iter(f"{SLD}UserStyle")]
    return found


def test_every_listed_style_of_every_layer_draws_and_has_a_legend(everything: AppClient
                                                                   ) -> None:
    fews = {e["name"]: e for e in everything.get("/wms", params={
        "request": "GetCapabilities", "format": "application/json"}).json()["layers"]}
    checked = 0
    for name, lists in listed_styles(everything).items():
        if name.endswith(":change"):
            assert lists["xml"] == lists["json"] == lists["wmts"] == ["change"]
            continue
        styles = lists["xml"]
        assert lists["json"] == lists["wmts"] == lists["getstyles"] == styles, name
        assert {"viridis", "cividis", "magma"} <= set(styles), name
        entry = fews[name]
        box = entry["boundingBox"]
        times = entry.get("times") or [None]
        for style in styles:
            drawn = False
            for when in dict.fromkeys((times[0], times[len(times) // 2], times[-1])):
                response = everything.get("/wms", params={
                    "request": "GetMap", "layers": name, "styles": style,
                    "crs": "EPSG:3857", "width": "64", "height": "64", "format": "image/png",
                    "bbox": ",".join(box[k] for k in ("minx", "miny", "maxx", "maxy")),
                    **({"time": when} if when else {})})
                drawn = drawn or bool(rgba(response)[..., 3].any())
            assert drawn, f"{name} drew nothing in style {style}"
            for image_format in ("image/png", "application/json"):
                legend = everything.get("/wms", params={
                    "request": "GetLegendGraphic", "layer": name, "style": style,
                    "format": image_format})
                assert legend.status_code == 200, (name, style, legend.text[:300])
            checked += 1
    assert checked > 100
