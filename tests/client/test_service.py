"""`fewsmap.Client` against the real ``fewsmap serve``: layers, runs, series, maps, errors."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import fewsmap
from fewsmap import Catalog, open_cube
from fewsmap.client.maps import render_map
from fewsmap.client.service import Client, ServiceError
from fewsmap.errors import StoreError
from fewsmap.settings import Settings
from tests.live_server import free_port, live_server


@pytest.fixture(scope="module")
def stores(demo_stores: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the demo stores (the raw-file endpoint serves real folders)."""
    folder = tmp_path_factory.mktemp("client") / "stores"
    shutil.copytree(demo_stores, folder)
    return folder


@pytest.fixture(scope="module")
def client(stores: Path) -> Iterator[Client]:
    with live_server("--stores", str(stores)) as url, fewsmap.Client(url) as client:
        yield client


@pytest.fixture(scope="module")
def catalog(stores: Path) -> Catalog:
    return Catalog(Settings(stores_dir=stores))


def test_layers_are_the_catalogs_with_their_latest_runs(client: Client,
                                                        catalog: Catalog) -> None:
    layers = client.layers()
    assert list(layers.index) == list(catalog.layers)
    for layer_id, layer in catalog.layers.items():
        row = layers.loc[layer_id]
        runs = catalog.runs(layer)
        assert row.latest_run == pd.Timestamp(runs[-1].label).tz_convert(None)
        assert row.first_time == pd.Timestamp(runs[-1].valid_times[0])
        assert row.styles == [s.name for s in layer.styles]
    assert layers.loc["ecmwf-ens-gust.fg10_6"].members == [float(m) for m in range(1, 51)]
    assert layers.loc["naefs-mean.QTF"].members is None


def test_styles_are_the_services_own(client: Client, catalog: Catalog) -> None:
    """Each style's published definition rebuilds the very style the service colours with."""
    for layer_id, layer in catalog.layers.items():
        assert client.styles(layer_id) == {style.name: style for style in layer.styles}


def test_runs_lists_every_run_oldest_first(client: Client, catalog: Catalog) -> None:
    runs = client.runs("marfc-fmat.t")
    expected = catalog.runs(catalog.layers["marfc-fmat.t"])
    assert [t.strftime("%Y-%m-%dT%H:%M:%SZ") for t in runs.index] == [r.label for r in expected]
    assert list(runs.last_time) == [pd.Timestamp(r.valid_times[-1]) for r in expected]
    assert list(runs.layer_id) == [f"marfc-fmat.t-{r.label}" for r in expected]


def test_a_time_series_holds_the_cubes_values_at_the_cell(client: Client,
                                                          stores: Path) -> None:
    series = client.timeseries("naefs-mean.QTF", -90.2, 40.1)
    cell = series.attrs["cell"]
    cube = open_cube(stores / "naefs-mean.zarr").QTF.isel(
        forecast_reference_time=-1, latitude=cell["row"], longitude=cell["col"])
    np.testing.assert_array_equal(series.value.to_numpy(dtype="float32"), cube.values)
    np.testing.assert_array_equal(series.valid_time.to_numpy(), cube.valid_time.values)
    assert (series.lead_time == series.valid_time - series.reference_time).all()
    assert series.attrs["units"] == "degC" and abs(cell["lon"] + 90.2) <= 0.25


def test_a_plume_of_runs_and_the_members_as_xarray(client: Client, stores: Path) -> None:
    plume = client.timeseries("marfc-fmat.t", -77.0, 40.0, runs="all")
    assert plume.reference_time.nunique() == 4
    gust = client.timeseries_xarray("ecmwf-ens-gust.fg10_6", 10.0, 50.0, member="all")
    assert gust.dims == ("reference_time", "valid_time", "member")
    cube = open_cube(stores / "ecmwf-ens-gust.zarr").fg10_6.sel(
        latitude=gust.attrs["cell_lat"], longitude=gust.attrs["cell_lon"])
    # in the units the maps show (km h-1), as /api/timeseries answers by default
    shown = cube.isel(forecast_reference_time=0).values * np.float32(3.6) + np.float32(0)
    np.testing.assert_array_equal(  # float32 values, sent as their shortest decimals
        gust.isel(reference_time=0).values.astype("float32"), shown.astype("float32"))
    np.testing.assert_array_equal(gust.member.values, cube.realization.values)
    assert gust.attrs["units"] == "km h-1"


@pytest.mark.parametrize("options", [
    {"layer": "naefs-mean.QTF", "time": "2022-08-10T12:00:00Z", "width": 300},
    {"layer": "naefs-mean.QPF", "crs": "EPSG:4326", "bbox": (-110.0, 30.0, -80.0, 50.0),
     "time": np.datetime64("2022-08-11T00:00:00"), "width": 300, "color_range": (0.0, 20.0)},
    {"layer": "ecmwf-ens-gust.fg10_6", "member": 12, "lead_time": pd.Timedelta("66h"),
     "width": 200, "show_contours": True},
    {"layer": "marfc-fmat.t", "run": pd.Timestamp("2022-06-01T12:00", tz="UTC"),
     "width": 256},
    {"layer": "ecmwf-ens-gust.fg10_6", "dimensions": {"ensemble_member": 30}, "width": 64},
    {"layer": "ecmwf-ens-gust.fg10_6", "member": "p90", "width": 96},
    {"layer": "ecmwf-ens-gust.fg10_6", "member": "above:12.5", "width": 96},
], ids=["default-bbox", "epsg4326", "member-lead-contours", "run", "dimensions",
        "ensemble-percentile", "exceedance-probability"])
def test_a_map_is_what_render_map_draws(client: Client, catalog: Catalog,
                                        options: dict[str, object]) -> None:
    served = client.map(**options)
    drawn = render_map(catalog=catalog, **options)
    assert (served.mode, served.size) == (drawn.mode, drawn.size)
    np.testing.assert_array_equal(np.asarray(served.convert("RGBA")),
                                  np.asarray(drawn.convert("RGBA")))
    assert served.info["run"] == drawn.info["run"]
    assert served.info["valid_time"] == drawn.info["valid_time"]


@pytest.mark.parametrize(("call", "code", "words"), [
    (lambda c: c.runs("naefs-mean.NOPE"), "LayerNotDefined", "naefs-mean.NOPE"),
    (lambda c: c.timeseries("naefs-mean.QTF", 10.0, 40.0), "InvalidPoint", "outside the grid"),
    (lambda c: c.timeseries("naefs-mean.QTF", -90, 40, run="2022-08-08T00:00:00Z"),
     "InvalidDimensionValue", "2022-08-09T00:00:00Z"),
    (lambda c: c.map("naefs-mean.QTF", time="2031-01-01T00:00:00Z"), "InvalidDimensionValue",
     "no valid time"),
    (lambda c: c.map("naefs-mean.QTF", style="rainbow"), "StyleNotDefined", "rainbow"),
    (lambda c: c.map("naefs-mean", bbox=(0.0, 0.0, 1.0, 1.0), width=20000, height=20000),
     "InvalidParameterValue", "20000"),
], ids=["layer", "point", "run", "time", "style", "size"])
def test_errors_carry_the_services_code_and_message(client: Client, call: object, code: str,
                                                    words: str) -> None:
    with pytest.raises(ServiceError, match=words) as caught:
        call(client)
    assert caught.value.ogc_code == code and caught.value.http_status == 400


def test_an_unreachable_service_is_a_clear_error() -> None:
    with Client(f"http://127.0.0.1:{free_port()}", timeout_s=5) as client, \
            pytest.raises(ServiceError, match="cannot reach fewsmap") as caught:
        client.layers()
    assert caught.value.http_status == 0


def test_the_raw_cube_over_http_is_the_stored_cube(client: Client, stores: Path) -> None:
    remote = client.open_cube("marfc-fmat")
    local = open_cube(stores / "marfc-fmat.zarr")
    np.testing.assert_array_equal(remote.t.values, local.t.values)
    np.testing.assert_array_equal(remote.valid_time.values, local.valid_time.values)
    # read over HTTP from the service, so drawn by its GetMap, for the field's run
    image = remote.t.isel(forecast_reference_time=-1, step=0).fewsmap.map(width=120)
    assert image.info["run"] == client.runs("marfc-fmat.t").index[-1].strftime(
        "%Y-%m-%dT%H:%M:%SZ")
    assert (np.asarray(image.convert("RGBA"))[..., 3] > 0).mean() > 0.5
    with pytest.raises(StoreError, match="nope"):
        client.open_cube("nope")
    with pytest.raises(StoreError, match="cannot open"):
        open_cube(f"http://127.0.0.1:{free_port()}/zarr/naefs-mean")


def test_a_catchment_mean_as_a_dataframe(client: Client) -> None:
    layer = "ecmwf-ens-gust.fg10_6"
    members = client.catchment(layer, "demo-basins", "B04", member="all")
    assert len(members) == 50 * 3 and set(members["member"]) == set(range(1, 51))
    assert members.attrs["catchment"]["id"] == "B04" and members.attrs["units"] == "m s-1"
    table = members.pivot(index="member", columns="valid_time", values="value")
    mean = client.catchment(layer, "demo-basins", "B04", member="mean")
    np.testing.assert_allclose(mean["value"], table.mean(axis=0), rtol=1e-5)
    box = "POLYGON((5 50, 10 50, 10 54, 5 54, 5 50))"
    given = client.catchment(layer, geometry=box, member=7)
    assert given.attrs["catchment"]["set"] == "request" and given["value"].notna().all()
    with pytest.raises(ServiceError, match="no catchment 'B99'"):
        client.catchment(layer, "demo-basins", "B99")
    with pytest.raises(ValueError, match="give catchments"):
        client.catchment(layer)
