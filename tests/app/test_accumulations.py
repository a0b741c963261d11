"""Accumulations through the real app (issue #15): ``accumulate=<ISO 8601 duration>``.

Every value equals xarray's sum of the run's steps in the window ending at the valid time
(the real NAEFS 6-hourly QPF, and synthetic ensembles for statistics of the members' sums
and the change of two runs' sums); hostile windows are 400s in each front's format.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from PIL import Image

from fewsmap import open_cube
from fewsmap.app.maps import maps_cost
from fewsmap.app.server import create_app
from fewsmap.catalog import Catalog
from fewsmap.ogc.getmap import parse_getmap
from fewsmap.params import Params
from fewsmap.render.pipeline import MapSpec, layer_range, round_range, value_range
from fewsmap.resolve.maps import resolve_maps
from fewsmap.settings import Settings
from fewsmap.time.instants import format_time
from tests.asgi_client import AppClient
from tests.edr_answers import edr_grid, edr_json
from tests.synthetic import T0, six_hourly_runs_store

BBOX = "-0.5,44.5,8.5,50.5"  # the whole synthetic grid
HOUR = np.timedelta64(1, "h")


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory, ingested: Callable[[str], Path]) -> Path:
    folder = tmp_path_factory.mktemp("accumulate") / "stores"
    folder.mkdir()
    (folder / "naefs.zarr").symlink_to(ingested("naefs"))
    six_hourly_runs_store(folder / "members.zarr", runs=2, members=4)
    return folder


@pytest.fixture(scope="module")
def client(stores: Path) -> AppClient:
    return AppClient(create_app(Settings(stores_dir=stores)))


def export(client: AppClient, tmp_path: Path, layer: str, variable: str, bbox: str,
           **params: str) -> xr.DataArray:
    response = client.get("/wms", params={
        "request": "GetMap", "layers": layer, "crs": "CRS:84", "bbox": bbox, "width": "16",
        "height": "16", "format": "application/x-netcdf", **params})
    assert response.status_code == 200, response.text
    path = tmp_path / "answer.nc"
    path.write_bytes(response.content)
    return xr.load_dataset(path)[variable]


def test_a_24_hour_sum_of_the_naefs_6_hourly_qpf_equals_xarrays(client: AppClient,
                                                                 stores: Path,
                                                                 tmp_path: Path) -> None:
    with open_cube(stores / "naefs.zarr") as cube:
        qpf = cube["QPF"].isel(forecast_reference_time=-1).load()
    times = qpf["valid_time"].values.astype("datetime64[s]")
    for end in (3, 10, 63):  # valid times 06 h + 6 h × end after the run
        got = export(client, tmp_path, "naefs.QPF", "QPF", "-125.25,23.75,-64.75,54.25",
                     time=format_time(times[end]), accumulate="PT24H")
        want = qpf.isel(step=slice(end - 3, end + 1)).sum("step", skipna=False)
        want = want.sel({d: got[d] for d in got.dims})
        assert got.shape == want.shape == qpf.shape[1:]
        np.testing.assert_array_equal(got.values, want.values)
        assert got.attrs["fewsmap:accumulation"] == "P1D"
    # the first step ends 6 h after the run: the first whole day ends at its 4th step
    status = client.get("/wms", params={
        "request": "GetMap", "layers": "naefs.QPF", "crs": "CRS:84", "bbox": "-125,24,-65,54",
        "width": "16", "height": "16", "time": format_time(times[2]), "accumulate": "P1D"})
    assert status.status_code == 400 and b"before run" in status.content


def members_sums(stores: Path, run: int, end: int, steps: int) -> np.ndarray:
    with open_cube(stores / "members.zarr") as cube:
        rain = cube["rain"].isel(forecast_reference_time=run).load()
    return rain.isel(step=slice(end - steps + 1, end + 1)).sum("step", skipna=False).values


def test_a_statistic_of_an_accumulation_is_over_the_members_sums(client: AppClient,
                                                                 stores: Path,
                                                                 tmp_path: Path) -> None:
    sums = members_sums(stores, 1, 5, 2)  # the 12 h ending at step 5 of the latest run
    when = format_time(T0 + 6 * HOUR + 30 * HOUR)
    for label, reduce in (("mean", lambda v: np.nanmean(v, axis=0)),
                          ("above:5", lambda v: 100.0 * (v > 5).sum(axis=0)
                           / (~np.isnan(v)).sum(axis=0)),
                          ("2", lambda v: v[2])):
        got = export(client, tmp_path, "members.rain", "rain", BBOX, time=when,
                     accumulate="PT12H", dim_ensemble_member=label)
        with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # cells without any member
            want = reduce(sums).astype(np.float32)
        np.testing.assert_allclose(got.values, want, rtol=1e-6, equal_nan=True)
        assert np.isnan(got.values[0, 0]) and np.isfinite(got.values[3, 3])


def test_the_change_of_an_accumulation_is_the_difference_of_the_two_sums(
        client: AppClient, stores: Path, tmp_path: Path) -> None:
    when = T0 + 36 * HOUR  # step 5 of the latest run, step 6 of the previous
    want = members_sums(stores, 1, 5, 4)[1] - members_sums(stores, 0, 6, 4)[1]
    got = export(client, tmp_path, "members.rain:change", "rain", BBOX, time=format_time(when),
                 accumulate="PT24H", dim_ensemble_member="1")
    np.testing.assert_array_equal(got.values, want)


def test_feature_info_and_time_series_give_the_window_sums(client: AppClient,
                                                           stores: Path) -> None:
    with open_cube(stores / "members.zarr") as cube:
        rain = cube["rain"].isel(forecast_reference_time=1, realization=0).sel(
            latitude=47.0, longitude=4.0).load()
    sums = np.array([rain.values[k - 3:k + 1].sum(dtype=np.float32) for k in range(4, 8)],
                    dtype=np.float32)
    response = client.get("/wms", params={
        "request": "GetFeatureInfo", "layers": "members.rain", "query_layers": "members.rain",
        "crs": "CRS:84", "bbox": BBOX, "width": "9", "height": "6", "i": "4", "j": "3",
        "info_format": "application/json", "accumulate": "PT24H", "dim_ensemble_member": "0",
        "time": f"{format_time(T0 + 30 * HOUR)}/{format_time(T0 + 48 * HOUR)}"})
    assert response.status_code == 200, response.text
    values = [f["properties"]["value"] for f in response.json()["features"]]
    assert {f["properties"]["accumulation"] for f in response.json()["features"]} == {"P1D"}
    np.testing.assert_array_equal(np.array(values, dtype=np.float32), sums)

    series = client.get("/api/timeseries", params={"layer": "members.rain", "x": "4",
                                                   "y": "47", "member": "0",
                                                   "accumulate": "PT24H"})
    assert series.status_code == 200, series.text
    [entry] = series.json()["series"]
    assert entry["accumulation"] == "P1D"
    # only the valid times whose whole window lies within the run are listed
    assert entry["times"] == [format_time(T0 + (30 + 6 * k) * HOUR) for k in range(4)]
    np.testing.assert_array_equal(np.array(entry["values"], dtype=np.float32), sums)


def getmap(client: AppClient, **params: str) -> tuple[int, bytes]:
    response = client.get("/wms", params={
        "request": "GetMap", "layers": "members.rain", "crs": "CRS:84", "bbox": BBOX,
        "width": "18", "height": "12", **params})
    return response.status_code, response.content


@pytest.mark.parametrize("window", ["P1000Y", "PT0S", "-PT6H", "garbage", "P40D", "P1M",
                                   "PT5H", "PT1S", "P" + "9" * 300 + "D", "PT6H/PT12H"])
def test_a_window_that_cannot_be_summed_is_a_400_in_every_front(client: AppClient,
                                                                 window: str) -> None:
    when = format_time(T0 + 36 * HOUR)
    status, body = getmap(client, accumulate=window, time=when)
    assert status == 400 and b"ServiceExceptionReport" in body, body[:300]
    assert b"InvalidParameterValue" in body or b"InvalidDimensionValue" in body
    tile = client.get("/tiles/members.rain/3/4/2.png", params={"accumulate": window,
                                                                 "time": when})
    assert tile.status_code == 400
    info = client.get("/wms", params={
        "request": "GetFeatureInfo", "layers": "members.rain", "query_layers": "members.rain",
        "crs": "CRS:84", "bbox": BBOX, "width": "9", "height": "6", "i": "4", "j": "3",
        "accumulate": window, "time": when})
    assert info.status_code == 400 and b"ServiceExceptionReport" in info.content
    series = client.get("/api/timeseries", params={"layer": "members.rain", "x": "4",
                                                   "y": "47", "accumulate": window})
    assert series.status_code == 400 and "error" in series.json()


def test_an_accumulation_is_drawn_tiled_and_legended(client: AppClient) -> None:
    status, body = getmap(client, accumulate="PT24H")  # default time: a whole window
    assert status == 200, body[:300]
    assert Image.open(io.BytesIO(body)).size == (18, 12)
    tile = client.get("/tiles/members.rain/3/4/2.png", params={"accumulate": "PT24H"})
    plain = client.get("/tiles/members.rain/3/4/2.png")
    assert tile.status_code == plain.status_code == 200 and tile.content != plain.content
    legend = client.get("/wms", params={"request": "GetLegendGraphic",
                                        "layer": "members.rain", "accumulate": "PT24H",
                                        "format": "application/json"})
    assert legend.status_code == 200, legend.text


def test_the_automatic_colour_range_of_a_sum_is_that_of_its_steps(stores: Path) -> None:
    catalog = Catalog(Settings(stores_dir=stores))

    def spec(**extra: str) -> MapSpec:
        params = Params.of({"request": "GetMap", "layers": "members.rain", "crs": "CRS:84",
                            "bbox": BBOX, "width": "9", "height": "6", **extra})
        [found] = resolve_maps(catalog, parse_getmap(params, 10**8))
        return found

    plain = spec()
    low, high = layer_range(plain.store, plain.run, plain.variables) or (0.0, 0.0)
    assert value_range(plain) == round_range(low, high)  # widened to round numbers
    # four 6-hour steps at most, then rounded as every automatic range is
    assert value_range(spec(accumulate="PT24H")) == round_range(low, 4 * high)
    change = value_range(spec(accumulate="PT24H", baseline="previous"))  # both runs' sums
    assert change is not None and change[0] == -change[1] and change[1] >= 4 * high - low


def test_an_accumulation_declares_its_fields_to_the_render_limiter(stores: Path) -> None:
    catalog = Catalog(Settings(stores_dir=stores))

    def cost(**extra: str) -> int:
        params = Params.of({"request": "GetMap", "layers": "members.rain", "crs": "EPSG:3857",
                            "bbox": "0,5000000,1000000,6500000", "width": "256",
                            "height": "256", "time": format_time(T0 + 36 * HOUR),
                            "dim_ensemble_member": "0", **extra})
        return maps_cost(resolve_maps(catalog, parse_getmap(params, 10**8)))

    assert cost(accumulate="PT24H") == 4 * cost()
    assert cost(accumulate="PT24H", baseline="previous") == 8 * cost()


def test_edr_queries_answer_the_naefs_24_hour_sums(client: AppClient, stores: Path) -> None:
    """Each valid time with a whole day inside the run: xarray's sum of its four steps."""
    with open_cube(stores / "naefs.zarr") as cube:
        north_first = bool(cube["latitude"][0] > cube["latitude"][-1])
        qpf = cube["QPF"].isel(forecast_reference_time=-1).sel(
            longitude=slice(-100.25, -94.75),
            latitude=slice(44.25, 39.75) if north_first else slice(39.75, 44.25)).load()
    times = qpf["valid_time"].values.astype("datetime64[s]")
    sums = np.stack([qpf.isel(step=slice(end - 3, end + 1)).sum("step", skipna=False).values
                     for end in range(3, times.size)])
    cube_body = edr_json(client, "naefs.QPF/cube", bbox="-100.25,39.75,-94.75,44.25",
                    accumulate="PT24H")
    assert cube_body["domain"]["axes"]["t"]["values"] == [format_time(t) for t in times[3:]]
    assert cube_body["fewsmap:accumulation"] == "P1D"
    got = edr_grid(cube_body, "QPF")
    assert got.shape == sums.shape
    np.testing.assert_array_equal(got, sums)
    area = edr_json(client, "naefs.QPF/area", accumulate="PT24H",
               coords="POLYGON((-100.25 39.75, -94.75 39.75, -94.75 44.25, -100.25 44.25, "
                      "-100.25 39.75))")
    np.testing.assert_array_equal(edr_grid(area, "QPF"), sums)
    lon, lat = float(qpf["longitude"][3]), float(qpf["latitude"][2])
    point = edr_json(client, "naefs.QPF/position", coords=f"POINT({lon} {lat})",
                accumulate="PT24H")
    np.testing.assert_array_equal(edr_grid(point, "QPF"), sums[:, 2, 3])
    series = client.get("/api/timeseries", params={"layer": "naefs.QPF", "x": str(lon),
                                                   "y": str(lat), "accumulate": "PT24H"})
    np.testing.assert_array_equal(np.array(series.json()["series"][0]["values"], np.float32),
                                  sums[:, 2, 3])
    # a named time whose window reaches before the run is refused, not left out
    early = client.get("/edr/collections/naefs.QPF/position", params={
        "coords": f"POINT({lon} {lat})", "accumulate": "PT24H",
        "datetime": format_time(times[1])})
    assert early.status_code == 400 and "before run" in early.text


def test_edr_statistics_of_members_sums(client: AppClient, stores: Path) -> None:
    sums = members_sums(stores, 1, 5, 2)  # the 12 h ending at step 5 of the latest run
    when = format_time(T0 + 6 * HOUR + 30 * HOUR)
    names = "rain_member_mean,rain_member_above:5,rain_member_2"
    for kind, where in (("position", {"coords": "POINT(4 47)"}), ("cube", {"bbox": BBOX})):
        body = edr_json(client, f"members.rain/{kind}", datetime=when, accumulate="PT12H",
                   **{"parameter-name": names}, **where)
        with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            wants = {"rain_member_mean": np.nanmean(sums, axis=0),
                     "rain_member_above:5": 100.0 * (sums > 5).sum(axis=0)
                     / (~np.isnan(sums)).sum(axis=0),
                     "rain_member_2": sums[2]}
        for name, want in wants.items():
            got = edr_grid(body, name)[0]
            want = want.astype(np.float32)
            np.testing.assert_allclose(got, want[3, 4] if kind == "position" else want,
                                       rtol=1e-6, equal_nan=True)


@pytest.mark.parametrize("window", ["P1000Y", "PT0S", "garbage", "P40D", "PT5H"])
def test_an_edr_window_that_cannot_be_summed_is_a_400(client: AppClient, window: str) -> None:
    for kind, where in (("position", {"coords": "POINT(4 47)"}), ("cube", {"bbox": BBOX})):
        response = client.get(f"/edr/collections/members.rain/{kind}",
                              params={**where, "accumulate": window,
                                      "datetime": format_time(T0 + 36 * HOUR)})
        assert response.status_code == 400, response.text
        assert response.json()["code"] in ("InvalidParameterValue", "InvalidDimensionValue")


def test_an_edr_cube_of_the_change_of_sums(client: AppClient, stores: Path) -> None:
    when = T0 + 36 * HOUR  # step 5 of the latest run, step 6 of the previous
    want = members_sums(stores, 1, 5, 4)[1] - members_sums(stores, 0, 6, 4)[1]
    body = edr_json(client, "members.rain/cube", bbox=BBOX, datetime=format_time(when),
               accumulate="PT24H", baseline="previous", **{"parameter-name": "rain_member_1"})
    np.testing.assert_array_equal(edr_grid(body, "rain_member_1")[0], want)
    assert body["fewsmap:accumulation"] == "P1D"
    assert body["fewsmap:baseline_reference_time"] == format_time(T0)
