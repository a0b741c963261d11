"""Ensemble statistics as values of the ensemble dimension, through the real app (issue #15).

Every front (GetMap and its raw exports, tiles, GetFeatureInfo, legends, /api/timeseries,
EDR) answers ``mean``, ``median``, ``min``, ``max``, ``std``, ``p<NN>``, ``above:<X>`` and
``below:<X>`` with what numpy computes over the members of the cube: the real ECMWF ENS gusts
(50 members) and GEFS (21 members), a lagged ensemble, ragged and single-member cubes.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xarray as xr
from lxml import etree
from PIL import Image

from fewsmap import open_cube
from fewsmap.app.maps import export_cost, maps_cost
from fewsmap.app.server import create_app
from fewsmap.catalog import Catalog
from fewsmap.ogc.getmap import parse_getmap
from fewsmap.params import Params
from fewsmap.products.ensemble import listed_statistics
from fewsmap.resolve.maps import resolve_maps
from fewsmap.settings import Settings
from fewsmap.store.run import RunData, SourceFile
from fewsmap.store.writer import append_run
from fewsmap.time.instants import format_time
from tests.asgi_client import AppClient
from tests.synthetic import (
    T0,
    lagged_ensemble_store,
    lagged_members,
    lagged_run_time,
    lagged_steps,
    lonlat_grid,
    lonlat_store,
    ragged_members_store,
)

WMS = "{http://www.opengis.net/wms}"
OWS = "{http://www.opengis.net/ows/1.1}"
WMTS = "{http://www.opengis.net/wmts/1.0}"
GUST = "gust"  # the ECMWF ENS gusts, configured with warning levels
CONFIG = """
[catalog]
auto_layers = true

[[layers]]
id = "gust"
store = "wgust"
variable = "fg10_6"
thresholds = [15, "below:5", 20.5]

[[layers]]
id = "wind"
store = "single"
vector = ["u", "v"]
"""
# Each statistic and what numpy computes over the member axis (0) of a field.
NUMPY: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "mean": lambda v: np.nanmean(v, axis=0),
    "median": lambda v: np.nanmedian(v, axis=0),
    "min": lambda v: np.nanmin(v, axis=0),
    "max": lambda v: np.nanmax(v, axis=0),
    "std": lambda v: np.nanstd(v, axis=0),
    "p10": lambda v: np.nanpercentile(v, 10, axis=0),
    "p90": lambda v: np.nanpercentile(v, 90, axis=0),
    "p33": lambda v: np.nanpercentile(v, 33, axis=0),
    "above:15": lambda v: 100.0 * (v > 15).sum(axis=0) / (~np.isnan(v)).sum(axis=0),
    "below:5": lambda v: 100.0 * (v < 5).sum(axis=0) / (~np.isnan(v)).sum(axis=0),
    "above:7.25": lambda v: 100.0 * (v > 7.25).sum(axis=0) / (~np.isnan(v)).sum(axis=0),
}


def single_member_store(path: Path) -> Path:
    """One run of ``x`` on a 3 × 4 grid with one member (label 5): value = row + col / 10;
    ``u`` and ``v`` hold the same values."""
    grid = lonlat_grid(np.array([2.0, 1.0, 0.0]), np.array([0.0, 1.0, 2.0, 3.0]))
    rows, cols = np.meshgrid(np.arange(3), np.arange(4), indexing="ij")
    values = (rows + cols / 10).astype("float32")[None, None]
    field = xr.DataArray(values, dims=("step", "realization", *grid.dims), coords={
        "step": np.array([0], "timedelta64[ns]"), "realization": [5]}, attrs={"units": "mm"})
    wind = field.assign_attrs(units="m s-1")
    sources = (SourceFile("synthetic", "0" * 64, 0),)
    append_run(path, RunData(T0, {"x": (field,), "u": (wind,), "v": (wind,)}, grid, sources,
                             "synthetic"), progress=False)
    return path


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory, ingested: Callable[[str], Path]) -> Path:
    folder = tmp_path_factory.mktemp("ensemble") / "stores"
    folder.mkdir()
    for name in ("wgust", "gefs"):
        (folder / f"{name}.zarr").symlink_to(ingested(name))
    lagged_ensemble_store(folder / "lagged.zarr")
    ragged_members_store(folder / "ragged.zarr")
    single_member_store(folder / "single.zarr")
    lonlat_store(folder / "grid.zarr")  # no members, and a vector layer
    return folder


@pytest.fixture(scope="module")
def client(stores: Path) -> AppClient:
    config = stores.parent / "fewsmap.toml"
    config.write_text(CONFIG)
    return AppClient(create_app(Settings(stores_dir=stores, config_file=config)))


def members_of(stores: Path, store: str, variable: str, step: int) -> xr.DataArray:
    """The members × lat × lon field of the latest run at ``step``, as stored."""
    with open_cube(stores / f"{store}.zarr") as cube:
        return cube[variable].isel(forecast_reference_time=-1, step=step).load()


def valid_time(stores: Path, store: str, step: int) -> str:
    with open_cube(stores / f"{store}.zarr") as cube:
        return format_time(np.datetime64(cube["valid_time"].values[-1, step], "s"))


def expected(label: str, members: np.ndarray, axis: int = 0) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return NUMPY[label](np.moveaxis(members, axis, 0)).astype(np.float32)


def load_netcdf(content: bytes, folder: Path) -> xr.Dataset:
    path = folder / "answer.nc"
    path.write_bytes(content)
    return xr.load_dataset(path)


def export(client: AppClient, folder: Path, layer: str, member: str, time: str,
           bbox: str = "-180,-90,180,90") -> xr.Dataset:
    """The raw values GetMap answers for a member or statistic (CF NetCDF export)."""
    response = client.get("/wms", params={
        "request": "GetMap", "layers": layer, "crs": "CRS:84", "bbox": bbox, "width": "64",
        "height": "64", "format": "application/x-netcdf", "time": time,
        "dim_ensemble_member": member})
    assert response.status_code == 200, response.text
    return load_netcdf(response.content, folder)


@pytest.mark.parametrize("label", list(NUMPY))
def test_getmap_values_of_each_statistic_equal_numpy_over_the_ecmwf_members(
        client: AppClient, stores: Path, label: str, tmp_path: Path) -> None:
    members = members_of(stores, "wgust", "fg10_6", 1)
    field = export(client, tmp_path, GUST, label, valid_time(stores, "wgust", 1))
    assert field["realization"].item() == label
    got = field["fg10_6"]
    want = xr.DataArray(expected(label, members.values), dims=members.dims[1:],
                        coords={d: members[d] for d in members.dims[1:]})
    want = want.sel(latitude=got["latitude"], longitude=got["longitude"])
    assert got.size == members[0].size  # the whole grid
    np.testing.assert_array_equal(got.values, want.values)


def test_the_mean_is_xarrays_and_ncep_publishes_the_same_within_its_packing(
        client: AppClient, stores: Path, tmp_path: Path) -> None:
    members = members_of(stores, "gefs", "t2m", 4)
    field = export(client, tmp_path, "gefs.t2m", "mean", valid_time(stores, "gefs", 4))["t2m"]
    by_xarray = members.mean("realization").sel(latitude=field["latitude"],
                                                longitude=field["longitude"])
    np.testing.assert_allclose(field.values, by_xarray.values, rtol=1e-6)
    ncep = members_of(stores, "gefs", "t2m_ens_mean", 4).sel(
        latitude=field["latitude"], longitude=field["longitude"])
    np.testing.assert_allclose(field.values, ncep.values, atol=0.05)  # GRIB packing of K


@pytest.mark.parametrize("label", ["mean", "p90", "std", "above:7.25"])
def test_feature_info_gives_the_statistic_at_the_cell(client: AppClient, stores: Path,
                                                       label: str) -> None:
    members = members_of(stores, "wgust", "fg10_6", 2)
    response = client.get("/wms", params={
        "request": "GetFeatureInfo", "layers": GUST, "query_layers": GUST, "crs": "CRS:84",
        "bbox": "5,50,6,51", "width": "2", "height": "2", "i": "0", "j": "0",
        "info_format": "application/json", "time": valid_time(stores, "wgust", 2),
        "dim_ensemble_member": label, "useDisplayUnits": "false"})  # the stored m s-1
    assert response.status_code == 200, response.text
    properties = response.json()["features"][0]["properties"]
    cell = members.sel(latitude=properties["lat"], longitude=properties["lon"])
    assert properties["member"] == label
    assert properties["units"] == ("%" if label.startswith("above") else "m s-1")
    assert np.float32(properties["value"]) == expected(label, cell.values)


@pytest.mark.parametrize("label", ["mean", "median", "p10", "below:290"])
def test_time_series_of_a_statistic_equal_numpy_at_every_step(client: AppClient,
                                                              stores: Path, label: str) -> None:
    NUMPY.setdefault("below:290",
                     lambda v: 100.0 * (v < 290).sum(axis=0) / (~np.isnan(v)).sum(axis=0))
    response = client.get("/api/timeseries", params={"layer": "gefs.t2m", "x": "-110",
                                                     "y": "32.5", "member": label,
                                                     "useDisplayUnits": "false"})
    assert response.status_code == 200, response.text
    body = response.json()
    [series] = body["series"]
    assert series["member"] == label
    assert body["units"] == ("%" if label.startswith("below") else "K")
    with open_cube(stores / "gefs.zarr") as cube:
        cell = cube["t2m"].isel(forecast_reference_time=-1).sel(latitude=32.5,
                                                                longitude=-110.0).values
    np.testing.assert_array_equal(np.array(series["values"], dtype=np.float32),
                                  expected(label, cell, axis=1))


def test_time_series_csv_and_netcdf_name_the_statistic(client: AppClient,
                                                       tmp_path: Path) -> None:
    query = {"layer": "gefs.t2m", "x": "-110", "y": "32.5", "member": "p90"}
    csv = client.get("/api/timeseries", params={**query, "format": "csv"})
    assert csv.status_code == 200 and csv.text.splitlines()[1].split(",")[3] == "p90"
    netcdf = client.get("/api/timeseries", params={**query, "format": "netcdf"})
    assert netcdf.status_code == 200, netcdf.text
    dataset = load_netcdf(netcdf.content, tmp_path)
    assert dataset["member"].values.tolist() == ["p90"]


@pytest.mark.parametrize("label", ["mean", "std", "p90", "above:300"])
def test_edr_statistic_parameters_equal_numpy(client: AppClient, stores: Path,
                                              label: str) -> None:
    NUMPY.setdefault("above:300",
                     lambda v: 100.0 * (v > 300).sum(axis=0) / (~np.isnan(v)).sum(axis=0))
    parameter = f"t2m_member_{label}"
    response = client.get("/edr/collections/gefs.t2m/position", params={
        "coords": "POINT(-110.5 32)", "parameter-name": parameter,
        "useDisplayUnits": "false"})
    assert response.status_code == 200, response.text
    body = response.json()
    values = body["ranges"][parameter]["values"]
    with open_cube(stores / "gefs.zarr") as cube:
        cell = cube["t2m"].isel(forecast_reference_time=-1).sel(latitude=32.0,
                                                                longitude=-110.5).values
    np.testing.assert_array_equal(np.array(values, dtype=np.float32),
                                  expected(label, cell, axis=1))
    units = body["parameters"][parameter]["unit"]["symbol"]
    assert units == ("%" if label.startswith("above") else "K")


def test_edr_lists_the_statistics_and_a_variable_means_its_members(client: AppClient) -> None:
    collection = client.get("/edr/collections/gust", params={"f": "json"}).json()
    names = list(collection["parameter_names"])
    assert names[50:] == [f"fg10_6_member_{s}" for s in listed_statistics(
        ("above:15", "below:5", "above:20.5"))]
    members = client.get("/edr/collections/gust/position", params={
        "coords": "POINT(5 50)", "parameter-name": "fg10_6"}).json()
    assert list(members["ranges"]) == names[:50]


def test_capabilities_list_statistics_and_thresholds_after_the_members(
        client: AppClient) -> None:
    thresholds = ("above:15", "below:5", "above:20.5")
    statistics = [*listed_statistics(thresholds)]
    assert statistics[:5] == ["mean", "median", "min", "max", "std"]
    root = etree.fromstring(client.get("/wms", params={"request": "GetCapabilities"}).content)
    dims = {}
    for layer in root.iter(f"{WMS}Layer"):
        name = layer.findtext(f"{WMS}Name")
        dims[name] = {d.get("name"): d.text for d in layer.findall(f"{WMS}Dimension")}
    members = [str(m) for m in range(1, 51)]
    assert dims[GUST]["ensemble_member"].split(",") == [*members, *statistics]
    assert dims["gefs.t2m"]["ensemble_member"].split(",") == [
        *(str(m) for m in range(21)), *listed_statistics()]  # no thresholds configured
    assert "ensemble_member" not in dims["gefs.t2m_ens_mean"]
    assert "ensemble_member" not in dims["grid.lon"]

    fews = client.get("/wms", params={"request": "GetCapabilities",
                                      "format": "application/json"}).json()
    layers = {entry["name"]: entry for entry in fews["layers"]}
    assert layers[GUST]["ensembles"][0]["ensembleMemberIds"] == [*members, *statistics]
    assert "ensembles" not in layers["gefs.t2m_ens_mean"]
    # FEWS keyword groups stay one per member
    assert [g["ensembleMemberId"] for g in layers[GUST]["keywordList"]] == members

    wmts = etree.fromstring(client.get("/wmts/1.0.0/WMTSCapabilities.xml").content)
    for layer in wmts.iter(f"{WMTS}Layer"):
        if layer.findtext(f"{OWS}Identifier") == GUST:
            dimension = next(d for d in layer.findall(f"{WMTS}Dimension")
                             if d.findtext(f"{OWS}Identifier") == "ensemble_member")
            values = [v.text for v in dimension.findall(f"{WMTS}Value")]
            assert values == [*members, *statistics]

    tilejson = client.get(f"/tiles/{GUST}/tilejson.json").json()
    assert tilejson["fewsmap"]["members"] == [*members, *statistics]
    assert "members" not in client.get("/tiles/grid.lon/tilejson.json").json()["fewsmap"]


def test_a_vector_layer_lists_and_gives_no_statistics(client: AppClient) -> None:
    """The mean of u and v is not the mean speed: statistics of vectors are not offered."""
    response = client.get("/wms", params={"request": "GetMap", "layers": "wind",
                                          "crs": "CRS:84", "bbox": "0,0,3,2",
                                          "width": "8", "height": "8",
                                          "dim_ensemble_member": "mean"})
    assert response.status_code == 400
    assert b"InvalidDimensionValue" in response.content and b"vector layer" in response.content
    assert client.get("/wms", params={"request": "GetMap", "layers": "wind", "crs": "CRS:84",
                                      "bbox": "0,0,3,2", "width": "8", "height": "8",
                                      "dim_ensemble_member": "5"}).status_code == 200
    fews = client.get("/wms", params={"request": "GetCapabilities", "layers": "wind",
                                      "format": "application/json"}).json()
    assert fews["layers"][0]["ensembles"][0]["ensembleMemberIds"] == ["5"]
    series = client.get("/api/timeseries", params={"layer": "wind", "x": "1", "y": "1",
                                                   "member": "mean"})
    assert series.status_code == 400 and "vector layer" in series.text


@pytest.mark.parametrize(("layer", "member", "words"), [
    ("grid.lon", "mean", "no ensemble dimension"),
    ("gefs.t2m_ens_mean", "p90", "no ensemble dimension"),
    (GUST, "p100", "p1 .. p99"),
    (GUST, "p0", "p1 .. p99"),
    (GUST, "above:abc", "finite number"),
    (GUST, "above:nan", "finite number"),
    (GUST, "average", "neither a member number nor a statistic"),
    (GUST, "ens_median_x", "neither a member number nor a statistic"),
])
def test_a_statistic_the_layer_cannot_give_is_a_400(client: AppClient, layer: str,
                                                    member: str, words: str) -> None:
    getmap = client.get("/wms", params={"request": "GetMap", "layers": layer, "crs": "CRS:84",
                                        "bbox": "0,40,10,50", "width": "8", "height": "8",
                                        "dim_ensemble_member": member})
    assert getmap.status_code == 400
    assert b"InvalidDimensionValue" in getmap.content and words.encode() in getmap.content
    series = client.get("/api/timeseries", params={"layer": layer, "x": "5", "y": "45",
                                                   "member": member})
    assert series.status_code == 400, series.text
    assert series.json()["error"]["code"] == "InvalidDimensionValue"
    tile = client.get(f"/tiles/{layer}/3/4/2.png", params={"member": member})
    assert tile.status_code == 400


def test_probabilities_are_drawn_and_legended_in_per_cent(client: AppClient,
                                                          stores: Path) -> None:
    time = valid_time(stores, "wgust", 1)
    query = {"request": "GetMap", "layers": GUST, "crs": "CRS:84", "bbox": "-10,35,30,65",
             "width": "40", "height": "30", "time": time}
    drawn = client.get("/wms", params={**query, "dim_ensemble_member": "above:15"})
    named = client.get("/wms", params={**query, "dim_ensemble_member": "above:15",
                                       "styles": "probability"})
    assert drawn.status_code == 200 and drawn.content == named.content
    legend = client.get("/wms", params={"request": "GetLegendGraphic", "layer": GUST,
                                        "format": "application/json",
                                        "dim_ensemble_member": "above:15"}).json()
    values = [entry["lowerValue"] for entry in legend["legend"]]
    assert values[0] == 0.0 and values[-1] <= 100.0 and legend["unit"] == "%"
    # not the layer's own style (m s-1 over the run's range), which STYLES may name
    fews = client.get("/wms", params={"request": "GetCapabilities", "layers": GUST,
                                      "format": "application/json"}).json()
    own = client.get("/wms", params={**query, "dim_ensemble_member": "above:15",
                                     "styles": fews["layers"][0]["styles"][0]["name"]})
    image = np.asarray(Image.open(io.BytesIO(drawn.content)).convert("RGBA"))
    assert image[..., 3].any() and own.status_code == 200 and own.content != drawn.content
    tiles = client.get(f"/tiles/{GUST}/tilejson.json", params={"member": "above:15"}).json()
    assert tiles["fewsmap"]["valueRange"] == [0.0, 100.0]
    assert "dim_ensemble_member=above%3A15" in tiles["legend"]


def test_tiles_of_a_statistic_are_its_getmaps(client: AppClient) -> None:
    tile = client.get(f"/tiles/{GUST}/3/4/2.png", params={"member": "p90"})
    member = client.get(f"/tiles/{GUST}/3/4/2.png", params={"member": "3"})
    assert tile.status_code == member.status_code == 200
    assert tile.headers["content-type"] == "image/png" and tile.content != member.content


def test_lagged_ensemble_statistics_are_over_the_runs_own_members(client: AppClient) -> None:
    for k in (0, 5):
        step = lagged_steps(k)[1]
        when = format_time(lagged_run_time(k) + np.timedelta64(step, "D"))
        run = format_time(lagged_run_time(k))
        values = np.array(lagged_members(k), dtype=np.float32) + np.float32(step / 100)
        for label, want in (("mean", np.mean(values)), ("max", values.max()),
                            ("std", np.std(values)), ("above:10", 100 * (values > 10).mean())):
            response = client.get("/wms", params={
                "request": "GetFeatureInfo", "layers": "lagged.t2m", "query_layers":
                "lagged.t2m", "crs": "CRS:84", "bbox": "0,40,30,60", "width": "30",
                "height": "20", "i": "10", "j": "10", "info_format": "application/json",
                "time": when, "dim_reference_time": run, "dim_ensemble_member": label})
            assert response.status_code == 200, response.text
            got = response.json()["features"][0]["properties"]["value"]
            assert np.float32(got) == np.float32(want), (k, label)


def test_ragged_members_count_only_members_with_data(client: AppClient) -> None:
    def value_at(label: str, time: str, i: str, j: str) -> Any:
        response = client.get("/wms", params={
            "request": "GetFeatureInfo", "layers": "ragged.x", "query_layers": "ragged.x",
            "crs": "CRS:84", "bbox": "-0.5,-0.5,1.5,1.5", "width": "2", "height": "2",
            "i": i, "j": j, "info_format": "application/json", "time": time,
            "dim_ensemble_member": label})
        assert response.status_code == 200, response.text
        return response.json()["features"][0]["properties"]["value"]

    start, later = format_time(T0), format_time(T0 + np.timedelta64(12, "h"))
    # step 0: members 0 and 1 hold 1.0, members 2 and 3 nothing
    assert [value_at(s, start, "1", "1") for s in ("mean", "std", "p90", "above:0.5",
                                                   "below:0.5")] == [1.0, 0.0, 1.0, 100.0, 0.0]
    # 12 h: only member 3, only in the cell (lat 1, lon 0); elsewhere no member has a value
    assert [value_at(s, later, "0", "0") for s in ("mean", "median", "std", "above:1.5")] == [
        2.0, 2.0, 0.0, 100.0]
    assert value_at("mean", later, "1", "1") is None
    assert value_at("above:1.5", later, "1", "1") is None


def test_a_single_member_cube_has_statistics_of_one(client: AppClient, tmp_path: Path) -> None:
    def values(member: str) -> np.ndarray:
        field = export(client, tmp_path, "single.x", member, format_time(T0),
                       "-0.5,-0.5,3.5,2.5")["x"]
        assert field.shape == (3, 4)
        return np.asarray(field.values)

    member = values("5")
    for label in ("mean", "median", "min", "max", "p10", "p90"):
        np.testing.assert_array_equal(values(label), member)
    assert (values("std") == 0).all()
    np.testing.assert_array_equal(values("above:1.05"), np.where(member > 1.05, 100.0, 0.0))


def test_a_statistic_declares_the_members_it_reads_to_the_render_limiter(stores: Path) -> None:
    catalog = Catalog(Settings(stores_dir=stores))
    costs = {}
    for member in ("3", "mean", "above:15", "p90"):
        params = Params.of({"request": "GetMap", "layers": "wgust.fg10_6", "crs": "EPSG:3857",
                            "bbox": "0,5000000,2500000,7500000", "width": "256",
                            "height": "256", "dim_ensemble_member": member})
        specs = resolve_maps(catalog, parse_getmap(params, catalog.settings.max_image_pixels))
        costs[member] = (maps_cost(specs), export_cost(specs))
    tile = 256 * 256
    assert costs["3"][0] == tile
    # 50 members: 1 + 50 / 10 for accumulated statistics, 1 + 50 × 0.34 for order statistics
    assert costs["mean"][0] == costs["above:15"][0] == 6 * tile
    assert costs["p90"][0] == 18 * tile
    assert costs["mean"][1] == 6 * costs["3"][1]
    # a 256² tile stays a light render; a full-screen percentile map is a heavy one
    assert costs["p90"][0] < Settings().heavy_render_cost < costs["p90"][0] * 1920 * 1200 / tile


@pytest.mark.parametrize("selector", [{"ensembleMemberId": "p90"},
                                      {"dim_ensemble_member": "fg10_6_p90"},
                                      {"DIM_ENSEMBLE_MEMBER": "P90"},
                                      {"dim_realization": "p90"}])
def test_every_fews_and_ogc_spelling_names_a_statistic(client: AppClient,
                                                       selector: dict[str, str]) -> None:
    query = {"request": "GetMap", "layers": GUST, "crs": "CRS:84", "bbox": "-10,35,30,65",
             "width": "40", "height": "30"}
    plain = client.get("/wms", params={**query, "dim_ensemble_member": "p90"})
    spelled = client.get("/wms", params={**query, **selector})
    assert plain.status_code == spelled.status_code == 200
    assert spelled.content == plain.content
    assert spelled.content != client.get("/wms", params=query).content  # not the default
