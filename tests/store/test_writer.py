"""Appending runs: idempotent re-ingest, replacement, atomic publish and crash recovery.

Crashes are real: either the writer's own functions stop before publishing (as a killed
process would), or a subprocess that ingests is killed with SIGKILL while it writes.
"""

from __future__ import annotations

import dataclasses
import gzip
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import zarr

from fewsmap import ForecastStore, open_cube
from fewsmap.errors import IngestError, StoreError
from fewsmap.ingest import ingest, read_runs
from fewsmap.store.backend import LocalBackend
from fewsmap.store.cube import StoreVersion, is_store
from fewsmap.store.writer import (
    RETIRED_GRACE_S,
    _write_run,
    append_run,
    publish,
    writer_lock,
    writing_marker,
)
from tests.conftest import ROOT, assert_values, open_source, sample_paths, seconds, tree_digest
from tests.forecast_files import single_level_grib
from tests.synthetic import (
    LAGGED_RUNS,
    T0,
    lagged_ensemble_store,
    lagged_members,
    lagged_run_time,
    lagged_steps,
    ragged_members_store,
)

Sample = Callable[[str], list[Path]]
Ingested = Callable[[str], Path]
RUN = "forecast_reference_time"
FMAT_RUNS = [f"2022-06-01T{hour}:00:00Z" for hour in ("00", "06", "12", "18")]


@pytest.fixture(scope="module")
def fmat_fields() -> dict[str, np.ndarray]:
    """The temperature field of each FMAT run, as cfgrib reads it, by run label."""
    return {label: open_source(path).t.values
            for label, path in zip(FMAT_RUNS, sample_paths("fmat"), strict=True)}


def assert_fmat_runs(store: Path, fields: dict[str, np.ndarray], labels: list[str]) -> None:
    """The store publishes exactly ``labels``, each with the source's values, to both readers."""
    fs = ForecastStore(store)
    assert [r.label for r in fs.runs] == labels
    for run in fs.runs:
        assert_values(fs.read_slice("t", run, run.valid_times[0]), fields[run.label])
    ds = open_cube(store)
    assert [str(t)[:19] + "Z" for t in ds[RUN].values.astype("datetime64[s]")] == labels
    for index, label in enumerate(labels):
        assert_values(ds.t.isel({RUN: index, "step": 0}).values, fields[label])


def leftovers(folder: Path) -> list[Path]:
    """Temporary files and writing markers anywhere under ``folder``."""
    return [p for p in folder.rglob("*") if p.name.endswith((".partial", ".writing"))]


# --- re-ingest and replace ------------------------------------------------------------------


@pytest.mark.parametrize("name", ["naefs", "fmat", "wgust"])
def test_reingest_is_skipped_and_changes_nothing(name: str, tmp_path: Path,
                                                 sample: Sample) -> None:
    store = tmp_path / f"{name}.zarr"
    first = ingest(store, sample(name), progress=False)
    assert {r.status for r in first} == {"written"}
    before = tree_digest(tmp_path)
    version = StoreVersion.of(store)

    again = ingest(store, sample(name), progress=False)

    assert [r.status for r in again] == ["skipped"] * len(first)
    assert all("from the same files" in r.message for r in again)
    assert tree_digest(tmp_path) == before
    assert StoreVersion.of(store) == version


def test_reingest_of_the_gefs_folder_changes_nothing(ingested: Ingested, sample: Sample) -> None:
    store = ingested("gefs")
    before = tree_digest(store.parent)
    [result] = ingest(store, sample("gefs"), progress=False)
    assert result.status == "skipped"
    assert tree_digest(store.parent) == before


def test_same_run_from_other_files_is_skipped_and_says_so(tmp_path: Path,
                                                          sample: Sample) -> None:
    store = tmp_path / "naefs.zarr"
    ingest(store, sample("naefs"), progress=False)
    packed = tmp_path / "NAEFSmean_netcdf2022080912.nc.gz"
    packed.write_bytes(gzip.compress(sample("naefs")[0].read_bytes()))
    before = tree_digest(store)

    [result] = ingest(store, [packed], progress=False)

    assert result.status == "skipped"
    assert "from other files; pass --replace" in result.message
    assert tree_digest(store) == before


@pytest.mark.parametrize("name", ["naefs", "fmat"])
def test_replace_publishes_the_same_values_once(name: str, tmp_path: Path,
                                                sample: Sample) -> None:
    store = tmp_path / f"{name}.zarr"
    ingest(store, sample(name), progress=False)
    old = ForecastStore(store)
    old_cube = open_cube(store).load()

    results = ingest(store, sample(name), replace=True, progress=False)

    assert [r.status for r in results] == ["replaced"] * len(old.runs)
    new = ForecastStore(store)
    assert [r.label for r in new.runs] == [r.label for r in old.runs]  # one entry each
    assert len(new.attrs["runs"]) == len(old.runs)
    assert {r.slot for r in new.runs}.isdisjoint({r.slot for r in old.runs})
    assert {e["slot"] for e in new.attrs["retired"]} == {r.slot for r in old.runs}
    new_cube = open_cube(store).load()
    xr.testing.assert_equal(new_cube, old_cube)
    for variable in new.variables:
        assert new_cube[variable].dtype == np.float32


# --- a write that does not finish -----------------------------------------------------------


def test_unpublished_run_is_invisible_then_recovered(
    tmp_path: Path, sample: Sample, fmat_fields: dict[str, np.ndarray]
) -> None:
    store = tmp_path / "fmat.zarr"
    fmat = sample("fmat")
    ingest(store, fmat[:1], progress=False)
    reader_before = ForecastStore(store)
    cube_before = open_cube(store)
    [second] = read_runs(fmat[1:2])

    # What append_run does up to publishing; the process "dies" there.
    with writer_lock(store):
        writing_marker(store).touch()
        _write_run(LocalBackend(store), second, progress=False)
    assert any((store / "t" / "c" / "1").rglob("*")), "the run's chunks are on disk"
    assert zarr.open_array(store / "t", mode="r").shape[0] == 2

    for reader in (reader_before, ForecastStore(store)):
        assert [r.label for r in reader.runs] == FMAT_RUNS[:1]
        [run] = reader.runs
        assert_values(reader.read_slice("t", run, run.valid_times[0]), fmat_fields[FMAT_RUNS[0]])
    assert_values(cube_before.t.isel({RUN: 0, "step": 0}).values, fmat_fields[FMAT_RUNS[0]])
    assert_fmat_runs(store, fmat_fields, FMAT_RUNS[:1])

    results = ingest(store, fmat, progress=False)

    assert [r.status for r in results] == ["skipped", "written", "written", "written"]
    assert_fmat_runs(store, fmat_fields, FMAT_RUNS)
    # The abandoned slot was given back: the arrays shrank to their published shape.
    # slots are never reused: one the killed writer had reserved is retired, not rewritten
    slots = [r.slot for r in ForecastStore(store).runs]
    assert slots == sorted(set(slots)) and slots[0] == 0 and len(slots) == 4
    retired = ForecastStore(store).attrs["retired"]
    assert sorted(slots + [e["slot"] for e in retired]) == list(range(max(slots) + 1))
    assert leftovers(tmp_path) == []


def test_interrupted_creation_is_started_again(
    tmp_path: Path, sample: Sample, fmat_fields: dict[str, np.ndarray]
) -> None:
    store = tmp_path / "fmat.zarr"
    # What _create_store leaves when killed after its first step: a bare Zarr group.
    zarr.open_group(store, mode="w", zarr_format=3)
    writing_marker(store).touch()
    assert not is_store(store)
    with pytest.raises(StoreError, match="not a fewsmap forecast cube"):
        ForecastStore(store)

    [result] = ingest(store, sample("fmat")[:1], progress=False)

    assert result.status == "written"
    assert_fmat_runs(store, fmat_fields, FMAT_RUNS[:1])
    assert leftovers(tmp_path) == []


def test_folder_that_is_not_a_store_is_left_alone(tmp_path: Path, sample: Sample) -> None:
    folder = tmp_path / "my-files"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep me\n")

    with pytest.raises(IngestError, match="neither empty nor a fewsmap store"):
        ingest(folder, sample("naefs"), progress=False)

    assert [p.name for p in folder.iterdir()] == ["notes.txt"]
    assert leftovers(tmp_path) == []


def test_failed_write_leaves_the_store_as_it_was(tmp_path: Path, sample: Sample) -> None:
    store = tmp_path / "naefs.zarr"
    ingest(store, sample("naefs"), progress=False)
    before = tree_digest(tmp_path)
    [run] = read_runs(sample("naefs"))
    # A later run whose QPF has members: it cannot go into the store's QPF array.
    qpf = run.fields["QPF"][0].expand_dims({"realization": [0]}, axis=1)
    later = dataclasses.replace(run, reference_time=run.reference_time + np.timedelta64(6, "h"),
                                fields={"QPF": (qpf,)})

    with pytest.raises(IngestError, match="'QPF' has dimensions"):
        append_run(store, later, progress=False)

    assert tree_digest(tmp_path) == before


WRITER = """
import sys
from pathlib import Path
from fewsmap.ingest import ingest
print("ready", flush=True)
ingest(Path(sys.argv[1]), [Path(p) for p in sys.argv[2:]], progress=False)
"""
# Seeded, one early (growing the arrays), one among the chunk writes, one later (a later run
# or the publish); each FMAT run takes some 30-50 ms to write.
_rng = random.Random(20220601)
KILL_DELAYS_S = [round(_rng.uniform(low, high), 3) for low, high in
                 ((0.0, 0.005), (0.005, 0.04), (0.04, 0.1))]


def ingest_in_subprocess(store: Path, paths: list[Path]) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(store), *map(str, paths)],
                            stdout=subprocess.PIPE, text=True, cwd=ROOT)
    assert proc.stdout is not None
    assert proc.stdout.readline() == "ready\n"
    return proc


def kill_while_writing(proc: subprocess.Popen[str], store: Path, delay_s: float) -> None:
    """SIGKILL ``proc`` ``delay_s`` after it starts writing to ``store``."""
    deadline = time.monotonic() + 60
    while not writing_marker(store).exists() and proc.poll() is None:
        assert time.monotonic() < deadline, "the writer never started"
        time.sleep(0.001)
    time.sleep(delay_s)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()


@pytest.mark.parametrize("delay_s", KILL_DELAYS_S)
def test_killed_ingest_publishes_whole_runs_only(
    delay_s: float, tmp_path: Path, sample: Sample, fmat_fields: dict[str, np.ndarray]
) -> None:
    store = tmp_path / "fmat.zarr"
    fmat = sample("fmat")
    ingest(store, fmat[:1], progress=False)
    reader_before = ForecastStore(store)

    proc = ingest_in_subprocess(store, fmat[1:])
    kill_while_writing(proc, store, delay_s)

    # Opened before, or after the crash: whole published runs with the source's values.
    assert [r.label for r in reader_before.runs] == FMAT_RUNS[:1]
    [run] = reader_before.runs
    assert_values(reader_before.read_slice("t", run, run.valid_times[0]),
                  fmat_fields[FMAT_RUNS[0]])
    published = [r.label for r in ForecastStore(store).runs]
    assert published == FMAT_RUNS[: len(published)]
    assert_fmat_runs(store, fmat_fields, published)

    results = ingest(store, fmat, progress=False)

    assert [r.status for r in results] == (
        ["skipped"] * len(published) + ["written"] * (4 - len(published)))
    assert_fmat_runs(store, fmat_fields, FMAT_RUNS)
    # slots are never reused: one the killed writer had reserved is retired, not rewritten
    slots = [r.slot for r in ForecastStore(store).runs]
    assert slots == sorted(set(slots)) and slots[0] == 0 and len(slots) == 4
    retired = ForecastStore(store).attrs["retired"]
    assert sorted(slots + [e["slot"] for e in retired]) == list(range(max(slots) + 1))
    assert leftovers(tmp_path) == []


def test_killed_first_ingest_is_recovered(
    tmp_path: Path, sample: Sample, fmat_fields: dict[str, np.ndarray]
) -> None:
    store = tmp_path / "fmat.zarr"
    proc = ingest_in_subprocess(store, sample("fmat"))
    kill_while_writing(proc, store, 0.005)  # while the store is being created

    try:
        published = [r.label for r in ForecastStore(store).runs]
    except StoreError:
        published = []  # killed before the empty store was published
    assert published == FMAT_RUNS[: len(published)]

    ingest(store, sample("fmat"), progress=False)

    assert_fmat_runs(store, fmat_fields, FMAT_RUNS)
    assert leftovers(tmp_path) == []


# --- readers across a publish ---------------------------------------------------------------


def test_reader_opened_before_a_publish_keeps_its_runs(
    tmp_path: Path, sample: Sample, fmat_fields: dict[str, np.ndarray]
) -> None:
    store = tmp_path / "fmat.zarr"
    fmat = sample("fmat")
    ingest(store, fmat[:1], progress=False)
    reader = ForecastStore(store)
    cube = open_cube(store)
    first = FMAT_RUNS[0]

    ingest(store, fmat[1:2], progress=False)

    newer = ForecastStore(store)
    assert newer.version != reader.version
    assert StoreVersion.of(store) == newer.version
    assert [r.label for r in newer.runs] == FMAT_RUNS[:2]
    assert [r.label for r in reader.runs] == [first]
    assert_values(reader.read_slice("t", reader.run(first), reader.run(first).valid_times[0]),
                  fmat_fields[first])
    assert cube.sizes[RUN] == 1
    assert_values(cube.t.isel({RUN: 0, "step": 0}).values, fmat_fields[first])  # read now

    # A replacement goes to a new slot; the old one stays readable for open readers.
    [result] = ingest(store, fmat[:1], replace=True, progress=False)
    assert result.status == "replaced"
    latest = ForecastStore(store)
    assert latest.version != newer.version
    assert latest.run(first).slot != reader.run(first).slot
    for fs in (reader, newer, latest):
        run = fs.run(first)
        assert_values(fs.read_slice("t", run, run.valid_times[0]), fmat_fields[first])


def test_replaced_run_is_deleted_after_the_grace_period_only(
    tmp_path: Path, sample: Sample, fmat_fields: dict[str, np.ndarray]
) -> None:
    store = tmp_path / "fmat.zarr"
    fmat = sample("fmat")
    ingest(store, fmat[:1], progress=False)
    ingest(store, fmat[:1], replace=True, progress=False)
    old_chunks = store / "t" / "c" / "0"
    assert ForecastStore(store).run(FMAT_RUNS[0]).slot == 1
    assert any(old_chunks.rglob("*"))

    ingest(store, fmat[1:2], progress=False)  # within the grace period: kept for readers
    assert any(old_chunks.rglob("*"))

    # Let the grace period pass (as the published record tells it), then write again.
    attrs = ForecastStore(store).attrs
    long_ago = (datetime.now(UTC) - timedelta(seconds=RETIRED_GRACE_S + 1)).isoformat()
    with writer_lock(store):
        publish(store, {**attrs, "retired": [{**e, "retired_at": long_ago}
                                             for e in attrs["retired"]]})
    ingest(store, fmat[2:3], progress=False)

    assert not old_chunks.exists()
    fs = ForecastStore(store)
    assert fs.attrs["retired"] == []
    assert np.isnat(fs.coordinate(RUN).astype("datetime64[s]")[0])
    assert_fmat_runs(store, fmat_fields, FMAT_RUNS[:3])


# --- growing axes ---------------------------------------------------------------------------


def later_run(source: Path, target: Path, hours: int) -> Path:
    """Write ``source`` as the run ``hours`` later would hold it: same valid times from then."""
    with xr.open_dataset(source) as ds:
        later = ds.load().isel(time=slice(1, None))
    later.time.attrs["reference_time"] = float(later.time.attrs["reference_time"] + hours * 3600)
    target.parent.mkdir(parents=True, exist_ok=True)
    later.to_netcdf(target)
    return target


def chunk_digest(store: Path, variables: list[str], slot: int) -> dict[str, str]:
    return {f"{v}/{k}": h for v in variables
            for k, h in tree_digest(store / v / "c" / str(slot)).items()}


def test_new_lead_times_and_members_grow_the_axes(tmp_path: Path, sample: Sample) -> None:
    [folder] = sample("gefs")
    store = tmp_path / "gefs.zarr"
    ingest(store, [folder / f"gefs_{m}.nc" for m in ("c00", "p01")], progress=False)
    variables = ["dswrf", "si10", "t2m", "tcdc"]
    first = ForecastStore(store).runs[0]
    first_chunks = chunk_digest(store, variables, first.slot)

    # The run 3 h later: its lead times after 192 h (6-hourly) fall between the first run's,
    # and it has a member the first run does not have (21).
    later = tmp_path / "2019051503"
    sources = {1: later_run(folder / "gefs_p01.nc", later / "gefs_p01.nc", 3),
               21: later_run(folder / "gefs_p02.nc", later / "gefs_p21.nc", 3)}
    [result] = ingest(store, list(sources.values()), progress=False)
    assert result.status == "written"

    fs = ForecastStore(store)
    assert [r.label for r in fs.runs] == ["2019-05-15T00:00:00Z", "2019-05-15T03:00:00Z"]
    first_again, second = fs.runs
    leads1 = (first.valid_times - first.reference_time).astype("int64")
    leads2 = (second.valid_times - second.reference_time).astype("int64")
    new_leads = np.setdiff1d(leads2, leads1)
    assert len(new_leads) == 32 and new_leads[0] == 195 * 3600
    # Axes grow at their end (arrival order); published chunks never move.
    np.testing.assert_array_equal(fs.coordinate("step"), np.r_[leads1, new_leads])
    np.testing.assert_array_equal(fs.coordinate("realization"), [0, 1, 21])
    assert chunk_digest(store, variables, first.slot) == first_chunks
    np.testing.assert_array_equal(first_again.valid_times, first.valid_times)

    ds = open_cube(store)
    all_leads = np.union1d(leads1, leads2).astype("timedelta64[s]")
    np.testing.assert_array_equal(ds.step.values, all_leads.astype("timedelta64[ns]"))
    first_cube = ds.isel({RUN: 0})
    second_cube = ds.isel({RUN: 1})
    has_step = ~np.isnat(first_cube.valid_time.values)
    assert has_step.sum() == 97
    np.testing.assert_array_equal(first_cube.valid_time.values[has_step].astype("datetime64[s]"),
                                  first.valid_times)
    for member, name in ((0, "gefs_c00.nc"), (1, "gefs_p01.nc")):
        src = open_source(folder / name)
        for variable in variables:
            stored = first_cube[variable].sel(realization=member).values
            assert_values(stored[has_step], src[variable].values)
            assert np.isnan(stored[~has_step]).all()
    assert np.isnan(first_cube.t2m.sel(realization=21).values).all()

    np.testing.assert_array_equal(second.valid_times, seconds(open_source(sources[1]).time))
    for member, path in sources.items():
        src = open_source(path)
        stored = second_cube.t2m.sel(realization=member)
        steps_of_run = ~np.isnat(second_cube.valid_time.values)
        assert_values(stored.values[steps_of_run], src.t2m.values)
        vt = second.valid_times[-1]
        assert_values(fs.read_slice("t2m", second, vt, realization=[0, 1, 21].index(member)),
                      src.t2m.sel(time=vt).values)
    assert np.isnan(second_cube.t2m.sel(realization=0).values).all()


def test_members_can_come_to_a_store_that_had_none(tmp_path: Path, sample: Sample) -> None:
    [folder] = sample("gefs")
    store = tmp_path / "gefs.zarr"
    ingest(store, [folder / "gefs_avg.nc"], progress=False)
    assert "realization" not in ForecastStore(store).group

    files = [folder / f"gefs_{m}.nc" for m in ("avg", "p01")]
    [result] = ingest(store, files, replace=True, progress=False)

    assert result.status == "replaced"
    fs = ForecastStore(store)
    np.testing.assert_array_equal(fs.coordinate("realization"), [1])
    [run] = fs.runs
    vt = run.valid_times[10]
    assert_values(fs.read_slice("t2m", run, vt, realization=0),
                  open_source(folder / "gefs_p01.nc").t2m.sel(time=vt).values)
    assert_values(fs.read_slice("t2m_ens_mean", run, vt),
                  open_source(folder / "gefs_avg.nc").t2m.sel(time=vt).values)
    assert leftovers(tmp_path) == []


def test_run_record_says_which_steps_and_members_hold_data(tmp_path: Path) -> None:
    store = ForecastStore(lagged_ensemble_store(tmp_path / "lagged.zarr"))
    steps = store.coordinate("step") // 86400  # lead days, in store order
    members = store.coordinate("realization")
    assert len(store.runs) == LAGGED_RUNS
    for k, run in enumerate(store.runs):
        assert run.reference_time == lagged_run_time(k)
        present = run.record["present"]
        assert steps[run.data_labels("t2m", "step")].tolist() == lagged_steps(k)
        assert members[run.data_labels("t2m", "realization")].tolist() == lagged_members(k)
        assert "by_step" not in present["t2m"]  # same members at every held step: compact
        assert steps[run.data_labels("snow", "step")].tolist() == lagged_steps(k)[1:2]
        assert present["snow"] == {"step": str(2 * k + 1)}


def test_members_held_at_some_steps_only_are_recorded_per_step(tmp_path: Path) -> None:
    ragged_members_store(tmp_path / "s.zarr")
    info = ForecastStore(tmp_path / "s.zarr").runs[0]
    assert info.record["present"]["x"] == {
        "step": "0,2", "realization": "0-1,3",
        "by_step": {"realization": {"0": "0-1", "2": "3"}}}
    assert info.data_labels("x", "realization", 2).tolist() == [3]
    assert info.holding(["x"]).valid_times.tolist() == [T0, T0 + np.timedelta64(12, "h")]


def test_a_single_level_fits_a_store_written_without_it(tmp_path: Path) -> None:
    """Stores from before single levels were kept hold such variables without a level axis:
    later runs keep that shape (issue #13 item 9)."""
    [run] = read_runs([single_level_grib(tmp_path, 850)])
    older = dataclasses.replace(
        run, reference_time=run.reference_time - np.timedelta64(12, "h"),
        fields={"z": tuple(p.squeeze("isobaricInhPa", drop=True) for p in run.fields["z"])})
    append_run(tmp_path / "z.zarr", older, progress=False)
    assert append_run(tmp_path / "z.zarr", run, progress=False).status == "written"
    store = ForecastStore(tmp_path / "z.zarr")
    assert store.dims("z") == ("forecast_reference_time", "step", "latitude", "longitude")
    assert "isobaricInhPa" not in store.group and len(store.runs) == 2
