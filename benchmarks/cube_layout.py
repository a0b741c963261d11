"""Bounded, reproducible measurements for the fewsmap Zarr v3 forecast-cube layout.

Sections
  1. spatial chunk size (zstd 3): full-slice read, window reads, bytes on disk, write time
  2. compression codec (512x512 chunks): same metrics + write MB/s
  3. opening cost vs number of runs, coordinate chunking per run vs 1024 runs, append cost
  4. dense ``step`` axis (2-D valid_time) vs ``valid_time`` axis layout

Everything uses fixed loop counts.  Stores are written into a ``tempfile.mkdtemp()`` directory
under /tmp that is removed at the end.  Reads go through zarr directly
(``zarr.open_group(path, mode="r", use_consolidated=True)`` then ``arr[r, s, ...]``); only one
column in section 3 uses xarray.  Timings are on a warm page cache: every timed read is preceded
by an untimed pass over the same chunks.

Usage::

    .venv/bin/python benchmarks/cube_layout.py            # full run (~1.5 min on 2 vCPUs)
    .venv/bin/python benchmarks/cube_layout.py --quick    # smoke test (seconds)
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numcodecs
import numpy as np
import xarray as xr
import zarr
from scipy import ndimage
from zarr.codecs import BloscCodec, ZstdCodec

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

SEED = 20240601
NAN_FRACTION = 0.25
QUANTUM = 1.0 / 64.0
HOUR_S = 3600


# --------------------------------------------------------------------------------------------
# configuration


@dataclass(frozen=True)
class Config:
    """All loop counts and sizes; fixed for a given mode."""

    ny: int
    nx: int
    runs: int  # runs written per store variant (sections 1/2)
    steps: int  # steps per run written per store variant (sections 1/2)
    full_reads: int  # timed full-slice reads per variant
    window_reads: int  # timed window reads per window size and variant
    windows: tuple[int, ...]
    rounds: int  # interleaved read rounds (sections 1/2); divides full/window reads
    open_ns: tuple[int, ...]  # section 3: number of runs
    open_steps: int  # section 3: steps per run
    open_reps: int  # section 3: repetitions of open(+read coords)
    xr_reps: int  # section 3: repetitions of the xarray open
    appends: int  # section 3: number of timed appends per store
    layout_runs: int  # section 4: runs in the source
    layout_steps: int  # section 4: steps per run
    layout_step_h: int  # section 4: step spacing in hours
    layout_cycle_h: int  # section 4: run cycle in hours
    layout_read_runs: int  # section 4: runs written with the real grid for read timing
    layout_read_steps: int  # section 4: steps per run written with the real grid
    layout_reads: int  # section 4: timed reads per layout


FULL = Config(
    ny=900,
    nx=1400,
    runs=2,
    steps=12,
    full_reads=96,
    window_reads=120,
    windows=(110, 300),
    rounds=8,
    open_ns=(10, 100, 1000),
    open_steps=73,
    open_reps=21,
    xr_reps=11,
    appends=9,
    layout_runs=100,
    layout_steps=64,
    layout_step_h=6,
    layout_cycle_h=6,
    layout_read_runs=2,
    layout_read_steps=8,
    layout_reads=96,
)

QUICK = Config(
    ny=180,
    nx=280,
    runs=1,
    steps=3,
    full_reads=2,
    window_reads=2,
    windows=(110,),
    rounds=2,
    open_ns=(10,),
    open_steps=73,
    open_reps=2,
    xr_reps=1,
    appends=1,
    layout_runs=6,
    layout_steps=64,
    layout_step_h=6,
    layout_cycle_h=6,
    layout_read_runs=1,
    layout_read_steps=2,
    layout_reads=2,
)


def log(msg: str) -> None:
    """Progress output (stderr, flushed)."""
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------
# statistics / formatting


@dataclass
class Stat:
    """Median/min/max/n of a list of samples (seconds or any unit)."""

    median: float
    min: float
    max: float
    n: int

    @classmethod
    def of(cls, samples: Sequence[float]) -> Stat:
        return cls(statistics.median(samples), min(samples), max(samples), len(samples))

    def ms(self) -> str:
        return f"{self.median * 1e3:.2f} ({self.min * 1e3:.2f}–{self.max * 1e3:.2f}, n={self.n})"


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Render a markdown table."""
    out = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(out)


def timed(fn: Callable[[], Any]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def fmt_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError


# --------------------------------------------------------------------------------------------
# synthetic field


class FieldFactory:
    """Smooth, realistic 2 m-temperature-like field on a 0.05 deg Europe-like grid.

    latitude gradient + moving large-scale wave + spatially correlated detail (gaussian
    filtered random fields, translated per step) + 0.05 K white noise, quantised to 1/64 K,
    with a contiguous ~25 % NaN "sea" area bounded by a wavy coastline.
    """

    def __init__(self, ny: int, nx: int, seed: int = SEED) -> None:
        self.ny, self.nx = ny, nx
        self.rng = np.random.default_rng(seed)
        lat = np.linspace(72.0, 27.0, ny)[:, None]  # north -> south rows
        lon = np.linspace(-25.0, 45.0, nx)[None, :]
        self.lat, self.lon = lat, lon
        self.base = (288.0 - 0.65 * (lat - 45.0) + 0.02 * (lon - 10.0)).astype(np.float64)
        # correlated detail at two scales, padded so it can be translated without wrap seams
        pad = 64
        fine = ndimage.gaussian_filter(self.rng.standard_normal((ny + pad, nx + pad)), 6.0)
        coarse = ndimage.gaussian_filter(self.rng.standard_normal((ny + pad, nx + pad)), 25.0)
        self.fine = fine / fine.std() * 1.5
        self.coarse = coarse / coarse.std() * 3.0
        self.pad = pad
        # contiguous sea: west/south-west of a wavy coastline, threshold tuned to NAN_FRACTION
        yy, xx = np.mgrid[0:ny, 0:nx]
        score = (
            xx / nx
            + 0.6 * yy / ny
            + 0.06 * np.sin(yy / ny * 9.0)
            + 0.03 * np.sin(xx / nx * 23.0 + 1.0)
        )
        self.sea = score < np.quantile(score, NAN_FRACTION)

    def field(self, run: int, step: int) -> np.ndarray:
        t = run * 0.37 + step * 0.11
        wave = 4.0 * np.sin(np.radians(self.lon) * 4.0 - t) * np.cos(np.radians(self.lat) * 3.0)
        oy = (run * 7 + step * 3) % self.pad
        ox = (run * 5 + step * 4) % self.pad
        detail = (
            self.fine[oy : oy + self.ny, ox : ox + self.nx]
            + self.coarse[(oy // 2) : (oy // 2) + self.ny, (ox // 2) : (ox // 2) + self.nx]
        )
        noise = self.rng.normal(0.0, 0.05, (self.ny, self.nx))
        out = self.base + wave + detail + noise
        out = np.round(out / QUANTUM) * QUANTUM
        out[self.sea] = np.nan
        result: np.ndarray = out.astype(np.float32)
        return result


# --------------------------------------------------------------------------------------------
# store helpers


def open_ro(path: Path) -> zarr.Group:
    return zarr.open_group(path, mode="r", use_consolidated=True)


def read_slice(arr: zarr.Array[Any], sel: tuple[Any, ...]) -> Any:
    return arr[sel]


def dir_usage(path: Path) -> tuple[int, int, int]:
    """(file count, apparent bytes, allocated bytes) of all files under path."""
    files = apparent = allocated = 0
    for f in path.rglob("*"):
        if f.is_file():
            st = f.stat()
            files += 1
            apparent += st.st_size
            allocated += st.st_blocks * 512
    return files, apparent, allocated


def chunk_usage(store: Path, var: str) -> tuple[int, int, int]:
    """Usage of the chunk files ('c/' subtree) of one array."""
    cdir = store / var / "c"
    return dir_usage(cdir) if cdir.exists() else (0, 0, 0)


def chunks_touched(y0: int, x0: int, h: int, w: int, cy: int, cx: int) -> int:
    return ((y0 + h - 1) // cy - y0 // cy + 1) * ((x0 + w - 1) // cx - x0 // cx + 1)


@dataclass
class Variant:
    """One store variant of sections 1/2 and its samples."""

    label: str
    chunks: tuple[int, int]
    compressors: Any
    store: Path
    write_times: list[float] = field(default_factory=list)
    full_times: list[float] = field(default_factory=list)
    win_times: dict[int, list[float]] = field(default_factory=dict)
    touched: dict[int, float] = field(default_factory=dict)
    usage: tuple[int, int, int] = (0, 0, 0)


VAR = "t2m"


def rotated(items: Sequence[Variant], k: int) -> list[Variant]:
    """items rotated by k, so no variant is always measured first/last in a round."""
    k %= len(items)
    return [*items[k:], *items[:k]]


def run_variants(
    cfg: Config, fields: dict[tuple[int, int], np.ndarray], variants: list[Variant]
) -> None:
    """Write and read all variants of one section, interleaved (round-robin, rotated order).

    Writes: every (run, step) slice is written to each variant before the next slice.
    Reads: after an untimed warm pass over every slice, cfg.rounds rounds each time
    full_reads/rounds full slices and window_reads/rounds windows per size per variant.
    Window offsets (fixed seed) are identical for all variants.
    """
    arrays: dict[str, zarr.Array[Any]] = {}
    for v in variants:
        g = zarr.open_group(v.store, mode="w", zarr_format=3)
        arrays[v.label] = g.create_array(
            VAR,
            shape=(cfg.runs, cfg.steps, cfg.ny, cfg.nx),
            chunks=(1, 1, *v.chunks),
            dtype="float32",
            fill_value=np.nan,
            compressors=v.compressors,
            dimension_names=("forecast_reference_time", "step", "y", "x"),
        )
    slices = [(r, s) for r in range(cfg.runs) for s in range(cfg.steps)]
    for i, (r, s) in enumerate(slices):
        for v in rotated(variants, i):
            v.write_times.append(
                timed(partial(write_slice, arrays[v.label], (r, s), fields[(r, s)]))
            )
    for v in variants:
        zarr.consolidate_metadata(v.store)
        v.usage = chunk_usage(v.store, VAR)
    log(f"  wrote {len(slices)} slices x {len(variants)} variants")

    readers: dict[str, zarr.Array[Any]] = {}
    for v in variants:
        a = open_ro(v.store)[VAR]
        assert isinstance(a, zarr.Array)
        readers[v.label] = a
        for r, s in slices:  # warm page cache + verify round trip
            got = a[r, s]
            assert np.array_equal(got, fields[(r, s)], equal_nan=True), f"{v.label}: mismatch"

    rng = np.random.default_rng(SEED + 1)
    picks: dict[int, list[tuple[int, int, int, int]]] = {}
    for size in cfg.windows:
        h, w = min(size, cfg.ny), min(size, cfg.nx)
        picks[size] = [
            (
                int(rng.integers(cfg.runs)),
                int(rng.integers(cfg.steps)),
                int(rng.integers(0, cfg.ny - h + 1)),
                int(rng.integers(0, cfg.nx - w + 1)),
            )
            for _ in range(cfg.window_reads)
        ]
        for v in variants:
            v.win_times[size] = []
            v.touched[size] = float(
                np.mean([chunks_touched(y0, x0, h, w, *v.chunks) for _, _, y0, x0 in picks[size]])
            )
    per_full = cfg.full_reads // cfg.rounds
    per_win = cfg.window_reads // cfg.rounds
    for rnd in range(cfg.rounds):
        for v in rotated(variants, rnd):
            a = readers[v.label]
            for j in range(per_full):
                r, s = slices[(rnd * per_full + j) % len(slices)]
                v.full_times.append(timed(partial(read_slice, a, (r, s))))
            for size in cfg.windows:
                h, w = min(size, cfg.ny), min(size, cfg.nx)
                for r, s, y0, x0 in picks[size][rnd * per_win : (rnd + 1) * per_win]:
                    sel = (r, s, slice(y0, y0 + h), slice(x0, x0 + w))
                    v.win_times[size].append(timed(partial(read_slice, a, sel)))
        log(f"  read round {rnd + 1}/{cfg.rounds}")
    nslices = len(slices)
    for v in variants:
        log(
            f"  {v.label}: write {statistics.median(v.write_times) * 1e3:.1f} ms, full read "
            f"{statistics.median(v.full_times) * 1e3:.1f} ms, "
            f"{fmt_bytes(v.usage[1] / nslices)}/slice"
        )
        shutil.rmtree(v.store)


def write_slice(arr: zarr.Array[Any], sel: tuple[int, int], data: np.ndarray) -> None:
    arr[sel] = data


def variant_table(variants: Sequence[Variant], cfg: Config, first_col: str) -> str:
    raw = cfg.ny * cfg.nx * 4
    nslices = cfg.runs * cfg.steps
    headers = [
        first_col,
        "full-slice read ms",
        *[f"{s}×{s} window read ms [chunks touched]" for s in cfg.windows],
        "chunk files/slice",
        "bytes/slice (apparent)",
        "ratio vs raw",
        "bytes/slice (allocated)",
        "write ms/slice",
        "write MB/s (raw)",
    ]
    rows = []
    for v in variants:
        files, apparent, alloc = v.usage
        write = Stat.of(v.write_times)
        rows.append(
            [
                v.label,
                Stat.of(v.full_times).ms(),
                *[f"{Stat.of(v.win_times[s]).ms()} [{v.touched[s]:.1f}]" for s in cfg.windows],
                f"{files / nslices:.1f}",
                fmt_bytes(apparent / nslices),
                f"{raw * nslices / apparent:.2f}×",
                fmt_bytes(alloc / nslices),
                write.ms(),
                f"{raw / 1e6 / write.median:.0f}",
            ]
        )
    return table(headers, rows)


# --------------------------------------------------------------------------------------------
# section 1 + 2


def section_chunks(cfg: Config, fields: dict[tuple[int, int], np.ndarray], root: Path) -> str:
    log("section 1: spatial chunk size (zstd level 3)")
    shapes = [(256, 256), (512, 512), (1024, 1024), (cfg.ny, cfg.nx)]
    variants = [
        Variant(
            label=f"{c[0]}×{c[1]}" + (" (full slice)" if c == (cfg.ny, cfg.nx) else ""),
            chunks=c,
            compressors=ZstdCodec(level=3),
            store=root / f"chunks_{c[0]}x{c[1]}",
        )
        for c in shapes
    ]
    run_variants(cfg, fields, variants)
    return variant_table(variants, cfg, "chunks (y, x)")


def section_codecs(cfg: Config, fields: dict[tuple[int, int], np.ndarray], root: Path) -> str:
    log("section 2: compression (512x512 chunks)")
    codecs: list[tuple[str, Any]] = [
        ("none", None),
        ("zstd 1", ZstdCodec(level=1)),
        ("zstd 3", ZstdCodec(level=3)),
        ("blosc lz4 5 shuffle", BloscCodec(cname="lz4", clevel=5, shuffle="shuffle")),
        ("blosc zstd 5 shuffle", BloscCodec(cname="zstd", clevel=5, shuffle="shuffle")),
    ]
    variants = [
        Variant(label=label, chunks=(512, 512), compressors=comp, store=root / f"codec_{i}")
        for i, (label, comp) in enumerate(codecs)
    ]
    run_variants(cfg, fields, variants)
    return variant_table(variants, cfg, "codec")


# --------------------------------------------------------------------------------------------
# section 3: open cost vs number of runs


T0 = int(np.datetime64("2024-01-01T00:00:00", "s").astype(np.int64))
TIME_ATTRS: dict[str, Any] = {
    "units": "seconds since 1970-01-01T00:00:00",
    "calendar": "proleptic_gregorian",
}


def build_open_store(path: Path, n: int, steps: int, coord_chunk_runs: int) -> None:
    """One variable (n, steps, 16, 16) + coordinates; coordinate chunks of coord_chunk_runs.

    Only the last run of the variable is written (data chunks do not affect open cost).
    """
    g = zarr.open_group(path, mode="w", zarr_format=3)
    var = g.create_array(
        "t2m",
        shape=(n, steps, 16, 16),
        chunks=(1, 1, 16, 16),
        dtype="float32",
        fill_value=np.nan,
        compressors=ZstdCodec(level=3),
        dimension_names=("forecast_reference_time", "step", "y", "x"),
        attributes={"coordinates": "valid_time"},
    )
    frt = g.create_array(
        "forecast_reference_time",
        shape=(n,),
        chunks=(coord_chunk_runs,),
        dtype="int64",
        fill_value=0,
        compressors=ZstdCodec(level=3),
        dimension_names=("forecast_reference_time",),
        attributes=TIME_ATTRS,
    )
    vt = g.create_array(
        "valid_time",
        shape=(n, steps),
        chunks=(coord_chunk_runs, steps),
        dtype="int64",
        fill_value=0,
        compressors=ZstdCodec(level=3),
        dimension_names=("forecast_reference_time", "step"),
        attributes=TIME_ATTRS,
    )
    step = g.create_array(
        "step",
        shape=(steps,),
        chunks=(steps,),
        dtype="int64",
        fill_value=0,
        dimension_names=("step",),
        attributes={"units": "hours"},
    )
    runs = T0 + np.arange(n, dtype=np.int64) * 6 * HOUR_S
    steps_s = np.arange(steps, dtype=np.int64) * 3 * HOUR_S
    frt[:] = runs
    vt[:] = runs[:, None] + steps_s[None, :]
    step[:] = np.arange(steps, dtype=np.int64) * 3
    var[n - 1] = np.ones((steps, 16, 16), dtype=np.float32)
    zarr.consolidate_metadata(path)


def open_and_read(path: Path) -> None:
    g = zarr.open_group(path, mode="r", use_consolidated=True)
    frt, vt = g["forecast_reference_time"], g["valid_time"]
    assert isinstance(frt, zarr.Array) and isinstance(vt, zarr.Array)
    a, b = frt[:], vt[:]
    assert isinstance(a, np.ndarray) and isinstance(b, np.ndarray)


def xr_open_and_load(path: Path) -> None:
    ds = xr.open_zarr(path, consolidated=True, chunks=None)
    a = ds["forecast_reference_time"].values
    b = ds["valid_time"].values
    assert a.dtype.kind == "M" and b.dtype.kind == "M"
    ds.close()


def append_run(path: Path) -> dict[str, float]:
    """Append one run: open, resize all run-indexed arrays, write coordinates, consolidate."""
    out: dict[str, float] = {}
    t0 = time.perf_counter()
    g = zarr.open_group(path, mode="r+", use_consolidated=True)
    var, frt, vt = g["t2m"], g["forecast_reference_time"], g["valid_time"]
    assert isinstance(var, zarr.Array) and isinstance(frt, zarr.Array)
    assert isinstance(vt, zarr.Array)
    t1 = time.perf_counter()
    n = frt.shape[0]
    steps = vt.shape[1]
    var.resize((n + 1, *var.shape[1:]))
    frt.resize((n + 1,))
    vt.resize((n + 1, steps))
    t2 = time.perf_counter()
    run = T0 + n * 6 * HOUR_S
    frt[n] = run
    vt[n, :] = run + np.arange(steps, dtype=np.int64) * 3 * HOUR_S
    t3 = time.perf_counter()
    zarr.consolidate_metadata(path)
    t4 = time.perf_counter()
    out.update(open=t1 - t0, resize=t2 - t1, write=t3 - t2, consolidate=t4 - t3, total=t4 - t0)
    return out


def section_open(cfg: Config, root: Path) -> str:
    log("section 3: opening cost vs number of runs")
    rows = []
    append_rows = []
    base: dict[str, tuple[int, float]] = {}  # tag -> (smallest N, its median open+coords)
    for n in cfg.open_ns:
        for tag, cr in (("(a) 1 run/chunk", 1), ("(b) 1024 runs/chunk", 1024)):
            path = root / f"open_{n}_{cr}"
            t_build = timed(partial(build_open_store, path, n, cfg.open_steps, cr))
            files, _, _ = dir_usage(path)
            meta_size = (path / "zarr.json").stat().st_size
            open_and_read(path)  # warm
            xr_open_and_load(path)
            t_open_only = [timed(partial(open_ro, path)) for _ in range(cfg.open_reps)]
            t_open = [timed(partial(open_and_read, path)) for _ in range(cfg.open_reps)]
            t_xr = [timed(partial(xr_open_and_load, path)) for _ in range(cfg.xr_reps)]
            s_open = Stat.of(t_open)
            n0, t0 = base.setdefault(tag, (n, s_open.median))
            slope = f"{(s_open.median - t0) * 1e3 / (n - n0) * 100:.2f}" if n > n0 else "–"
            rows.append(
                [
                    n,
                    tag,
                    files,
                    fmt_bytes(meta_size),
                    Stat.of(t_open_only).ms(),
                    s_open.ms(),
                    slope,
                    Stat.of(t_xr).ms(),
                ]
            )
            appends = [append_run(path) for _ in range(cfg.appends)]
            parts = {k: Stat.of([a[k] for a in appends]) for k in appends[0]}
            append_rows.append(
                [
                    n,
                    tag,
                    parts["total"].ms(),
                    f"{parts['open'].median * 1e3:.2f}",
                    f"{parts['resize'].median * 1e3:.2f}",
                    f"{parts['write'].median * 1e3:.2f}",
                    f"{parts['consolidate'].median * 1e3:.2f}",
                ]
            )
            log(
                f"  N={n} {tag}: build {t_build:.1f}s, open+coords {s_open.median * 1e3:.1f} ms, "
                f"append {parts['total'].median * 1e3:.1f} ms"
            )
            shutil.rmtree(path)
    t1 = table(
        [
            "N runs",
            "coordinate chunking",
            "files in store",
            "consolidated zarr.json",
            "zarr open only ms",
            "zarr open + read both coords ms",
            "marginal ms per 100 runs (open+coords, vs smallest N)",
            "xr.open_zarr + load coords ms",
        ],
        rows,
    )
    t2 = table(
        [
            "N runs (before)",
            "coordinate chunking",
            "append total ms",
            "open ms",
            "resize 3 arrays ms",
            "write coord entries ms",
            "consolidate ms",
        ],
        append_rows,
    )
    return (
        t1 + "\n\nAppend one run (median of per-part medians; total is median of totals):\n\n" + t2
    )


# --------------------------------------------------------------------------------------------
# section 4: layout comparison


def build_layout(
    path: Path,
    kind: str,
    cfg: Config,
    ny: int,
    nx: int,
    chunks: tuple[int, int],
    write_runs: int,
    write_steps: int,
    fields: dict[tuple[int, int], np.ndarray] | None,
) -> dict[str, Any]:
    """Create a layout store with shape for cfg.layout_runs runs; write write_runs x write_steps.

    kind 'step': t2m(frt, step, y, x) + valid_time(frt, step) 2-D.
    kind 'valid_time': t2m(frt, valid_time, y, x) + valid_time(valid_time) 1-D; run r writes
    only valid-time indices [r*cycle/step_h, r*cycle/step_h + steps).
    """
    runs, steps = cfg.layout_runs, cfg.layout_steps
    shift = cfg.layout_cycle_h // cfg.layout_step_h
    n_vt = (runs - 1) * shift + steps
    frt_s = T0 + np.arange(runs, dtype=np.int64) * cfg.layout_cycle_h * HOUR_S
    g = zarr.open_group(path, mode="w", zarr_format=3)
    second = steps if kind == "step" else n_vt
    dim2 = "step" if kind == "step" else "valid_time"
    var = g.create_array(
        "t2m",
        shape=(runs, second, ny, nx),
        chunks=(1, 1, *chunks),
        dtype="float32",
        fill_value=np.nan,
        compressors=ZstdCodec(level=3),
        dimension_names=("forecast_reference_time", dim2, "y", "x"),
        attributes={"coordinates": "valid_time"} if kind == "step" else {},
    )
    frt = g.create_array(
        "forecast_reference_time",
        shape=(runs,),
        chunks=(1024,),
        dtype="int64",
        fill_value=0,
        dimension_names=("forecast_reference_time",),
        attributes=TIME_ATTRS,
    )
    frt[:] = frt_s
    if kind == "step":
        vt = g.create_array(
            "valid_time",
            shape=(runs, steps),
            chunks=(1024, steps),
            dtype="int64",
            fill_value=0,
            dimension_names=("forecast_reference_time", "step"),
            attributes=TIME_ATTRS,
        )
        vt[:] = (
            frt_s[:, None] + np.arange(steps, dtype=np.int64)[None, :] * cfg.layout_step_h * HOUR_S
        )
        st = g.create_array(
            "step",
            shape=(steps,),
            chunks=(steps,),
            dtype="int64",
            fill_value=0,
            dimension_names=("step",),
            attributes={"units": "hours"},
        )
        st[:] = np.arange(steps, dtype=np.int64) * cfg.layout_step_h
    else:
        vt = g.create_array(
            "valid_time",
            shape=(n_vt,),
            chunks=(1024,),
            dtype="int64",
            fill_value=0,
            dimension_names=("valid_time",),
            attributes=TIME_ATTRS,
        )
        vt[:] = T0 + np.arange(n_vt, dtype=np.int64) * cfg.layout_step_h * HOUR_S
    for r in range(write_runs):
        if fields is None:
            block = np.full((steps, ny, nx), 280.0 + r, dtype=np.float32)
            if kind == "step":
                var[r] = block
            else:
                var[r, r * shift : r * shift + steps] = block
        else:
            for s in range(write_steps):
                idx = s if kind == "step" else r * shift + s
                var[r, idx] = fields[(r, s)]
    zarr.consolidate_metadata(path)
    files, apparent, _ = chunk_usage(path, "t2m")
    all_files, _, _ = dir_usage(path)
    meta_files = [p for p in path.rglob("zarr.json")]
    return {
        "entries": second,
        "shape": tuple(var.shape),
        "slots": int(np.prod(var.cdata_shape)),
        "data_files": files,
        "coord_files": all_files - files - len(meta_files),
        "root_meta": (path / "zarr.json").stat().st_size,
        "all_meta": sum(p.stat().st_size for p in meta_files),
        "data_bytes": apparent,
        "shift": shift,
    }


def layout_index(kind: str, shift: int, run: int, step: int) -> int:
    """Index along the 2nd axis of (run, step) in the given layout."""
    return step if kind == "step" else run * shift + step


def section_layout(cfg: Config, fields: dict[tuple[int, int], np.ndarray], root: Path) -> str:
    log("section 4: dense step axis vs valid_time axis")
    rows = []
    infos: dict[str, dict[str, Any]] = {}
    for kind in ("step", "valid_time"):
        path = root / f"layout_{kind}"
        info = build_layout(
            path, kind, cfg, 16, 16, (16, 16), cfg.layout_runs, cfg.layout_steps, None
        )
        infos[kind] = info
        rows.append(
            [
                f"`{kind}` axis",
                f"{info['entries']}",
                "×".join(str(d) for d in info["shape"]),
                info["slots"],
                info["data_files"],
                f"{100 * (1 - info['data_files'] / info['slots']):.0f} %",
                info["coord_files"],
                fmt_bytes(info["root_meta"]),
                fmt_bytes(info["all_meta"]),
            ]
        )
        shutil.rmtree(path)
    t1 = table(
        [
            "layout",
            "2nd-axis entries",
            "t2m shape (16×16 spatial, 1 tile/slice)",
            "chunk-grid slots",
            "data chunk files written",
            "empty slots",
            "coord chunk files",
            "consolidated root zarr.json",
            "all zarr.json bytes",
        ],
        rows,
    )

    # read timing on the real grid: the same (run, valid time) chunk either way.
    # Both layouts are built first, then read in interleaved rounds (alternating order).
    log("  read timing on the real grid (512x512, zstd 3)")
    slices = [(r, s) for r in range(cfg.layout_read_runs) for s in range(cfg.layout_read_steps)]
    kinds = ("step", "valid_time")
    arrays: dict[str, zarr.Array[Any]] = {}
    infos_rd: dict[str, dict[str, Any]] = {}
    for kind in kinds:
        path = root / f"layout_read_{kind}"
        infos_rd[kind] = build_layout(
            path,
            kind,
            cfg,
            cfg.ny,
            cfg.nx,
            (512, 512),
            cfg.layout_read_runs,
            cfg.layout_read_steps,
            fields,
        )
        a = open_ro(path)["t2m"]
        assert isinstance(a, zarr.Array)
        arrays[kind] = a
        for r, s in slices:  # warm + verify
            got = a[r, layout_index(kind, infos_rd[kind]["shift"], r, s)]
            assert np.array_equal(got, fields[(r, s)], equal_nan=True)
    win = min(110, cfg.ny, cfg.nx)
    y0, x0 = (cfg.ny - win) // 3, (cfg.nx - win) // 2
    sels = {
        "full": (slice(None), slice(None)),
        "window": (slice(y0, y0 + win), slice(x0, x0 + win)),
    }
    times: dict[tuple[str, str], list[float]] = {(k, n): [] for k in kinds for n in sels}
    rounds = cfg.rounds
    per = cfg.layout_reads // rounds
    for rnd in range(rounds):
        for kind in kinds if rnd % 2 == 0 else kinds[::-1]:
            shift = infos_rd[kind]["shift"]
            for name, sel in sels.items():
                for j in range(per):
                    r, s = slices[(rnd * per + j) % len(slices)]
                    key = (r, layout_index(kind, shift, r, s), *sel)
                    times[(kind, name)].append(timed(partial(read_slice, arrays[kind], key)))
    read_rows = [
        [
            f"`{kind}` axis",
            "×".join(str(d) for d in arrays[kind].shape),
            Stat.of(times[(kind, "full")]).ms(),
            Stat.of(times[(kind, "window")]).ms(),
            infos_rd[kind]["data_files"] / len(slices),
        ]
        for kind in kinds
    ]
    for kind in kinds:
        shutil.rmtree(root / f"layout_read_{kind}")
    t2 = table(
        [
            "layout",
            "t2m shape (real grid)",
            "full (run, valid time) slice read ms",
            f"{min(110, cfg.ny, cfg.nx)}² window read ms",
            "chunk files/slice",
        ],
        read_rows,
    )
    src = (
        f"Source: {cfg.layout_runs} runs every {cfg.layout_cycle_h} h, {cfg.layout_steps} steps "
        f"every {cfg.layout_step_h} h; coordinates chunked 1024 per chunk in both layouts."
    )
    return src + "\n\n" + t1 + "\n\n" + t2


# --------------------------------------------------------------------------------------------
# main


def machine_facts() -> str:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else "?"
    rows: list[list[Any]] = [
        ["nproc (sched_getaffinity)", affinity],
        ["os.cpu_count()", os.cpu_count()],
        ["CPU", cpu],
        ["platform", platform.platform()],
        ["python", sys.version.split()[0]],
        ["zarr", zarr.__version__],
        ["numcodecs", numcodecs.__version__],
        ["numpy", np.__version__],
        ["xarray", xr.__version__],
        ["zarr async.concurrency", zarr.config.get("async.concurrency")],
        ["zarr threading.max_workers", zarr.config.get("threading.max_workers")],
        ["zarr array.write_empty_chunks", zarr.config.get("array.write_empty_chunks")],
        ["temp dir", tempfile.gettempdir()],
    ]
    return table(["fact", "value"], rows)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="tiny smoke mode (seconds)")
    ap.add_argument(
        "--out", type=Path, default=None, help="write the markdown report here (default: stdout)"
    )
    ap.add_argument(
        "--sections", default="1234", help="which sections to run, e.g. '13' (default: 1234)"
    )
    args = ap.parse_args(argv)
    cfg = QUICK if args.quick else FULL
    warnings.filterwarnings(
        "ignore", message="Consolidated metadata is currently not part", category=UserWarning
    )
    t_start = time.perf_counter()
    root = Path(tempfile.mkdtemp(prefix="fewsmap_cube_layout_", dir="/tmp"))
    log(f"mode={'quick' if args.quick else 'full'} temp={root}")
    parts: list[str] = []
    try:
        log(f"generating {cfg.runs}x{cfg.steps} fields of {cfg.ny}x{cfg.nx}")
        factory = FieldFactory(cfg.ny, cfg.nx)
        need = max(cfg.runs, cfg.layout_read_runs), max(cfg.steps, cfg.layout_read_steps)
        fields = {(r, s): factory.field(r, s) for r in range(need[0]) for s in range(need[1])}
        f0 = fields[(0, 0)]
        nan_frac = float(np.isnan(f0).mean())
        field_desc = (
            f"Field: {cfg.ny}×{cfg.nx} float32, {nan_frac:.1%} NaN (contiguous sea), "
            f"range {np.nanmin(f0):.1f}–{np.nanmax(f0):.1f}, quantised to 1/64, "
            f"{f0.nbytes / 1e6:.2f} MB raw per slice; {cfg.runs} runs × {cfg.steps} steps "
            "written per variant."
        )
        if "1" in args.sections:
            parts.append(
                "## 1. Spatial chunk size (zstd level 3)\n\n"
                + field_desc
                + "\n\n"
                + section_chunks(cfg, fields, root)
            )
        if "2" in args.sections:
            parts.append(
                "## 2. Compression (512×512 chunks)\n\n"
                + field_desc
                + "\n\n"
                + section_codecs(cfg, fields, root)
            )
        if "3" in args.sections:
            parts.append(
                f"## 3. Opening cost vs number of runs ({cfg.open_steps} steps, 16×16 spatial)\n\n"
                + section_open(cfg, root)
            )
        if "4" in args.sections:
            parts.append(
                "## 4. Layout: dense `step` axis vs `valid_time` axis\n\n"
                + section_layout(cfg, fields, root)
            )
    finally:
        _, used, _ = dir_usage(root)
        shutil.rmtree(root, ignore_errors=True)
        log(f"removed {root} ({fmt_bytes(used)} were still in it)")
    elapsed = time.perf_counter() - t_start
    cmd = " ".join([".venv/bin/python", "benchmarks/cube_layout.py", *(argv or sys.argv[1:])])
    header = (
        "# Forecast cube layout measurements\n\n"
        f"Generated by `benchmarks/cube_layout.py` on {time.strftime('%Y-%m-%d %H:%M:%S %Z')}, "
        f"total wall time {elapsed:.0f} s.\n\n"
        f"Command (from repo root): `{cmd}`\n\n"
        "Timings: milliseconds, `median (min–max, n=…)`, warm page cache (an untimed pass over "
        "the same chunks precedes each timed loop; variants of one table are written and read "
        "interleaved, round-robin with rotating order, to spread drift evenly), zarr-python "
        "read path "
        "(`zarr.open_group(path, mode='r', use_consolidated=True)` then `arr[r, s, ...]`) "
        "unless stated. Window offsets come from a fixed seed; 'chunks touched' is the mean "
        "number of spatial chunks a window intersects. 'allocated' = st_blocks×512 (ext4 4 KiB "
        "blocks). All-NaN chunks are not written (`write_empty_chunks=False`, zarr default).\n\n"
        "## Machine\n\n" + machine_facts()
    )
    report = header + "\n\n" + "\n\n".join(parts) + "\n"
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(report)
        log(f"wrote {args.out}")
    else:
        print(report)
    log(f"done in {elapsed:.1f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
