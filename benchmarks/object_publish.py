"""Measure two ways to publish a forecast run atomically on object storage (issue #14).

Object storage has no rename, so the local store's publish (write the run's chunks into a
new slot, then replace the root ``zarr.json`` in one rename) needs another atomic step:

``conditional``
    A plain Zarr v3 group, written by zarr-python through ``zarr.storage.ObjectStore`` over
    obstore's ``S3Store``. The root ``zarr.json`` (consolidated metadata + run list in
    ``attributes["fewsmap"]``) is the run manifest. A writer takes a lease object (PUT
    ``If-None-Match: *``), reserves its run slot in the manifest (PUT ``If-Match``), writes
    the chunks, and publishes with PUT ``If-Match: <etag it read>``: a compare-and-swap that
    fails if anyone published in between (then it re-reads and swaps again, nothing rewritten).
``icechunk``
    The same arrays in an Icechunk repository on the same server: chunks written in a
    session, published by ``session.commit`` (Icechunk's own transactional layer).

Both cubes hold the same data in the same chunks and codec (``fewsmap.store.layout``). Cases:
``grid`` (1 variable × 24 steps × 5 members of a 900 × 1400 float32 grid, 512² chunks) and
``points`` (GEFS-like: 4 variables × 97 steps × 21 members of 2 × 2 points: many tiny chunks).
For each: time to publish a run, to open the store fresh and see the latest run, to check for
a new run, to read a slice, a 256² window (grid) or a point's series (points), cold (first
read of a fresh reader) and warm; S3 requests per operation (counted by moto's recorder in a
separate pass, so the recording does not distort the timings); which plain clients read each
layout; and two writers racing to publish. The server is moto's (``tests/s3server.py``) on
loopback. Usage::

    .venv/bin/python -m benchmarks.object_publish [--quick] [--out DIR]

Writes ``object_publish.json`` and ``object_publish.md`` into ``--out`` (default
``benchmarks/results``; ``--quick``: tiny data, seconds, ``object_publish-quick.*``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, cast

import httpx
import icechunk
import numpy as np
import obstore
import pyproj
import xarray as xr
import zarr
from obstore.exceptions import AlreadyExistsError, PreconditionError
from obstore.store import S3Store
from zarr.storage import ObjectStore

from fewsmap.ingest.grids import grid_attrs
from fewsmap.store.layout import (
    ATTRS_KEY,
    COORD_CHUNK,
    NAT,
    RUN_DIM,
    TIME_ATTRS,
    coordinate_codec,
    data_chunks,
    data_codec,
)
from fewsmap.store.run import Grid, RunData, SourceFile
from fewsmap.store.writer import append_run
from tests.s3server import REGION, S3Server, s3_server

RESULTS_DIR = Path(__file__).resolve().parent / "results"
ROOT_KEY = "zarr.json"
LEASE_S = 300.0
SHARDED = "conditional, sharded"
METHODS = ("conditional", SHARDED, "icechunk")
WRITER = "fewsmap writer"


@dataclass(frozen=True)
class Case:
    """One cube shape: variables of (run, step, member, y, x), and how many runs to publish."""

    name: str
    variables: int
    steps: int
    members: int
    ny: int
    nx: int
    runs: int
    # Also measure plain Zarr with one shard per run and variable (tiny chunks: one object).
    sharded: bool = False

    def methods(self) -> list[str]:
        """The methods measured on this case."""
        return [m for m in METHODS if m != SHARDED or self.sharded]

    @property
    def names(self) -> list[str]:
        """The variables' names."""
        return [f"v{i}" for i in range(self.variables)]

    @property
    def run_shape(self) -> tuple[int, int, int, int]:
        """The shape of one run of one variable."""
        return (self.steps, self.members, self.ny, self.nx)

    def chunks_per_run(self) -> int:
        """Data chunks one run writes."""
        chunks = data_chunks((1, *self.run_shape), 2)
        tiles = -(-self.ny // chunks[-2]) * -(-self.nx // chunks[-1])
        return self.variables * self.steps * self.members * tiles

    def reads(self, slot: int) -> dict[str, tuple[int | slice, ...]]:
        """The selections timed: a 2-D slice, and a 256² window or a point's whole series."""
        step, member = self.steps // 2, self.members // 2
        reads: dict[str, tuple[int | slice, ...]] = {"slice": (slot, step, member)}
        if self.ny * self.nx > 256 * 256:
            y0, x0 = self.ny // 3, self.nx // 3  # crosses a 512 chunk edge on the full grid
            reads["window 256²"] = (slot, step, member, slice(y0, y0 + 256), slice(x0, x0 + 256))
        else:
            reads["series"] = (slot, slice(None), slice(None), 0, 0)
        return reads


FULL = (Case("grid", 1, 24, 5, 900, 1400, 3), Case("points", 4, 97, 21, 2, 2, 3, sharded=True))
QUICK = (Case("grid", 1, 4, 2, 90, 140, 2), Case("points", 2, 6, 3, 2, 2, 2, sharded=True))


@dataclass(frozen=True)
class Repeats:
    """Loop counts of the timed reads."""

    opens: int
    cold: int
    warm: int


FULL_REPEATS = Repeats(opens=10, cold=5, warm=20)
QUICK_REPEATS = Repeats(opens=2, cold=2, warm=2)


# --------------------------------------------------------------------------------------------
# data


def run_fields(case: Case, run: int) -> dict[str, np.ndarray]:
    """A smooth quantised field per variable with a NaN sea, different for every run."""
    rng = np.random.default_rng(run)
    lat = np.linspace(72, 27, case.ny, dtype="float32")[:, None]
    lon = np.linspace(-25, 45, case.nx, dtype="float32")[None, :]
    base = 20 - 0.6 * (lat - 27) + 3 * np.sin(np.radians(lon * 4))
    sea = (np.sin(np.radians(lat * 7)) + np.cos(np.radians(lon * 5))) > 1.2
    fields = {}
    for v, name in enumerate(case.names):
        out = np.empty(case.run_shape, dtype="float32")
        for s in range(case.steps):
            wave = 4 * np.sin(np.radians(lon * 3 + 10 * s + 7 * run + 3 * v) + np.radians(lat * 2))
            for m in range(case.members):
                field = base + wave + 0.3 * m + rng.normal(0, 0.05, base.shape).astype("float32")
                field = np.round(field * 64) / 64
                field[sea] = np.nan
                out[s, m] = field
        fields[name] = out
    return fields


def reference_time(run: int) -> int:
    """Seconds since the epoch of run ``run`` (6-hourly from 2026-01-01)."""
    return int(np.datetime64("2026-01-01T00:00:00", "s").astype("int64")) + 6 * 3600 * run


def create_cube(group: zarr.Group, case: Case, sharded: bool = False) -> None:
    """Create the empty cube (no runs) in ``group``: coordinates and data arrays.

    ``sharded``: fewsmap's chunks stored as one shard object per run and variable (Zarr v3's
    sharding codec), so a run is one PUT per variable however small its chunks.
    """
    group.create_array(RUN_DIM, shape=(0,), dtype="int64", fill_value=NAT,
                       chunks=(COORD_CHUNK,), compressors=coordinate_codec(),
                       dimension_names=[RUN_DIM], attributes=dict(TIME_ATTRS))
    axes = {"step": np.arange(case.steps) * 3600, "realization": np.arange(case.members),
            "y": np.arange(case.ny, dtype="float64"), "x": np.arange(case.nx, dtype="float64")}
    for dim, values in axes.items():
        array = group.create_array(dim, shape=values.shape, dtype=values.dtype, fill_value=0,
                                   chunks=(COORD_CHUNK,), compressors=coordinate_codec(),
                                   dimension_names=[dim])
        array[...] = values
    shape = (0, *case.run_shape)
    # tiny fields are chunked with up to 128 of their run's steps (layout.data_chunks); a
    # shard holds one run, so its chunks may be no larger than the run
    chunks = tuple(min(c, n) for c, n in zip(data_chunks((1, *case.run_shape), 2),
                                             (1, *case.run_shape), strict=True))
    for name in case.names:
        group.create_array(name, shape=shape, dtype="float32", fill_value=np.nan,
                           chunks=chunks,
                           shards=(1, *case.run_shape) if sharded else None,
                           compressors=data_codec(),
                           dimension_names=[RUN_DIM, "step", "realization", "y", "x"],
                           attributes={"units": "K"})


def write_run(group: zarr.Group, slot: int, run: int, fields: dict[str, np.ndarray]) -> None:
    """Grow the run axis to hold ``slot`` and write the run's chunks and coordinate there."""
    frt = group[RUN_DIM]
    assert isinstance(frt, zarr.Array)
    if frt.shape[0] <= slot:
        frt.resize((slot + 1,))
    frt[slot] = reference_time(run)
    for name, values in fields.items():
        array = group[name]
        assert isinstance(array, zarr.Array)
        if array.shape[0] <= slot:
            array.resize((slot + 1, *values.shape))
        array[slot] = values


def run_record(slot: int, run: int) -> dict[str, Any]:
    """The run list entry of a published run."""
    return {"reference_time": reference_time(run), "slot": slot}


# --------------------------------------------------------------------------------------------
# method 1: plain Zarr v3 + conditional writes on the root zarr.json


@dataclass
class Manifest:
    """The root ``zarr.json`` as read, with the ETag a compare-and-swap must match."""

    root: dict[str, Any]
    etag: str

    @property
    def attrs(self) -> dict[str, Any]:
        """fewsmap's attributes: the run list and the reserved slots."""
        attrs: dict[str, Any] = self.root["attributes"][ATTRS_KEY]
        return attrs

    def next_slot(self) -> int:
        """The first slot no published or reserved run ever used."""
        used = [r["slot"] for r in self.attrs["runs"]] + self.attrs["reserved"]
        return max(used, default=-1) + 1


class ConditionalCube:
    """A plain Zarr v3 cube on S3 published by conditional PUTs of its root ``zarr.json``."""

    def __init__(self, server: S3Server, bucket: str, prefix: str,
                 sharded: bool = False) -> None:
        self.server, self.bucket, self.prefix = server, bucket, prefix
        self.sharded = sharded
        self.method = SHARDED if sharded else "conditional"
        self.bucket_store = s3_store(server, bucket)
        self.store = s3_store(server, bucket, prefix)
        self.lease_key = f"{prefix}.lock"
        self.owner = uuid.uuid4().hex

    def create(self, case: Case) -> None:
        """Create the cube and publish it with no runs."""
        group = zarr.open_group(ObjectStore(self.store), mode="w", zarr_format=3)
        create_cube(group, case, self.sharded)
        root = json.loads(bytes(obstore.get(self.store, ROOT_KEY).bytes()))
        root["attributes"][ATTRS_KEY] = {"format_version": 1, "runs": [], "reserved": []}
        names = [*case.names, RUN_DIM, "step", "realization", "y", "x"]
        root["consolidated_metadata"] = {"kind": "inline", "must_understand": False,
                                         "metadata": {n: self._child(n) for n in names}}
        self._swap(root, str(obstore.head(self.store, ROOT_KEY)["e_tag"]))

    def publish(self, run: int, fields: dict[str, np.ndarray]) -> None:
        """Lease, reserve a slot, write the chunks, publish by compare-and-swap, release."""
        with self.lease():
            slot, manifest = self.reserve()
            self.write(slot, run, fields)
            self.commit(slot, run, manifest)

    def read_manifest(self) -> Manifest:
        """GET the root ``zarr.json`` and its ETag."""
        got = obstore.get(self.store, ROOT_KEY)
        return Manifest(json.loads(bytes(got.bytes())), str(got.meta["e_tag"]))

    def reserve(self) -> tuple[int, Manifest]:
        """Claim the next slot in the manifest (CAS), so no other writer ever writes there.

        Without this, a writer whose lease expired while it still wrote (a stalled process)
        could overwrite the chunks another writer published into the same slot: the CAS on
        the manifest refuses its publish, but cannot undo its chunk writes.
        """
        while True:
            manifest = self.read_manifest()
            slot = manifest.next_slot()
            manifest.attrs["reserved"] = [*manifest.attrs["reserved"], slot]
            try:
                return slot, Manifest(manifest.root, self._swap(manifest.root, manifest.etag))
            except PreconditionError:
                continue  # someone else changed the manifest: read it again

    def write(self, slot: int, run: int, fields: dict[str, np.ndarray]) -> None:
        """Write the run's chunks into its reserved slot (readers see none of it)."""
        group = zarr.open_group(ObjectStore(self.store), mode="r+", use_consolidated=False,
                                zarr_format=3)
        write_run(group, slot, run, fields)

    def commit(self, slot: int, run: int, manifest: Manifest) -> int:
        """Publish the run: add it to ``manifest`` by CAS; on a lost race re-read and retry.

        Only the manifest is rewritten on a retry: the chunks are in a slot no one else uses.
        Returns the number of compare-and-swap attempts that lost.
        """
        lost = 0
        while True:
            try:
                self._swap(with_run(manifest, slot, run), manifest.etag)
                return lost
            except PreconditionError:
                lost += 1
                manifest = self.read_manifest()

    @contextlib.contextmanager
    def lease(self) -> Iterator[None]:
        """Hold the writer lease: an object created only if absent (``If-None-Match: *``)."""
        body = json.dumps({"owner": self.owner, "expires": time.time() + LEASE_S}).encode()
        obstore.put(self.bucket_store, self.lease_key, body, mode="create")
        try:
            yield
        finally:
            obstore.delete(self.bucket_store, self.lease_key)

    def open(self) -> zarr.Group:
        """Open the cube as a fresh reader: one GET of the consolidated root."""
        store = ObjectStore(s3_store(self.server, self.bucket, self.prefix), read_only=True)
        return zarr.open_group(store, mode="r", use_consolidated=True, zarr_format=3)

    def version(self, reader: zarr.Group) -> str:
        """What a server polls to notice a new run: the root's ETag (one HEAD)."""
        del reader
        return str(obstore.head(self.store, ROOT_KEY)["e_tag"])

    def _child(self, name: str) -> dict[str, Any]:
        child: dict[str, Any] = json.loads(bytes(obstore.get(self.store, f"{name}/zarr.json")
                                                 .bytes()))
        return child

    def _swap(self, root: dict[str, Any], etag: str) -> str:
        """Replace the root ``zarr.json`` if its ETag is still ``etag``; return the new one.

        Raises
        ------
        PreconditionError
            If another writer replaced it since (HTTP 412).
        """
        done = obstore.put(self.store, ROOT_KEY, json.dumps(root).encode(),
                           mode={"e_tag": etag})
        return str(done["e_tag"])


def with_run(manifest: Manifest, slot: int, run: int) -> dict[str, Any]:
    """The root metadata of ``manifest`` with the run in ``slot`` published.

    The run axis of every array is grown in the consolidated metadata from the run list
    itself, never from the arrays' own ``zarr.json``, which concurrent writers may change.
    """
    root: dict[str, Any] = json.loads(json.dumps(manifest.root))
    attrs = root["attributes"][ATTRS_KEY]
    attrs["runs"] = [*attrs["runs"], run_record(slot, run)]
    attrs["reserved"] = [s for s in attrs["reserved"] if s != slot]
    length = max(r["slot"] for r in attrs["runs"]) + 1
    for meta in root["consolidated_metadata"]["metadata"].values():
        if meta["shape"] and meta["dimension_names"][0] == RUN_DIM:
            meta["shape"][0] = max(meta["shape"][0], length)
    return root


def s3_store(server: S3Server, bucket: str, prefix: str | None = None) -> S3Store:
    """An obstore S3 client for ``bucket`` configured from the server's AWS variables."""
    env = server.env
    return S3Store(bucket, prefix=prefix, endpoint=env["AWS_ENDPOINT_URL"],
                   access_key_id=env["AWS_ACCESS_KEY_ID"],
                   secret_access_key=env["AWS_SECRET_ACCESS_KEY"], region=env["AWS_REGION"],
                   client_options={"allow_http": True})


# --------------------------------------------------------------------------------------------
# method 2: Icechunk


class IcechunkCube:
    """The same cube in an Icechunk repository: a run is one commit on ``main``."""

    method = "icechunk"

    def __init__(self, server: S3Server, bucket: str, prefix: str) -> None:
        self.server, self.bucket, self.prefix = server, bucket, prefix
        self.repo = icechunk.Repository.create(self.storage())

    def repository(self) -> icechunk.Repository:
        """Open the repository (a fresh client: what every new reader does)."""
        return icechunk.Repository.open(self.storage())

    def storage(self) -> icechunk.Storage:
        """Icechunk's S3 storage for the repository, from the server's AWS variables."""
        env = self.server.env
        return icechunk.s3_storage(
            bucket=self.bucket, prefix=self.prefix, region=REGION,
            endpoint_url=env["AWS_ENDPOINT_URL"], allow_http=True, force_path_style=True,
            access_key_id=env["AWS_ACCESS_KEY_ID"],
            secret_access_key=env["AWS_SECRET_ACCESS_KEY"])

    def create(self, case: Case) -> None:
        """Create the cube and commit it with no runs."""
        session = self.repo.writable_session("main")
        group = zarr.open_group(session.store, mode="w", zarr_format=3)
        create_cube(group, case)
        group.attrs[ATTRS_KEY] = {"format_version": 1, "runs": []}
        session.commit("create")

    def publish(self, run: int, fields: dict[str, np.ndarray]) -> None:
        """Write the run in a session and commit it."""
        session = self.write(run, fields)
        session.commit(f"run {reference_time(run)}")

    def write(self, run: int, fields: dict[str, np.ndarray]) -> icechunk.Session:
        """Write the run into the next slot in a new session (nothing visible until commit)."""
        session = self.repo.writable_session("main")
        group = zarr.open_group(session.store, mode="r+", use_consolidated=False,
                                zarr_format=3)
        attrs = fewsmap_attrs(group)
        slot = max((r["slot"] for r in attrs["runs"]), default=-1) + 1
        write_run(group, slot, run, fields)
        group.attrs[ATTRS_KEY] = {**attrs, "runs": [*attrs["runs"], run_record(slot, run)]}
        return session

    def open(self) -> zarr.Group:
        """Open the cube as a fresh reader: the branch ref, the snapshot, the group."""
        session = self.repository().readonly_session(branch="main")
        return zarr.open_group(session.store, mode="r", use_consolidated=False, zarr_format=3)

    def version(self, reader: zarr.Group) -> str:
        """What a server polls to notice a new run: the tip of ``main``."""
        del reader
        return str(self.repo.lookup_branch("main"))


Cube = ConditionalCube | IcechunkCube


class FewsmapWriter:
    """fewsmap's own writer (``append_run`` to an ``s3://`` store): publish timed only.

    It does more than the minimal cubes above (valid times, per-run statistics, records of
    which steps and members hold data, a vacuum), so it is the cost a real ingest pays.
    """

    def __init__(self, server: S3Server, bucket: str, case: Case) -> None:
        self.url = f"s3://{bucket}/fewsmap/{case.name}.zarr"
        self.case = case
        os.environ.update(server.env)  # fewsmap configures obstore from the AWS variables

    def publish(self, run: int, fields: dict[str, np.ndarray]) -> None:
        """Append the run with fewsmap's writer (creates the store on the first run)."""
        append_run(self.url, run_data(self.case, run, fields), progress=False)


def run_data(case: Case, run: int, fields: dict[str, np.ndarray]) -> RunData:
    """The run as fewsmap's ingest hands it to the writer (a 0.05° latitude/longitude grid)."""
    lat = xr.DataArray(np.linspace(72, 72 - 0.05 * (case.ny - 1), case.ny), dims="latitude")
    lon = xr.DataArray(np.linspace(-25, -25 + 0.05 * (case.nx - 1), case.nx), dims="longitude")
    grid = Grid(("latitude", "longitude"), {"latitude": lat, "longitude": lon},
                grid_attrs(pyproj.CRS.from_epsg(4326)))
    coords = {"step": (np.arange(case.steps) * 3600).astype("timedelta64[s]")
              .astype("timedelta64[ns]"), "realization": np.arange(case.members)}
    dims = ("step", "realization", "latitude", "longitude")
    pieces: dict[str, tuple[xr.DataArray, ...]] = {
        name: (xr.DataArray(values, dims=dims, coords=coords, attrs={"units": "K"}),)
        for name, values in fields.items()}
    return RunData(np.datetime64(reference_time(run), "s"), pieces, grid,
                   (SourceFile("synthetic", "0" * 64, 0),), "synthetic")


# --------------------------------------------------------------------------------------------
# timing


def log(message: str) -> None:
    """Say on stderr how far the run got (a full run takes minutes)."""
    print(f"{datetime.now(UTC):%H:%M:%S} {message}", file=sys.stderr, flush=True)


def timed_ms(fn: Callable[[], object]) -> float:
    """Milliseconds one call of ``fn`` takes."""
    began = time.perf_counter()
    fn()
    return (time.perf_counter() - began) * 1000


def summary(times: list[float]) -> dict[str, float]:
    """Median, min and max of a list of milliseconds."""
    return {"median_ms": round(statistics.median(times), 2), "min_ms": round(min(times), 2),
            "max_ms": round(max(times), 2), "n": len(times)}


def fewsmap_attrs(group: zarr.Group) -> dict[str, Any]:
    """fewsmap's attributes of a cube's root group (run list)."""
    return cast(dict[str, Any], group.attrs.asdict()[ATTRS_KEY])


def latest_run(reader: zarr.Group) -> dict[str, Any]:
    """The newest published run a reader sees."""
    runs: list[dict[str, Any]] = fewsmap_attrs(reader)["runs"]
    return max(runs, key=lambda r: r["reference_time"])


def read(reader: zarr.Group, name: str, selection: tuple[int | slice, ...]) -> np.ndarray:
    """Read a selection of variable ``name``."""
    array = reader[name]
    assert isinstance(array, zarr.Array)
    return np.asarray(array[selection])


def measure_reads(cube: Cube, case: Case, repeats: Repeats, last_run: int,
                  expected: dict[str, np.ndarray]) -> dict[str, Any]:
    """Open latency, polling latency, and cold and warm reads, checking the values read."""
    out: dict[str, Any] = {}

    def open_and_check() -> None:
        if latest_run(cube.open())["reference_time"] != reference_time(last_run):
            raise AssertionError(f"{cube.method}: a fresh reader misses the latest run")

    out["open"] = summary([timed_ms(open_and_check) for _ in range(repeats.opens)])
    reader = cube.open()
    out["poll"] = summary([timed_ms(lambda: cube.version(reader))
                           for _ in range(repeats.opens)])
    slot = latest_run(reader)["slot"]
    name = case.names[0]
    for label, selection in case.reads(slot).items():
        want = expected[label]
        cold = []
        for _ in range(repeats.cold):
            fresh = cube.open()
            cold.append(timed_ms(partial(read, fresh, name, selection)))
        got = read(reader, name, selection)
        if not np.array_equal(got, want, equal_nan=True):
            raise AssertionError(f"{cube.method}: {label} read other values than written")
        warm = [timed_ms(partial(read, reader, name, selection)) for _ in range(repeats.warm)]
        out[f"read {label} cold"] = summary(cold)
        out[f"read {label} warm"] = summary(warm)
    return out


# --------------------------------------------------------------------------------------------
# S3 requests, counted by moto's recorder


class RequestCounter:
    """Count the S3 requests the server receives during a block (moto's recorder)."""

    def __init__(self, server: S3Server, path: Path) -> None:
        self.server, self.path = server, path

    @contextlib.contextmanager
    def counting(self) -> Iterator[dict[str, int]]:
        """Yield a dict that holds, after the block, the request count per HTTP method."""
        counts: dict[str, int] = {}
        self._call("reset-recording")
        self._call("start-recording")
        try:
            yield counts
        finally:
            self._call("stop-recording")
        pattern = re.compile(r'"method": "(\w+)"')
        with self.path.open() as recording:
            for line in recording:
                found = pattern.search(line)
                if found:
                    counts[found[1]] = counts.get(found[1], 0) + 1
        counts["total"] = sum(counts.values())
        self._call("reset-recording")

    def _call(self, action: str) -> None:
        httpx.post(f"{self.server.endpoint}/moto-api/recorder/{action}",
                   timeout=30).raise_for_status()


def count_requests(cube: Cube, case: Case, counter: RequestCounter, run: int,
                   fields: dict[str, np.ndarray]) -> dict[str, dict[str, int]]:
    """Requests to publish one more run, to open, to poll, and to do each read once, cold."""
    out = {}
    with counter.counting() as out["publish"]:
        cube.publish(run, fields)
    with counter.counting() as out["open"]:
        reader = cube.open()
        latest_run(reader)
    with counter.counting() as out["poll"]:
        cube.version(reader)
    for label, selection in case.reads(latest_run(reader)["slot"]).items():
        fresh = cube.open()
        with counter.counting() as out[f"read {label}"]:
            read(fresh, case.names[0], selection)
    return out


# --------------------------------------------------------------------------------------------
# concurrency


def race_conditional(server: S3Server, bucket: str, case: Case) -> dict[str, Any]:
    """Two writers on one plain Zarr cube: the lease refuses the second, the CAS detects a race.

    Writer B acts as a writer that took over an expired lease while A still works: both
    reserve slots, write, and publish; A's publish loses the compare-and-swap, re-reads the
    manifest and swaps again, rewriting nothing. Both runs end up published and intact.
    """
    a = ConditionalCube(server, bucket, f"race/{case.name}.zarr")
    a.create(case)
    b = ConditionalCube(server, bucket, a.prefix)
    out: dict[str, Any] = {}
    with a.lease():
        try:
            with b.lease():
                out["second lease refused"] = False
        except AlreadyExistsError:
            out["second lease refused"] = True
    fields_a, fields_b = run_fields(case, 100), run_fields(case, 101)
    slot_a, manifest_a = a.reserve()
    slot_b, manifest_b = b.reserve()
    a.write(slot_a, 100, fields_a)
    b.write(slot_b, 101, fields_b)
    b.commit(slot_b, 101, manifest_b)
    began = time.perf_counter()
    lost = a.commit(slot_a, 100, manifest_a)  # its manifest predates B's reservation
    out["stale publish refused"] = lost > 0
    out["loser's re-publish ms"] = round((time.perf_counter() - began) * 1000, 2)
    reader = a.open()
    out["both runs published"] = len(fewsmap_attrs(reader)["runs"]) == 2
    out["both runs intact"] = all(
        np.array_equal(read(reader, n, (slot,)), fields[n], equal_nan=True)
        for slot, fields in ((slot_a, fields_a), (slot_b, fields_b)) for n in case.names)
    return out


def race_without_reservation(server: S3Server, bucket: str, case: Case) -> dict[str, Any]:
    """The same race with the local protocol's slot choice (the next one at the start).

    A stalled writer A (its lease taken over) and B both read the manifest and pick the same
    slot; B publishes; A then writes its chunks into that slot and tries to publish. The CAS
    refuses A's publish, but B's published run has A's values: why slots are reserved.
    """
    a = ConditionalCube(server, bucket, f"race-unreserved/{case.name}.zarr")
    a.create(case)
    b = ConditionalCube(server, bucket, a.prefix)
    manifest_a, manifest_b = a.read_manifest(), b.read_manifest()
    slot = manifest_a.next_slot()
    fields_a, fields_b = run_fields(case, 100), run_fields(case, 101)
    b.write(slot, 101, fields_b)
    b._swap(with_run(manifest_b, slot, 101), manifest_b.etag)
    a.write(slot, 100, fields_a)
    out: dict[str, Any] = {}
    try:
        a._swap(with_run(manifest_a, slot, 100), manifest_a.etag)
        out["stale publish refused"] = False
    except PreconditionError:
        out["stale publish refused"] = True
    reader = a.open()
    out["published run intact"] = all(
        np.array_equal(read(reader, n, (slot,)), fields_b[n], equal_nan=True)
        for n in case.names)
    return out


def race_icechunk(server: S3Server, bucket: str, case: Case) -> dict[str, Any]:
    """Two sessions from the same snapshot: the second commit conflicts, then is redone."""
    cube = IcechunkCube(server, bucket, f"race/{case.name}.icechunk")
    cube.create(case)
    fields_a, fields_b = run_fields(case, 100), run_fields(case, 101)
    session_a = cube.write(100, fields_a)
    session_b = cube.write(101, fields_b)
    session_a.commit("a")
    out: dict[str, Any] = {}
    try:
        session_b.commit("b")
        out["stale commit refused"] = False
    except icechunk.ConflictError:
        out["stale commit refused"] = True
    try:
        session_b.rebase(icechunk.ConflictDetector())
        out["rebase"] = "succeeded"
        session_b.commit("b")
    except icechunk.RebaseFailedError as error:
        out["rebase"] = f"failed: {len(error.conflicts)} conflicts (same slot, same run list)"
        began = time.perf_counter()
        cube.publish(101, fields_b)  # redo the write in a new session
        out["loser's rewrite ms"] = round((time.perf_counter() - began) * 1000, 2)
    reader = cube.open()
    runs: list[dict[str, Any]] = fewsmap_attrs(reader)["runs"]
    out["both runs published"] = len(runs) == 2
    slots = {r["reference_time"]: r["slot"] for r in runs}
    out["both runs intact"] = all(
        np.array_equal(read(reader, n, (slots[reference_time(run)],)), fields[n],
                       equal_nan=True)
        for run, fields in ((100, fields_a), (101, fields_b)) for n in case.names)
    return out


# --------------------------------------------------------------------------------------------
# plain clients


def plain_clients(server: S3Server, bucket: str, cubes: dict[str, Cube],
                  case: Case) -> dict[str, dict[str, str]]:
    """Which clients read each layout: zarr over S3, xarray over plain HTTP, GDAL, icechunk."""
    name = case.names[0]
    return {method: {
        "zarr-python over S3 (obstore)": outcome(partial(zarr_reads, server, bucket,
                                                         cube.prefix, name)),
        "xarray.open_zarr over plain HTTP": outcome(partial(
            xarray_reads, f"{server.endpoint}/{bucket}/{cube.prefix}", name)),
        "xarray.open_zarr + icechunk": outcome(partial(icechunk_reads, server, bucket,
                                                       cube.prefix, name)),
        "GDAL (gdalinfo, /vsis3/)": outcome(partial(gdal_reads, server, bucket, cube.prefix)),
    } for method, cube in cubes.items()}


def zarr_reads(server: S3Server, bucket: str, prefix: str, name: str) -> None:
    """Read a field as a plain Zarr v3 group through obstore's S3 client."""
    store = ObjectStore(s3_store(server, bucket, prefix), read_only=True)
    read(zarr.open_group(store, mode="r"), name, (0, 0, 0))


def xarray_reads(url: str, name: str) -> None:
    """Read a field with xarray from a plain HTTP URL (anonymous GETs, no S3 API)."""
    xr.open_zarr(url, consolidated=True)[name].isel({RUN_DIM: 0, "step": 0}).load()


def icechunk_reads(server: S3Server, bucket: str, prefix: str, name: str) -> None:
    """Read a field with xarray through Icechunk's store (the Icechunk library needed)."""
    cube = IcechunkCube.__new__(IcechunkCube)  # open, not create
    cube.server, cube.bucket, cube.prefix = server, bucket, prefix
    store = cube.repository().readonly_session(branch="main").store
    xr.open_zarr(store, consolidated=False)[name].isel({RUN_DIM: 0, "step": 0}).load()


def gdal_reads(server: S3Server, bucket: str, prefix: str) -> None:
    """Run ``gdalinfo`` on the store's first variable, if GDAL is installed."""
    gdalinfo = shutil.which("gdalinfo")
    if gdalinfo is None:
        raise FileNotFoundError("not measured: gdalinfo is not installed here")
    env = {**os.environ, "AWS_S3_ENDPOINT": server.endpoint.removeprefix("http://"),
           "AWS_HTTPS": "NO", "AWS_VIRTUAL_HOSTING": "FALSE",
           "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    done = subprocess.run([gdalinfo, f'ZARR:"/vsis3/{bucket}/{prefix}":/v0'], env=env,
                          capture_output=True, text=True, timeout=60)
    if done.returncode:
        raise RuntimeError(done.stderr.strip().splitlines()[-1] if done.stderr else "failed")


def outcome(attempt: Callable[[], object]) -> str:
    """``reads`` or the first line of why not."""
    try:
        attempt()
        return "reads"
    except Exception as error:
        first = (str(error).strip().splitlines() or [""])[0][:120]
        return f"no: {type(error).__name__}: {first}"


# --------------------------------------------------------------------------------------------
# the run


def new_cube(method: str, server: S3Server, bucket: str, case: Case) -> Cube:
    """An empty cube of ``case`` for ``method`` in ``bucket``."""
    if method != "icechunk":
        cube: Cube = ConditionalCube(server, bucket, f"{method.replace(', ', '-')}/"
                                     f"{case.name}.zarr", sharded=method == SHARDED)
    else:
        cube = IcechunkCube(server, bucket, f"{method}/{case.name}.icechunk")
    cube.create(case)
    return cube


def bench_case(server: S3Server, counter: RequestCounter, case: Case,
               repeats: Repeats) -> dict[str, Any]:
    """Every measurement of one case for both methods, interleaved run by run."""
    bucket = server.new_bucket()
    public_read(server, bucket)
    methods = case.methods()
    cubes = {m: new_cube(m, server, bucket, case) for m in methods}
    publish: dict[str, list[float]] = {m: [] for m in methods}
    fields: dict[str, np.ndarray] = {}
    writer = FewsmapWriter(server, bucket, case)
    publish[WRITER] = []
    for run in range(case.runs):
        fields = run_fields(case, run)
        if run == 0:  # the writer creates its store with a first run, like the cubes above
            writer.publish(-1, fields)
        # alternate which method goes first, so neither always meets a warmer server
        order = [*methods, WRITER] if run % 2 == 0 else [WRITER, *methods[::-1]]
        for method in order:
            log(f"{case.name}: publish run {run} ({method})")
            target = writer if method == WRITER else cubes[method]
            publish[method].append(timed_ms(partial(target.publish, run, fields)))
    expected = {label: np.asarray(fields[case.names[0]][selection[1:]])
                for label, selection in case.reads(0).items()}
    out: dict[str, Any] = {"case": asdict(case), "methods": methods,
                           "chunks_per_run": case.chunks_per_run(),
                           "raw_mb_per_run": round(
                               case.variables * 4 * np.prod(case.run_shape) / 1e6, 2)}
    for method, cube in cubes.items():
        log(f"{case.name}: reads ({method})")
        out[method] = {"publish": summary(publish[method]),
                       **measure_reads(cube, case, repeats, case.runs - 1, expected)}
    out["stored_mb"] = {m: round(sum(stored_sizes(server, bucket, c.prefix)) / 1e6, 2)
                        for m, c in cubes.items()}
    log(f"{case.name}: requests, clients, races")
    out["requests"] = {m: count_requests(c, case, counter, case.runs, fields)
                       for m, c in cubes.items()}
    with counter.counting() as writer_requests:
        writer.publish(case.runs, fields)
    out[WRITER] = {"publish": summary(publish[WRITER]), "requests": writer_requests}
    out["plain_clients"] = plain_clients(server, bucket, cubes, case)
    out["race"] = {"conditional": race_conditional(server, bucket, case),
                   "conditional, slot not reserved": race_without_reservation(server, bucket,
                                                                              case),
                   "icechunk": race_icechunk(server, bucket, case)}
    return out


def public_read(server: S3Server, bucket: str) -> None:
    """Let anyone GET the bucket's objects, as a public data bucket over plain HTTP."""
    policy = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
        "Resource": f"arn:aws:s3:::{bucket}/*"}]}
    httpx.put(f"{server.endpoint}/{bucket}", params={"policy": ""},
              content=json.dumps(policy), timeout=10).raise_for_status()


def stored_sizes(server: S3Server, bucket: str, prefix: str) -> list[int]:
    """Sizes of every object under ``prefix``."""
    store = s3_store(server, bucket)
    return [int(meta["size"]) for batch in obstore.list(store, prefix=prefix) for meta in batch]


def machine() -> dict[str, Any]:
    """Where and when it ran."""
    return {"when": datetime.now(UTC).isoformat(timespec="seconds"),
            "cores": os.cpu_count(), "load_average": [round(x, 2) for x in os.getloadavg()],
            "python": platform.python_version(), "zarr": zarr.__version__,
            "icechunk": icechunk.__version__, "obstore": obstore.__version__}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny data (seconds)")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR, help="results folder")
    args = parser.parse_args()
    cases, repeats = (QUICK, QUICK_REPEATS) if args.quick else (FULL, FULL_REPEATS)
    warnings.filterwarnings("ignore", message="Consolidated metadata")
    icechunk.set_logs_filter("error")  # the race's refused rebase is logged as a warning
    with tempfile.TemporaryDirectory(prefix="fewsmap-object-publish-") as temp:
        recording = Path(temp) / "requests.jsonl"
        os.environ["MOTO_RECORDER_FILEPATH"] = str(recording)  # inherited by moto_server
        with s3_server() as server:
            counter = RequestCounter(server, recording)
            meta = {**machine(), "quick": args.quick, "repeats": asdict(repeats)}
            results: dict[str, Any] = {
                "meta": meta,
                "cases": [bench_case(server, counter, case, repeats) for case in cases]}
    results["meta"]["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    stem = "object_publish-quick" if args.quick else "object_publish"
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{stem}.json").write_text(json.dumps(results, indent=1) + "\n")
    report = report_lines(results)
    (args.out / f"{stem}.md").write_text("\n".join(report) + "\n")
    print("\n".join(report))


def report_lines(results: dict[str, Any]) -> list[str]:
    """The Markdown report: one table per case, requests, clients and the races."""
    meta = results["meta"]
    lines = ["# Publishing a run on object storage: conditional writes vs Icechunk",
             "", f"`benchmarks/object_publish.py`{' --quick' if meta['quick'] else ''}, "
             f"{meta['when']}, moto S3 server on loopback, {meta['cores']} cores, load average "
             f"{meta['load_average'][0]} before / {meta['load_average_after'][0]} after; "
             f"zarr {meta['zarr']}, icechunk {meta['icechunk']}, obstore {meta['obstore']}. "
             "Medians (min–max) in ms; the ratios divide medians by conditional writes'.", ""]
    for case in results["cases"]:
        lines += case_lines(case)
    return lines


def case_lines(case: dict[str, Any]) -> list[str]:
    """The report's section of one case."""
    c, methods = case["case"], case["methods"]
    others = [m for m in methods if m != "conditional"]
    lines = [f"## {c['name']}: {c['variables']} var × {c['steps']} steps × {c['members']} "
             f"members × {c['ny']} × {c['nx']}, {case['chunks_per_run']} chunks and "
             f"{case['raw_mb_per_run']} MB raw per run", "",
             "| | " + " | ".join(methods) + " | " + " | ".join(f"{m} / conditional"
                                                         for m in others) + " |",
             "| --- " * (1 + len(methods) + len(others)) + "|"]
    base = case["conditional"]
    for key in [k for k in base if isinstance(base[k], dict)]:
        lines.append(f"| {key} | " + " | ".join(cell(case[m][key]) for m in methods) + " | "
                     + " | ".join(f"{case[m][key]['median_ms'] / base[key]['median_ms']:.2f}"
                                  for m in others) + " |")
    stored = case["stored_mb"]
    lines.append(f"| stored MB ({c['runs'] + 1} runs) | "
                 + " | ".join(str(stored[m]) for m in methods) + " | "
                 + " | ".join(f"{stored[m] / stored['conditional']:.2f}" for m in others)
                 + " |")
    writer = case[WRITER]
    lines += ["", f"fewsmap's own writer (`append_run` to `s3://`, publish only): "
              f"{cell(writer['publish'])} ms, {verbs(writer['requests'])} requests per run "
              "(it also writes valid times, statistics and which steps and members hold "
              "data).", ""]
    lines += ["S3 requests (moto's recorder, separate pass):", "",
              "| operation | " + " | ".join(methods) + " |", "| --- " * (1 + len(methods)) + "|"]
    requests = case["requests"]
    for op in requests["conditional"]:
        lines.append(f"| {op} | " + " | ".join(verbs(requests[m][op]) for m in methods) + " |")
    lines += ["", "Plain clients:", "", "| client | " + " | ".join(methods) + " |",
              "| --- " * (1 + len(methods)) + "|"]
    clients = case["plain_clients"]
    for client in clients["conditional"]:
        lines.append(f"| {client} | " + " | ".join(clients[m][client] for m in methods) + " |")
    lines += ["", "Two writers racing:", ""]
    for method, race in case["race"].items():
        lines.append(f"- {method}: " + "; ".join(f"{k}: {v}" for k, v in race.items()))
    lines.append("")
    return lines


def cell(stats: dict[str, float]) -> str:
    """``median (min–max)``."""
    return f"{stats['median_ms']:.1f} ({stats['min_ms']:.1f}–{stats['max_ms']:.1f})"


def verbs(counts: dict[str, int]) -> str:
    """``12 (PUT 10, GET 2)``."""
    detail = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()) if k != "total")
    return f"{counts['total']} ({detail})" if detail else "0"


if __name__ == "__main__":
    main()
