"""Ingest on dask.distributed: real clusters (a LocalCluster of processes, and ``dask
scheduler`` with ``dask worker`` as users start them), real sample files, and every result
compared with a serial ingest of the same files."""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import dask
import numpy as np
import obstore
import pytest
from distributed import Client, LocalCluster
from obstore.store import from_url

from fewsmap.cli import main
from fewsmap.errors import IngestError
from fewsmap.ingest import ingest, read_runs
from fewsmap.ingest.distributed import WORKER_ENVIRON, DaskExecutor
from fewsmap.store.writer import append_run
from tests.conftest import ROOT, sample_paths, tree_digest
from tests.ingest.hostile import damaged_chunk_netcdf4
from tests.s3server import S3Server

Ingested = Callable[[str], Path]
DASK = Path(sys.executable).parent / "dask"


@pytest.fixture(scope="module")
def client() -> Iterator[Client]:
    """Two worker processes of one thread; a task whose worker dies is not retried."""
    with dask.config.set({"distributed.scheduler.allowed-failures": 0, **WORKER_ENVIRON}), \
            LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                         dashboard_address=":0") as cluster, Client(cluster) as client:
        yield client


def files(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` and its digest; folders left out: zarr leaves the empty
    chunk folders of an undone slot behind (a later run's chunks go there), which hold no
    data and are no part of what readers see."""
    return {path: digest for path, digest in tree_digest(folder).items() if digest != "folder"}


def published(store: Path) -> dict[str, Any]:
    """The root metadata (consolidated arrays, run records) but for when it was written."""
    return without_timestamps(json.loads((store / "zarr.json").read_bytes()))


def without_timestamps(root: dict[str, Any]) -> dict[str, Any]:
    """Root metadata without when the store was created and its runs ingested."""
    attrs = root["attributes"]["fewsmap"]
    runs = [{k: v for k, v in run.items() if k != "ingested_at"} for run in attrs["runs"]]
    root["attributes"]["fewsmap"] = {**attrs, "created": None, "runs": runs}
    return root


def assert_same_store(store: Path, reference: Path) -> None:
    """Every chunk and array byte-identical, the run records equal but for timestamps."""
    ours, theirs = tree_digest(store), tree_digest(reference)
    assert ours.pop("zarr.json") and theirs.pop("zarr.json")
    assert ours == theirs
    assert published(store) == published(reference)


CASES = {
    # 4 GEFS member files (control, 2 perturbed, the mean): one piece per file and variable
    "gefs members": (lambda: sorted(sample_paths("gefs")[0].iterdir())[:4], {}),
    "ECMWF gust ensemble (GRIB)": (lambda: sample_paths("wgust"), {}),
    "two gzipped GFE runs": (lambda: sample_paths("cnrfc_qpf"), {}),
    "NAEFS with a missing value": (lambda: sample_paths("naefs"), {"QPF": 0.0}),
}


@pytest.mark.parametrize("case", CASES)
def test_workers_write_what_a_serial_ingest_writes(case: str, client: Client,
                                                   tmp_path: Path) -> None:
    files, missing = CASES[case][0](), CASES[case][1]
    serial = ingest(tmp_path / "serial.zarr", files, progress=False, missing_values=missing)

    results = ingest(tmp_path / "dask.zarr", files, progress=False, missing_values=missing,
                     executor=DaskExecutor(client))

    assert results == serial and {r.status for r in results} == {"written"}
    assert_same_store(tmp_path / "dask.zarr", tmp_path / "serial.zarr")


def test_a_file_damaged_past_its_header_fails_on_a_worker_and_changes_nothing(
        client: Client, tmp_path: Path) -> None:
    store = tmp_path / "stores" / "naefs.zarr"
    ingest(store, sample_paths("naefs"), progress=False)
    before = files(store.parent)
    damaged = damaged_chunk_netcdf4(tmp_path)

    with pytest.raises(IngestError, match=r"NAEFSmean_netcdf2022081012\.nc\): 'QPF' cannot "
                                          r"be decoded"):
        ingest(store, [damaged], progress=False, executor=DaskExecutor(client))

    assert files(store.parent) == before  # the QTF chunks the other task wrote: gone


def set_environment(variables: dict[str, str]) -> None:
    """Set environment variables in this process (run on the workers)."""
    os.environ.update(variables)


def test_workers_write_into_an_s3_store_what_a_serial_ingest_writes_locally(
        client: Client, s3_env: S3Server, tmp_path: Path) -> None:
    client.run(set_environment, s3_env.env)  # as workers started with the AWS variables
    files = sample_paths("naefs")
    ingest(tmp_path / "naefs.zarr", files, progress=False)
    bucket = s3_env.new_bucket()

    ingest(f"s3://{bucket}/stores/naefs.zarr", files, progress=False,
           executor=DaskExecutor(client))

    objects, prefix = from_url(f"s3://{bucket}/stores/naefs.zarr"), "stores/naefs.zarr/"
    names = [key.removeprefix(prefix) for key in s3_env.keys(bucket, prefix)]
    stored = {name: bytes(obstore.get(objects, name).bytes()) for name in names}
    local = {str(path.relative_to(tmp_path / "naefs.zarr")): path.read_bytes()
             for path in (tmp_path / "naefs.zarr").rglob("*") if path.is_file()}
    assert stored.keys() == local.keys()
    assert {k: v for k, v in stored.items() if k != "zarr.json"} == \
        {k: v for k, v in local.items() if k != "zarr.json"}
    assert without_timestamps(json.loads(stored["zarr.json"])) == \
        without_timestamps(json.loads(local["zarr.json"]))


def exit_in_a_worker(block: np.ndarray) -> np.ndarray:
    """Die at once, as a worker the kernel kills (out of memory), half-way a task."""
    from distributed import get_worker

    get_worker()  # raises outside a worker: never the test process
    os._exit(1)


def test_a_killed_worker_fails_the_ingest_and_changes_nothing(client: Client,
                                                              tmp_path: Path) -> None:
    store = tmp_path / "stores" / "naefs.zarr"
    ingest(store, sample_paths("naefs"), progress=False)
    before = files(store.parent)
    [run] = read_runs(sample_paths("naefs"), lazy=True)
    [qpf], [qtf] = run.fields["QPF"], run.fields["QTF"]
    dying = qpf.copy(data=qpf.data.map_blocks(exit_in_a_worker, meta=np.array((), qpf.dtype)))
    later = dataclasses.replace(run, reference_time=run.reference_time + np.timedelta64(6, "h"),
                                fields={"QPF": (dying,), "QTF": (qtf,)})

    try:
        with pytest.raises(IngestError, match="'QPF': a dask worker failed on it: KilledWorker"):
            append_run(store, later, progress=False, executor=DaskExecutor(client))
    finally:
        client.wait_for_workers(2, timeout=60)  # the nanny starts another one

    assert files(store.parent) == before


def test_ingest_workers_flag_starts_a_local_cluster(tmp_path: Path, ingested: Ingested,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    store = tmp_path / "naefs.zarr"
    assert main(["ingest", "--quiet", "--workers", "1", "--store", str(store),
                 *map(str, sample_paths("naefs"))]) == 0
    assert "run 2022-08-09T00:00:00Z written" in capsys.readouterr().out
    assert_same_store(store, ingested("naefs"))


def test_ingest_refuses_no_workers_and_a_scheduler_that_does_not_answer(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr("fewsmap.ingest.distributed.CONNECT_TIMEOUT_S", 1)
    files = [str(p) for p in sample_paths("naefs")]
    store = tmp_path / "naefs.zarr"

    assert main(["ingest", "--workers", "0", "--store", str(store), *files]) == 2
    assert "--workers must be 1 or more" in capsys.readouterr().err
    address = f"tcp://127.0.0.1:{free_port()}"
    assert main(["ingest", "--scheduler", address, "--store", str(store), *files]) == 2
    assert f"--scheduler {address}: no dask scheduler answers there" in capsys.readouterr().err
    assert not store.exists()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def tasks_done(dask_scheduler: Any, prefix: str) -> int:
    """Tasks of the function ``prefix`` the scheduler's workers finished (run there)."""
    return sum(1 for key, _, finish, *_ in dask_scheduler.transition_log
               if str(key).startswith(f"{prefix}-") and finish == "memory")


@pytest.fixture
def scheduler(tmp_path: Path) -> Iterator[str]:
    """``dask scheduler`` and ``dask worker`` (2 processes) as a user starts them; the
    scheduler's address. The workers import this fewsmap (PYTHONPATH): installed, elsewhere."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    file = tmp_path / "scheduler.json"
    procs = [subprocess.Popen([DASK, "scheduler", "--scheduler-file", file, "--port", "0",
                               "--no-dashboard"], env=env, stderr=subprocess.DEVNULL)]
    try:
        deadline = time.monotonic() + 60
        while not file.exists():
            assert time.monotonic() < deadline and procs[0].poll() is None
            time.sleep(0.05)
        procs.append(subprocess.Popen(
            [DASK, "worker", "--scheduler-file", file, "--nworkers", "2", "--nthreads", "1",
             "--no-dashboard"], env=env, stderr=subprocess.DEVNULL))
        address = json.loads(file.read_text())["address"]
        with Client(address) as client:
            client.wait_for_workers(2, timeout=60)
        yield address
    finally:
        for proc in reversed(procs):
            proc.terminate()
            proc.wait(timeout=30)


@pytest.mark.slow
def test_ingest_on_a_running_scheduler_from_the_command_line(
        scheduler: str, tmp_path: Path, ingested: Ingested) -> None:
    store = tmp_path / "fmat.zarr"
    done = subprocess.run([sys.executable, "-m", "fewsmap.cli", "ingest", "--quiet",
                           "--scheduler", scheduler, "--store", store,
                           *sample_paths("fmat")], capture_output=True, text=True, timeout=120)

    assert done.returncode == 0, done.stderr
    assert done.stdout.count("written") == 4
    assert_same_store(store, ingested("fmat"))
    pieces = sum(len(p) for run in read_runs(sample_paths("fmat")) for p in run.fields.values())
    with Client(scheduler) as client:  # the workers wrote every piece, hashed every file
        assert client.run_on_scheduler(tasks_done, prefix="write_piece") == pieces
        assert client.run_on_scheduler(tasks_done, prefix="describe") == 4
