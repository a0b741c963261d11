"""Reading a cube: ForecastStore (runs, valid times, raw slices) and open_cube (lazy xarray)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyproj
import pytest
import zarr

from fewsmap import ForecastStore, open_cube
from fewsmap.errors import StoreError
from fewsmap.ingest import ingest
from fewsmap.store.cube import StoreVersion, is_store
from tests.conftest import assert_values, open_source
from tests.synthetic import (
    LAGGED_RUNS,
    LAGGED_STEPS,
    lagged_ensemble_store,
    lagged_members,
    lagged_steps,
    lonlat_store,
)

Sample = Callable[[str], list[Path]]
Ingested = Callable[[str], Path]
RUN = "forecast_reference_time"


def test_missing_store_is_a_store_error(tmp_path: Path) -> None:
    missing = tmp_path / "missing.zarr"
    assert not is_store(missing)
    with pytest.raises(StoreError, match=r"missing\.zarr"):
        ForecastStore(missing)
    with pytest.raises(FileNotFoundError):  # the catalog polls it: a plain OSError
        StoreVersion.of(missing)
    with pytest.raises(StoreError, match=r"missing\.zarr"):
        open_cube(missing)


def test_zarr_group_that_is_not_a_cube_is_a_store_error(tmp_path: Path) -> None:
    other = tmp_path / "other.zarr"
    zarr.open_group(other, mode="w", zarr_format=3).create_array(
        "a", shape=(2,), dtype="int32")
    assert not is_store(other)
    with pytest.raises(StoreError, match="not a fewsmap forecast cube"):
        ForecastStore(other)
    with pytest.raises(StoreError, match=r"other\.zarr"):
        open_cube(other)


def test_runs_come_in_reference_time_order_whatever_the_ingest_order(
    tmp_path: Path, sample: Sample
) -> None:
    fmat = sample("fmat")
    store = tmp_path / "fmat.zarr"
    for path in (fmat[3], fmat[0], fmat[1]):  # 18Z, 00Z, 06Z
        ingest(store, [path], progress=False)
    labels = ["2022-06-01T00:00:00Z", "2022-06-01T06:00:00Z", "2022-06-01T18:00:00Z"]
    fields = {labels[0]: fmat[0], labels[1]: fmat[1], labels[2]: fmat[3]}

    fs = ForecastStore(store)
    assert [r.label for r in fs.runs] == labels
    assert [r.slot for r in fs.runs] == [1, 2, 0]  # slots are in arrival order
    assert fs.latest_run is not None and fs.latest_run.label == labels[2]
    ds = open_cube(store)
    np.testing.assert_array_equal(ds[RUN].values.astype("datetime64[s]"),
                                  [np.datetime64(label[:-1]) for label in labels])
    for index, label in enumerate(labels):
        expected = open_source(fields[label]).t.values
        run = fs.run(label)
        assert_values(fs.read_slice("t", run, run.valid_times[0]), expected)
        assert_values(ds.t.isel({RUN: index, "step": 0}).values, expected)
        assert ds.valid_time.values[index, 0] == run.valid_times[0]


def test_runs_and_valid_times_are_looked_up_exactly(ingested: Ingested) -> None:
    fs = ForecastStore(ingested("naefs"))
    run = fs.run("2022-08-09T00:00:00Z")
    assert fs.run(np.datetime64("2022-08-09T00:00", "m")) is run
    with pytest.raises(KeyError, match="2022-08-09T12:00:00Z"):
        fs.run("2022-08-09T12:00:00Z")
    with pytest.raises(KeyError, match="no valid time 2022-08-09T07:00:00Z"):
        fs.read_slice("QPF", run, np.datetime64("2022-08-09T07:00"))
    with pytest.raises(KeyError, match="'QPF' has no dimension realization"):
        fs.read_slice("QPF", run, run.valid_times[0], realization=3)
    # Valid times may be given at any precision.
    np.testing.assert_array_equal(
        fs.read_slice("QPF", run, np.datetime64("2022-08-09T06:00:00.000", "ms")),
        fs.read_slice("QPF", run, run.valid_times[0]))


def test_run_record_traces_the_inputs_and_summarises_values(
    ingested: Ingested, sample: Sample
) -> None:
    [path] = sample("naefs")
    [run] = ForecastStore(ingested("naefs")).runs
    [source] = run.sources
    assert source["path"] == str(path.resolve())
    assert source["size_bytes"] == path.stat().st_size
    assert source["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert run.record["first_valid_time"] == "2022-08-09T06:00:00Z"
    assert run.record["last_valid_time"] == "2022-08-25T00:00:00Z"

    src = open_source(path)
    for name in ("QPF", "QTF"):
        values = src[name].values.astype("float64")
        stats = run.statistics[name]
        assert stats["min"] == np.nanmin(values)
        assert stats["max"] == np.nanmax(values)
        assert stats["mean"] == pytest.approx(np.nanmean(values), rel=1e-9)
        assert stats["nan_fraction"] == pytest.approx(np.isnan(values).mean())


def test_open_cube_is_lazy_cf_without_dask(ingested: Ingested) -> None:
    ds = open_cube(ingested("naefs"))
    assert ds.QPF.chunks is None  # xarray's lazy indexing, no dask graph
    assert ds.QPF.attrs["grid_mapping"] == "crs"
    assert "crs" in ds.coords
    assert pyproj.CRS.from_cf(ds.crs.attrs).equals(pyproj.CRS.from_epsg(4326),
                                                   ignore_axis_order=True)
    assert ds.valid_time.dims == (RUN, "step")
    assert ds.valid_time.attrs["standard_name"] == "time"
    assert ds[RUN].attrs["standard_name"] == "forecast_reference_time"
    assert ds.step.attrs["standard_name"] == "forecast_period"
    assert ds.latitude.attrs["units"] == "degrees_north"
    # Selecting one field reads only that field.
    field = ds.QPF.sel({RUN: "2022-08-09T00:00", "step": np.timedelta64(24, "h")})
    assert field.shape == (61, 121)
    assert field.valid_time.values == np.datetime64("2022-08-10T00:00", "ns")


def test_open_cube_gives_dask_arrays_when_asked(ingested: Ingested) -> None:
    path = ingested("naefs")
    eager, chunked = open_cube(path), open_cube(path, chunks={})
    assert chunked.QPF.chunks is not None  # a dask graph, for work larger than memory
    mean = chunked.QPF.mean("step")
    assert mean.chunks is not None  # still not computed
    np.testing.assert_array_equal(chunked.QPF.values, eager.QPF.values)
    np.testing.assert_allclose(mean.values, eager.QPF.mean("step").values, rtol=1e-6)


def test_runs_holding_narrows_each_run_to_its_data(tmp_path: Path) -> None:
    store = ForecastStore(lagged_ensemble_store(tmp_path / "lagged.zarr"))
    runs = store.runs_holding(["t2m"])
    assert len(runs) == LAGGED_RUNS
    for k, run in enumerate(runs):
        days = (run.valid_times - run.reference_time) // np.timedelta64(1, "D")
        assert days.tolist() == lagged_steps(k)
        assert store.read_slice("t2m", run, run.valid_times[0],
                                realization=lagged_members(k)[0]).min() >= 0
    assert [r.valid_times.size for r in store.runs_holding(["snow"])] == [1] * LAGGED_RUNS
    assert store.runs_holding(["t2m"]) is runs  # one narrowing per published state


def test_runs_written_before_the_record_hold_every_step(tmp_path: Path) -> None:
    """Stores ingested before fewsmap recorded which fields hold data list all (the old
    behaviour) until a run is re-ingested with --replace (docs/design/cube.md)."""
    path = lagged_ensemble_store(tmp_path / "lagged.zarr")
    root = json.loads((path / "zarr.json").read_bytes())
    for record in root["attributes"]["fewsmap"]["runs"]:
        del record["present"]
    (path / "zarr.json").write_text(json.dumps(root))
    store = ForecastStore(path)
    runs = store.runs_holding(["t2m"])
    assert [r.valid_times.size for r in runs] == [LAGGED_STEPS] * LAGGED_RUNS
    assert runs[0].data_labels("t2m", "realization") is None


def test_results_are_remembered_once_per_store_state(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """What a store state's metadata decides is worked out once; a newly opened state works
    it out again; at most REMEMBERED_ITEMS are kept."""
    path = lonlat_store(tmp_path / "s.zarr")
    store = ForecastStore(path)
    calls: list[str] = []

    def make(name: str) -> Callable[[], str]:
        return lambda: calls.append(name) or f"{name}{len(calls)}"

    assert store.remembered("a", make("a")) == store.remembered("a", make("a")) == "a1"
    assert ForecastStore(path).remembered("a", make("a")) == "a2"
    monkeypatch.setattr("fewsmap.store.cube.REMEMBERED_ITEMS", 2)
    store.remembered("b", make("b"))
    store.remembered("c", make("c"))  # full: forgets a and b
    assert store.remembered("a", make("a")) == "a5"
