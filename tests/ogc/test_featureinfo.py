"""GetFeatureInfo over ELEVATION lists and ranges (a vertical profile), through the real app,
checked against the store read with xarray; and the capabilities saying which dimensions take
several values."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xarray as xr
from lxml import etree
from lxml import html as lxml_html

from fewsmap import open_cube
from fewsmap.app.server import create_app
from fewsmap.settings import Settings
from fewsmap.store.run import RunData, SourceFile
from fewsmap.store.writer import append_run
from tests.asgi_client import AppClient
from tests.synthetic import T0, lonlat_grid, sparse_levels_store
from tests.viewer.levels_store import LEVEL_DIM, levels_store

SCHEMAS = Path(__file__).resolve().parent.parent / "schemas" / "ogc"
OGC = "{http://www.opengis.net/ogc}"
WMS = "{http://www.opengis.net/wms}"
FEWSMAP = "{urn:fewsmap:featureinfo}"
LAYER = "lv.t"
RUN = "2026-01-01T06:00:00Z"  # the latest run: valid times 06, 12 and 18 h
LON, LAT = 5.0, 50.0  # a cell centre of the 1° grid


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Store ``lv`` of ``t`` on 500, 850 and 1000 hPa (`tests.viewer.levels_store`), and
    ``sparse``, whose 850 hPa holds no data (`tests.synthetic.sparse_levels_store`)."""
    folder = tmp_path_factory.mktemp("profile") / "stores"
    levels_store(folder / "lv.zarr")
    sparse_levels_store(folder / "sparse.zarr")
    members_levels_store(folder / "ens.zarr")
    return folder


def members_levels_store(path: Path) -> Path:
    """One run of ``t`` on a 2 × 2 grid, steps 0 and 6 h, 4 members on 1000, 850 and 500 hPa:
    member m at level p and step s holds 10 m + p / 100 + s / 6 h, cubed (so that a mean of
    members differs from the middle member's value)."""
    grid = lonlat_grid(np.array([1.0, 0.0]), np.array([0.0, 1.0]))
    members, levels, steps = np.arange(4), np.array([1000.0, 850.0, 500.0]), np.array([0, 6])
    base = (10.0 * members[None, :, None] + levels[None, None, :] / 100
            + steps[:, None, None] / 6) ** 3
    values = np.broadcast_to(base[..., None, None], (2, 4, 3, 2, 2)).astype("float32")
    field = xr.DataArray(values, dims=("step", "realization", LEVEL_DIM, *grid.dims), coords={
        "step": steps.astype("timedelta64[h]").astype("timedelta64[ns]"),
        "realization": members,
        LEVEL_DIM: xr.DataArray(levels, dims=LEVEL_DIM, attrs={"units": "hPa", "axis": "Z"})},
        attrs={"units": "K"})
    append_run(path, RunData(T0, {"t": (field,)}, grid,
                             (SourceFile("synthetic", "0" * 64, 0),), "synthetic"),
               progress=False)
    return path


@pytest.fixture(scope="module")
def client(stores: Path) -> AppClient:
    return AppClient(create_app(Settings(stores_dir=stores)))


@pytest.fixture(scope="module")
def cube(stores: Path) -> xr.DataArray:
    """``t`` of the latest run at the queried cell: (step, level)."""
    with open_cube(stores / "lv.zarr") as dataset:
        return dataset["t"].sel(forecast_reference_time=np.datetime64(RUN[:-1]),
                                latitude=LAT, longitude=LON).load()


def expected(cube: xr.DataArray, time: str, level: float) -> float:
    valid = cube["valid_time"].values.astype("datetime64[s]")
    step = int(np.flatnonzero(valid == np.datetime64(time[:-1], "s"))[0])
    return float(cube.isel(step=step).sel({LEVEL_DIM: level}).values)


def feature_info(client: AppClient, info_format: str = "application/json",
                 layer: str = LAYER, at: tuple[float, float] = (LON, LAT),
                 **extra: str) -> Any:
    """GetFeatureInfo at the centre of the one pixel of a 1° box around ``at``, in the
    stored units (``useDisplayUnits=false``) that the cube's values are compared in."""
    lon, lat = at
    extra = {"useDisplayUnits": "false", **extra}
    return client.get("/wms", params={
        "service": "WMS", "version": "1.3.0", "request": "GetFeatureInfo", "layers": layer,
        "query_layers": layer, "styles": "", "crs": "CRS:84",
        "bbox": f"{lon - 0.5},{lat - 0.5},{lon + 0.5},{lat + 0.5}", "width": "1",
        "height": "1", "i": "0", "j": "0", "info_format": info_format, **extra})


def geojson(client: AppClient, **extra: str) -> list[dict[str, Any]]:
    response = feature_info(client, **extra)
    assert response.status_code == 200, response.text
    return [f["properties"] for f in response.json()["features"]]


def exception(response: Any) -> tuple[str, str]:
    assert response.status_code == 400, response.text
    report = etree.fromstring(response.content).find(f"{OGC}ServiceException")
    assert report is not None
    return report.get("code"), report.text


@pytest.mark.parametrize(("elevation", "levels"), [
    ("850,500,1000", [500, 850, 1000]),  # the layer's order, whatever the order asked
    ("1000/700", [850, 1000]),  # a range: the levels inside it
    ("700/1000", [850, 1000]),
    ("500,850/1000", [500, 850, 1000]),  # values and ranges mixed
    ("850,850.0", [850]),  # one level named twice is read once
])
def test_a_level_list_or_range_answers_each_level(client: AppClient, cube: xr.DataArray,
                                                 elevation: str, levels: list[int]) -> None:
    time = "2026-01-01T12:00:00Z"
    features = geojson(client, time=time, elevation=elevation)
    assert [f["elevation"] for f in features] == levels
    assert [f["value"] for f in features] == pytest.approx(
        [expected(cube, time, level) for level in levels], rel=1e-6)
    assert {(f["time"], f["reference_time"], f["elevation_units"]) for f in features} == {
        (time, RUN, "hPa")}


def test_a_time_list_with_a_level_range_answers_time_by_level(client: AppClient,
                                                              cube: xr.DataArray) -> None:
    times = ["2026-01-01T06:00:00Z", "2026-01-01T18:00:00Z"]
    features = geojson(client, time=",".join(times), elevation="1000/500")
    asked = [(t, level) for t in times for level in (500, 850, 1000)]  # time-major
    assert [(f["time"], f["elevation"]) for f in features] == asked
    assert [f["value"] for f in features] == pytest.approx(
        [expected(cube, t, level) for t, level in asked], rel=1e-6)
    # Levels and times really differ here: the answer is not one value repeated.
    assert len({f["value"] for f in features}) == len(asked)


def test_every_info_format_lists_each_level(client: AppClient, cube: xr.DataArray) -> None:
    time = "2026-01-01T12:00:00Z"
    levels = [500, 850, 1000]
    values = [expected(cube, time, level) for level in levels]
    plain = feature_info(client, "text/plain", time=time, elevation="500/1000").text
    lines = plain.splitlines()
    assert [int(line[12:]) for line in lines if line.startswith("elevation = ")] == levels
    assert [float(line[8:]) for line in lines if line.startswith("value = ")] == \
        pytest.approx(values, rel=1e-6)
    page = lxml_html.fromstring(feature_info(client, "text/html", time=time,
                                             elevation="500/1000").content)
    heads = [th.text_content() for th in page.iter("{*}th")]
    rows = [[td.text_content() for td in tr.iter("{*}td")] for tr in page.iter("{*}tr")][1:]
    assert [int(r[heads.index("elevation")]) for r in rows] == levels
    assert [float(r[heads.index("value")]) for r in rows] == pytest.approx(values, rel=1e-6)
    for info_format in ("application/vnd.ogc.gml", "application/vnd.ogc.gml/3.1.1"):
        response = feature_info(client, info_format, time=time, elevation="500/1000")
        document = etree.fromstring(response.content)
        assert [int(e.text) for e in document.iter(f"{FEWSMAP}elevation")] == levels
        assert [float(e.text) for e in document.iter(f"{FEWSMAP}value")] == pytest.approx(
            values, rel=1e-6)
    for info_format in ("application/json", "json"):
        body = feature_info(client, info_format, time=time, elevation="500/1000").json()
        ids = [f["id"] for f in body["features"]]
        assert len(set(ids)) == 3 and ids[0].endswith("/elevation=500")


@pytest.mark.parametrize("member", ["2", "mean", "p90"])
def test_a_profile_of_a_member_or_an_ensemble_statistic(client: AppClient, stores: Path,
                                                        member: str) -> None:
    response = feature_info(client, layer="ens.t", at=(0.0, 0.0), time="2026-01-01T06:00:00Z",
                            elevation="1000/500", dim_ensemble_member=member)
    assert response.status_code == 200, response.text
    features = [f["properties"] for f in response.json()["features"]]
    with open_cube(stores / "ens.zarr") as dataset:
        cell = dataset["t"].isel(forecast_reference_time=0, step=1).sel(latitude=0.0,
                                                                         longitude=0.0)
        members = cell.sortby(LEVEL_DIM).values.astype("float64")  # (member, level)
    expected_values = {"2": members[2], "mean": members.mean(axis=0),
                       "p90": np.percentile(members, 90, axis=0)}[member]
    assert [f["elevation"] for f in features] == [500, 850, 1000]
    assert {f["member"] for f in features} == {int(member) if member.isdigit() else member}
    assert [f["value"] for f in features] == pytest.approx(expected_values.tolist(), rel=1e-5)


def test_feature_count_caps_the_features_of_times_by_levels(client: AppClient) -> None:
    features = geojson(client, time="2026-01-01T06:00:00Z/2026-01-01T18:00:00Z",
                       elevation="500/1000", feature_count="4")
    assert [(f["time"][11:13], f["elevation"]) for f in features] == [
        ("06", 500), ("06", 850), ("06", 1000), ("12", 500)]
    assert len(geojson(client, elevation="500/1000", feature_count="2")) == 2


def test_one_level_answers_as_before(client: AppClient, cube: xr.DataArray) -> None:
    time = "2026-01-01T12:00:00Z"
    features = geojson(client, time=time, elevation="850")
    assert [(f["elevation"], f["value"]) for f in features] == [
        (850, pytest.approx(expected(cube, time, 850), rel=1e-6))]
    default = geojson(client, time=time)  # the level nearest the surface
    assert [f["elevation"] for f in default] == [1000]


@pytest.mark.parametrize(("elevation", "says"), [
    ("850,925,500", "elevation value 925 is not available for layer 'lv.t'"),
    ("600/700", "elevation value 600/700 holds no level for layer 'lv.t'"),
    ("850,600/700", "elevation value 600/700 holds no level"),
])
def test_a_level_the_layer_lacks_is_refused_naming_the_levels(client: AppClient,
                                                              elevation: str, says: str) -> None:
    code, text = exception(feature_info(client, time="2026-01-01T12:00:00Z",
                                        elevation=elevation))
    assert code == "InvalidDimensionValue"
    assert says in text and text.endswith("available: 500,850,1000")


def test_a_listed_level_without_data_is_refused_not_left_out(client: AppClient) -> None:
    # As a listed time without data (issue #13 item 7): 850 hPa is in the cube, empty.
    for elevation in ("1000,850", "850"):
        code, text = exception(feature_info(client, layer="sparse.t", at=(0.0, 0.0),
                                            elevation=elevation))
        assert code == "InvalidDimensionValue"
        assert text == ("elevation value 850 is not available for layer 'sparse.t' in run "
                        "2026-01-01T00:00:00Z; available: 500,1000")
    response = feature_info(client, layer="sparse.t", at=(0.0, 0.0), elevation="1000/400")
    assert [(f["properties"]["elevation"], f["properties"]["value"])
            for f in response.json()["features"]] == [(500, 3.0), (1000, 1.0)]


@pytest.mark.parametrize(("elevation", "says"), [
    ("850,abc", "ELEVATION='abc' is not a number"),
    ("1000/850/50", "ELEVATION item '1000/850/50' has 2 '/'"),
    ("850,,500", "ELEVATION='' is not a number"),
    ("nan/500", "ELEVATION='nan' is not a finite number"),
])
def test_a_malformed_level_list_is_refused(client: AppClient, elevation: str,
                                           says: str) -> None:
    code, text = exception(feature_info(client, elevation=elevation))
    assert code == "InvalidDimensionValue" and says in text


def test_the_value_limit_counts_times_by_levels_before_reading(stores: Path) -> None:
    limited = AppClient(create_app(Settings(stores_dir=stores, max_point_values=5)))
    times = "2026-01-01T06:00:00Z,2026-01-01T12:00:00Z"
    code, text = exception(feature_info(limited, time=times, elevation="500/1000"))
    assert code == "InvalidParameterValue"
    assert "reads 6 values; at most 5" in text and "ELEVATION" in text
    assert len(geojson(limited, time=times, elevation="500/850")) == 4


def test_getmap_still_draws_one_level(client: AppClient) -> None:
    response = client.get("/wms", params={
        "service": "WMS", "version": "1.3.0", "request": "GetMap", "layers": LAYER,
        "styles": "", "crs": "CRS:84", "bbox": "0,40,10,50", "width": "10", "height": "10",
        "format": "image/png", "elevation": "850,500"})
    assert exception(response) == ("InvalidDimensionValue",
                                   "ELEVATION='850,500' is not a number")


def test_capabilities_say_elevation_takes_several_values(client: AppClient) -> None:
    os.environ["XML_CATALOG_FILES"] = str(SCHEMAS / "catalog.xml")
    schema = etree.XMLSchema(etree.parse(str(SCHEMAS / "sld/1.1.0/sld_capabilities.xsd")))
    document = etree.fromstring(client.get("/wms", params={
        "service": "WMS", "request": "GetCapabilities", "version": "1.3.0"}).content)
    assert schema.validate(document), schema.error_log
    layers = [layer for layer in document.iter(f"{WMS}Layer")
              if layer.findtext(f"{WMS}Name") in (LAYER, "sparse.t", "ens.t")]
    assert len(layers) == 3
    for layer in layers:
        dims = {d.get("name"): d.get("multipleValues") for d in layer.findall(f"{WMS}Dimension")}
        assert dims.get("elevation") == "1"
        assert (dims["time"], dims["reference_time"]) == ("1", "0")
        assert dims.get("ensemble_member", "0") == "0"  # one member (or statistic) at a time
    ensemble = next(layer for layer in layers if layer.findtext(f"{WMS}Name") == "ens.t")
    assert "ensemble_member" in {d.get("name") for d in ensemble.findall(f"{WMS}Dimension")}


# --- units: the UDUNITS spelling legends use, in every INFO_FORMAT -----------------------

GRIB_UNITS = {"prate": ("kg m**-2 s**-1", 0.001), "t2m": ("K", 283.15),
              "spec": ("J kg**-1", 5.0)}  # the last a quantity without display units


@pytest.fixture(scope="module")
def grib_units(tmp_path_factory: pytest.TempPathFactory) -> AppClient:
    """A store whose units attributes are spelled as ecCodes writes them."""
    stores = tmp_path_factory.mktemp("grib-units") / "stores"
    lat, lon = np.arange(52.0, 47.5, -1.0), np.arange(3.0, 7.5, 1.0)
    step = np.array([0], "timedelta64[h]").astype("timedelta64[ns]")
    fields = {name: (xr.DataArray(np.full((1, lat.size, lon.size), value, "float32"),
                                  dims=("step", "latitude", "longitude"),
                                  coords={"step": step}, attrs={"units": units}),)
              for name, (units, value) in GRIB_UNITS.items()}
    append_run(stores / "grib.zarr", RunData(T0, fields, lonlat_grid(lat, lon),
                                            (SourceFile("synthetic", "0" * 64, 0),),
                                            "synthetic"), progress=False)
    return AppClient(create_app(Settings(stores_dir=stores)))


def units_written(response: Any, info_format: str) -> str:
    """The units of the one feature of a GetFeatureInfo answer, read as each format writes
    them."""
    assert response.status_code == 200, response.text
    if info_format == "application/json":
        [feature] = response.json()["features"]
        return str(feature["properties"]["units"])
    if info_format == "text/plain":
        [line] = [t for t in response.text.splitlines() if t.startswith("units = ")]
        return line.removeprefix("units = ")
    if info_format == "text/html":
        caption = lxml_html.fromstring(response.content).find(".//caption").text_content()
        return caption.split(", ", 1)[1].split("):", 1)[0]  # "<layer> (<variable>, <units>)"
    [units] = etree.fromstring(response.content).iter(f"{FEWSMAP}units")
    return str(units.text)


@pytest.mark.parametrize("info_format", ["application/json", "text/plain", "text/html",
                                         "application/vnd.ogc.gml",
                                         "application/vnd.ogc.gml/3.1.1"])
@pytest.mark.parametrize(("variable", "display", "stored"), [
    ("prate", "mm h-1", "kg m-2 s-1"),
    ("t2m", "degC", "K"),
    ("spec", "J kg-1", "J kg-1"),
])
def test_units_are_written_as_the_legend_writes_them(grib_units: AppClient, info_format: str,
                                                     variable: str, display: str,
                                                     stored: str) -> None:
    layer = f"grib.{variable}"
    legend = grib_units.get("/wms", params={"request": "GetLegendGraphic", "layer": layer,
                                            "format": "application/json"}).json()
    assert legend["unit"] == display
    shown = feature_info(grib_units, info_format, layer, useDisplayUnits="true")
    assert units_written(shown, info_format) == display
    as_stored = feature_info(grib_units, info_format, layer)  # useDisplayUnits=false
    assert units_written(as_stored, info_format) == stored
