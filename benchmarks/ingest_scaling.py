"""Measure how ingest of one run scales with dask workers (issue #14, "Speed").

One synthetic ensemble run written as NetCDF-4 files, one file per member (default 10
members x 13 steps of a 1000 x 1000 grid, float32: 520 MB), kept in
``~/.cache/fewsmap-bench/ingest-scaling``. It is ingested into a fresh store serially (the
plain ``fewsmap ingest``) and on a local dask cluster of 1, 2 and 4 worker processes of one
thread each (``--workers N``), taking turns for ``--repeat`` rounds; the fastest of each is
compared, the median given too. The clusters are started before the clock starts (their
start-up is reported apart). Usage::

    .venv/bin/python -m benchmarks.ingest_scaling [--quick] [--out DIR]

Writes ``ingest_scaling.json`` and ``ingest_scaling.md`` into ``--out`` (default
benchmarks/results).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import time
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from fewsmap.ingest import ingest
from fewsmap.ingest.distributed import DaskExecutor, cluster_client
from fewsmap.store.writer import Executor

DEFAULT_CACHE = Path.home() / ".cache" / "fewsmap-bench" / "ingest-scaling"
RESULTS = Path(__file__).resolve().parent / "results"
T0 = np.datetime64("2026-12-01T00:00:00", "s")


@dataclass(frozen=True)
class RunSpec:
    """The synthetic run: members (one file each) x steps x ny x nx float32."""

    members: int
    steps: int
    ny: int
    nx: int

    @property
    def nbytes(self) -> int:
        """Size of the run's values as float32."""
        return self.members * self.steps * self.ny * self.nx * 4

    @property
    def name(self) -> str:
        """A folder name that says the shape."""
        return f"m{self.members}-s{self.steps}-{self.ny}x{self.nx}"


FULL = RunSpec(10, 13, 1000, 1000)
QUICK = RunSpec(3, 2, 120, 160)


def member_files(spec: RunSpec, cache: Path) -> list[Path]:
    """Write the run's member files once (NetCDF-4, uncompressed); return their paths.

    Fields are smooth with quantised noise, so they compress like real ones.
    """
    folder = cache / spec.name / "2026120100"
    paths = [folder / f"bench_p{m:02d}.nc" for m in range(1, spec.members + 1)]
    if all(p.exists() for p in paths):
        return paths
    folder.mkdir(parents=True, exist_ok=True)
    lat = np.linspace(30.0, 70.0, spec.ny)
    lon = np.linspace(-20.0, 40.0, spec.nx)
    smooth = (np.sin(np.radians(lat))[:, None] * 20 + np.cos(np.radians(lon))[None, :] * 10)
    times = T0 + np.arange(1, spec.steps + 1) * np.timedelta64(6, "h")
    for member, path in enumerate(paths, start=1):
        rng = np.random.default_rng(member)
        noise = rng.integers(0, 16, (spec.steps, spec.ny, spec.nx)).astype("float32") / 8
        values = (smooth[None].astype("float32") + np.arange(spec.steps, dtype="float32")
                  [:, None, None] + noise)
        ds = xr.Dataset(
            {"t2m": (("time", "latitude", "longitude"), values, {"units": "K"})},
            coords={"time": ("time", times.astype("datetime64[ns]")),
                    "latitude": ("latitude", lat, {"units": "degrees_north"}),
                    "longitude": ("longitude", lon, {"units": "degrees_east"})})
        partial = path.with_suffix(".partial")
        ds.to_netcdf(partial, engine="netcdf4")
        partial.replace(path)
    return paths


def timed_ingest(files: list[Path], store: Path, executor: Executor | None) -> float:
    """Seconds to ingest ``files`` into a new store at ``store``."""
    shutil.rmtree(store, ignore_errors=True)
    start = time.perf_counter()
    [result] = ingest(store, files, progress=False, executor=executor)
    seconds = time.perf_counter() - start
    assert result.status == "written", result
    return seconds


def measure(spec: RunSpec, cache: Path, workers: list[int], repeat: int) -> dict[str, Any]:
    """Ingest the run serially and with each number of workers, ``repeat`` rounds.

    The clusters are started first and the modes take turns in every round, so that the
    changing load of a shared machine weighs on all of them alike.
    """
    files = member_files(spec, cache)
    store = cache / "store" / "bench.zarr"
    with ExitStack() as stack:
        modes: dict[str, tuple[int, Executor | None, float | None]] = {"serial": (0, None, None)}
        for n in workers:
            start = time.perf_counter()
            client = stack.enter_context(cluster_client(workers=n))
            modes[f"dask, {n} worker{'s' * (n > 1)}"] = (n, DaskExecutor(client),
                                                         time.perf_counter() - start)
        times: dict[str, list[float]] = {mode: [] for mode in modes}
        for _ in range(repeat):
            for mode, (_, executor, _) in modes.items():
                times[mode].append(timed_ingest(files, store, executor))
    shutil.rmtree(store.parent, ignore_errors=True)
    rows = [{"mode": mode, "workers": n, "seconds": min(times[mode]),
             "median_s": statistics.median(times[mode]), "all_s": times[mode],
             "cluster_start_s": started} for mode, (n, _, started) in modes.items()]
    serial = rows[0]["seconds"]
    one = next((r["seconds"] for r in rows if r["workers"] == 1), None)
    for row in rows:
        row["mb_per_s"] = spec.nbytes / 1e6 / row["seconds"]
        row["vs_serial"] = serial / row["seconds"]
        row["vs_one_worker"] = one / row["seconds"] if one else None
    return {"run": {**asdict(spec), "mb": spec.nbytes / 1e6, "files": len(files)},
            "repeat": repeat, "rows": rows, "machine": machine()}


def machine() -> dict[str, Any]:
    """What the numbers were measured on (a shared machine: its load says how shared)."""
    return {"cores": os.cpu_count(), "load_average": [round(x, 2) for x in os.getloadavg()],
            "python": platform.python_version(), "platform": platform.platform(),
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}


def markdown(results: dict[str, Any]) -> str:
    """The results as the table in benchmarks/results/ingest_scaling.md."""
    run, host = results["run"], results["machine"]
    lines = [
        "# Ingest of one run with dask workers (`benchmarks/ingest_scaling.py`, issue #14)",
        "",
        f"One synthetic run of {run['members']} members (one NetCDF-4 file each, "
        f"uncompressed) x {run['steps']} steps x {run['ny']} x {run['nx']} float32: "
        f"{run['mb']:.3g} MB, ingested into a new local store; {results['repeat']} rounds "
        "in which the modes take turns, fastest compared. Machine: "
        f"**{host['cores']} cores**, shared with other "
        f"sessions (load average {', '.join(map(str, host['load_average']))} at the end), "
        f"{host['date']}. More workers than cores cannot run at once here: 4 workers on 2 "
        "cores measure the overhead of oversubscription, not scaling.",
        "",
        "| mode | wall time (fastest) | median | MB/s | vs serial | vs 1 worker | "
        "cluster start |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in results["rows"]:
        vs_one = f"{row['vs_one_worker']:.2f}x" if row["vs_one_worker"] else "-"
        start = f"{row['cluster_start_s']:.1f} s" if row["cluster_start_s"] else "-"
        lines.append(f"| {row['mode']} | {row['seconds']:.2f} s | {row['median_s']:.2f} s | "
                     f"{row['mb_per_s']:.3g} | "
                     f"{row['vs_serial']:.2f}x | {vs_one} | {start} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a tiny run (smoke test)")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE,
                        help="folder for the input files and the store")
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder for the results")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--repeat", type=int, default=4)
    args = parser.parse_args()
    spec = QUICK if args.quick else FULL
    results = measure(spec, args.cache, args.workers, 1 if args.quick else args.repeat)
    args.out.mkdir(parents=True, exist_ok=True)
    stem = "ingest_scaling-quick" if args.quick else "ingest_scaling"
    (args.out / f"{stem}.json").write_text(json.dumps(results, indent=1) + "\n")
    (args.out / f"{stem}.md").write_text(markdown(results))
    print(markdown(results))


if __name__ == "__main__":
    main()
