"""Stores in object storage (fewsmap/store/backend.py) on a real S3 server (moto's server mode).

The local store's guarantees hold there too: a run appears atomically, a reader never sees a
partial run, a killed ingest loses nothing published, one writer at a time, retention never
breaks a reader. Nothing of the S3 client is mocked: fewsmap talks S3 over HTTP to a server
the tests start, configured only by the standard AWS variables.
"""

from __future__ import annotations

import http.server
import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import obstore
import pytest
from obstore.store import from_url

from fewsmap import ForecastStore, open_cube
from fewsmap.errors import ConfigError, StoreError
from fewsmap.ingest import ingest
from fewsmap.store.backend import ObjectBackend, list_stores
from fewsmap.store.cube import is_store
from fewsmap.store.reads import read_block
from fewsmap.store.retention import RetentionPolicy, prune
from fewsmap.store.writer import publish, writer_lock
from tests.conftest import record_figure
from tests.forecast_files import forecast_file, run_time
from tests.s3server import S3Server, s3_server
from tests.store.test_crash import Writers, run_digests

SHAPE = (520, 540)  # 2 x 2 spatial chunks per field
VARIABLES = ("t2m", "tp")
KILL_TRIALS = 8
LEASE_S = 2.0  # the writers' lease in these tests: a killed writer blocks the next this long


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    folder = tmp_path_factory.mktemp("object-inputs")
    return [forecast_file(folder, run_time(i), steps=4, shape=SHAPE, variables=VARIABLES)
            for i in range(4)]


@pytest.fixture
def s3_store(s3_env: S3Server, monkeypatch: pytest.MonkeyPatch) -> str:
    """The URL of a store (not yet created) in a new bucket."""
    monkeypatch.setenv("FEWSMAP_WRITER_LEASE_S", str(LEASE_S))
    monkeypatch.setattr("fewsmap.store.backend.LEASE_S", LEASE_S)
    return f"s3://{s3_env.new_bucket()}/forecasts/feed.zarr"


def test_a_store_in_s3_holds_what_a_local_store_holds(s3_store: str, inputs: list[Path],
                                                      tmp_path: Path) -> None:
    local = tmp_path / "feed.zarr"
    ingest(local, inputs[:2], progress=False)
    results = ingest(s3_store, inputs[:2], progress=False)
    assert [r.status for r in results] == ["written", "written"]
    assert is_store(s3_store)
    assert run_digests(s3_store) == run_digests(local)
    remote, here = ForecastStore(s3_store), ForecastStore(local)
    assert remote.name == "feed" and remote.files is None and remote.reader("t2m") is None
    assert [r.label for r in remote.runs] == [r.label for r in here.runs]
    assert remote.runs[0].statistics == here.runs[0].statistics
    run = remote.runs[1]
    np.testing.assert_array_equal(remote.read_slice("tp", run, run.valid_times[2]),
                                  here.read_slice("tp", run, run.valid_times[2]))
    # a time series reads the run's time-chunked copy through zarr: the same values
    assert remote.series_copy("t2m", run.slot) == "t2m.series"
    np.testing.assert_array_equal(
        read_block(remote, "t2m", run.slot, run.step_slots, [], [300], [400]),
        read_block(here, "t2m", run.slot, run.step_slots, [], [300], [400], direct=False))
    # xarray users open the same URL
    cube = open_cube(s3_store)
    np.testing.assert_array_equal(cube["t2m"].isel(forecast_reference_time=1, step=2).values,
                                  here.read_slice("t2m", run, run.valid_times[2]))
    # and draw it in a notebook (from the values read: the service's layers are elsewhere)
    image = cube["t2m"].isel(forecast_reference_time=1, step=2).fewsmap.map()
    assert image.size[0] > 0 and image.getextrema()[3][1] == 255  # opaque pixels drawn
    # idempotent: the same files again are skipped
    assert [r.status for r in ingest(s3_store, inputs[:1], progress=False)] == ["skipped"]


def test_the_stores_folder_lists_stores_and_hides_writers_files(s3_env: S3Server,
                                                                inputs: list[Path]) -> None:
    folder = f"s3://{s3_env.new_bucket()}/stores"
    ingest(f"{folder}/a.zarr", inputs[:1], progress=False)
    ingest(f"{folder}/b.zarr", inputs[:1], progress=False)
    assert list_stores(folder) == {"a": f"{folder}/a.zarr", "b": f"{folder}/b.zarr"}
    assert list_stores(f"s3://{s3_env.new_bucket()}/none") == {}


def test_readers_see_the_old_runs_or_the_new_never_a_partial_run(
        s3_store: str, inputs: list[Path]) -> None:
    ingest(s3_store, inputs[:3], progress=False)
    before = ForecastStore(s3_store)
    expected_before = run_digests(s3_store)
    seen: list[dict[str, str]] = []
    stop = threading.Event()

    def read_continuously() -> None:
        while not stop.is_set():
            seen.append(run_digests(s3_store))

    reader = threading.Thread(target=read_continuously)
    reader.start()
    try:
        ingest(s3_store, inputs[3:], progress=False)
    finally:
        stop.set()
        reader.join()
    after = run_digests(s3_store)
    assert len(after) == 4 and {k: after[k] for k in expected_before} == expected_before
    assert seen and all(state in (expected_before, after) for state in seen)
    record_figure("object storage", f"readers during an S3 ingest: {len(seen)} opens, each "
                  "saw the 3 published runs or all 4, never a partial run")
    # a reader opened before keeps reading its runs
    assert [r.label for r in before.runs] == list(expected_before)
    run = before.runs[0]
    assert np.isfinite(before.read_slice("t2m", run, run.valid_times[0])).any()


def test_one_writer_at_a_time_and_a_stale_writer_cannot_publish(s3_store: str,
                                                                 inputs: list[Path]) -> None:
    ingest(s3_store, inputs[:1], progress=False)
    backend = ObjectBackend(s3_store)
    order: list[str] = []
    with writer_lock(backend):
        second = threading.Thread(target=lambda: (ingest(s3_store, inputs[1:2], progress=False),
                                                  order.append("second wrote")))
        second.start()
        time.sleep(1.5)  # the second writer waits on the lease meanwhile
        order.append("first released")
    second.join(30)
    assert order == ["first released", "second wrote"]
    # A writer that read the store before another published cannot publish over it.
    stale = backend.version()
    ingest(s3_store, inputs[2:3], progress=False)
    attrs = ForecastStore(s3_store).attrs
    with writer_lock(backend), pytest.raises(StoreError, match="published by another writer"):
        publish(backend, {**attrs, "runs": []}, stale)
    with pytest.raises(StoreError, match=r"lease .* lapsed"):  # nor one without the lease
        publish(backend, {**attrs, "runs": []})
    assert len(ForecastStore(s3_store).runs) == 3


def test_a_lease_left_by_a_killed_writer_expires(s3_store: str, inputs: list[Path]) -> None:
    ingest(s3_store, inputs[:1], progress=False)
    backend = ObjectBackend(s3_store)
    backend._acquire()  # a writer that took the lease and died: nobody renews it
    started = time.monotonic()
    ingest(s3_store, inputs[1:2], progress=False)
    waited = time.monotonic() - started
    assert LEASE_S * 0.8 <= waited < LEASE_S + 10
    assert len(ForecastStore(s3_store).runs) == 2


def copy_store(source: str, target: str) -> None:
    """Copy every object of a store (and the writer's files beside it) to another prefix."""
    bucket = from_url(source.split("/", 3)[0] + "//" + source.split("/", 3)[2])
    prefix_from, prefix_to = source.split("/", 3)[3], target.split("/", 3)[3]
    parent_from, leaf_from = prefix_from.rsplit("/", 1)
    parent_to, leaf_to = prefix_to.rsplit("/", 1)
    for batch in obstore.list(bucket, prefix=parent_from + "/"):
        for entry in batch:
            key = entry["path"]
            rest = key.removeprefix(parent_from + "/")
            if rest.startswith(leaf_from + "/"):
                obstore.copy(bucket, key, f"{prefix_to}/{rest.removeprefix(leaf_from + '/')}")
            elif rest.startswith(f".{leaf_from}."):
                obstore.copy(bucket, key, f"{parent_to}/.{leaf_to}." +
                             rest.removeprefix(f".{leaf_from}."))


@pytest.fixture
def writers(s3_env: S3Server) -> Iterator[Writers]:
    pool = Writers(env={**s3_env.env, "FEWSMAP_WRITER_LEASE_S": str(LEASE_S)})
    yield pool
    pool.close()


def test_a_killed_ingest_loses_nothing_published(s3_store: str, inputs: list[Path],
                                                 writers: Writers, tmp_path: Path) -> None:
    ingest(s3_store, inputs[:3], progress=False)
    before = run_digests(s3_store)
    clean = s3_store.replace("feed.zarr", "clean.zarr")
    copy_store(s3_store, clean)
    started = time.monotonic()
    assert writers.run(clean, inputs[3:], tmp_path / "clean.log") == 0
    duration = time.monotonic() - started
    after = run_digests(clean)
    rng = random.Random(20261206)
    outcomes = []
    for trial in range(KILL_TRIALS):
        store = s3_store.replace("feed.zarr", f"trial{trial}.zarr")
        copy_store(s3_store, store)
        code = writers.run(store, inputs[3:], tmp_path / f"{trial}.log",
                           kill_after_s=rng.uniform(0.05, duration))
        published = run_digests(store)
        assert {k: published[k] for k in before} == before, f"trial {trial}: a run changed"
        assert published in (before, after), f"trial {trial}: a partial run is visible"
        outcomes.append("finished" if code == 0 else "killed")
        # the next writer (after the lease lapses) recovers and completes the run
        ingest(store, inputs[3:], progress=False)
        assert run_digests(store) == after
    record_figure("object storage", f"{KILL_TRIALS} S3 ingests killed at random over "
                  f"{duration:.1f} s: runs lost 0, partial runs seen 0 "
                  f"({outcomes.count('killed')} killed, {outcomes.count('finished')} finished)")


def test_retention_removes_runs_and_their_objects_never_breaking_a_reader(
        s3_store: str, inputs: list[Path], s3_env: S3Server) -> None:
    ingest(s3_store, inputs[:3], progress=False)
    reader = ForecastStore(s3_store)
    oldest = reader.runs[0]
    bucket, prefix = s3_store.split("/", 3)[2], s3_store.split("/", 3)[3]

    def slot_keys(slot: int) -> list[str]:
        return [k for k in s3_env.keys(bucket, prefix + "/")
                if any(f"/{name}/c/{slot}/" in k for name in VARIABLES)]

    assert slot_keys(oldest.slot)
    result = prune(s3_store, RetentionPolicy(keep_runs=2), grace_s=3600)
    assert result.removed == [oldest.label] and slot_keys(oldest.slot)
    # a reader that opened before still reads the removed run during the grace period
    assert np.isfinite(reader.read_slice("t2m", oldest, oldest.valid_times[0])).any()
    assert [r.label for r in ForecastStore(s3_store).runs] == [r.label for r in reader.runs[1:]]
    assert prune(s3_store, RetentionPolicy(keep_runs=2), grace_s=0).vacuumed == [oldest.label]
    assert slot_keys(oldest.slot) == []
    assert len(run_digests(s3_store)) == 2


def test_a_read_only_url_is_refused_by_writers() -> None:
    with pytest.raises(ConfigError, match="read-only"):
        prune("https://example.org/x.zarr", RetentionPolicy(keep_runs=1))


class _IgnoringConditions(http.server.BaseHTTPRequestHandler):
    """A proxy to the S3 server that drops conditional-write headers, as some S3-compatible
    servers ignore them."""

    upstream = ""

    def _forward(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        headers = {k: v for k, v in self.headers.items()
                   if k.lower() not in ("if-none-match", "if-match", "host")}
        answer = httpx.request(self.command, self.upstream + self.path, headers=headers,
                               content=body, timeout=30)
        self.send_response(answer.status_code)
        for key, value in answer.headers.items():
            if key.lower() not in ("transfer-encoding", "content-encoding", "connection"):
                self.send_header(key, value)
        self.end_headers()
        self.wfile.write(answer.content)

    do_GET = do_PUT = do_HEAD = do_DELETE = do_POST = _forward  # noqa: N815  (http.server names)

    def log_message(self, *args: object) -> None:
        pass


def test_a_server_that_ignores_conditional_writes_is_refused(
        s3_env: S3Server, monkeypatch: pytest.MonkeyPatch, inputs: list[Path]) -> None:
    bucket = s3_env.new_bucket()
    _IgnoringConditions.upstream = s3_env.endpoint
    proxy = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _IgnoringConditions)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{proxy.server_port}")
        with pytest.raises(StoreError, match="ignores conditional writes"):
            ingest(f"s3://{bucket}/feed.zarr", inputs[:1], progress=False)
        assert s3_env.keys(bucket) == []  # nothing written, the lease removed
    finally:
        proxy.shutdown()
        proxy.server_close()


def test_a_writer_paused_past_its_lease_damages_nothing(s3_store: str, inputs: list[Path],
                                                        s3_env: S3Server,
                                                        tmp_path: Path) -> None:
    # A VM pause or a long GC: the lease lapses while the writer is half-way its chunks,
    # another writer takes it over and publishes, then the first one wakes up.
    ingest(s3_store, inputs[:1], progress=False)
    bucket, prefix = s3_store.split("/", 3)[2], s3_store.split("/", 3)[3]
    env = {**os.environ, **s3_env.env, "FEWSMAP_WRITER_LEASE_S": str(LEASE_S)}
    stalled = subprocess.Popen(
        [sys.executable, "-m", "fewsmap.cli", "ingest", "--quiet", "--store", s3_store,
         str(inputs[1])], env=env, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not any("/t2m/c/1/" in key for key in s3_env.keys(bucket, prefix + "/")):
        assert stalled.poll() is None and time.monotonic() < deadline, "no chunk written"
        time.sleep(0.01)
    stalled.send_signal(signal.SIGSTOP)  # half-way its chunks
    try:
        ingest(s3_store, inputs[2:3], progress=False)  # takes the lapsed lease over
        published = run_digests(s3_store)
    finally:
        stalled.send_signal(signal.SIGCONT)
    _, said = stalled.communicate(timeout=60)
    assert stalled.returncode != 0 and "lapsed" in said, said
    assert run_digests(s3_store) == published, "the paused writer changed a published run"
    clean = tmp_path / "clean.zarr"
    ingest(clean, inputs[:3], progress=False)
    ingest(s3_store, inputs[1:2], progress=False)  # the paused writer's run, once more
    assert run_digests(s3_store) == run_digests(clean)


def test_an_ingest_writes_chunks_without_reading_them_first(
        inputs: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Every request is an S3 round trip: a chunk written whole must not be fetched first
    # (zarr does for index-array writes: twice the requests, docs/design/object-storage.md).
    recording = tmp_path / "requests.jsonl"
    monkeypatch.setenv("MOTO_RECORDER_FILEPATH", str(recording))  # read by moto_server
    with s3_server() as storage:
        for key, value in storage.env.items():
            monkeypatch.setenv(key, value)
        url = f"s3://{storage.new_bucket()}/feed.zarr"
        ingest(url, inputs[:1], progress=False)
        httpx.post(f"{storage.endpoint}/moto-api/recorder/start-recording").raise_for_status()
        ingest(url, inputs[1:2], progress=False)
        httpx.post(f"{storage.endpoint}/moto-api/recorder/stop-recording").raise_for_status()
    requests = recorded(recording.read_text())
    chunk = re.compile(r"/feed\.zarr/(t2m|tp)/c/\d+/")
    level = re.compile(r"/feed\.zarr/overviews/\d+/(t2m|tp)/c/\d+/")  # 270x260, 135x130
    puts = [r for r in requests if r["method"] == "PUT" and chunk.search(r["url"])]
    level_puts = [r for r in requests if r["method"] == "PUT" and level.search(r["url"])]
    gets = [r for r in requests if r["method"] == "GET" and (
        chunk.search(r["url"]) or level.search(r["url"]))]
    assert len(puts) == 2 * 4 * 4  # 2 variables x 4 steps x 2 x 2 spatial chunks
    assert len(level_puts) == 2 * 4 * 2  # 2 levels of one chunk each
    # The run's time-chunked copy (fewsmap.store.series) is written from the fields in
    # memory (a file holds every step of its run): no chunk is read back; it writes each of
    # its shards once (zarr asks for a shard that reaches past the array's end before
    # writing it, at most once: not there yet).
    assert gets == []
    copies = [r for r in requests if re.search(r"/(t2m|tp)\.series/c/\d+/", r["url"])]
    shard_puts = [r["url"] for r in copies if r["method"] == "PUT"]
    shard_gets = [r["url"] for r in copies if r["method"] == "GET"]
    assert len(shard_puts) == len(set(shard_puts)) == 2 * 2 * 2  # variables x 2 x 2 tiles
    assert len(shard_gets) == len(set(shard_gets)) and set(shard_gets) <= set(shard_puts)


def recorded(text: str) -> list[dict[str, str]]:
    """The requests in moto's recording: JSON objects one after another."""
    decoder, found, at = json.JSONDecoder(), [], 0
    while (at := text.find("{", at)) >= 0:
        entry, at = decoder.raw_decode(text, at)
        found.append(entry)
    return found
