"""`fewsmap.Client` against the real ``fewsmap serve``: layers, runs, series, maps, errors."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import fewsmap
from fewsmap import Catalog, open_cube
from fewsmap.client.maps import render_map
from fewsmap.client.service import Client, ServiceError
from fewsmap.errors import InvalidParameterValue, StoreError
from fewsmap.settings import Settings
from tests.live_server import free_port, live_server
from tests.viewer.levels_store import levels_store

LEVELS = "synthetic-levels.t"  # two runs sharing valid times: a change between them
ENSEMBLE = "ecmwf-ens-gust.fg10_6"


@pytest.fixture(scope="module")
def stores(demo_stores: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the demo stores (the raw-file endpoint serves real folders)."""
    folder = tmp_path_factory.mktemp("client") / "stores"
    shutil.copytree(demo_stores, folder)
    levels_store(folder / "synthetic-levels.zarr")
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
    # besides the catalog's layers, a derived <layer>:change for a layer whose runs overlap
    assert list(layers.index) == [*catalog.layers, f"{LEVELS}:change"]
    for layer_id, layer in catalog.layers.items():
        row = layers.loc[layer_id]
        runs = catalog.runs(layer)
        assert row.latest_run == pd.Timestamp(runs[-1].label).tz_convert(None)
        assert row.first_time == pd.Timestamp(runs[-1].valid_times[0])
        assert row.styles == [s.name for s in layer.styles]
    assert layers.loc["ecmwf-ens-gust.fg10_6"].members == [float(m) for m in range(1, 51)]
    assert layers.loc["naefs-mean.QTF"].members is None
    assert layers.loc[ENSEMBLE].statistics == list(catalog.layers[ENSEMBLE].statistics)
    assert layers.loc[ENSEMBLE].statistics[:2] == ["mean", "median"]
    assert layers.loc["naefs-mean.QTF"].statistics is None


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
    series = client.timeseries("naefs-mean.QTF", -90.2, 40.1, display_units=False)
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
    gust = client.timeseries_xarray("ecmwf-ens-gust.fg10_6", 10.0, 50.0, member="all",
                                    display_units=False)  # as stored, to compare
    assert gust.dims == ("reference_time", "valid_time", "member")
    cube = open_cube(stores / "ecmwf-ens-gust.zarr").fg10_6.sel(
        latitude=gust.attrs["cell_lat"], longitude=gust.attrs["cell_lon"])
    np.testing.assert_array_equal(  # float32 values, sent as their shortest decimals
        gust.isel(reference_time=0).values.astype("float32"),
        cube.isel(forecast_reference_time=0).values.astype("float32"))
    np.testing.assert_array_equal(gust.member.values, cube.realization.values)
    assert gust.attrs["units"] == "m s-1"
    # by default in the units the maps show (km h-1), as /api/timeseries answers
    shown = client.timeseries_xarray("ecmwf-ens-gust.fg10_6", 10.0, 50.0, member="all")
    assert shown.attrs["units"] == "km h-1"
    np.testing.assert_allclose(shown.values, gust.values * 3.6, rtol=1e-6)


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
    assert members.attrs["catchment"]["id"] == "B04" and members.attrs["units"] == "km h-1"
    stored = client.catchment(layer, "demo-basins", "B04", member="all", display_units=False)
    assert stored.attrs["units"] == "m s-1"
    np.testing.assert_allclose(members["value"], stored["value"] * 3.6, rtol=1e-6)
    table = members.pivot(index="member", columns="valid_time", values="value")
    mean = client.catchment(layer, "demo-basins", "B04", member="mean")
    np.testing.assert_allclose(mean["value"], table.mean(axis=0), rtol=1e-5)
    box = "POLYGON((5 50, 10 50, 10 54, 5 54, 5 50))"
    given = client.catchment(layer, geometry=box, member=7)
    assert given.attrs["catchment"]["set"] == "request" and given["value"].notna().all()
    area = "POLYGON((-95 35, -85 35, -85 42, -95 42, -95 35))"  # in NAEFS's domain
    steps = client.catchment("naefs-mean.QPF", geometry=area)
    sums = client.catchment("naefs-mean.QPF", geometry=area, accumulate="PT24H")
    assert set(sums["accumulation"]) == {"P1D"} and len(sums) < len(steps)  # ISO 8601
    by_time = steps.set_index("valid_time")["value"]
    last = sums.iloc[-1]
    window = by_time[(by_time.index > last["valid_time"] - pd.Timedelta("24h"))
                     & (by_time.index <= last["valid_time"])]
    assert last["value"] == pytest.approx(window.sum(), rel=1e-5)
    with pytest.raises(ServiceError, match="no catchment 'B99'"):
        client.catchment(layer, "demo-basins", "B99")
    with pytest.raises(ValueError, match="give catchments"):
        client.catchment(layer)


def by_valid_time(field: xr.DataArray, run: np.datetime64) -> xr.DataArray:
    """One run of a cube indexed by valid time (so that runs line up on it)."""
    return field.sel(forecast_reference_time=run).swap_dims(step="valid_time").drop_vars("step")


def test_runs_are_the_per_run_layers_only(client: Client) -> None:
    runs = client.runs(LEVELS)  # its capabilities also hold the derived synthetic-levels.t:change
    assert len(runs) == 2 and all(runs.layer_id.str.startswith(f"{LEVELS}-"))


def test_a_change_since_the_previous_run_is_the_cubes_difference(client: Client,
                                                                 stores: Path) -> None:
    change = client.timeseries(LEVELS, 10.0, 50.0, elevation=850, baseline="previous",
                               display_units=False)
    cell = change.attrs["cell"]
    cube = open_cube(stores / "synthetic-levels.zarr").t.isel(
        latitude=cell["row"], longitude=cell["col"]).sel(isobaricInhPa=850)
    previous, latest = cube.forecast_reference_time.values[-2:]
    expected = by_valid_time(cube, latest) - by_valid_time(cube, previous)  # shared times
    np.testing.assert_array_equal(change.value.to_numpy("float32"), expected.values)
    np.testing.assert_array_equal(change.valid_time.to_numpy(), expected.valid_time.values)
    assert (change.baseline_reference_time == pd.Timestamp(previous)).all()
    assert (change.reference_time == pd.Timestamp(latest)).all()
    named = client.timeseries(LEVELS, 10.0, 50.0, elevation=850, display_units=False,
                              baseline=pd.Timestamp(previous, tz="UTC"))
    np.testing.assert_array_equal(named.value, change.value)
    with pytest.raises(InvalidParameterValue, match="baseline='yesterday'"):
        client.timeseries(LEVELS, 10.0, 50.0, baseline="yesterday")


def test_a_map_of_the_change_is_the_change_layers(client: Client) -> None:
    time = "2026-01-01T12:00:00Z"
    change = client.map(LEVELS, baseline="previous", time=time, width=120)
    derived = client.map(f"{LEVELS}:change", time=time, width=120)  # latest − previous
    np.testing.assert_array_equal(np.asarray(change.convert("RGBA")),
                                  np.asarray(derived.convert("RGBA")))
    plain = client.map(LEVELS, time=time, width=120)
    assert not np.array_equal(np.asarray(plain.convert("RGBA")),
                              np.asarray(change.convert("RGBA")))
    # a field read over HTTP is drawn by the service: its products are options too
    remote = client.open_cube("synthetic-levels").t.isel(forecast_reference_time=-1, step=1)
    drawn = remote.fewsmap.map(baseline="previous", width=120)
    assert drawn.info["valid_time"] == time
    np.testing.assert_array_equal(np.asarray(drawn.convert("RGBA")),
                                  np.asarray(change.convert("RGBA")))
    with pytest.raises(ServiceError, match="baseline run") as caught:  # not in both runs
        client.map(LEVELS, baseline="previous", time="2026-01-01T18:00:00Z", width=120)
    assert caught.value.ogc_code == "InvalidDimensionValue"


def test_sums_over_24_hours_are_the_cubes_sums(client: Client, stores: Path) -> None:
    sums = client.timeseries("naefs-mean.QPF", -95.0, 40.5, accumulate="PT24H")
    cell = sums.attrs["cell"]
    steps = open_cube(stores / "naefs-mean.zarr").QPF.isel(
        forecast_reference_time=-1, latitude=cell["row"], longitude=cell["col"]).swap_dims(
        step="valid_time")
    day = np.timedelta64(24, "h")
    run = steps.forecast_reference_time.values
    assert sums.valid_time.iloc[0] == pd.Timestamp(run + day)  # the first whole window
    expected = [steps.sel(valid_time=(steps.valid_time > t - day) & (steps.valid_time <= t))
                .values.sum(dtype="float32") for t in sums.valid_time.to_numpy()]
    np.testing.assert_allclose(sums.value.to_numpy("float32"), expected, rtol=1e-6)
    assert sums.attrs["units"] == "mm" and set(sums.accumulation) <= {"PT24H", "P1D"}
    as_timedelta = client.timeseries("naefs-mean.QPF", -95.0, 40.5,
                                     accumulate=pd.Timedelta(hours=24))
    np.testing.assert_array_equal(as_timedelta.value, sums.value)
    image = client.map("naefs-mean.QPF", accumulate="PT24H", width=96,
                       time=sums.valid_time.iloc[0].strftime("%Y-%m-%dT%H:%M:%SZ"))
    assert image.info["valid_time"] == sums.valid_time.iloc[0].strftime("%Y-%m-%dT%H:%M:%SZ")
    with pytest.raises(ServiceError, match=r"PT24H|P1D") as caught:  # the window's start
        client.map("naefs-mean.QPF", accumulate="PT24H", width=96, time="2022-08-09T12:00:00Z")
    assert caught.value.http_status == 400


def test_statistics_and_exceedance_are_numpy_over_the_members(client: Client,
                                                              stores: Path) -> None:
    mean = client.timeseries(ENSEMBLE, 10.0, 50.0, member="mean", display_units=False)
    cell = mean.attrs["cell"]
    members = open_cube(stores / "ecmwf-ens-gust.zarr").fg10_6.isel(
        forecast_reference_time=0, latitude=cell["row"], longitude=cell["col"]).transpose(
        "step", "realization").values  # step × member, float32
    np.testing.assert_allclose(mean.value, np.nanmean(members, axis=1), rtol=1e-6)
    p90 = client.timeseries(ENSEMBLE, 10.0, 50.0, member="p90", display_units=False)
    np.testing.assert_allclose(p90.value, np.nanpercentile(members, 90, axis=1), rtol=1e-6)
    above = client.timeseries(ENSEMBLE, 10.0, 50.0, member="above:4.5", display_units=False)
    held = (~np.isnan(members)).sum(axis=1)
    np.testing.assert_allclose(above.value, 100 * (members > 4.5).sum(axis=1) / held,
                               rtol=1e-6)
    assert above.attrs["units"] == "%" and set(above.member) == {"above:4.5"}
    assert 0 < above.value.mean() < 100  # the threshold parts the members here


def test_a_catchments_exceedance_is_over_the_members_means(client: Client) -> None:
    # thresholds are in stored units: compare with the stored means
    members = client.catchment(ENSEMBLE, "demo-basins", "B04", member="all",
                               display_units=False)
    table = members.pivot(index="member", columns="valid_time", values="value")
    threshold = float(np.median(table.to_numpy()))
    share = client.catchment(ENSEMBLE, "demo-basins", "B04", member=f"above:{threshold!r}")
    np.testing.assert_allclose(share["value"], 100 * (table > threshold).mean(axis=0),
                               rtol=1e-6)
    assert share.attrs["units"] == "%"
