"""Run the suite: build (or reuse) the data, measure every server, report.

Order: data → in-process floor and fewsmap stage timings → fewsmap (default workers, then
``--workers 1``) → xpublish-wms → MapServer → table, JSON, plot. Servers run one at a time,
each stopped (by pid) before the next starts; the client runs in this process.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from benchmarks.suite import data, floor, report, servers, stages, workload
from benchmarks.suite.client import Job, expect_ok, expect_png, fetch, load
from benchmarks.suite.plan import Counts, Plan, full_plan, smoke_plan
from benchmarks.suite.procs import free_port

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks" / "results"
DISK_LIMIT_BYTES = 8 * 10**9
# Bytes on disk per raw byte, measured on these fields (blosc-lz4 in the cube; zstd-1
# GeoTIFF for MapServer), with a margin.
CUBE_RATIO, TIFF_RATIO = 0.30, 0.32
XPUBLISH_VENV_BYTES = 1.0e9
# What the suite puts in its cache folder: --delete-data removes nothing else.
SUITE_ENTRIES = ("full", "smoke", "xpublish-venv")


def default_cache() -> Path:
    env = os.environ.get("FEWSMAP_BENCH_CACHE")
    if env:
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "fewsmap-bench"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.suite",
        description="fewsmap's benchmark suite: GetMap tiles and maps, capabilities, legend, "
                    "GetFeatureInfo and time series against fewsmap serve, xpublish-wms and "
                    "MapServer, plus an in-process floor. Data is built once in the cache.")
    parser.add_argument("--smoke", action="store_true",
                        help="tiny sizes, no peers, under a minute (for CI)")
    parser.add_argument("--cache", type=Path, default=None,
                        help="data folder (default $FEWSMAP_BENCH_CACHE or "
                             "~/.cache/fewsmap-bench); reused between runs")
    parser.add_argument("--delete-data", action="store_true",
                        help="delete the cache folder (data, peer venv, exports) and exit")
    parser.add_argument("--out", type=Path, default=RESULTS,
                        help="where suite.json and suite.png go (default benchmarks/results)")
    parser.add_argument("--large-runs", type=int, default=3,
                        help="runs written to the 4000 × 3000 cube (default 3: ~0.9 GB each)")
    parser.add_argument("--no-peers", action="store_true", help="skip xpublish-wms and MapServer")
    parser.add_argument("--no-xpublish", action="store_true")
    parser.add_argument("--no-mapserver", action="store_true")
    parser.add_argument("--client", choices=("raw", "httpx"), default="raw",
                        help="load generator: a small asyncio HTTP/1.1 client (default) or "
                             "httpx.AsyncClient; both keep-alive")
    return parser.parse_args(argv)


class Suite:
    def __init__(self, plan: Plan, cache: Path, out: Path, client: str, xpublish: bool,
                 mapserver: bool, argv: Sequence[str]) -> None:
        self.plan, self.cache, self.out, self.client = plan, cache, out, client
        self.want_xpublish, self.want_mapserver = xpublish, mapserver
        self.logs = cache / "logs"
        self.started = time.perf_counter()
        self.loads: list[dict[str, Any]] = []
        self.stage_results: list[dict[str, Any]] = []
        self.notes: list[str] = list(plan.notes)
        self.meta: dict[str, Any] = {"argv": list(argv), "plan": plan.name}
        self.requests: dict[str, list[workload.MapRequest]] = {}
        # Shared by every plan (the smoke plan never uses it).
        self.xpublish_venv = cache.parent / "xpublish-venv"

    # -------------------------------------------------------------------------- helpers

    def log(self, message: str) -> None:
        print(f"[{time.perf_counter() - self.started:7.1f} s] {message}", flush=True)

    def note(self, message: str) -> None:
        self.notes.append(message)
        self.log(f"NOTE: {message}")

    def record(self, case: str, server: str, result: dict[str, Any] | None = None,
               skipped: str | None = None, **extra: Any) -> None:
        entry = {"case": case, "server": server, **(result or {}), **extra}
        if skipped:
            entry["skipped"] = skipped
        self.loads.append(entry)
        if skipped:
            self.log(f"  {case:40s} {server:28s} skipped: {skipped}")
        elif entry.get("rps") is None:
            self.log(f"  {case:40s} {server:28s} n={entry.get('n')} median "
                     f"{entry.get('median_ms')} ms, p95 {entry.get('p95_ms')} ms")
        else:
            self.log(f"  {case:40s} {server:28s} c={entry.get('concurrency', 1)} "
                     f"n={entry.get('n')} median {entry.get('median_ms')} ms, "
                     f"p95 {entry.get('p95_ms')} ms, {entry.get('rps')} req/s, "
                     f"server CPU {entry.get('server_cpu_ms_per_req')} ms/req"
                     + (f", {entry['errors']} errors: {entry.get('first_error')}"
                        if entry.get("errors") else ""))

    def measure(self, server: servers.Server, label: str, case: str, jobs: Sequence[Job],
                concurrency: int, max_seconds: float, warm: Sequence[Job] = (),
                check: Callable[..., str | None] = expect_png, **extra: Any) -> None:
        if not jobs:
            return
        if warm:
            load(server.port, warm, concurrency, max_seconds, check=check, client=self.client)
        result = load(server.port, jobs, concurrency, max_seconds, server.tree, check,
                      self.client)
        self.record(case, label, result.summary(), **extra)

    # -------------------------------------------------------------------------- data

    def build_data(self) -> None:
        plan = self.plan
        self.maps_dir = self.cache / "stores-maps"
        self.caps_runs_dir = self.cache / "stores-caps-runs"
        self.caps_layers_dir = self.cache / "stores-caps-layers"
        raw = plan.eu.raw_bytes() + plan.large.raw_bytes()
        estimate = raw * CUBE_RATIO
        if self.want_mapserver:
            cubes = {s.name: s for s in plan.maps_stores}
            estimate += TIFF_RATIO * sum(4 * cubes[name].ny * cubes[name].nx
                                         for name, _, _ in self.mapserver_keys())
        if self.want_xpublish and not self.xpublish_venv.exists():
            estimate += XPUBLISH_VENV_BYTES
        free = shutil.disk_usage(self.cache.parent if not self.cache.exists()
                                 else self.cache).free
        used = data.folder_bytes(self.cache) if self.cache.exists() else 0
        self.log(f"data: cache {self.cache} ({used / 1e9:.2f} GB now, {free / 1e9:.1f} GB free); "
                 f"this plan needs about {estimate / 1e9:.1f} GB")
        if estimate > DISK_LIMIT_BYTES and plan.name == "full":
            raise SystemExit(f"the plan needs about {estimate / 1e9:.1f} GB, above the "
                             f"{DISK_LIMIT_BYTES / 1e9:.0f} GB bound: lower --large-runs")
        if estimate > free + used:
            raise SystemExit(f"not enough disk: about {estimate / 1e9:.1f} GB needed")
        if plan.name == "full" and plan.large.runs < 10:
            self.note(f"the 4000 × 3000 cube has {plan.large.runs} runs × {plan.large.steps} "
                      f"steps written (not 10): {plan.large.runs * 0.92:.1f} GB instead of "
                      f"about 9 GB, to stay under the {DISK_LIMIT_BYTES / 1e9:.0f} GB disk bound")
        built = {}
        for folder, specs in ((self.maps_dir, plan.maps_stores),
                              (self.caps_runs_dir, [plan.caps_runs]),
                              (self.caps_layers_dir, list(plan.caps_layers))):
            self.log(f"data: {folder.name}: {', '.join(s.name for s in specs)}")
            result = data.build_stores(folder, specs, self.log)
            built[folder.name] = {
                "reused": result.reused, "build_s": round(result.seconds, 1),
                "bytes_on_disk": data.folder_bytes(folder),
                "stores": [{"name": s.name, "grid": [s.ny, s.nx], "runs": s.runs,
                            "steps": s.steps, "variables": list(s.variables)} for s in specs]}
            self.log(f"      {'reused' if result.reused else f'built in {result.seconds:.0f} s'}"
                     f", {built[folder.name]['bytes_on_disk'] / 1e9:.2f} GB on disk")
        self.meta["data"] = built

    def mapserver_keys(self) -> list[tuple[str, int, int]]:
        """The (store, run, step) slices MapServer's requests read: exported to GeoTIFF."""
        counts, plan = self.plan.mapserver, self.plan
        keys = [q.slice_key for _, _, requests, warm in self.getmap_cases(counts)
                for q in [*requests, *warm[:3]]]
        keys += [(p.cube.name, p.run, p.step) for p in self.points[:counts.featureinfo]]
        keys.append((plan.eu.name, 0, 0))  # the legend's layer needs at least one slice
        return sorted(set(keys))

    def make_requests(self) -> None:
        plan, f = self.plan, self.plan.fewsmap
        most = max(f.tile_c1, plan.floor_tiles)
        self.requests = {
            "tile eu c1": workload.tiles(plan.eu, most, 101),
            "tile eu c8": workload.tiles(plan.eu, f.tile_c8, 102),
            "tile eu warm": workload.tiles(plan.eu, plan.warm_tiles, 103),
            "map eu c1": workload.maps(plan.eu, max(f.map_c1, plan.floor_maps), 201),
            "map eu c4": workload.maps(plan.eu, f.map_c4, 202),
            "map eu warm": workload.maps(plan.eu, plan.warm_maps, 203),
            "tile large c1": workload.tiles(plan.large, max(f.large_tile_c1, plan.floor_tiles),
                                            301),
            "tile large c8": workload.tiles(plan.large, f.large_tile_c8, 302),
            "tile large warm": workload.tiles(plan.large, plan.warm_tiles, 303),
            "map large c1": workload.maps(plan.large, max(f.large_map_c1, plan.floor_maps),
                                          401),
            "map large c4": workload.maps(plan.large, f.large_map_c4, 402),
            "map large warm": workload.maps(plan.large, plan.warm_maps, 403),
        }
        self.points = workload.points(plan.eu, max(f.featureinfo, f.timeseries, 50), 501)

    def getmap_cases(self, counts: Counts) -> list[tuple[str, int, list[workload.MapRequest],
                                                         list[workload.MapRequest]]]:
        """(case, concurrency, requests, warm-up requests) for a server's counts."""
        r, plan = self.requests, self.plan
        return [
            (report.TILE_EU, 1, r["tile eu c1"][:counts.tile_c1], r["tile eu warm"]),
            (report.TILE_EU, 8, r["tile eu c8"][:counts.tile_c8], r["tile eu warm"]),
            (report.MAP_EU, 1, r["map eu c1"][:counts.map_c1], r["map eu warm"]),
            (report.MAP_EU, 4, r["map eu c4"][:counts.map_c4], r["map eu warm"]),
            (report.TILE_LARGE, 1, r["tile large c1"][:counts.large_tile_c1],
             r["tile large warm"]),
            (report.TILE_LARGE, 8, r["tile large c8"][:counts.large_tile_c8],
             r["tile large warm"]),
            (report.MAP_LARGE, 1, r["map large c1"][:counts.large_map_c1],
             r["map large warm"][:max(1, plan.warm_maps // 2)]),
            (report.MAP_LARGE, 4, r["map large c4"][:counts.large_map_c4],
             r["map large warm"][:max(1, plan.warm_maps // 2)]),
        ]

    # -------------------------------------------------------------------------- in-process

    def run_floor(self) -> None:
        self.log("floor: window read + precomputed-index gather + 256-colour LUT + PNG, "
                 "in-process")
        stores = {s.name: self.maps_dir / f"{s.name}.zarr" for s in self.plan.maps_stores}
        plan, r = self.plan, self.requests
        for case, requests in ((report.TILE_EU, r["tile eu c1"][:plan.floor_tiles]),
                               (report.MAP_EU, r["map eu c1"][:plan.floor_maps]),
                               (report.TILE_LARGE, r["tile large c1"][:plan.floor_tiles]),
                               (report.MAP_LARGE, r["map large c1"][:plan.floor_maps])):
            try:
                results = floor.measure(stores, requests, self.plan.max_seconds)
            except Exception as exc:  # report and go on: the servers still get measured
                self.note(f"floor {case} failed: {type(exc).__name__}: {exc}")
                continue
            for result in results:
                name = report.FLOOR if result.name == floor.FLOOR_ENCODER \
                    else f"{report.FLOOR}, {result.name}"
                summary = result.summary()
                summary["index_build_ms"] = round(floor.index_build_ms(requests[:50]), 4)
                self.record(case, name, {**summary, "concurrency": 1, "rps": None})

    def run_stages(self) -> None:
        self.log("fewsmap stages: its render functions timed in-process")
        urls, plan, r = workload.FewsmapUrls(), self.plan, self.requests
        for case, requests in ((report.TILE_EU, r["tile eu c1"][:min(200, plan.floor_tiles)]),
                               (report.MAP_EU, r["map eu c1"][:min(20, plan.floor_maps)]),
                               (report.TILE_LARGE, r["tile large c1"][:min(100, plan.floor_tiles)]),
                               (report.MAP_LARGE, r["map large c1"][:min(10, plan.floor_maps)])):
            try:
                result = stages.measure(self.maps_dir, [urls.getmap(q) for q in requests],
                                        plan.max_seconds)
            except Exception as exc:  # the pipeline may change under this code
                self.note(f"stage timing of {case} failed: {type(exc).__name__}: {exc}")
                self.stage_results.append({"case": case, "error": f"{type(exc).__name__}: {exc}"})
                continue
            self.stage_results.append({"case": case, **result})
            self.log(f"  {case:40s} {result['stages_median_ms']} "
                     f"render_maps {result['render_maps_median_ms']} ms")

    # -------------------------------------------------------------------------- fewsmap

    def run_fewsmap(self, workers: int | None) -> None:
        label = report.FEWSMAP if workers is None else report.FEWSMAP_1
        tag = "default" if workers is None else f"w{workers}"
        urls, counts, plan = workload.FewsmapUrls(), self.plan.fewsmap, self.plan
        self.log(f"fewsmap serve --stores {self.maps_dir.name}"
                 + ("" if workers is None else f" --workers {workers}"))
        server = servers.start_fewsmap(self.maps_dir, workers, self.logs, f"maps-{tag}",
                                        plan.settle)
        self.meta.setdefault("fewsmap_commands", []).append(server.info["command"])
        try:
            for case, concurrency, requests, warm in self.getmap_cases(counts):
                self.measure(server, label, case, [urls.getmap(q) for q in requests],
                             concurrency, plan.max_seconds,
                             [urls.getmap(q) for q in warm])
            self.measure(server, label, "GetLegendGraphic PNG", [urls.legend(plan.eu)]
                         * counts.legend, 1, plan.max_seconds)
            self.optional(server, label, "GetFeatureInfo JSON (one value)",
                          [urls.featureinfo(p) for p in self.points[:counts.featureinfo]])
            self.optional(server, label,
                          f"time series {plan.eu.runs} runs × {plan.eu.steps} steps",
                          [urls.timeseries(p) for p in self.points[:counts.timeseries]])
        finally:
            server.stop()
        for folder, what in ((self.caps_runs_dir,
                              f"1 layer × {plan.caps_runs.runs} runs × {plan.caps_runs.steps} "
                              "steps"),
                             (self.caps_layers_dir,
                              f"{sum(len(s.variables) for s in plan.caps_layers)} layers × "
                              f"{plan.caps_layers[0].runs} runs × {plan.caps_layers[0].steps} "
                              "steps")):
            server = servers.start_fewsmap(folder, workers, self.logs, f"{folder.name}-{tag}",
                                           plan.settle)
            try:
                for json_format in (False, True):
                    path = urls.capabilities(json_format)
                    self.measure(server, label,
                                 f"GetCapabilities {'JSON' if json_format else 'XML'}, {what}",
                                 [path] * counts.capabilities, 1, plan.max_seconds, [path],
                                 check=expect_ok)
            finally:
                server.stop()
            if workers is None:  # the server keeps built capabilities: time a build too
                builds = stages.capabilities_builds(folder, counts.capabilities,
                                                    plan.max_seconds)
                for kind, result in builds.items():
                    self.record(f"GetCapabilities {kind}, {what}",
                                "build (in-process, uncached)", result)

    def optional(self, server: servers.Server, label: str, case: str,
                 paths: Sequence[str]) -> None:
        """Measure an operation that may not exist yet: skip it, saying why, if absent."""
        if not paths:
            return
        probe = fetch(server.port, paths[0])
        if probe.status != 200:
            body = probe.body[:300].decode(errors="replace")
            reason = ("the server answers OperationNotSupported"
                      if "OperationNotSupported" in body else
                      "absent (HTTP 404)" if probe.status == 404 else
                      f"HTTP {probe.status}: {body[:160]}")
            self.record(case, label, skipped=reason)
            return
        self.measure(server, label, case, paths, 1, self.plan.max_seconds, paths[:3],
                     check=expect_ok)

    # -------------------------------------------------------------------------- peers

    def run_xpublish(self) -> None:
        venv = self.xpublish_venv
        self.log(f"xpublish-wms: venv {venv} (created on first use: pip install "
                 f"{' '.join(servers.XPUBLISH_PACKAGES)})")
        try:
            python, versions = servers.ensure_xpublish_venv(venv, self.logs / "xpublish-pip.log")
        except (subprocess.SubprocessError, OSError) as exc:
            self.note(f"xpublish-wms skipped: its venv could not be created ({exc}); see "
                      f"{self.logs / 'xpublish-pip.log'}")
            return
        self.meta["xpublish_versions"] = versions
        stores = {s.name: self.maps_dir / f"{s.name}.zarr" for s in self.plan.maps_stores}
        server = servers.start_xpublish(python, stores, self.logs)
        self.meta["xpublish_command"] = server.info["command"]
        urls, counts, plan = workload.XpublishUrls(), self.plan.xpublish, self.plan
        label, limit = report.XPUBLISH, plan.peer_max_seconds
        try:
            for case, concurrency, requests, warm in self.getmap_cases(counts):
                if requests:
                    self.measure(server, label, case, [urls.getmap(q) for q in requests],
                                 concurrency, limit, [urls.getmap(q) for q in warm[:3]])
            self.measure(server, label, "GetLegendGraphic PNG", [urls.legend(plan.eu)]
                         * counts.legend, 1, limit)
            self.measure(server, label, "GetFeatureInfo JSON (one value)",
                         [urls.featureinfo(p) for p in self.points[:counts.featureinfo]], 1,
                         limit, check=expect_ok,
                         note="CoverageJSON; a 1° EPSG:4326 box around the point (its "
                              "GetFeatureInfo takes no other CRS)")
            series = [tuple(urls.timeseries_run(p, run) for run in range(plan.eu.runs))
                      for p in self.points[:counts.timeseries]]
            self.measure(server, label, f"time series {plan.eu.runs} runs × {plan.eu.steps} "
                         "steps", series, 1, limit, check=expect_ok,
                         note=f"{plan.eu.runs} GetFeatureInfo requests (one per run, TIME "
                              "range) in sequence per series")
            path = urls.capabilities(plan.eu)
            self.measure(server, label, "GetCapabilities XML, peer's own (1 run dataset)",
                         [path] * counts.capabilities, 1, limit, [path], check=expect_ok)
        finally:
            server.stop()

    def run_mapserver(self) -> None:
        missing = servers.mapserver_missing()
        if missing:
            self.note("MapServer skipped: not installed (" + ", ".join(missing) + "). Install "
                      f"with: {servers.APT_COMMAND}")
            return
        folder = self.cache / "peers" / "mapserver"
        counts, plan = self.plan.mapserver, self.plan
        cases = self.getmap_cases(counts)
        keys = self.mapserver_keys()
        cubes = {s.name: s for s in plan.maps_stores}
        stores = {s.name: self.maps_dir / f"{s.name}.zarr" for s in plan.maps_stores}
        self.log(f"MapServer: exporting {len(keys)} slices to GeoTIFF (tiled 256², "
                 f"zstd-1) under {folder}")
        t = time.perf_counter()
        tif = folder / f"tif-v{servers.EXPORT_VERSION}"
        for stale in folder.glob("tif*"):
            if stale != tif:
                shutil.rmtree(stale)
        exported = servers.export_slices(tif, stores, cubes, keys)
        self.log(f"  {exported} in {time.perf_counter() - t:.0f} s, "
                 f"{data.folder_bytes(tif) / 1e9:.2f} GB")
        port = free_port()
        config = servers.write_mapserver_config(tif, cubes, keys, port)
        server = servers.start_mapserver(folder, config, port, self.logs)
        self.meta["mapserver"] = {"version": servers.mapserver_version(),
                                  "lighttpd": servers.lighttpd_version(),
                                  "command": server.info["command"],
                                  "fastcgi_processes": server.info["fastcgi_processes"],
                                  "slices_exported": len(keys),
                                  "render": servers.MAPSERVER_RENDER}
        urls, label, limit = workload.MapServerUrls(), report.MAPSERVER, plan.peer_max_seconds
        try:
            for case, concurrency, requests, warm in cases:
                if requests:
                    self.measure(server, label, case, [urls.getmap(q) for q in requests],
                                 concurrency, limit, [urls.getmap(q) for q in warm[:3]])
            self.measure(server, label, "GetLegendGraphic PNG", [urls.legend(plan.eu)]
                         * counts.legend, 1, limit)
            path = urls.capabilities()
            self.measure(server, label, "GetCapabilities XML, peer's own (per-run layers)",
                         [path] * counts.capabilities, 1, limit, [path], check=expect_ok)
            self.record(f"time series {plan.eu.runs} runs × {plan.eu.steps} steps", label,
                        skipped="not expressible (one time per GetFeatureInfo)")
            # Last: a MapServer crash here must not cost the other measurements.
            self.measure(server, label, "GetFeatureInfo JSON (one value)",
                         [urls.featureinfo(p) for p in self.points[:counts.featureinfo]], 1,
                         limit, check=expect_ok, note="text/plain")
        finally:
            server.stop()

    # -------------------------------------------------------------------------- report

    def machine(self) -> dict[str, Any]:
        cpu = "?"
        try:
            for line in Path("/proc/cpuinfo").read_text().splitlines():
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
            mem = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text()
                       .splitlines() if line.startswith("MemTotal"))
        except (OSError, StopIteration):
            mem = 0
        os_name = "?"
        with contextlib.suppress(OSError, StopIteration):
            os_name = next(line.split("=", 1)[1].strip('"') for line in
                           Path("/etc/os-release").read_text().splitlines()
                           if line.startswith("PRETTY_NAME"))
        packages = {}
        for name in ("fewsmap", "numpy", "zarr", "xarray", "datashader", "numba", "pillow",
                     "starlette", "uvicorn", "matplotlib", "pyproj", "httpx"):
            with contextlib.suppress(metadata.PackageNotFoundError):
                packages[name] = metadata.version(name)
        return {"cpu": cpu, "cores": os.cpu_count(), "ram_gib": round(mem / 2**20, 1),
                "os": os_name, "kernel": platform.release(), "python": platform.python_version(),
                "packages": packages, "git": git_state()}

    def write(self) -> dict[str, Any]:
        if git_state() != self.meta["git_at_start"]:
            self.note(f"fewsmap changed during the run: git {self.meta['git_at_start']} at the "
                      f"start, {git_state()} at the end")
        for entry in self.stage_results:
            mine = report.find(self.loads, entry["case"], report.FEWSMAP, 1)
            if mine:
                entry["end_to_end_median_ms"] = mine["median_ms"]
        ratio_rows = report.ratios(self.loads)
        target_rows = report.targets(self.loads) if self.plan.name == "full" else []
        results = {
            "meta": {**self.meta, "machine": self.machine(), "client": self.client_text(),
                     "date_utc": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S"),
                     "wall_s": round(time.perf_counter() - self.started, 1)},
            "notes": self.notes, "loads": self.loads, "stages": self.stage_results,
            "ratios": ratio_rows, "targets": target_rows,
            "tables": {"loads": report.load_table(self.loads),
                       "ratios": report.ratio_table(ratio_rows),
                       "stages": report.stage_table(self.stage_results),
                       "targets": report.target_table(target_rows)},
        }
        self.out.mkdir(parents=True, exist_ok=True)
        stem = "suite" if self.plan.name == "full" else f"suite-{self.plan.name}"
        (self.out / f"{stem}.json").write_text(json.dumps(results, indent=1, default=str))
        report.plot(self.loads, self.out / f"{stem}.png",
                    f"fewsmap benchmark suite ({self.plan.name}), "
                    f"{results['meta']['machine']['cores']} cores, {results['meta']['date_utc']}")
        for title, key in (("All loads", "loads"), ("fewsmap / peer and / floor", "ratios"),
                           ("fewsmap render stages (in-process, median ms)", "stages"),
                           ("Targets (Europe cube, default workers)", "targets")):
            if results["tables"][key].count("\n") > 1:
                print(f"\n## {title}\n\n{results['tables'][key]}")
        for note in self.notes:
            print(f"* {note}")
        print(f"\nwrote {self.out / (stem + '.json')} and {self.out / (stem + '.png')}")
        return results

    def client_text(self) -> str:
        if self.client == "httpx":
            return "httpx.AsyncClient, keep-alive, one connection per concurrent worker"
        return ("small asyncio HTTP/1.1 client (benchmarks/suite/client.py), keep-alive, one "
                "connection per concurrent worker, in the suite's process")

    def run(self) -> dict[str, Any]:
        self.meta["git_at_start"] = git_state()
        self.make_requests()
        self.build_data()
        self.run_floor()
        self.run_stages()
        for workers in self.plan.worker_configs:
            self.run_fewsmap(workers)
        if self.want_xpublish:
            try:
                self.run_xpublish()
            except RuntimeError as exc:
                self.note(f"xpublish-wms failed: {exc}")
        if self.want_mapserver:
            try:
                self.run_mapserver()
            except RuntimeError as exc:
                self.note(f"MapServer failed: {exc}")
        return self.write()


def git_state() -> dict[str, Any]:
    """The commit measured, and whether the working tree had changes (read-only git)."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, text=True,
                              capture_output=True, timeout=30).stdout.strip()
        status = subprocess.run(["git", "status", "--porcelain", "--", "fewsmap"], cwd=ROOT,
                                text=True, capture_output=True, timeout=30).stdout
    except OSError:
        return {}
    return {"head": head, "fewsmap_changes_uncommitted": bool(status.strip())}


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    root = args.cache or default_cache()
    if args.delete_data:
        if root.exists():
            foreign = sorted(p.name for p in root.iterdir() if p.name not in SUITE_ENTRIES)
            if foreign:
                print(f"not deleting {root}: it holds {', '.join(foreign[:5])}, which this "
                      "suite did not make")
                return 1
            size = data.folder_bytes(root)
            shutil.rmtree(root)
            print(f"deleted {root} ({size / 1e9:.2f} GB)")
        else:
            print(f"nothing to delete: {root} does not exist")
        return 0
    plan = smoke_plan() if args.smoke else full_plan(args.large_runs)
    cache = root / plan.name
    cache.mkdir(parents=True, exist_ok=True)
    peers = not args.smoke and not args.no_peers
    suite = Suite(plan, cache, args.out, args.client, peers and not args.no_xpublish,
                  peers and not args.no_mapserver,
                  ["python", "-m", "benchmarks.suite", *(sys.argv[1:] if argv is None else argv)])
    suite.run()
    return 0
