"""Series in the units the maps show (issue #16): ``/api/timeseries`` in each format and EDR
queries answer display units (K → degC, m s-1 → km h-1) by default, as maps and
GetFeatureInfo do, and the stored units with ``useDisplayUnits=false``; a change converts
without the offset (2 K is 2 degC), a probability stays %. Units are always UDUNITS.

The oracle is xarray over the same cube, converted here by hand.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xarray as xr

from fewsmap import open_cube
from fewsmap.app.server import create_app
from fewsmap.settings import Settings
from tests.asgi_client import AppClient
from tests.synthetic import six_hourly_runs_store

KELVIN = 273.15
# (layer, store, variable, point, stored units, display units, display = stored × a + b)
T2M = ("gefs.t2m", "gefs", "t2m", (-110.0, 32.0), "K", "degC", 1.0, -KELVIN)
WIND = ("gefs.si10", "gefs", "si10", (-110.0, 32.0), "m s-1", "km h-1", 3.6, 0.0)
LAYERS = [T2M, WIND]
FORMATS = ["json", "csv", "covjson", "netcdf"]


@pytest.fixture(scope="module")
def client(point_stores: Path) -> AppClient:
    return AppClient(create_app(Settings(stores_dir=point_stores)))


def stored(stores: Path, store: str, variable: str, lon: float, lat: float,
           run: int = 0, member: int | None = 0) -> np.ndarray:
    """The cube's float32 values at the cell nearest (lon, lat), every step of one run."""
    with open_cube(stores / f"{store}.zarr") as cube:
        col = int(np.argmin(np.abs(cube["longitude"].values - lon)))
        row = int(np.argmin(np.abs(cube["latitude"].values - lat)))
        field = cube[variable].isel(latitude=row, longitude=col, forecast_reference_time=run)
        if member is not None and "realization" in field.dims:
            field = field.sel(realization=member)
        return np.asarray(field.values, dtype=np.float32)


def converted(values: np.ndarray, scale: float, offset: float) -> np.ndarray:
    """Values in display units, as the maps convert them (float32)."""
    return (values * np.float32(scale) + np.float32(offset)).astype(np.float32)


def series_values(client: AppClient, tmp_path: Path, fmt: str, **params: str
                  ) -> tuple[np.ndarray, str]:
    """The one series an /api/timeseries request answers, and its units, in format ``fmt``."""
    response = client.get("/api/timeseries", params={**params, "format": fmt})
    assert response.status_code == 200, response.text
    if fmt == "json":
        body = response.json()
        (entry,) = body["series"]
        return np.array(entry["values"], dtype=np.float64).astype(np.float32), body["units"]
    if fmt == "csv":
        rows = list(csv.DictReader(io.StringIO(response.text)))
        assert "units" not in rows[0] or len({row["units"] for row in rows}) == 1
        return (np.array([float(r["value"]) if r["value"] else np.nan for r in rows],
                         dtype=np.float32), rows[0].get("units", ""))
    if fmt == "covjson":
        body = response.json()
        (coverage,) = body["coverages"]
        (name,) = coverage["ranges"]
        values = [np.nan if v is None else v for v in coverage["ranges"][name]["values"]]
        return (np.array(values, dtype=np.float64).astype(np.float32),
                body["parameters"][name]["unit"]["symbol"])
    path = tmp_path / "series.nc"
    path.write_bytes(response.content)
    with xr.open_dataset(path) as dataset:
        (name,) = [n for n in dataset.data_vars if n != "series_id"]
        return (np.asarray(dataset[name].values[0], dtype=np.float32),
                str(dataset[name].attrs["units"]))


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("case", LAYERS, ids=["temperature", "wind"])
def test_timeseries_are_in_display_units_unless_asked_otherwise(
        client: AppClient, point_stores: Path, tmp_path: Path, fmt: str,
        case: tuple[Any, ...]) -> None:
    layer, store, variable, (lon, lat), units, display, scale, offset = case
    raw = stored(point_stores, store, variable, lon, lat)
    params = {"layer": layer, "x": str(lon), "y": str(lat), "member": "0"}
    values, said = series_values(client, tmp_path, fmt, **params)
    np.testing.assert_allclose(values, converted(raw, scale, offset), rtol=1e-6)
    assert said == display
    for switch in ("false", "FALSE", "0"):
        values, said = series_values(client, tmp_path, fmt, useDisplayUnits=switch, **params)
        np.testing.assert_array_equal(values, raw)
        assert said == units
    values, said = series_values(client, tmp_path, fmt, usedisplayunits="true", **params)
    np.testing.assert_allclose(values, converted(raw, scale, offset), rtol=1e-6)


def edr_position(client: AppClient, layer: str, lon: float, lat: float,
                 **params: str) -> dict[str, Any]:
    response = client.get(f"/edr/collections/{layer}/position",
                          params={"coords": f"POINT({lon} {lat})", **params})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.mark.parametrize("case", LAYERS, ids=["temperature", "wind"])
def test_edr_queries_and_metadata_say_the_units_they_answer(
        client: AppClient, point_stores: Path, case: tuple[Any, ...]) -> None:
    layer, store, variable, (lon, lat), units, display, scale, offset = case
    raw = stored(point_stores, store, variable, lon, lat, member=3)
    name = f"{variable}_member_3"
    body = edr_position(client, layer, lon, lat, **{"parameter-name": name})
    np.testing.assert_allclose(np.array(body["ranges"][name]["values"], dtype=np.float32),
                               converted(raw, scale, offset), rtol=1e-6)
    assert body["parameters"][name]["unit"]["symbol"] == display
    collection = client.get(f"/edr/collections/{layer}").json()
    assert collection["parameter_names"][name]["unit"]["symbol"] == display
    plain = edr_position(client, layer, lon, lat, useDisplayUnits="false",
                         **{"parameter-name": name})
    np.testing.assert_array_equal(np.array(plain["ranges"][name]["values"], np.float32), raw)
    assert plain["parameters"][name]["unit"]["symbol"] == units
    collection = client.get(f"/edr/collections/{layer}",
                            params={"useDisplayUnits": "false"}).json()
    assert collection["parameter_names"][name]["unit"]["symbol"] == units
    # an area query converts the same way (its own read path)
    box = f"{lon - 0.5},{lat - 0.5},{lon + 0.5},{lat + 0.5}"
    for switch, want in (("true", converted(raw, scale, offset)), ("false", raw)):
        cube = client.get(f"/edr/collections/{layer}/cube", params={
            "bbox": box, "parameter-name": name, "useDisplayUnits": switch})
        assert cube.status_code == 200, cube.text
        found = cube.json()
        axes = found["domain"]["axes"]
        col = int(np.argmin(np.abs(np.array(axes["x"]["values"]) - lon)))
        row = int(np.argmin(np.abs(np.array(axes["y"]["values"]) - lat)))
        grid = np.array([np.nan if v is None else v for v in found["ranges"][name]["values"]],
                        dtype=np.float32).reshape(found["ranges"][name]["shape"])
        np.testing.assert_allclose(grid[:, row, col], want, rtol=1e-6)
        symbol = found["parameters"][name]["unit"]["symbol"]
        assert symbol == (display if switch == "true" else units)
    rows = list(csv.DictReader(io.StringIO(client.get(
        f"/edr/collections/{layer}/position", params={
            "coords": f"POINT({lon} {lat})", "parameter-name": name,
            "f": "CSV"}).text)))
    assert {row["units"] for row in rows} == {display}
    np.testing.assert_allclose(np.array([float(r["value"]) for r in rows], np.float32),
                               converted(raw, scale, offset), rtol=1e-6)


@pytest.fixture(scope="module")
def kelvin_client(tmp_path_factory: pytest.TempPathFactory) -> AppClient:
    """Three six-hourly runs of a temperature ``t2m`` in K (random values about 2), and a
    rain field whose units are spelt as GRIB spells them (``kg m**-2``)."""
    stores = tmp_path_factory.mktemp("kelvin") / "stores"
    six_hourly_runs_store(stores / "runs.zarr", variable="t2m", attrs={
        "units": "K", "standard_name": "air_temperature"})
    six_hourly_runs_store(stores / "grib.zarr", runs=1, attrs={"units": "kg m**-2"})
    return AppClient(create_app(Settings(stores_dir=stores)))


def test_a_change_converts_without_the_offset(kelvin_client: AppClient,
                                              tmp_path: Path) -> None:
    """The change of 2 K between runs is 2 degC, not -271.15 degC."""
    params = {"layer": "runs.t2m", "x": "4", "y": "47", "baseline": "previous"}
    for fmt in FORMATS:
        shown, said = series_values(kelvin_client, tmp_path, fmt, **params)
        plain, units = series_values(kelvin_client, tmp_path, fmt, useDisplayUnits="false",
                                     **params)
        assert (said, units) == ("degC", "K")
        np.testing.assert_allclose(shown, plain, rtol=1e-6)
        assert np.isfinite(plain).all() and np.abs(plain).max() < 50
    edr = edr_position(kelvin_client, "runs.t2m", 4, 47, baseline="previous")
    assert edr["parameters"]["t2m"]["unit"]["symbol"] == "degC"
    np.testing.assert_allclose(np.array(edr["ranges"]["t2m"]["values"], np.float32), shown,
                               rtol=1e-6)
    # without a baseline, the same layer is converted with the offset
    values, said = series_values(kelvin_client, tmp_path, "json", layer="runs.t2m", x="4",
                                 y="47")
    assert said == "degC" and (values < -200).all()


def test_stored_units_are_written_as_udunits(kelvin_client: AppClient, tmp_path: Path) -> None:
    """A GRIB-spelt ``kg m**-2`` is answered as ``kg m-2`` (or mm, its display unit)."""
    for fmt in FORMATS:
        _, units = series_values(kelvin_client, tmp_path, fmt, layer="grib.rain", x="4",
                                 y="47", useDisplayUnits="false")
        assert units == "kg m-2"
        _, units = series_values(kelvin_client, tmp_path, fmt, layer="grib.rain", x="4",
                                 y="47")
        assert units in ("kg m-2", "mm")


def test_a_probability_stays_in_per_cent(client: AppClient) -> None:
    for switch in ("true", "false"):
        body = client.get("/api/timeseries", params={
            "layer": "gefs.t2m", "x": "-110", "y": "32", "member": "above:290",
            "useDisplayUnits": switch}).json()
        assert body["units"] == "%"
        assert min(v for v in body["series"][0]["values"] if v is not None) >= 0
        assert max(v for v in body["series"][0]["values"] if v is not None) <= 100
    mean = client.get("/api/timeseries", params={
        "layer": "gefs.t2m", "x": "-110", "y": "32", "member": "mean"}).json()
    assert mean["units"] == "degC" and max(mean["series"][0]["values"]) < 100


@pytest.mark.parametrize("asked", [
    {"layers": "runs.t2m:change", "styles": "change"},  # the style capabilities advertise
    {"layers": "runs.t2m:change"},
    {"layers": "runs.t2m", "baseline": "previous"}])
def test_feature_info_of_a_change_is_the_series_value_without_the_offset(
        kelvin_client: AppClient, asked: dict[str, str]) -> None:
    """GetFeatureInfo on a change answers in the map's display units as the series does (a
    change of 2 K is 2 degC), and takes the change's own style by name."""
    series = kelvin_client.get("/api/timeseries", params={
        "layer": "runs.t2m", "x": "4", "y": "47", "baseline": "previous"}).json()
    [entry] = series["series"]
    layers = asked["layers"]
    info = kelvin_client.get("/wms", params={
        "request": "GetFeatureInfo", "query_layers": layers, "crs": "CRS:84",
        "bbox": "-0.5,44.5,8.5,50.5", "width": "9", "height": "6", "i": "4", "j": "3",
        "info_format": "application/json", "time": entry["times"][0], **asked})
    assert info.status_code == 200, info.text
    properties = info.json()["features"][0]["properties"]
    assert properties["units"] == series["units"] == "degC"
    assert np.float32(properties["value"]) == np.float32(entry["values"][0])
