"""The time-chunked copy of a variable (fewsmap/store/series.py) and the small-field layout.

A time series reads one inner chunk of the copy per run instead of one chunk per value; a
small field's chunks hold its run's steps. Either way the values are the variable's, read
from the cube xarray opens, and a run written before copies existed is read as before.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import zarr

from fewsmap import open_cube
from fewsmap.app.server import create_app
from fewsmap.errors import IngestError
from fewsmap.settings import Settings
from fewsmap.store.cube import ForecastStore
from fewsmap.store.layout import series_chunks
from fewsmap.store.reads import read_block, read_cell_runs
from fewsmap.store.run import RunData, SourceFile
from fewsmap.store.series import write_copies
from fewsmap.store.writer import InProcess, append_run
from tests.asgi_client import AppClient
from tests.synthetic import T0, lagged_ensemble_store, lonlat_grid


@pytest.fixture(scope="module")
def lagged_copied(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The lagged ensemble with its fields chunked one per step, so with copies."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("fewsmap.store.layout.SMALL_FIELD_CELLS", 0)
        return lagged_ensemble_store(tmp_path_factory.mktemp("copied") / "lagged.zarr")


def test_the_copy_holds_the_values_of_the_variable(lagged_copied: Path) -> None:
    store = ForecastStore(lagged_copied)
    assert store.array("t2m").chunks[1:3] == (1, 1)
    assert "t2m.series" not in store.variables
    with open_cube(lagged_copied) as ds:
        assert "t2m.series" not in ds.data_vars
        cube = ds["t2m"].values  # run, step, member, y, x
    for k, run in enumerate(store.runs):
        assert store.series_copy("t2m", run.slot) == "t2m.series"
        for direct in (True, False):
            values = read_block(store, "t2m", run.slot, run.step_slots, [range(28)], [3], [5],
                                direct=direct)
            np.testing.assert_array_equal(values[..., 0, 0], cube[k, :, :, 3, 5])
            for member in (0, 27):  # one member: its steps read as one line of the copy
                one = read_block(store, "t2m", run.slot, run.step_slots, [[member]], [3], [5],
                                 direct=direct)
                np.testing.assert_array_equal(one.ravel(), cube[k, :, member, 3, 5])
    copy = np.asarray(store.array("t2m.series")[...])  # run, y, x, step, member
    np.testing.assert_array_equal(np.moveaxis(copy, (1, 2), (3, 4)),
                                  np.asarray(store.array("t2m")[...]))


def test_runs_written_without_copies_are_read_from_the_variable(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs written before copies existed, or with ``series_copy=False``."""
    monkeypatch.setattr("fewsmap.store.layout.SMALL_FIELD_CELLS", 0)
    path = tmp_path / "mixed.zarr"
    append_run(path, _run(T0, 1.0), progress=False, series_copy=False)
    append_run(path, _run(T0 + np.timedelta64(6, "h"), 2.0), progress=False)
    store = ForecastStore(path)
    old, new = store.runs
    assert "series" not in old.record and new.record["series"] == ["x"]
    assert store.series_copy("x", old.slot) is None
    for run, value in ((old, 1.0), (new, 2.0)):
        values = read_block(store, "x", run.slot, run.step_slots, [], [1], [2])
        np.testing.assert_array_equal(values.ravel(), [value, value + 1])
    # Series of several runs read together: the run without a copy is left to read_block.
    found = read_cell_runs(store, "x", [(old.slot, np.asarray(old.step_slots)),
                                        (new.slot, np.asarray(new.step_slots))], (), 1, 2)
    assert found[0] is None
    assert found[1] is not None and found[1].tolist() == [2.0, 3.0]


def test_a_failed_write_leaves_no_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("fewsmap.store.layout.SMALL_FIELD_CELLS", 0)
    path = tmp_path / "failed.zarr"
    append_run(path, _run(T0, 1.0), progress=False)

    def failing(*args: object) -> bytes:
        raise IngestError("disk full")

    monkeypatch.setattr("fewsmap.store.series.encode_shard", failing)
    with pytest.raises(IngestError):
        append_run(path, _run(T0 + np.timedelta64(6, "h"), 2.0), progress=False)
    store = ForecastStore(path)
    assert len(store.runs) == 1 and store.series_copy("x", store.runs[0].slot) == "x.series"
    assert not (path / "x.series" / "c" / "1").exists()


def test_a_small_field_run_is_written_as_one_chunk_per_variable(tmp_path: Path) -> None:
    """GEFS points: 97 steps × 21 members of a 2 × 2 grid, one input file per member."""
    grid = lonlat_grid(np.array([33.0, 32.0]), np.array([-111.0, -110.0]))
    steps = (np.arange(97) * 3 * 3600).astype("timedelta64[s]").astype("timedelta64[ns]")
    rng = np.random.default_rng(3)
    values = rng.normal(size=(97, 21, 2, 2)).astype("float32")
    values[0, :, :, :] = np.nan  # an accumulation: nothing at lead time 0
    # One file per member; member 7's ends after 49 steps.
    pieces = tuple(xr.DataArray(values[:length, m:m + 1],
                                dims=("step", "realization", *grid.dims),
                                coords={"step": steps[:length], "realization": [m]},
                                attrs={"units": "K"})
                   for m in range(21) for length in [49 if m == 7 else 97])
    run = RunData(T0, {"t2m": pieces}, grid, (SourceFile("synthetic", "0" * 64, 0),),
                  "synthetic")
    path = tmp_path / "gefs.zarr"
    start = time.perf_counter()
    append_run(path, run, progress=False)
    assert time.perf_counter() - start < 2.0  # 10 s with a file per field
    chunk_files = [f for _, _, files in os.walk(path / "t2m" / "c") for f in files]
    assert len(chunk_files) == 1
    store = ForecastStore(path)
    stored = np.asarray(store.array("t2m")[0])
    expected = values.copy()
    expected[49:, 7] = np.nan
    np.testing.assert_array_equal(stored, expected)
    held = np.concatenate([values[:, :7].ravel(), values[:49, 7].ravel(),
                           values[:, 8:].ravel()])  # what the files hold: no holes
    [record] = store.attrs["runs"]
    statistics = record["statistics"]["t2m"]
    assert statistics["nan_fraction"] == pytest.approx(np.isnan(held).mean())
    assert statistics["mean"] == pytest.approx(float(np.nanmean(held)), rel=1e-5)
    assert record["present"]["t2m"]["step"] == "1-96"
    series = read_block(store, "t2m", 0, store.runs[0].step_slots, [range(21)], [1], [0])
    np.testing.assert_array_equal(series[..., 0, 0], expected[:, :, 1, 0])


def _run(t0: np.datetime64, value: float) -> RunData:
    """A run of variable ``x`` on a 4 × 5 grid: ``value`` at the first step, +1 at the next."""
    grid = lonlat_grid(np.array([3.0, 2.0, 1.0, 0.0]), np.arange(5.0))
    field = xr.DataArray(np.stack([np.full((4, 5), value + k, "float32") for k in range(2)]),
                         dims=("step", *grid.dims), attrs={"units": "1"},
                         coords={"step": np.array([0, 6], "timedelta64[h]").astype(
                             "timedelta64[ns]")})
    return RunData(t0, {"x": (field,)}, grid, (SourceFile("synthetic", "0" * 64, 0),),
                   "synthetic")


def test_copies_zarr_reads_across_shards_inner_chunks_and_steps(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """fewsmap encodes the copy's shards itself: zarr reads them as the variable's values,
    over several shards, partial and empty inner chunks, and steps in more than one shard."""
    monkeypatch.setattr("fewsmap.store.layout.SERIES_STEPS", 2)  # steps in two shards
    rng = np.random.default_rng(9)
    lat, lon = np.linspace(70.0, 30.0, 530), np.linspace(-20.0, 40.0, 100)
    grid = lonlat_grid(lat, lon)
    values = rng.normal(size=(3, 530, 100)).astype("float32")
    values[:, :40, :70] = np.nan  # whole inner chunks of NaN: not stored
    steps = np.array([0, 6, 12], "timedelta64[h]").astype("timedelta64[ns]")
    field = xr.DataArray(values, dims=("step", *grid.dims), coords={"step": steps},
                         attrs={"units": "1"})
    path = tmp_path / "shards.zarr"
    append_run(path, RunData(T0, {"x": (field,)}, grid, (SourceFile("synthetic", "0" * 64, 0),),
                             "synthetic"), progress=False)
    store = ForecastStore(path)
    copy = store.array("x.series")
    assert copy.chunks == (1, 32, 32, 2) and copy.shards == (1, 512, 512, 2)  # 2 steps
    np.testing.assert_array_equal(np.moveaxis(np.asarray(copy[0]), -1, 0), values)
    shards = sorted(str(p.relative_to(path / "x.series" / "c")) for p in
                    (path / "x.series" / "c").rglob("*") if p.is_file())
    assert shards == ["0/0/0/0", "0/0/0/1", "0/1/0/0", "0/1/0/1"]
    for row, col in ((0, 0), (39, 69), (529, 99), (515, 3)):
        for direct in (True, False):
            series = read_block(store, "x", 0, store.runs[0].step_slots, [], [row], [col],
                                direct=direct)
            np.testing.assert_array_equal(series.ravel(), values[:, row, col])


def test_the_copy_written_from_memory_is_the_copy_read_back_from_the_variable(
        tmp_path: Path) -> None:
    """Pieces holding all their steps write their shards from memory; what is read back from
    the variable for other pieces (`write_copies`) is the same bytes."""
    rng = np.random.default_rng(4)
    lat, lon = np.linspace(70.0, 30.0, 530), np.linspace(-20.0, 40.0, 100)
    grid = lonlat_grid(lat, lon)
    values = rng.normal(size=(3, 2, 530, 100)).astype("float32")
    values[:, :, :40, :70] = np.nan
    steps = np.array([0, 6, 12], "timedelta64[h]").astype("timedelta64[ns]")
    pieces = tuple(xr.DataArray(values[:, m:m + 1], dims=("step", "realization", *grid.dims),
                                coords={"step": steps, "realization": [m]},
                                attrs={"units": "1"}) for m in range(2))
    path = tmp_path / "memory.zarr"
    append_run(path, RunData(T0, {"x": pieces}, grid, (SourceFile("synthetic", "0" * 64, 0),),
                             "synthetic"), progress=False)
    shards = {p: p.read_bytes() for p in (path / "x.series" / "c").rglob("*") if p.is_file()}
    assert len(shards) == 4  # 2 members × 2 shards of rows
    for shard in shards:
        shard.unlink()
    group = zarr.open_group(path, mode="r+", use_consolidated=False)
    copied = write_copies(group, str(path), 0, {"x": [(0,), (1,)]}, InProcess(1))
    assert copied == ["x"]
    assert {p: p.read_bytes() for p in shards} == shards
    store = ForecastStore(path)
    np.testing.assert_array_equal(np.moveaxis(np.asarray(store.array("x.series")[0]), (0, 1),
                                              (2, 3)), values)


def test_a_copy_made_with_other_inner_chunks_keeps_its_layout(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A store whose copy was created with other inner chunks than a new copy of its steps
    gets (8 × 8 cells here, where 8 steps now get 32 × 32) has later runs written in that
    layout, and every run's series is read from it, directly and by zarr."""
    path = tmp_path / "before.zarr"
    monkeypatch.setattr("fewsmap.store.layout.SERIES_TILE_MAX", 8)
    append_run(path, _europe_run(T0, 1.0), progress=False)
    monkeypatch.undo()
    assert series_chunks(4, 4)[0][1:3] == (32, 32)
    append_run(path, _europe_run(T0 + np.timedelta64(6, "h"), 5.0), progress=False)
    store = ForecastStore(path)
    assert store.array("x.series").chunks[1:3] == (8, 8)
    assert [store.series_copy("x", run.slot) for run in store.runs] == ["x.series"] * 2
    expected = np.asarray(store.array("x")[...])  # run, step, y, x
    for run in store.runs:
        for row, col in ((0, 0), (7, 9), (39, 41)):
            for direct in (True, False):
                series = read_block(store, "x", run.slot, run.step_slots, [], [row], [col],
                                    direct=direct)
                np.testing.assert_array_equal(series.ravel(),
                                              expected[run.slot, run.step_slots, row, col])


@pytest.mark.parametrize("query", [
    {"x": "10.3", "y": "50.1"}, {"x": "10.3", "y": "50.1", "runs": "all"},
    {"x": "10.3", "y": "50.1", "runs": "all", "format": "covjson"},
    {"x": "10.3", "y": "50.1", "runs": "all", "format": "csv"},
    {"x": "10.3", "y": "50.1", "runs": "all", "baseline": "previous"},
    {"x": "10.3", "y": "50.1", "runs": "all", "accumulate": "PT12H"}])
def test_a_store_without_copies_answers_the_same_time_series(
        tmp_path: Path, query: dict[str, str]) -> None:
    """The copy is a per-store choice (``series_copy``): with or without it, /api/timeseries
    answers the same values, read from the copy or from the variable."""
    stores = tmp_path / "stores"
    for name, copies in (("with", True), ("without", False)):
        for k, value in enumerate((1.0, 5.0)):
            run = _europe_run(T0 + np.timedelta64(6 * k, "h"), value)
            append_run(stores / f"{name}.zarr", run, progress=False, series_copy=copies)
    assert ForecastStore(stores / "with.zarr").series_copy("x", 1) == "x.series"
    assert ForecastStore(stores / "without.zarr").series_copy("x", 1) is None
    assert not (stores / "without.zarr" / "x.series").exists()
    client = AppClient(create_app(Settings(stores_dir=stores)))
    answers = []
    for name in ("with", "without"):
        response = client.get("/api/timeseries", params={  # as stored (K)
            "layer": f"{name}.x", "useDisplayUnits": "false", **query})
        assert response.status_code == 200, response.text
        answers.append(response.text.replace(f"{name}.x", "LAYER"))
    assert answers[0] == answers[1]
    if len(query) == 2:
        assert '"values":[10.3,11.3,12.3,13.3]' in answers[0]  # 5 + step + column / 10


def test_read_cell_runs_reads_each_runs_series_of_a_member_from_the_copy(
        lagged_copied: Path) -> None:
    store = ForecastStore(lagged_copied)
    with open_cube(lagged_copied) as ds:
        cube = ds["t2m"].values  # run, step, member, y, x
    runs = [(run.slot, np.asarray(run.step_slots)) for run in store.runs]
    for member in (0, 5, 27):
        found = read_cell_runs(store, "t2m", runs, (member,), 3, 5)
        assert len(found) == len(runs)
        for k, (values, run) in enumerate(zip(found, store.runs, strict=True)):
            assert values is not None and values.dtype == np.float32
            np.testing.assert_array_equal(values, cube[k, run.step_slots, member, 3, 5])


@pytest.mark.parametrize("member", ["all", "3", "mean"])
def test_every_runs_series_over_http_holds_the_cubes_values(lagged_copied: Path,
                                                            member: str) -> None:
    """Series of all runs at once (read together from the copy) are each run's values of
    the cube as xarray reads it, member by member, statistics too."""
    client = AppClient(create_app(Settings(stores_dir=lagged_copied.parent)))
    response = client.get("/api/timeseries", params={
        "layer": "lagged.t2m", "x": "10", "y": "54", "runs": "all", "member": member,
        "useDisplayUnits": "false"})
    assert response.status_code == 200, response.text
    body = response.json()
    row, col = body["cell"]["row"], body["cell"]["col"]
    with open_cube(lagged_copied) as ds:
        cube = ds["t2m"].values  # run, step, member, y, x
        references = [f"{t}Z" for t in np.datetime_as_string(
            ds["forecast_reference_time"].values, unit="s")]
    named = slice(None) if member in ("all", "mean") else int(member)
    assert {s["reference_time"] for s in body["series"]} == {
        ref for k, ref in enumerate(references)
        if not np.isnan(cube[k, :, named, row, col]).all()}  # runs holding the member
    for series in body["series"]:
        k = references.index(series["reference_time"])
        values = np.array([np.nan if v is None else v for v in series["values"]], "float32")
        at = cube[k, :, :, row, col]
        held = at[~np.isnan(at).all(axis=1)]  # the run's valid times holding data
        expected = np.nanmean(held, axis=1) if member == "mean" else held[:, int(
            series["member"])]
        np.testing.assert_allclose(values, expected.astype("float32"), rtol=1e-6)


def _europe_run(t0: np.datetime64, value: float) -> RunData:
    """A run of ``x`` on a 0.1° grid over central Europe (too large for field blocks): the
    value plus the step index plus a tenth of the column."""
    grid = lonlat_grid(np.arange(55.0, 45.0, -0.1), np.arange(5.0, 15.0, 0.1))
    base = np.arange(grid.coords["longitude"].size, dtype="float32") / 10
    field = xr.DataArray(np.stack([np.broadcast_to(value + k + base, (100, 100))
                                   for k in range(4)]).astype("float32"),
                         dims=("step", *grid.dims), attrs={"units": "K"},
                         coords={"step": (np.arange(4) * 3600 * 6).astype(
                             "timedelta64[s]").astype("timedelta64[ns]")})
    return RunData(t0, {"x": (field,)}, grid, (SourceFile("synthetic", "0" * 64, 0),),
                   "synthetic")
