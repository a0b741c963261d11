"""Bounded load test of ``fewsmap serve`` on the loopback interface: errors, latency, memory.

    .venv/bin/python -m benchmarks.load                        # 10 min at concurrency 32
    .venv/bin/python -m benchmarks.load --duration 20 --concurrency 8   # what CI runs

It starts its own ``fewsmap serve`` on 127.0.0.1 (the demo stores, built into a temporary
folder, or ``--stores``), then keeps ``--concurrency`` keep-alive clients busy for
``--duration`` seconds with a seeded mix of 256² tiles (``/tiles/…``), 1920×1200 GetMaps,
capabilities (XML and FEWS JSON) and time series, and samples the server's resident memory
(all its processes) every ``--sample`` seconds. It reports every non-200 answer as an error,
p50/p99 latency per kind, requests per second, and RSS: its peak under load, and its drift,
which should stay within 10 %. The drift compares the server's memory at rest (no request
in flight for two seconds, by when an idle worker has handed freed memory back to the OS)
after the warm-up (the first fifth of the run) with that after the run: under load RSS
swings by the size of the renders in flight (a 1920×1200 map needs tens of MB while it is
drawn), which says nothing about whether memory is kept.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import random
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from benchmarks.suite.procs import ProcessTree, free_port, launch, wait_until

MIX = {"tile": 50, "map 1920x1200": 8, "capabilities": 12, "time series": 30}
EARTH_M = 6378137.0


@dataclass(frozen=True)
class Target:
    """A layer to request, with its extent in EPSG:3857."""

    layer: str
    bbox_3857: tuple[float, float, float, float]


@dataclass
class LoadReport:
    """What a load run measured."""

    duration_s: float
    concurrency: int
    warm_up_share: float = 0.2  # of the duration: before the first memory at rest
    requests: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    latencies_ms: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    rss_mb: list[tuple[float, float]] = field(default_factory=list)  # (s since start, MB)
    rss_at_rest_mb: list[float] = field(default_factory=list)  # after the warm-up, at the end

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    @property
    def rss_peak_mb(self) -> float:
        return max(mb for _, mb in self.rss_mb)

    @property
    def rss_drift(self) -> float:
        """RSS at rest after the run over that after the warm-up, minus 1: what was kept."""
        first, *_, last = self.rss_at_rest_mb
        return last / first - 1

    def summary(self) -> dict[str, Any]:
        kinds = {kind: {"requests": len(ms), "p50_ms": round(_percentile(ms, 50), 1),
                        "p99_ms": round(_percentile(ms, 99), 1)}
                 for kind, ms in sorted(self.latencies_ms.items())}
        every = [m for ms in self.latencies_ms.values() for m in ms]
        return {
            "duration_s": self.duration_s, "concurrency": self.concurrency,
            "requests": self.requests, "errors": self.error_count,
            "errors_by_kind": dict(self.errors),
            "requests_per_s": round(self.requests / self.duration_s, 1),
            "p50_ms": round(_percentile(every, 50), 1), "p99_ms": round(_percentile(every, 99), 1),
            "by_kind": kinds,
            "rss_peak_mb": round(self.rss_peak_mb, 1),
            "rss_at_rest_mb": [round(mb, 1) for mb in self.rss_at_rest_mb],
            "rss_drift": round(self.rss_drift, 3),
            "rss_mb": [(round(t, 1), round(mb, 1)) for t, mb in self.rss_mb],
        }


def _percentile(values: list[float], p: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(p / 100 * len(ordered)) - 1)]


def lonlat(x: float, y: float) -> tuple[float, float]:
    """EPSG:3857 metres to longitude/latitude degrees."""
    lon = math.degrees(x / EARTH_M)
    lat = math.degrees(2 * math.atan(math.exp(y / EARTH_M)) - math.pi / 2)
    return lon, lat


def tile_index(x: float, y: float, zoom: int) -> tuple[int, int]:
    """The XYZ tile holding the EPSG:3857 point (x, y) at ``zoom``."""
    n = 2**zoom
    half = math.pi * EARTH_M
    column = int((x + half) / (2 * half) * n)
    row = int((half - y) / (2 * half) * n)
    return min(max(column, 0), n - 1), min(max(row, 0), n - 1)


def request_path(kind: str, target: Target, rng: random.Random) -> str:
    """A seeded request of ``kind`` for ``target``'s layer, inside its extent."""
    x0, y0, x1, y1 = target.bbox_3857
    if kind == "tile":
        zoom = rng.randint(3, 8)
        (c0, r0), (c1, r1) = tile_index(x0, y1, zoom), tile_index(x1, y0, zoom)
        return f"/tiles/{target.layer}/{zoom}/{rng.randint(c0, c1)}/{rng.randint(r0, r1)}.png"
    if kind == "map 1920x1200":
        width = (x1 - x0) * rng.uniform(0.3, 1.0)
        height = width * 1200 / 1920
        left = rng.uniform(x0, max(x0, x1 - width))
        bottom = rng.uniform(y0, max(y0, y1 - height))
        return (f"/wms?service=WMS&version=1.3.0&request=GetMap&layers={target.layer}"
                f"&styles=&crs=EPSG:3857&bbox={left},{bottom},{left + width},{bottom + height}"
                "&width=1920&height=1200&format=image/png&transparent=true")
    if kind == "capabilities":
        return rng.choice(["/wms?request=GetCapabilities&service=WMS&version=1.3.0",
                           "/wms?request=GetCapabilities&format=application/json"])
    # A point in the middle third of the extent: inside the grid of projected layers too
    # (the middle half is not: MARFC's polar stereographic grid leaves its lon/lat box's
    # corners empty, and one point of 48,868 fell outside it, a correct 400 InvalidPoint).
    lon, lat = lonlat(rng.uniform(x0 + (x1 - x0) / 3, x1 - (x1 - x0) / 3),
                      rng.uniform(y0 + (y1 - y0) / 3, y1 - (y1 - y0) / 3))
    return f"/api/timeseries?layer={target.layer}&x={lon:.4f}&y={lat:.4f}"


async def targets_of(client: httpx.AsyncClient) -> list[Target]:
    """The service's layers and their extents, from its FEWS JSON capabilities."""
    answer = await client.get("/wms?request=GetCapabilities&format=application/json")
    answer.raise_for_status()
    targets = []
    for layer in answer.json()["layers"]:
        box = layer.get("boundingBox", {})
        if box.get("crs") == "EPSG:3857":
            targets.append(Target(layer["name"], tuple(  # type: ignore[arg-type]
                float(box[k]) for k in ("minx", "miny", "maxx", "maxy"))))
    if not targets:
        raise RuntimeError("the service publishes no layer")
    return targets


async def client_loop(client: httpx.AsyncClient, targets: list[Target], deadline: float,
                      rng: random.Random, report: LoadReport) -> None:
    """One client: request after request on one keep-alive connection until the deadline."""
    kinds, weights = list(MIX), list(MIX.values())
    while time.monotonic() < deadline:
        kind = rng.choices(kinds, weights)[0]
        path = request_path(kind, rng.choice(targets), rng)
        started = time.perf_counter()
        try:
            answer = await client.get(path)
            status = str(answer.status_code)
            ok = answer.status_code == 200 and len(answer.content) > 0
        except httpx.HTTPError as exc:
            status, ok = type(exc).__name__, False
        report.requests += 1
        report.latencies_ms[kind].append((time.perf_counter() - started) * 1000)
        if not ok:
            report.errors[f"{kind} {status}"] += 1


async def sample_rss(server: ProcessTree, start: float, deadline: float, every_s: float,
                     report: LoadReport) -> None:
    """Record the server's resident memory every ``every_s`` until the deadline."""
    while True:
        report.rss_mb.append((time.monotonic() - start, server.rss_mb()))
        if time.monotonic() + every_s > deadline:
            return
        await asyncio.sleep(every_s)


async def rss_at_rest(server: ProcessTree, settle_s: float = 2.0) -> float:
    """The server's resident memory once no request has been in flight for ``settle_s``."""
    await asyncio.sleep(settle_s)
    return server.rss_mb()


async def drive(url: str, server: ProcessTree, report: LoadReport, sample_s: float,
                seed: int) -> LoadReport:
    """Load the service through the warm-up and then the rest of the report's duration,
    taking its memory at rest after each."""
    concurrency = report.concurrency
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    rngs = [random.Random(seed + i) for i in range(concurrency)]
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:
        targets = await targets_of(client)
        start = time.monotonic()
        warm_up_s = report.warm_up_share * report.duration_s
        for phase_s in (warm_up_s, report.duration_s - warm_up_s):
            deadline = time.monotonic() + phase_s
            await asyncio.gather(
                sample_rss(server, start, deadline, sample_s, report),
                *(client_loop(client, targets, deadline, rng, report) for rng in rngs))
            report.rss_at_rest_mb.append(await rss_at_rest(server))
    return report


def start_server(stores: Path, workers: int, log: Path) -> tuple[ProcessTree, str]:
    """Start ``fewsmap serve`` on a free loopback port; wait until it answers."""
    port = free_port()
    server = launch([sys.executable, "-m", "fewsmap.cli", "serve", "--stores", str(stores),
                     "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)],
                    "fewsmap", log)
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        try:
            return httpx.get(f"{url}/health", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    wait_until(ready, server, 120, log)
    return server, url


def run_load(stores: Path, duration_s: float, concurrency: int, *, workers: int = 1,
             sample_s: float = 2.0, seed: int = 1, warm_up_share: float = 0.2) -> LoadReport:
    """Serve ``stores`` and load the service; return what was measured."""
    report = LoadReport(duration_s, concurrency, warm_up_share)
    with tempfile.TemporaryDirectory(prefix="fewsmap-load-") as scratch:
        server, url = start_server(stores, workers, Path(scratch) / "server.log")
        try:
            return asyncio.run(drive(url, server, report, sample_s, seed))
        finally:
            server.stop()


MAX_RSS_DRIFT = 0.10  # the bar: RSS flat within 10 %


def report_lines(report: LoadReport) -> list[str]:
    """The run's figures as text: requests, errors, latencies and memory."""
    s = report.summary()
    lines = [f"{s['requests']} requests in {s['duration_s']:g} s at concurrency "
             f"{s['concurrency']}: {s['requests_per_s']} req/s, errors {s['errors']} "
             f"{s['errors_by_kind'] or ''}",
             f"latency p50 {s['p50_ms']} ms, p99 {s['p99_ms']} ms"]
    lines += [f"  {kind:<14} {k['requests']:>7} requests  p50 {k['p50_ms']:>7} ms  "
              f"p99 {k['p99_ms']:>7} ms" for kind, k in s["by_kind"].items()]
    samples = ", ".join(f"{mb:.0f}" for _, mb in s["rss_mb"])
    rest_after_warm_up, rest_at_end = s["rss_at_rest_mb"]
    lines.append(f"server RSS MB: peak under load {s['rss_peak_mb']}; at rest "
                 f"{rest_after_warm_up} after the warm-up, {rest_at_end} at the end: drift "
                 f"{100 * s['rss_drift']:+.1f} % (under load: {samples})")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.load", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=600, help="seconds (default 600)")
    parser.add_argument("--concurrency", type=int, default=32, help="clients (default 32)")
    parser.add_argument("--workers", type=int, default=1, help="server processes (default 1)")
    parser.add_argument("--stores", type=Path, help="stores folder (default: the demo)")
    parser.add_argument("--sample", type=float, default=10, help="RSS every N s (default 10)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="fewsmap-load-stores-") as scratch:
        stores = args.stores
        if stores is None:
            from fewsmap.demo import build_demo

            stores = Path(scratch)
            build_demo(stores, progress=False)
        report = run_load(stores, args.duration, args.concurrency, workers=args.workers,
                          sample_s=args.sample, seed=args.seed)
    print("\n".join(report_lines(report)))
    if args.json:
        args.json.write_text(json.dumps(report.summary(), indent=1) + "\n")
    return 0 if report.error_count == 0 and report.rss_drift <= MAX_RSS_DRIFT else 1


__all__ = ["LoadReport", "run_load"]

if __name__ == "__main__":
    sys.exit(main())
