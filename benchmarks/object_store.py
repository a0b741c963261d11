"""Tiles from a store in S3 against the same tiles from local disk, in one server and one run.

Issue #14: "Warm 256² GetMap from the S3 store on loopback ≤ 2× the same tiles from local
disk". Builds the Europe benchmark cube (1400 × 900, 6 hourly steps) once in a cache folder,
copies its objects into a bucket of a real S3 server (moto's server mode, on loopback, as
the tests start it), and serves both from one ``fewsmap serve`` (the local store as ``eu``,
the S3 copy as ``eu_s3``). Then it fetches the same random 256² tiles of zoom 7 from each,
interleaved on one keep-alive connection: a first pass (the chunks' first reads), then
``--passes`` warm passes. Reports medians and the S3/local ratios. Then the throughput of
one and of two servers on the same S3 store (issue #14: "report the throughput of 2
servers against 1 on this machine"). Usage::

    .venv/bin/python -m benchmarks.object_store [--tiles 100] [--passes 3] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import obstore
from obstore.store import from_url

from benchmarks.first_map import start_server
from benchmarks.suite.client import load
from benchmarks.suite.data import CubeSpec, build_stores
from benchmarks.warm_start import tile_paths
from tests.s3server import s3_server

DEFAULT_CACHE = Path.home() / ".cache" / "fewsmap-bench" / "object-store"
EU = CubeSpec("eu", 900, 1400, 1, 6)
RESULTS = Path(__file__).parent / "results"
CONCURRENCY = 8


def upload(folder: Path, url: str) -> int:
    """Copy every file of the store ``folder`` to the object-store prefix ``url``."""
    objects = from_url(url)
    count = 0
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            obstore.put(objects, path.relative_to(folder).as_posix(), path.read_bytes())
            count += 1
    return count


def timed(client: httpx.Client, path: str) -> float:
    began = time.perf_counter()
    response = client.get(path)
    elapsed = (time.perf_counter() - began) * 1000
    response.raise_for_status()
    return elapsed


def throughput(stores: Path, config: Path, servers: int, paths: list[str],
               seconds: float, concurrency: int) -> dict[str, float]:
    """Tiles per second from ``servers`` servers (one worker each) on the same S3 store,
    the clients split evenly between them."""
    started = [start_server(stores, "--workers", "1", "--config", str(config))
               for _ in range(servers)]
    try:
        for _, base, _ in started:  # each server reads the chunks once before timing
            with httpx.Client(base_url=base, timeout=60) as client:
                for path in paths[:50]:
                    client.get(path).raise_for_status()
        with ThreadPoolExecutor(servers) as pool:
            results = list(pool.map(
                lambda base: load(int(base.rsplit(":", 1)[1]), paths * 100,
                                  concurrency // servers, seconds), [b for _, b, _ in started]))
    finally:
        for server, _, _ in started:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(30)
    return {"servers": servers, "requests": sum(r.n for r in results),
            "errors": sum(r.errors for r in results),
            "tiles_per_s": sum(r.n for r in results) / max(r.wall_s for r in results)}


def measure(cache: Path, tiles: int, passes: int, seconds: float) -> dict[str, object]:
    """Run the comparison; return the figures."""
    stores = cache / "stores"
    build_stores(stores, [EU])
    with s3_server() as s3, tempfile.TemporaryDirectory() as scratch:
        os.environ.update(s3.env)  # this process uploads; the server inherits them
        bucket = s3.new_bucket()
        url = f"s3://{bucket}/stores/eu.zarr"
        objects = upload(stores / "eu.zarr", url)
        config = Path(scratch) / "config.toml"
        config.write_text(f'[stores]\neu_s3 = "{url}"\n')
        server, base, _ = start_server(stores, "--workers", "1", "--config", str(config))
        try:
            local_paths, _ = tile_paths(f"eu.{EU.variables[0]}")
            local_paths = local_paths[:tiles]
            s3_paths = [p.replace("/tiles/eu.", "/tiles/eu_s3.") for p in local_paths]
            times: dict[str, list[list[float]]] = {"local": [], "s3": []}
            with httpx.Client(base_url=base, timeout=60) as client:
                for _ in range(1 + passes):
                    for kind in times:
                        times[kind].append([])
                    for local, remote in zip(local_paths, s3_paths, strict=True):
                        times["local"][-1].append(timed(client, local))
                        times["s3"][-1].append(timed(client, remote))
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(30)
        scaling = [throughput(stores, config, n, s3_paths, seconds, CONCURRENCY)
                   for n in (1, 2)]
    first = {k: statistics.median(v[0]) for k, v in times.items()}
    warm = {k: statistics.median([t for p in v[1:] for t in p]) for k, v in times.items()}
    warm_p95 = {k: statistics.quantiles([t for p in v[1:] for t in p], n=20)[-1]
                for k, v in times.items()}
    return {
        "tiles": tiles, "warm_passes": passes, "objects_uploaded": objects,
        "cube": f"{EU.ny} x {EU.nx}, {EU.steps} steps, 512² chunks",
        "first_pass_median_ms": first, "warm_median_ms": warm, "warm_p95_ms": warm_p95,
        "ratio_first_s3_over_local": first["s3"] / first["local"],
        "ratio_warm_s3_over_local": warm["s3"] / warm["local"],
        "target_warm_ratio": 2.0,
        "throughput": scaling, "throughput_seconds": seconds, "concurrency": CONCURRENCY,
        "cores": os.cpu_count(),
    }


def report(figures: dict[str, object]) -> str:
    """The figures as a Markdown table."""
    first, warm, p95, scaling = (figures[k] for k in (
        "first_pass_median_ms", "warm_median_ms", "warm_p95_ms", "throughput"))
    assert isinstance(first, dict) and isinstance(warm, dict) and isinstance(p95, dict)
    assert isinstance(scaling, list)
    return "\n".join([
        "# 256² tiles from S3 (moto, loopback) vs local disk, one server, one run", "",
        f"Cube {figures['cube']}; {figures['tiles']} random zoom-7 tiles, interleaved; "
        f"{figures['cores']} cores.", "",
        "| store | first pass median | warm median | warm p95 |",
        "|---|---|---|---|",
        *(f"| {k} | {first[k]:.1f} ms | {warm[k]:.1f} ms | {p95[k]:.1f} ms |" for k in first),
        "",
        f"S3 / local: first pass {figures['ratio_first_s3_over_local']:.2f}×, warm "
        f"{figures['ratio_warm_s3_over_local']:.2f}× (target ≤ {figures['target_warm_ratio']}×).",
        "",
        f"Servers on one S3 store, one worker each, {figures['concurrency']} keep-alive "
        f"clients split between them, {figures['throughput_seconds']:g} s each:", "",
        "| servers | tiles/s | requests | errors |", "|---|---|---|---|",
        *(f"| {t['servers']} | {t['tiles_per_s']:.0f} | {t['requests']} | {t['errors']} |"
          for t in scaling),
        "",
        f"2 servers / 1: {scaling[1]['tiles_per_s'] / scaling[0]['tiles_per_s']:.2f}× "
        f"(the load generator shares the {figures['cores']} cores with the servers).", "",
    ])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--tiles", type=int, default=100)
    parser.add_argument("--passes", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=20.0,
                        help="duration of each throughput measurement")
    parser.add_argument("--quick", action="store_true", help="20 tiles, 1 warm pass, 3 s")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    tiles, passes, seconds = (20, 1, 3.0) if args.quick else (args.tiles, args.passes,
                                                               args.seconds)
    figures = measure(args.cache, tiles, passes, seconds)
    args.out.mkdir(parents=True, exist_ok=True)
    name = "object_store_quick" if args.quick else "object_store"
    (args.out / f"{name}.json").write_text(json.dumps(figures, indent=1))
    (args.out / f"{name}.md").write_text(report(figures))
    print(report(figures))


if __name__ == "__main__":
    main()
