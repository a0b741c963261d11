"""Both point fronts read the same core: EDR position queries and /api/timeseries answer the
same values at the same valid times for the same point, run, member and level."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fewsmap.app.server import create_app
from fewsmap.settings import Settings
from tests.asgi_client import AppClient
from tests.synthetic import six_hourly_runs_store


@pytest.fixture(scope="module")
def client(point_stores: Path) -> AppClient:
    return AppClient(create_app(Settings(stores_dir=point_stores)))


def timeseries(client: AppClient, **params: str) -> dict[str, Any]:
    response = client.get("/api/timeseries", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def position(client: AppClient, layer: str, lon: float, lat: float, run: str | None = None,
             **params: str) -> dict[str, Any]:
    where = f"/instances/{run}" if run else ""
    response = client.get(f"/edr/collections/{layer}{where}/position",
                          params={"coords": f"POINT({lon} {lat})", **params})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def same_numbers(edr: list[float | None], series: list[float | None]) -> None:
    np.testing.assert_array_equal(np.array(edr, dtype="float64"),
                                  np.array(series, dtype="float64"))


@pytest.mark.parametrize("member", [0, 7, 20])
def test_an_ensemble_member(client: AppClient, member: int) -> None:
    series = timeseries(client, layer="gefs.t2m", x="-110", y="32", member=str(member))
    (entry,) = series["series"]
    edr = position(client, "gefs.t2m", -110, 32,
                   **{"parameter-name": f"t2m_member_{member}"})
    assert edr["fewsmap:reference_time"] == entry["reference_time"]
    assert edr["domain"]["axes"]["t"]["values"] == entry["times"]
    same_numbers(edr["ranges"][f"t2m_member_{member}"]["values"], entry["values"])
    assert edr["domain"]["axes"]["x"]["values"] == [series["cell"]["lon"]]
    assert edr["domain"]["axes"]["y"]["values"] == [series["cell"]["lat"]]
    assert edr["fewsmap:cell"] == {"row": series["cell"]["row"], "col": series["cell"]["col"]}


def test_an_ensemble_statistic(client: AppClient) -> None:
    (entry,) = timeseries(client, layer="gefs.t2m", x="-110", y="32", member="p90")["series"]
    edr = position(client, "gefs.t2m", -110, 32, **{"parameter-name": "t2m_member_p90"})
    assert edr["domain"]["axes"]["t"]["values"] == entry["times"]
    same_numbers(edr["ranges"]["t2m_member_p90"]["values"], entry["values"])


def test_each_run_of_a_plume(client: AppClient) -> None:
    plume = timeseries(client, layer="fmat.t", x="-78", y="40", runs="all")["series"]
    assert len(plume) == 4
    for entry in plume:
        edr = position(client, "fmat.t", -78, 40, run=entry["reference_time"])
        assert edr["fewsmap:reference_time"] == entry["reference_time"]
        assert edr["domain"]["axes"]["t"]["values"] == entry["times"]
        same_numbers(edr["ranges"]["t"]["values"], entry["values"])


def test_a_level(client: AppClient) -> None:
    levels = timeseries(client, layer="multi_param.t", x="10", y="50", elevation="all")
    for entry in levels["series"]:
        edr = position(client, "multi_param.t", 10, 50, z=str(entry["elevation"]))
        assert edr["domain"]["axes"]["z"]["values"] == [entry["elevation"]]
        assert edr["domain"]["axes"]["t"]["values"] == entry["times"]
        same_numbers(edr["ranges"]["t"]["values"], entry["values"])


def test_a_vector_layer_by_its_components(client: AppClient) -> None:
    vector = timeseries(client, layer="grid.u-v", x="10", y="45")
    (entry,) = vector["series"]
    edr = position(client, "grid.u-v", 10, 45)
    assert edr["domain"]["axes"]["t"]["values"] == entry["times"]
    for component in ("u", "v"):
        same_numbers(edr["ranges"][component]["values"], entry["components"][component])


def test_both_describe_the_variable_alike(client: AppClient) -> None:
    """One CoverageJSON parameter and one vertical reference for both fronts."""
    series = client.get("/api/timeseries", params={
        "layer": "multi_param.t", "x": "10", "y": "50", "elevation": "850",
        "format": "covjson"}).json()
    edr = position(client, "multi_param.t", 10, 50, z="850")
    assert series["parameters"]["t"] == edr["parameters"]["t"]
    vertical = [r for r in edr["domain"]["referencing"] if r["coordinates"] == ["z"]]
    assert [r for r in series["referencing"] if r["coordinates"] == ["z"]] == vertical
    probability = client.get("/api/timeseries", params={
        "layer": "gefs.t2m", "x": "-110", "y": "32", "member": "above:290",
        "format": "covjson"}).json()
    edr = position(client, "gefs.t2m", -110, 32, **{"parameter-name": "t2m_member_above:290"})
    assert probability["parameters"]["t2m"]["unit"] == {"symbol": "%"}
    assert edr["parameters"]["t2m_member_above:290"]["unit"] == {"symbol": "%"}
    assert probability["parameters"]["t2m"]["observedProperty"] == edr["parameters"][
        "t2m_member_above:290"]["observedProperty"]


@pytest.fixture(scope="module")
def ensemble(tmp_path_factory: pytest.TempPathFactory) -> AppClient:
    """Two six-hourly runs of a 4-member ``rain`` in mm (tests/synthetic.py)."""
    stores = tmp_path_factory.mktemp("series-ensemble") / "stores"
    six_hourly_runs_store(stores / "members.zarr", runs=2, members=4)
    return AppClient(create_app(Settings(stores_dir=stores)))


@pytest.mark.parametrize("products", [{}, {"baseline": "previous"}, {"accumulate": "PT12H"},
                                      {"baseline": "previous", "accumulate": "PT18H"}])
def test_one_edr_query_of_several_parameters_equals_each_series(
        ensemble: AppClient, products: dict[str, str]) -> None:
    """Members and statistics asked together of EDR, each equal to its own series, with
    a change, sums, or both."""
    labels = ["1", "3", "mean", "p90", "above:2", "std"]
    edr = position(ensemble, "members.rain", 4, 47, **products,
                   **{"parameter-name": ",".join(f"rain_member_{m}" for m in labels)})
    for label in labels:
        (entry,) = timeseries(ensemble, layer="members.rain", x="4", y="47", member=label,
                              **products)["series"]
        assert edr["domain"]["axes"]["t"]["values"] == entry["times"]
        same_numbers(edr["ranges"][f"rain_member_{label}"]["values"], entry["values"])
        assert all(edr.get(f"fewsmap:{name}") == entry[name]
                   for name in ("baseline_reference_time", "accumulation") if name in entry)


def test_both_answer_the_same_display_units(client: AppClient) -> None:
    for switch in ("true", "false"):
        series = timeseries(client, layer="gefs.t2m", x="-110", y="32", member="mean",
                            useDisplayUnits=switch)
        edr = position(client, "gefs.t2m", -110, 32, useDisplayUnits=switch,
                       **{"parameter-name": "t2m_member_mean"})
        assert edr["parameters"]["t2m_member_mean"]["unit"]["symbol"] == series["units"]
        same_numbers(edr["ranges"]["t2m_member_mean"]["values"], series["series"][0]["values"])
