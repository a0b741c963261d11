"""Ingest throughput against a floor, and peak memory on a large run (issue #18, "Ingest").

One synthetic ensemble run, one NetCDF-4 file per member (default 51 members x 10 steps x
721 x 1440 float32, 0.25° global: 2.1 GB), kept in ``~/.cache/fewsmap-bench/ingest-throughput``.

* **fewsmap**: ``fewsmap ingest --store <new store> <files>`` (pieces on two threads;
  statistics, presence records, file hashes, overviews and the time-series copy included),
  also on a local dask cluster of 2 workers and without the time-series copy
  (``[stores.<name>] series_copy = false``).
* **floor**: xarray reads the same files (``open_mfdataset``, the same engine) and writes
  them with ``Dataset.to_zarr`` into a new Zarr v3 store, with the codec and chunks fewsmap's
  store ended up with, to the same disk.

Each runs in a fresh process (its peak RSS is its own ``ru_maxrss``); the two take turns for
``--repeat`` rounds and the fastest of each is compared (target: fewsmap ≥ 0.5x the floor's
throughput). ``--large`` adds one fewsmap ingest of a ~10 GB run (51 x 48 x 721 x 1440) for
its peak RSS (target < 2 GB). Usage::

    .venv/bin/python -m benchmarks.ingest_throughput [--quick] [--large] [--out DIR]

Writes ``ingest_throughput.json`` and ``.md`` into ``--out`` (default benchmarks/results).
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.ingest_scaling import RunSpec, machine, member_files

DEFAULT_CACHE = Path.home() / ".cache" / "fewsmap-bench" / "ingest-throughput"
RESULTS = Path(__file__).resolve().parent / "results"
FULL = RunSpec(51, 10, 721, 1440)
LARGE = RunSpec(51, 48, 721, 1440)
QUICK = RunSpec(3, 2, 120, 160)


def child_fewsmap(files: list[Path], store: Path, workers: int = 0,
                  series_copy: bool = True) -> None:
    """Ingest ``files`` into a new store: in this process, or on a local dask cluster of
    ``workers`` processes (`fewsmap ingest --workers N`; its start-up is timed too);
    ``series_copy`` False writes no time-series copy (``[stores.<name>] series_copy``)."""
    from fewsmap.ingest import ingest
    from fewsmap.ingest.distributed import DaskExecutor, cluster_client

    if workers:
        with cluster_client(workers=workers) as client:
            [result] = ingest(store, files, progress=False, executor=DaskExecutor(client),
                              series_copy=series_copy)
    else:
        [result] = ingest(store, files, progress=False, series_copy=series_copy)
    assert result.status == "written", result


def child_floor(files: list[Path], store: Path, like: Path) -> None:
    """Write ``files`` with xarray's ``to_zarr``, with the codec and chunks of ``like``."""
    import xarray as xr
    import zarr

    template = zarr.open_group(like, mode="r")["t2m"]
    ds = xr.open_mfdataset(files, engine="netcdf4", combine="nested", concat_dim="member",
                           chunks={}, parallel=False)
    chunks = dict(zip(("member", "time", "latitude", "longitude"),
                      template.chunks[-4:], strict=True))
    ds = ds.chunk(chunks)
    encoding = {"t2m": {"compressors": template.compressors, "chunks": template.chunks[-4:]}}
    ds.to_zarr(store, mode="w", zarr_format=3, encoding=encoding, consolidated=True)


def run_child(kind: str, files: list[Path], store: Path, like: Path | None) -> dict[str, Any]:
    """Run one measurement in a fresh process; return its seconds and peak RSS."""
    shutil.rmtree(store, ignore_errors=True)
    command = [sys.executable, "-m", "benchmarks.ingest_throughput", "--child", kind,
               "--store", str(store), *(["--like", str(like)] if like else []),
               *map(str, files)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode:
        raise RuntimeError(f"{kind} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure(spec: RunSpec, cache: Path, repeat: int, large: bool) -> dict[str, Any]:
    """Both writers ``repeat`` times, taking turns; optionally the large run's RSS."""
    files = member_files(spec, cache)
    stores = cache / "stores"
    fewsmap_store, floor_store = stores / "fewsmap.zarr", stores / "floor.zarr"
    rounds: dict[str, list[dict[str, Any]]] = {"fewsmap": [], "fewsmap, 2 workers": [],
                                               "fewsmap, no series copy": [], "floor": []}
    no_copy_mb = 0.0
    for _ in range(repeat):
        rounds["fewsmap, no series copy"].append(
            run_child("fewsmap-nocopy", files, fewsmap_store, None))
        no_copy_mb = folder_mb(fewsmap_store)
        rounds["fewsmap, 2 workers"].append(
            run_child("fewsmap-2", files, fewsmap_store, None))
        rounds["fewsmap"].append(run_child("fewsmap", files, fewsmap_store, None))
        rounds["floor"].append(run_child("floor", files, floor_store, fewsmap_store))
    best = {kind: min(runs, key=lambda r: r["seconds"]) for kind, runs in rounds.items()}
    results: dict[str, Any] = {
        "run": {"members": spec.members, "steps": spec.steps, "ny": spec.ny, "nx": spec.nx,
                "mb": spec.nbytes / 1e6, "files": len(files)},
        "repeat": repeat, "rounds": rounds,
        "best": {kind: {**row, "mb_per_s": spec.nbytes / 1e6 / row["seconds"]}
                 for kind, row in best.items()},
        "ratio_vs_floor": best["floor"]["seconds"] / best["fewsmap"]["seconds"],
        "ratio_2_workers_vs_floor": (best["floor"]["seconds"]
                                     / best["fewsmap, 2 workers"]["seconds"]),
        "ratio_no_copy_vs_floor": (best["floor"]["seconds"]
                                   / best["fewsmap, no series copy"]["seconds"]),
        "store_mb": {"fewsmap, no series copy": no_copy_mb,
                     **{kind: folder_mb(store) for kind, store in
                        (("fewsmap", fewsmap_store), ("floor", floor_store))}},
        "store_parts_mb": parts_mb(fewsmap_store),
    }
    shutil.rmtree(stores, ignore_errors=True)
    if large:
        large_files = member_files(LARGE, cache)
        row = run_child("fewsmap", large_files, stores / "large.zarr", None)
        results["large"] = {**row, "mb": LARGE.nbytes / 1e6,
                            "mb_per_s": LARGE.nbytes / 1e6 / row["seconds"]}
        shutil.rmtree(stores, ignore_errors=True)
    results["machine"] = machine()
    return results


def parts_mb(store: Path) -> dict[str, float]:
    """The fewsmap store's size by part: the variable, its time-series copy, overviews."""
    parts = {"variable": store / "t2m", "time-series copy": store / "t2m.series",
             "overviews": store / "overviews"}
    return {name: folder_mb(folder) for name, folder in parts.items() if folder.exists()}


def folder_mb(folder: Path) -> float:
    """Size of the files under ``folder`` in MB."""
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 1e6


def markdown(results: dict[str, Any]) -> str:
    """The results as benchmarks/results/ingest_throughput.md."""
    run, host, best = results["run"], results["machine"], results["best"]
    lines = [
        "# Ingest throughput against `to_zarr` (`benchmarks/ingest_throughput.py`, issue #18)",
        "",
        f"One synthetic run of {run['members']} members (one NetCDF-4 file each) x "
        f"{run['steps']} steps x {run['ny']} x {run['nx']} float32: {run['mb']:.3g} MB. "
        "fewsmap: `ingest` into a new store; floor: xarray's `open_mfdataset(...).to_zarr` "
        "of the same files with fewsmap's codec and chunks, to the same disk. Each in a fresh "
        f"process, {results['repeat']} rounds taking turns, fastest compared. Machine: "
        f"{host['cores']} cores, load average {', '.join(map(str, host['load_average']))} "
        f"at the end, {host['date']}.",
        "",
        "| writer | wall time (fastest) | MB/s | peak RSS | store size |",
        "| --- | --- | --- | --- | --- |",
    ]
    for kind, row in best.items():
        size = results["store_mb"].get(kind, results["store_mb"].get(kind.split(",")[0]))
        lines.append(f"| {kind} | {row['seconds']:.1f} s | {row['mb_per_s']:.0f} | "
                     f"{row['max_rss_mb']:.0f} MB | {size:.0f} MB |")
    parts = ", ".join(f"{name} {mb:.0f} MB" for name, mb in results["store_parts_mb"].items())
    lines += ["", f"**fewsmap / floor throughput: {results['ratio_vs_floor']:.2f}x serial, "
              f"{results['ratio_2_workers_vs_floor']:.2f}x with 2 workers, "
              f"{results['ratio_no_copy_vs_floor']:.2f}x without the series copy** "
              "(target ≥ 0.5x; "
              "the floor's dask compresses on every core). The fewsmap store holds "
              f"{parts}. Peak RSS is each process's own: with 2 workers, the client's."]
    if "large" in results:
        large = results["large"]
        lines += ["", f"Large run ({large['mb'] / 1e3:.1f} GB, 51 x 48 x 721 x 1440): "
                  f"{large['seconds']:.0f} s, {large['mb_per_s']:.0f} MB/s, **peak RSS "
                  f"{large['max_rss_mb']:.0f} MB** (target < 2 GB)."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a tiny run (smoke test)")
    parser.add_argument("--large", action="store_true", help="also the ~10 GB run's RSS")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--child", choices=["fewsmap", "fewsmap-2", "fewsmap-nocopy", "floor"],
                        help=argparse.SUPPRESS)
    parser.add_argument("--store", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--like", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("files", type=Path, nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        start = time.perf_counter()
        if args.child.startswith("fewsmap"):
            child_fewsmap(args.files, args.store, 2 if args.child == "fewsmap-2" else 0,
                          series_copy=args.child != "fewsmap-nocopy")
        else:
            child_floor(args.files, args.store, args.like)
        seconds = time.perf_counter() - start
        rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps({"seconds": seconds, "max_rss_mb": rss_mb}))
        return
    spec = QUICK if args.quick else FULL
    results = measure(spec, args.cache, 1 if args.quick else args.repeat, args.large)
    args.out.mkdir(parents=True, exist_ok=True)
    stem = "ingest_throughput-quick" if args.quick else "ingest_throughput"
    (args.out / f"{stem}.json").write_text(json.dumps(results, indent=1) + "\n")
    (args.out / f"{stem}.md").write_text(markdown(results))
    print(markdown(results))


if __name__ == "__main__":
    main()
