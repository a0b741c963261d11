"""Operational-size cubes against MapServer in one run (issue #18, "Benchmarks").

Two scenarios, each a store written by fewsmap's writer (overviews and the time-series copy
included) and served by ``fewsmap serve`` (default workers) and by MapServer 8 (lighttpd
FastCGI, 2 processes, the suite's peer set-up: `benchmarks.suite.servers`) reading a tiled
GeoTIFF export of the same field:

* **big grid**: 4000 × 3000 cells over the suite's Europe domain, one run of 2 steps;
* **operational ensemble**: 51 members of a 0.25° global grid (1440 × 720 cells, edges at
  ±180°, ±90°), one run of 2 steps; maps of the layer's default member (member 0), which
  is what MapServer's export holds.

Both servers get the same requests, measured from the moment each server answers (its
first seconds included: fewsmap is not warmed up first): 3,000 seeded random 256² Web
Mercator tiles over zooms 2–10 at c=8 (tiles per second: target ≥ 3× MapServer's in this run), then
other random tiles one at a time (p95 ≤ 2× median), then 1920 × 1200 EPSG:3857 maps of the
whole domain one at a time (median ≤ 60 ms). Without MapServer (``apt-get install
--no-install-recommends mapserver-bin cgi-mapserver lighttpd``) the peer is skipped and the
summary says so. Usage::

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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.suite import workload
from benchmarks.suite.client import load
from benchmarks.suite.data import GLOBE, CubeSpec, build_stores
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
        CubeSpec("ens", 720, 1440, 1, 2, seed=5, members=51, domain=GLOBE))
QUICK = (CubeSpec("big", 150, 200, 1, 2, seed=7),
         CubeSpec("ens", 36, 72, 1, 2, seed=5, members=3, domain=GLOBE))
ZOOMS = (2, 10)
CONCURRENCY = 8
TARGET_RATIO = 3.0  # fewsmap's tiles per second over MapServer's at c=8
TARGET_SPREAD = 2.0  # a tile's p95 over its median, one at a time
TARGET_MAP_MS = 60.0  # a 1920 × 1200 map of the whole domain, median


@dataclass(frozen=True)
class Counts:
    """Requests per scenario and server: tiles at c=8, tiles and maps one at a time."""

    busy: int
    single: int
    maps: int


# Tiles at c=8: 3,000 (3-12 s from the server's first second). 600 (about a second of
# fewsmap) gave 450-750 tiles/s for the same code on this machine from run to run.
COUNTS = Counts(3000, 300, 20)
QUICK_COUNTS = Counts(16, 8, 4)


@dataclass(frozen=True)
class Workload:
    """What each server is asked, per scenario, in this order: the tiles at c=8 from the
    server's first second, then tiles and whole-domain maps one at a time."""

    busy: dict[str, list[workload.MapRequest]]
    single: dict[str, list[workload.MapRequest]]
    maps: dict[str, list[workload.MapRequest]]

    @classmethod
    def of(cls, specs: tuple[CubeSpec, ...], counts: Counts) -> Workload:
        return cls(
            {s.name: workload.tiles(s, counts.busy, 1800 + k, ZOOMS)
             for k, s in enumerate(specs)},
            {s.name: workload.tiles(s, counts.single, 2800 + k, ZOOMS)
             for k, s in enumerate(specs)},
            {s.name: workload.maps(s, counts.maps, 3800 + k) for k, s in enumerate(specs)})

    def slices(self) -> list[tuple[str, int, int]]:
        return [r.slice_key for part in (self.busy, self.single, self.maps)
                for wanted in part.values() for r in wanted]


def load_server(port: int, tree: Any, urls: Any, asked: Workload, max_seconds: float
                ) -> dict[str, dict[str, Any]]:
    """Every scenario's three loads on one server; each load's summary by name."""
    found: dict[str, dict[str, Any]] = {}
    for name in asked.busy:
        found[name] = {
            f"tiles_c{CONCURRENCY}": load(port, [urls.getmap(r) for r in asked.busy[name]],
                                          CONCURRENCY, max_seconds, tree).summary(),
            "tiles_c1": load(port, [urls.getmap(r) for r in asked.single[name]], 1,
                             max_seconds, tree).summary(),
            "maps_c1": load(port, [urls.getmap(r) for r in asked.maps[name]], 1,
                            max_seconds, tree).summary()}
    return found


def measure(specs: tuple[CubeSpec, ...], cache: Path, counts: Counts, max_seconds: float,
            peer: bool) -> dict[str, Any]:
    """Build (or reuse) the stores, then load each server with every scenario."""
    built = build_stores(cache / "stores", list(specs))
    logs = cache / "logs"
    asked = Workload.of(specs, counts)
    found: dict[str, Any] = {"build_s": round(built.seconds, 1), "reused": built.reused,
                             "busy_tiles": counts.busy, "tiles": counts.single,
                             "maps": counts.maps, "zooms": list(ZOOMS),
                             "scenarios": {}}
    fewsmap = start_fewsmap(built.folder, None, logs, "operational", idle=False)
    try:
        ours = load_server(fewsmap.port, fewsmap.tree, workload.FewsmapUrls(), asked,
                           max_seconds)
    finally:
        fewsmap.stop()
    found["scenarios"] = {name: {"fewsmap": row} for name, row in ours.items()}
    missing = mapserver_missing()
    if not peer or missing:
        found["mapserver"] = ("not run: --no-mapserver" if not peer else
                              f"not run: {', '.join(missing)} missing ({APT_COMMAND})")
        return found
    found["mapserver"] = mapserver_version().split(" OUTPUT=")[0]
    folder = cache / f"mapserver-v{EXPORT_VERSION}"  # exports of another version: redone
    stores = {spec.name: built.store(spec) for spec in specs}
    cubes = {spec.name: spec for spec in specs}
    export_slices(folder, stores, cubes, asked.slices())
    port = free_port()
    server = start_mapserver(
        folder, write_mapserver_config(folder, cubes, asked.slices(), port), port, logs)
    try:
        theirs = load_server(server.port, server.tree, workload.MapServerUrls(), asked,
                             max_seconds)
    finally:
        server.stop()
    for name, row in found["scenarios"].items():
        row["mapserver"] = theirs[name]
        busy = f"tiles_c{CONCURRENCY}"
        ours_rps, their_rps = row["fewsmap"][busy]["rps"], row["mapserver"][busy]["rps"]
        row["ratio"] = round(ours_rps / their_rps, 2) if ours_rps and their_rps else None
    return found


def spread(summary: dict[str, Any]) -> float | None:
    """A load's p95 over its median."""
    median, p95 = summary["median_ms"], summary["p95_ms"]
    return round(p95 / median, 2) if median and p95 else None


def verdict(met: bool | None) -> str:
    return "–" if met is None else ("**met**" if met else "not met")


def markdown(found: dict[str, Any], specs: tuple[CubeSpec, ...]) -> str:
    """The summary table: every scenario's targets, fewsmap and MapServer side by side."""
    busy = f"tiles_c{CONCURRENCY}"
    lines = ["# Operational-size cubes against MapServer (`benchmarks/suite/operational.py`)",
             "", f"256² tiles over zooms {ZOOMS[0]}–{ZOOMS[1]}: {found['busy_tiles']} at "
             f"c={CONCURRENCY} from each server's first second (no warm-up), then "
             f"{found['tiles']} one at a time; then {found['maps']} 1920 × 1200 maps of "
             f"the whole domain one at a time. MapServer: {found['mapserver']}. Machine load "
             f"average at the end: {found.get('load_average')}.", "",
             "| scenario | target | fewsmap | MapServer | met? |",
             "| --- | --- | --- | --- | --- |"]
    for spec in specs:
        row = found["scenarios"][spec.name]
        ours, theirs = row["fewsmap"], row.get("mapserver")
        shape = f"{spec.nx} × {spec.ny}" + (f", {spec.members} members" if spec.members else "")
        where = "global" if spec.domain == GLOBE else "Europe"
        label = f"{spec.name} ({shape}, {where})"

        def cell(part: dict[str, Any] | None, text: str) -> str:
            return text.format(**part) if part else "not run"

        ratio = row.get("ratio")
        lines.append(
            f"| {label} | tiles/s at c={CONCURRENCY} ≥ {TARGET_RATIO:g}× MapServer | "
            f"{cell(ours[busy], '{rps:.0f} (median {median_ms:.1f} ms)')} | "
            f"{cell(theirs and theirs[busy], '{rps:.0f} (median {median_ms:.1f} ms)')} | "
            f"{f'{ratio}× ' if ratio else ''}"
            f"{verdict(None if ratio is None else ratio >= TARGET_RATIO)} |")
        ours_spread = spread(ours["tiles_c1"])
        their_spread = spread(theirs["tiles_c1"]) if theirs else None
        lines.append(
            f"| {label} | tile p95 ≤ {TARGET_SPREAD:g}× median, c=1 | "
            f"{cell(ours['tiles_c1'], '{median_ms:.1f} / {p95_ms:.1f} ms')} ({ours_spread}×) | "
            f"{cell(theirs and theirs['tiles_c1'], '{median_ms:.1f} / {p95_ms:.1f} ms')}"
            f"{f' ({their_spread}×)' if their_spread else ''} | "
            f"{verdict(None if ours_spread is None else ours_spread <= TARGET_SPREAD)} |")
        median = ours["maps_c1"]["median_ms"]
        lines.append(
            f"| {label} | 1920 × 1200 map of the domain ≤ {TARGET_MAP_MS:g} ms median | "
            f"{cell(ours['maps_c1'], '{median_ms:.1f} ms (p95 {p95_ms:.1f})')} | "
            f"{cell(theirs and theirs['maps_c1'], '{median_ms:.1f} ms (p95 {p95_ms:.1f})')} | "
            f"{verdict(None if median is None else median <= TARGET_MAP_MS)} |")
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
    counts, seconds = (QUICK_COUNTS, 10.0) if args.quick else (COUNTS, 60.0)
    with tempfile.TemporaryDirectory(prefix="fewsmap-operational-") as scratch:
        cache = args.cache or (Path(scratch) if args.quick else DEFAULT_CACHE)
        found = measure(specs, cache, counts, seconds, not args.no_mapserver)
    found["load_average"] = [round(x, 2) for x in os.getloadavg()]
    found["date"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    stem = "operational-quick" if args.quick else "operational"
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{stem}.json").write_text(json.dumps(found, indent=1) + "\n")
    (args.out / f"{stem}.md").write_text(markdown(found, specs))
    print(markdown(found, specs))


if __name__ == "__main__":
    main()
