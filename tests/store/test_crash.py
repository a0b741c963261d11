"""Crash test: SIGKILL an ingest at random moments; nothing published is ever lost.

Each trial copies a store holding three published runs and a replaced run's retired slot
whose grace period is over, then ingests a fourth run in another process (forked from one
that imported fewsmap once, ``tests/store/crash_writer.py``) and kills it with SIGKILL:
half the trials after a random delay over the whole ingest, half just before its K-th
file-system change (K drawn over every change of a clean ingest, plus fixed targets, so the
kills cover the retired slot's vacuum, the chunk writes, the coordinates and the publish).
After each kill: the store opens, the three runs have the checksums taken before, the
fourth run is either absent or complete, and re-running the ingest completes it with a
clean ingest's values. Retention (``prune``, which publishes and deletes too) is killed the
same way at changes spread over a clean prune's.

CI runs 20 trials; the long run is ``FEWSMAP_CRASH_TRIALS=500 .venv/bin/pytest
tests/store/test_crash.py -s`` (``FEWSMAP_CRASH_SEED`` picks the draw).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from fewsmap import ForecastStore, open_cube
from fewsmap.ingest import ingest
from fewsmap.store.retention import RetentionPolicy, prune
from fewsmap.store.writer import RETIRED_GRACE_S, publish, writer_lock
from fewsmap.time.instants import parse_stamp
from tests.conftest import ROOT, record_figure
from tests.forecast_files import forecast_file, run_time

TRIALS = int(os.environ.get("FEWSMAP_CRASH_TRIALS", "20"))
SEED = int(os.environ.get("FEWSMAP_CRASH_SEED", "20261121"))
SHAPE = (520, 540)  # 2 x 2 spatial chunks per field (512² tiles)
VARIABLES = ("t2m", "tp")
NEW_SLOT = 4  # runs 0-2 in slots 0-2, run 1 replaced into slot 3, slot 1 retired
PRUNE = {"keep_runs": 1}  # the retention trials keep the newest run


def run_digests(store: Path | str) -> dict[str, str]:
    """sha256 of every published run's valid times and values, by run label."""
    fs = ForecastStore(store)
    digests = {}
    for run in fs.runs:
        digest = hashlib.sha256(run.valid_times.astype("int64").tobytes())
        for name in fs.variables:
            values = fs.array(name).oindex[run.slot, run.step_slots]
            digest.update(name.encode() + np.ascontiguousarray(values).tobytes())
        digests[run.label] = digest.hexdigest()
    return digests


@dataclass(frozen=True)
class Setup:
    """The store every trial starts from, the new run's input and what a clean ingest does."""

    base: Path
    new_input: Path
    before: dict[str, str]  # checksums of the published runs
    after: dict[str, str]  # checksums once the new run is ingested cleanly
    trace: list[tuple[str, str]]  # (event, path) of each file-system change of that ingest
    duration_s: float  # from "ready" to exit, clean


class Writers:
    """The ``tests.store.crash_writer`` process, which forks one ingest process per job."""

    def __init__(self, env: dict[str, str] | None = None) -> None:
        self.server = subprocess.Popen([sys.executable, "-m", "tests.store.crash_writer"],
                                       stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                       text=True, cwd=ROOT, env={**os.environ, **(env or {})})
        assert self._line() == "ready"

    def _line(self) -> str:
        assert self.server.stdout is not None
        return self.server.stdout.readline().strip()

    def run(self, store: Path | str, files: list[Path], log: Path, **job: object) -> int:
        """Run one ingest process as ``job`` says; return its exit code (-9: SIGKILL)."""
        assert self.server.stdin is not None
        self.server.stdin.write(json.dumps({"store": str(store), "files": list(map(str, files)),
                                            "log": str(log), **job}) + "\n")
        self.server.stdin.flush()
        assert self._line().startswith("pid ")
        return int(self._line().removeprefix("exit "))

    def close(self) -> None:
        assert self.server.stdin is not None and self.server.stdout is not None
        self.server.stdin.close()
        self.server.wait(timeout=60)
        self.server.stdout.close()


@pytest.fixture(scope="module")
def writers() -> Iterator[Writers]:
    pool = Writers()
    yield pool
    pool.close()


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory, writers: Writers) -> Setup:
    folder = tmp_path_factory.mktemp("crash")
    inputs = [forecast_file(folder / "in", run_time(i), steps=4, shape=SHAPE,
                            variables=VARIABLES) for i in range(4)]
    base = folder / "base" / "feed.zarr"
    ingest(base, inputs[:3], progress=False)
    ingest(base, inputs[1:2], replace=True, progress=False)
    attrs = ForecastStore(base).attrs
    long_ago = (datetime.now(UTC) - timedelta(seconds=RETIRED_GRACE_S + 60)).isoformat()
    with writer_lock(base):  # the replaced run's grace is over: the next ingest vacuums it
        publish(base, {**attrs, "retired": [{**e, "retired_at": long_ago}
                                            for e in attrs["retired"]]})
    assert [e["slot"] for e in ForecastStore(base).attrs["retired"]] == [1]

    clean = folder / "clean" / "feed.zarr"
    shutil.copytree(base.parent, clean.parent)
    started = time.monotonic()
    assert writers.run(clean, inputs[3:], folder / "clean.log", trace=True) == 0
    duration = time.monotonic() - started
    trace = [(line.split(" ", 3)[2], line.split(" ", 3)[3])
             for line in (folder / "clean.log").read_text().splitlines()
             if line.startswith("op ")]
    return Setup(base, inputs[3], run_digests(base), run_digests(clean), trace, duration)


def phase(event: str, path: str) -> str:
    """Name the part of an ingest a file-system change belongs to."""
    if path.endswith((".lock", ".writing")):
        return "lock and marker"
    if event in ("os.remove", "os.rmdir", "shutil.rmtree"):
        return "vacuum"
    if "/feed.zarr/.zarr.json." in path or path.endswith("/feed.zarr/zarr.json"):
        return "publish"
    if f"/c/{NEW_SLOT}/" in path:
        return "chunk writes"
    return "coordinates and array metadata"


# Changes every trial set kills before, whatever the draw: the first deletion of the retired
# slot's chunks, both steps of the publish, and the marker's removal after the publish.
TARGETS = (r"^(os\.remove|shutil\.rmtree) .*/c/1",
           r"^open .*/feed\.zarr/\.zarr\.json\.\d+\.partial$",
           r"^os\.rename .*/feed\.zarr/\.zarr\.json\.\d+\.partial$",
           r"^os\.remove .*\.feed\.zarr\.writing$")


@dataclass(frozen=True)
class Kill:
    """How one trial kills the writer: after ``delay_s``, at change ``at_op`` or ``at``."""

    delay_s: float | None = None
    at_op: int | None = None
    at: str | None = None


def draw_kills(setup: Setup, rng: random.Random) -> list[Kill]:
    """Half timed kills over the whole ingest; half at changes drawn over every phase.

    The changes are drawn stratified (one per equal share of a clean ingest's changes),
    besides the ``TARGETS``, so every phase is hit.
    """
    ops, n_ops = len(setup.trace), TRIALS // 2 - len(TARGETS)
    kills = [Kill(at=target) for target in TARGETS]
    kills += [Kill(at_op=rng.randint(ops * i // n_ops + 1, ops * (i + 1) // n_ops))
              for i in range(n_ops)]
    kills += [Kill(delay_s=rng.uniform(0, setup.duration_s)) for _ in range(TRIALS - len(kills))]
    rng.shuffle(kills)
    return kills


def crash(writers: Writers, store: Path, setup: Setup, kill: Kill) -> str:
    """Run the ingest and kill it as ``kill`` says; return the phase it died in."""
    log = store.parent / "ingest.log"
    code = writers.run(store, [setup.new_input], log, crash_at_op=kill.at_op,
                       crash_at=kill.at, kill_after_s=kill.delay_s)
    lines = log.read_text().splitlines()
    if "done" in lines:
        return "finished before the kill"
    assert code == -signal.SIGKILL
    died = [line.split(" ", 3) for line in lines if line.startswith("kill ")]
    return phase(died[0][2], died[0][3]) if died else "timed (phase unknown)"


def leftovers(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.name.endswith((".partial", ".writing"))]


def check_after_crash(store: Path, setup: Setup) -> int:
    """Check the invariants after a kill; return how many runs published before are lost."""
    published = run_digests(store)  # opens the store: ForecastStore
    assert open_cube(store).sizes["forecast_reference_time"] == len(published)
    lost = sum(published.get(label) != digest for label, digest in setup.before.items())
    new = set(published) - set(setup.before)
    # No partial run: the new run is either absent or has the clean ingest's values.
    assert new <= set(setup.after)
    for label in new:
        assert published[label] == setup.after[label], f"run {label} is partial"
    return lost


def test_sigkill_during_ingest_loses_no_run(setup: Setup, writers: Writers,
                                            tmp_path: Path) -> None:
    rng = random.Random(SEED)
    record_figure("crash test", f"seed {SEED}, {TRIALS} trials, clean ingest "
                  f"{setup.duration_s:.2f} s with {len(setup.trace)} file-system changes")
    where: Counter[str] = Counter()
    lost = 0
    for trial, kill in enumerate(draw_kills(setup, rng)):
        store = tmp_path / str(trial) / "feed.zarr"
        shutil.copytree(setup.base.parent, store.parent)
        where[crash(writers, store, setup, kill)] += 1
        lost += check_after_crash(store, setup)

        [result] = ingest(store, [setup.new_input], progress=False)  # re-run completes it
        assert result.status in ("written", "skipped")
        assert run_digests(store) == setup.after
        # the replaced run's slot vacuumed; a slot the killed writer had reserved is retired
        # (a writer paused past its lease may still write there: vacuumed after the grace)
        retired = ForecastStore(store).attrs["retired"]
        assert all(e["reference_time"] == "unpublished" for e in retired), retired
        assert not (store / VARIABLES[0] / "c" / "1").exists(), "retired slot not vacuumed"
        assert leftovers(store.parent) == []
        shutil.rmtree(store.parent)
    record_figure("crash test", f"{TRIALS} trials, runs lost: {lost}, killed in: " +
                  ", ".join(f"{name} {n}" for name, n in sorted(where.items())))
    assert lost == 0
    assert where["vacuum"] and where["publish"] and where["chunk writes"]
    assert where["lock and marker"]


def test_sigkill_during_prune_loses_no_kept_run(setup: Setup, writers: Writers,
                                                tmp_path: Path) -> None:
    """Retention killed at changes drawn over a clean prune's: the kept run is intact, a
    removed run is either still whole or gone, and pruning again finishes the job."""
    keep = max(setup.before, key=parse_stamp)
    clean = tmp_path / "clean" / "feed.zarr"
    shutil.copytree(setup.base.parent, clean.parent)
    assert writers.run(clean, [], tmp_path / "clean.log", trace=True, prune=PRUNE) == 0
    ops = sum(line.startswith("op ") for line in (tmp_path / "clean.log").read_text().split("\n"))
    assert run_digests(clean) == {keep: setup.before[keep]}
    trials = max(TRIALS // 2, 1)
    kills = sorted({ops * i // trials + 1 for i in range(trials)})  # spread over every change
    for trial, at_op in enumerate(kills):
        store = tmp_path / str(trial) / "feed.zarr"
        shutil.copytree(setup.base.parent, store.parent)
        assert writers.run(store, [], tmp_path / f"{trial}.log", crash_at_op=at_op,
                           prune=PRUNE) == -signal.SIGKILL
        published = run_digests(store)
        assert published[keep] == setup.before[keep]
        assert all(setup.before[label] == digest for label, digest in published.items())
        for _ in range(2):
            prune(store, RetentionPolicy(**PRUNE), grace_s=0)
        assert run_digests(store) == {keep: setup.before[keep]}
        assert sorted(slot_folders(store)) == sorted(slot_folders(clean))
        assert leftovers(store.parent) == []
        shutil.rmtree(store.parent)
    record_figure("crash test", f"{len(kills)} kills during retention ({ops} changes): "
                                "kept runs lost 0, partial runs seen 0")


def slot_folders(store: Path) -> list[str]:
    """The run slots holding chunks, per variable: what vacuuming should have left."""
    return [str(p.relative_to(store)) for name in VARIABLES
            for p in (store / name / "c").iterdir()]
