"""Operational-size cubes against MapServer in one run (issue #18, "Benchmarks").

Two scenarios, each a store written by fewsmap's writer (overviews and the time-series copy
included) and served by ``fewsmap serve`` (default workers) and by MapServer 8 (lighttpd
FastCGI, 2 processes, the suite's peer set-up: `benchmarks.suite.servers`) reading a tiled
GeoTIFF export of the same field:

* **big grid**: 4000 × 3000 cells over the suite's Europe domain, one run of 2 steps;
* **operational ensemble**: 51 members of 1440 × 721 cells (the size of a 0.25° global
  grid, over the suite's Europe domain), one run of 2 steps; tiles of the layer's default
  member (member 0), which is what MapServer's export holds.

Both servers get the same seeded random 256² Web Mercator tiles over zooms 2–10 at c=8,
measured from the moment each server answers (its first seconds included: fewsmap is not
warmed up first). The ratio is fewsmap's tiles per second over MapServer's, in this run
(target ≥ 3×). Without MapServer (``apt-get install --no-install-recommends mapserver-bin
cgi-mapserver lighttpd``) the peer is skipped and the summary says so. Usage::

    .venv/bin/python -m benchmarks.suite.operational [--quick] [--cache DIR] [--out DIR]

Data (about 3 GB) stay in ``~/.cache/fewsmap-bench/operational`` (built once); writes
``operational.json`` and ``.md`` (``--quick``: ``operational-quick.*``) into ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.suite import workload
from benchmarks.suite.client import load
from benchmarks.suite.data import CubeSpec, build_stores
from benchmarks.suite.procs import free_port
from benchmarks.suite.servers import (
    APT_COMMAND,
    EXPORT_VERSION,
    export_slices,
    mapserver_missing,
    mapserver_version,
    start_fewsmap,
    start_mapserver,
    write_mapserver_config,
)

DEFAULT_CACHE = Path.home() / ".cache" / "fewsmap-bench" / "operational"
RESULTS = Path(__file__).resolve().parents[1] / "results"
FULL = (CubeSpec("big", 3000, 4000, 1, 2, seed=7),
        CubeSpec("ens", 721, 1440, 1, 2, seed=5, members=51))
QUICK = (CubeSpec("big", 150, 200, 1, 2, seed=7),
         CubeSpec("ens", 36, 72, 1, 2, seed=5, members=3))
ZOOMS = (2, 10)
TARGET = 3.0  # fewsmap's tiles per second over MapServer's at c=8
CONCURRENCY = 8


def measure(specs: tuple[CubeSpec, ...], cache: Path, tiles: int, max_seconds: float,
            peer: bool) -> dict[str, Any]:
    """Build (or reuse) the stores, then load each server with every scenario's tiles."""
    built = build_stores(cache / "stores", list(specs))
    logs = cache / "logs"
    requests = {spec.name: workload.tiles(spec, tiles, 1800 + k, ZOOMS)
                for k, spec in enumerate(specs)}
    found: dict[str, Any] = {"build_s": round(built.seconds, 1), "reused": built.reused,
                             "tiles": tiles, "zooms": list(ZOOMS), "scenarios": {}}
    fewsmap = start_fewsmap(built.folder, None, logs, "operational", idle=False)
    try:
        urls = workload.FewsmapUrls()
        for name, wanted in requests.items():
            result = load(fewsmap.port, [urls.getmap(r) for r in wanted], CONCURRENCY,
                          max_seconds, fewsmap.tree)
            found["scenarios"][name] = {"fewsmap": result.summary()}
    finally:
        fewsmap.stop()
    missing = mapserver_missing()
    if not peer or missing:
        found["mapserver"] = ("not run: --no-mapserver" if not peer else
                              f"not run: {', '.join(missing)} missing ({APT_COMMAND})")
        return found
    found["mapserver"] = mapserver_version().split(" OUTPUT=")[0]
    folder = cache / f"mapserver-v{EXPORT_VERSION}"  # exports of another version: redone
    stores = {spec.name: built.store(spec) for spec in specs}
    cubes = {spec.name: spec for spec in specs}
    slices = [r.slice_key for wanted in requests.values() for r in wanted]
    export_slices(folder, stores, cubes, slices)
    port = free_port()
    server = start_mapserver(folder, write_mapserver_config(folder, cubes, slices, port), port,
                             logs)
    try:
        peer_urls = workload.MapServerUrls()
        for name, wanted in requests.items():
            result = load(server.port, [peer_urls.getmap(r) for r in wanted], CONCURRENCY,
                          max_seconds, server.tree)
            row = found["scenarios"][name]
            row["mapserver"] = result.summary()
            ours, theirs = row["fewsmap"]["rps"], row["mapserver"]["rps"]
            row["ratio"] = round(ours / theirs, 2) if ours and theirs else None
    finally:
        server.stop()
    return found


def markdown(found: dict[str, Any], specs: tuple[CubeSpec, ...]) -> str:
    """The summary table."""
    lines = ["# Operational-size cubes against MapServer (`benchmarks/suite/operational.py`)",
             "", f"256² tiles at c={CONCURRENCY}, zooms {ZOOMS[0]}–{ZOOMS[1]}, "
             f"{found['tiles']} per server and scenario; MapServer: {found['mapserver']}. "
             f"Machine load average at the end: {found.get('load_average')}.", "",
             "| scenario | fewsmap tiles/s (median ms) | MapServer tiles/s (median ms) | "
             f"ratio (target ≥ {TARGET:g}×) |", "| --- | --- | --- | --- |"]
    for spec in specs:
        row = found["scenarios"][spec.name]
        ours = row["fewsmap"]
        theirs = row.get("mapserver")
        shape = f"{spec.nx} × {spec.ny}" + (f", {spec.members} members" if spec.members else "")
        peer = f"{theirs['rps']} ({theirs['median_ms']})" if theirs else "not run"
        ratio = f"{row['ratio']}×" if row.get("ratio") else "–"
        lines.append(f"| {spec.name} ({shape}) | {ours['rps']} ({ours['median_ms']}) | "
                     f"{peer} | {ratio} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny cubes, a few tiles")
    parser.add_argument("--cache", type=Path, default=None,
                        help=f"data folder (default {DEFAULT_CACHE}; --quick: a temporary one)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--no-mapserver", action="store_true")
    args = parser.parse_args()
    specs = QUICK if args.quick else FULL
    tiles, seconds = (16, 10.0) if args.quick else (600, 60.0)
    with tempfile.TemporaryDirectory(prefix="fewsmap-operational-") as scratch:
        cache = args.cache or (Path(scratch) if args.quick else DEFAULT_CACHE)
        found = measure(specs, cache, tiles, seconds, not args.no_mapserver)
    found["load_average"] = [round(x, 2) for x in os.getloadavg()]
    found["date"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    stem = "operational-quick" if args.quick else "operational"
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{stem}.json").write_text(json.dumps(found, indent=1) + "\n")
    (args.out / f"{stem}.md").write_text(markdown(found, specs))
    print(markdown(found, specs))


if __name__ == "__main__":
    main()
