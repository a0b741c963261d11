"""Measure point series over HTTP against a floor, and the ingest of a run of tiny grids.

Run: .venv/bin/python -m benchmarks.point_series [--quick] [--out FOLDER]
Writes benchmarks/results/point_series.json (``--quick``: point_series-quick.json) and prints
the figures (the hand-written summary is
benchmarks/results/point_series.md). Issue #18 targets, all measured in this one run:

* a time series of 73 steps × 10 runs at a point (``/api/timeseries?runs=all``) ≤ 20 ms
  median over HTTP, and ≤ 2× a floor: a minimal Starlette app on the same uvicorn and client
  that reads the same 730 values from a layout made for points (one uncompressed memmap,
  point-major) and answers them as JSON; both read from the page cache (every layout's
  files are read once before), each server on a core of its own, away from the client
  (`client_apart`);
* no regression on maps: a 256² tile of the same cube with and without the time-chunked copy;
* a GEFS point run (tests/data/gefs: 2 × 2 grid, 97 steps × 21 members) ingested in < 2 s,
  against the layout of one chunk file per field.

It also records the write time and storage of the layouts weighed (docs/design/points.md).
Stores are built in a temporary folder deleted at the end; the servers are stopped.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from unittest import mock

import httpx
import numpy as np
import zarr

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.read_paths import fastest
from benchmarks.store_paths import synthetic_run
from fewsmap.ingest import ingest
from fewsmap.render.regrid import Canvas
from fewsmap.render.regrid import read_window as read_map_window
from fewsmap.store import layout
from fewsmap.store.cube import ForecastStore
from fewsmap.store.reads import read_block
from fewsmap.store.writer import append_run
from tests.live_server import RUNNING, free_port, live_server, stop

RESULTS = Path(__file__).resolve().parent / "results" / "point_series.json"
GEFS = Path(__file__).resolve().parent.parent / "tests" / "data" / "gefs" / "2019051500"
T0 = np.datetime64("2026-01-01T00:00:00", "s")
TILE_Z6_M = 2 * 20037508.342789244 / 2**6  # a zoom-6 web tile's edge
FLOOR_APP = '''
import json, sys
import numpy as np
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route
values = np.load(sys.argv[1], mmap_mode="r")  # y, x, run, step
meta = json.load(open(sys.argv[2]))
lat0, dlat, lon0, dlon = meta["lat0"], meta["dlat"], meta["lon0"], meta["dlon"]
async def series(request):
    x, y = float(request.query_params["x"]), float(request.query_params["y"])
    row, col = round((y - lat0) / dlat), round((x - lon0) / dlon)
    cell = np.asarray(values[row, col])
    runs = [{"reference_time": t0, "times": times, "values": [
        None if v != v else float(v) for v in cell[k].tolist()]}
        for k, (t0, times) in enumerate(zip(meta["runs"], meta["times"]))]
    return Response(json.dumps({"runs": runs}), media_type="application/json")
app = Starlette(routes=[Route("/series", series)])
'''


def build(root: Path, runs: int, steps: int, ny: int, nx: int) -> dict[str, float]:
    """Write the cube twice (with and without the copy); return write times and sizes."""
    found: dict[str, float] = {}
    for name, copies in (("eu", True), ("eunocopy", False)):
        path = root / f"{name}.zarr"
        times = []
        for k in range(runs):
            run = synthetic_run(T0 + np.timedelta64(6 * k, "h"), steps, ny, nx, k)
            # Without copies: the layout before (series read one chunk per value).
            start = time.perf_counter()
            append_run(path, run, progress=False, series_copy=copies)
            times.append(time.perf_counter() - start)
        found[f"write_s_per_run_{name}"] = round(statistics.median(times), 3)
        found[f"bytes_per_run_variable_{name}"] = _size(path / "t2m") / runs
    found["bytes_per_run_copy"] = _size(root / "eu.zarr" / "t2m.series") / runs
    return found


def _size(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


def floor_layout(root: Path, store_path: Path) -> tuple[Path, Path]:
    """The same values point-major (y, x, run, step) in one uncompressed .npy, and the
    runs' times: what a server made only for points would read."""
    store = ForecastStore(store_path)
    cube = np.asarray(store.array("t2m")[...])  # run, step, y, x (runs in slot order)
    np.save(root / "floor.npy", np.ascontiguousarray(np.moveaxis(cube, (0, 1), (2, 3))))
    lat, lon = store.coordinate("latitude"), store.coordinate("longitude")
    meta = {"lat0": float(lat[0]), "dlat": float(lat[1] - lat[0]), "lon0": float(lon[0]),
            "dlon": float(lon[1] - lon[0]), "runs": [r.label for r in store.runs],
            "times": [[str(t) + "Z" for t in r.valid_times] for r in store.runs]}
    (root / "floor.json").write_text(json.dumps(meta))
    return root / "floor.npy", root / "floor.json"


@contextmanager
def client_apart() -> Iterator[set[int] | None]:
    """Keep this process (the client) on its first core for the block; yield the last core,
    for the server under test (`pin`), or None on a single core (nothing pinned).

    Left to the scheduler, client and server shared a core in some runs and not in others:
    fewsmap's series took 0.86-1.13 ms from run to run and the floor's 0.51-0.57 (0.98 vs
    0.87 ms and 0.55 vs 0.53 ms on one core or two): served from other machines, neither
    ever shares a core with its clients."""
    original = os.sched_getaffinity(0)
    cores = sorted(original)
    if len(cores) < 2:
        yield None
        return
    os.sched_setaffinity(0, {cores[0]})
    try:
        yield {cores[-1]}
    finally:
        os.sched_setaffinity(0, original)


def pin(pid: int, cores: set[int] | None) -> None:
    """Keep every thread of process ``pid`` on ``cores`` (threads it starts later inherit)."""
    if cores is None:
        return
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(ProcessLookupError):  # a thread that ended meanwhile
            os.sched_setaffinity(int(task.name), cores)


@contextmanager
def floor_server(data: Path, meta: Path, cores: set[int] | None = None) -> Iterator[str]:
    """uvicorn serving the floor app (one worker, as fewsmap is run here), on ``cores``."""
    import subprocess

    app = data.parent / "floor_app.py"
    app.write_text(FLOOR_APP)
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-c", f"import sys; sys.argv = ['', {str(data)!r}, {str(meta)!r}]; "
         f"import runpy; m = runpy.run_path({str(app)!r}); import uvicorn; "
         f"uvicorn.run(m['app'], port={port}, log_level='warning', access_log=False)"],
        start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"{url}/series?x=0&y=50", timeout=2)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise
                time.sleep(0.2)
        pin(process.pid, cores)
        yield url
    finally:
        stop(process)


def warm(path: Path) -> None:
    """Read a file, or every file under a folder, once (into the page cache)."""
    for file in [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file()):
        with file.open("rb") as stream:
            while stream.read(1 << 24):
                pass


def median_ms(client: httpx.Client, urls: list[str]) -> float:
    """Median wall time of GET ``urls`` (each must answer 200) after one warm-up each."""
    for url in urls[:5]:
        client.get(url).raise_for_status()
    times = []
    for url in urls:
        start = time.perf_counter()
        response = client.get(url)
        times.append((time.perf_counter() - start) * 1000)
        response.raise_for_status()
    return round(statistics.median(times), 3)


def points(n: int, seed: int = 18) -> list[tuple[float, float]]:
    """Random land and sea points inside the Europe grid (lon, lat)."""
    rng = np.random.default_rng(seed)
    return [(float(rng.uniform(-24, 44)), float(rng.uniform(28, 71))) for _ in range(n)]


def http(root: Path, n: int) -> dict[str, float]:
    """Series, EDR position and tiles over HTTP: fewsmap with and without copies, the floor."""
    where = points(n)
    found: dict[str, float] = {}
    data, meta = floor_layout(root, root / "eu.zarr")
    # Every layout read from the page cache, as the floor's file is once written: building
    # it (the whole cube in memory) pushed much of the stores' files out of it before.
    for path in (data, root / "eu.zarr" / "t2m.series", root / "eunocopy.zarr" / "t2m"):
        warm(path)
    with client_apart() as cores:
        found["pinned"] = float(cores is not None)
        with floor_server(data, meta, cores) as floor, httpx.Client(timeout=30) as client:
            found["series_floor_ms"] = median_ms(
                client, [f"{floor}/series?x={x:.4f}&y={y:.4f}" for x, y in where])
        with live_server("--stores", str(root)) as url, httpx.Client(timeout=30) as client:
            pin(RUNNING[url][0].pid, cores)
            found.update(_fewsmap_http(client, url, where))
    found["series_ratio_to_floor"] = round(found["series_eu_ms"] / found["series_floor_ms"], 2)
    return found


def _fewsmap_http(client: httpx.Client, url: str, where: list[tuple[float, float]]
                  ) -> dict[str, float]:
    """Series, EDR position and tiles of both stores from the fewsmap server at ``url``."""
    found: dict[str, float] = {}
    for store in ("eu", "eunocopy"):
        found[f"series_{store}_ms"] = median_ms(client, [
            f"{url}/api/timeseries?layer={store}.t2m&x={x:.4f}&y={y:.4f}&runs=all"
            for x, y in where])
        found[f"edr_position_{store}_ms"] = median_ms(client, [
            f"{url}/edr/collections/{store}.t2m/position?coords=POINT({x:.4f} {y:.4f})"
            for x, y in where])
        found[f"tile_{store}_ms"] = median_ms(client, [
            f"{url}/tiles/{store}.t2m/6/{col}/{row}.png"
            for row in (20, 21, 22, 23) for col in (30, 31, 32, 33, 34, 35)] * 3)
    return found


def in_process(root: Path) -> dict[str, float]:
    """The map and series reads alone, fastest of repeats (steadier than HTTP medians on a
    shared machine): a 256² tile's window and one run's series, with and without copies."""
    found: dict[str, float] = {}
    tile = Canvas("EPSG:3857", (0.0, 5.0e6, TILE_Z6_M, 5.0e6 + TILE_Z6_M), 256, 256)
    for name in ("eu", "eunocopy"):
        store = ForecastStore(root / f"{name}.zarr")
        run = store.runs[-1]
        prefix = (run.slot, int(run.step_slots[len(run.step_slots) // 2]))
        cell = store.geometry.cell_at("EPSG:4326", 10.0, 50.0)
        assert cell is not None
        found[f"tile_window_{name}_ms"] = fastest(
            lambda s=store, p=prefix: read_map_window(s, "t2m", p, tile), 100)
        found[f"series_one_run_{name}_ms"] = fastest(
            lambda s=store, r=run, c=cell: read_block(s, "t2m", r.slot, r.step_slots, [],
                                                      [c.row], [c.col]), 50)
    return found


def tiny_ingest(root: Path) -> dict[str, float]:
    """Ingest the GEFS point run with the small-field layout and with a file per field."""
    ingest(root / "warm.zarr", [GEFS], progress=False)  # imports and caches warmed
    found: dict[str, float] = {}
    for name, cells in (("field_blocks", layout.SMALL_FIELD_CELLS), ("file_per_field", 0)):
        times = []
        for k in range(3 if cells else 1):
            path = root / f"gefs-{name}-{k}.zarr"
            # The layout before: a chunk file per field, and no copies.
            with mock.patch.object(layout, "SMALL_FIELD_CELLS", cells):
                start = time.perf_counter()
                ingest(path, [GEFS], progress=False, series_copy=bool(cells))
                times.append(time.perf_counter() - start)
            found[f"gefs_files_{name}"] = sum(len(f) for _, _, f in os.walk(path))
        found[f"gefs_ingest_s_{name}"] = round(statistics.median(times), 3)
    return found


def sharded_variable(root: Path, steps: int, ny: int, nx: int) -> dict[str, float]:
    """The alternative weighed: the variable itself sharded with inner chunks keeping time
    together (32 × 32 cells × every step): a map's 512² window reads 256 inner chunks."""
    data = synthetic_run(T0, steps, ny, nx, 0).fields["t2m"][0].values
    found: dict[str, float] = {}
    for name, kwargs in (("one_field_per_chunk", {"chunks": (1, 1, 512, 512)}),
                         ("sharded_time_inner", {"shards": (1, 128, 512, 512),
                                                 "chunks": (1, 128, 32, 32)})):
        array = zarr.create_array(root / name, shape=(1, steps, ny, nx), dtype="float32",
                                  fill_value=np.nan, compressors=layout.data_codec(),
                                  **kwargs)  # type: ignore[arg-type]
        start = time.perf_counter()
        array[0] = data
        found[f"{name}_write_s"] = round(time.perf_counter() - start, 3)
        found[f"{name}_window_512_ms"] = fastest(lambda a=array: a[0, steps // 2, :512, :512], 5)
    return found




def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny sizes, about a minute")
    parser.add_argument("--out", type=Path, default=RESULTS.parent,
                        help="folder for point_series.json (--quick: point_series-quick.json)")
    args = parser.parse_args()
    quick = args.quick
    runs, steps, ny, nx, n = (3, 8, 90, 140, 20) if quick else (10, 73, 900, 1400, 100)
    with tempfile.TemporaryDirectory(prefix="fewsmap-points-") as folder:
        root = Path(folder)
        results: dict[str, float] = {"runs": runs, "steps": steps, "rows": ny, "cols": nx}
        results |= build(root, runs, steps, ny, nx)
        results |= http(root, n)
        results |= in_process(root)
        results |= tiny_ingest(root)
        results |= sharded_variable(root, steps, ny, nx)
    out = args.out / (f"{RESULTS.stem}-quick.json" if quick else RESULTS.name)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1))
    print("\n".join(f"{key:36s} {value}" for key, value in results.items()))


if __name__ == "__main__":
    main()
