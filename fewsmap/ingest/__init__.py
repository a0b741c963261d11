"""Ingest NetCDF and GRIB files into a forecast cube: read, normalise, check, then append.

Everything that can fail on the input (unreadable or damaged files, missing time axis,
another grid) fails before the store is touched, so a failed ingest writes nothing.
"""

from __future__ import annotations

import gc
import itertools
import math
import stat
from collections import defaultdict
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import numpy as np
import xarray as xr

from fewsmap.errors import IngestError
from fewsmap.ingest.limits import IngestLimits, check_run_size
from fewsmap.ingest.normalize import RunPiece, normalise
from fewsmap.ingest.sources import open_source
from fewsmap.products.accumulate import per_step_pieces
from fewsmap.store.cube import is_store, read_root_metadata
from fewsmap.store.layout import RUN_DIM
from fewsmap.store.run import RunData, SourceFile
from fewsmap.store.writer import IN_PROCESS, AppendResult, Executor, append_run, stored_grid
from fewsmap.time.instants import format_time

# Runs up to this size are decoded into memory before writing (one read, validated);
# larger ones are read twice, once to validate and once to write.
PRELOAD_LIMIT_BYTES = 4 << 30


def expand_paths(paths: list[Path]) -> list[Path]:
    """Replace folders by the regular files inside them (sorted); refuse anything else.

    A device, pipe or socket (``/dev/zero``, a FIFO) would be read forever: refused by name.
    """
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.is_file() and
                           not p.name.startswith("."))
            if not found:
                raise IngestError(f"{path}: folder holds no input files")
            files += found
        elif path.is_file():
            files.append(path)
        elif path.exists():
            raise IngestError(f"{path}: not a regular file ({_kind(path)})")
        else:
            raise IngestError(f"{path}: no such file or folder")
    if not files:
        raise IngestError("no input files")
    return files


def _kind(path: Path) -> str:
    mode = path.stat().st_mode
    for test, name in ((stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISFIFO, "a named pipe"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a file or folder"


def read_runs(paths: list[Path], reference_time: np.datetime64 | None = None,
              limits: IngestLimits | None = None, *, lazy: bool = False,
              executor: Executor | None = None) -> list[RunData]:
    """Read and normalise input files into complete, validated runs, oldest first.

    Files with the same reference time are one run (members or variables spread over
    files); one file may also hold several runs. Sizes are checked against ``limits``
    before data is read. ``lazy`` reads headers and coordinates only: the fields stay
    lazy (dask), to be read and checked wherever they are written (a dask worker).
    ``executor`` hashes the files for the run records (there: every byte is read).

    Raises
    ------
    IngestError
        Naming the file and the problem.
    """
    limits = limits or IngestLimits()
    pieces: dict[np.datetime64, list[RunPiece]] = defaultdict(list)
    for path in expand_paths(paths):
        path = path.absolute() if lazy else path  # workers may run in another folder
        for ds in open_source(path, limits, lazy=lazy):
            for piece in _normalised(ds, path, reference_time):
                pieces[piece.reference_time].append(piece)
    files = list(dict.fromkeys(p.source for ps in pieces.values() for p in ps))
    described = dict(zip(files, (executor or IN_PROCESS).map(SourceFile.describe, files),
                         strict=True))
    runs = [_assemble(t0, pieces[t0], described) for t0 in sorted(pieces)]
    for run in runs:
        check_run_size(run.label, sum(p.size for ps in run.fields.values() for p in ps), limits)
        if not lazy:
            _load(run)
    return runs


def _normalised(ds: xr.Dataset, path: Path,
                reference_time: np.datetime64 | None) -> list[RunPiece]:
    """``normalise``, with any reader failure on a hostile file named as an IngestError."""
    try:
        return normalise(ds, path, reference_time)
    except IngestError:
        raise
    except Exception as exc:  # odd files make xarray/numpy raise anything
        raise IngestError(f"{path}: cannot be understood: {type(exc).__name__}: {exc}") from exc


def ingest(
    store: Path | str,
    paths: list[Path],
    *,
    reference_time: np.datetime64 | None = None,
    replace: bool = False,
    progress: bool | None = None,
    limits: IngestLimits | None = None,
    missing_values: Mapping[str, float] | None = None,
    executor: Executor | None = None,
    series_copy: bool = True,
) -> list[AppendResult]:
    """Append the runs found in ``paths`` to ``store``; write nothing if any input is bad.

    ``missing_values`` names, per variable, a value that means "no value" in the files
    (written as NaN, left out of the run's statistics and recorded in its run record).
    The inputs' headers and coordinates are read here; their fields are read where each
    piece is written (one step at a time), so memory stays bounded whatever the run's size
    (a 10 GB run: 350 MB, `benchmarks/ingest_throughput.py`), and damaged data fails the
    write, which is undone. ``executor`` writes the pieces and hashes the inputs elsewhere
    (dask workers, `fewsmap.ingest.distributed`). ``series_copy`` False writes no
    time-chunked copy (`fewsmap.store.writer.append_run`).

    Raises
    ------
    IngestError
        If any input cannot be read, exceeds ``limits`` or does not fit the store, or a
        missing value names a variable the files do not hold.
    """
    with long_lived_objects_frozen():
        runs = [with_missing_values(run, missing_values or {}) for run in
                read_runs(paths, reference_time, limits, lazy=True, executor=executor)]
        check_fits(store, runs)
        return [append_run(store, run, replace=replace, progress=progress, executor=executor,
                           series_copy=series_copy)
                for run in runs]


@contextmanager
def long_lived_objects_frozen() -> Iterator[None]:
    """Keep the garbage collector off the objects that exist when the block starts.

    After importing xarray, dask, zarr and numba a process holds about a million objects,
    which every full collection traversed again: 5-7 % of an ingest's CPU (`perf`, an
    ensemble run of 721 × 1440 fields). Objects made inside the block are collected as
    ever; on leaving it the frozen ones are collectable again.
    """
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def with_missing_values(run: RunData, missing_values: Mapping[str, float]) -> RunData:
    """``run`` with ``missing_values`` to write as NaN.

    Raises
    ------
    IngestError
        If a variable is not in the run, or a value is not a finite number.
    """
    unknown = sorted(set(missing_values) - set(run.variables))
    if unknown:
        raise IngestError(f"run {run.label}: missing values for {', '.join(unknown)}, which "
                          f"it does not hold; it holds {', '.join(run.variables)}")
    bad = {name: value for name, value in missing_values.items()
           if isinstance(value, bool) or not isinstance(value, int | float)
           or not math.isfinite(value)}
    if bad:
        raise IngestError(f"missing values must be finite numbers, not {bad}")
    return replace(run, missing_values={n: float(v) for n, v in missing_values.items()})


def check_fits(store: Path | str, runs: list[RunData]) -> None:
    """Refuse runs that differ from the store (or from each other) in grid or dimensions."""
    exists = is_store(store)  # not after a creation that was interrupted
    reference = stored_grid(store) if exists else runs[0].grid
    dims: dict[str, tuple[str, ...]] = {}
    if exists:
        consolidated = read_root_metadata(store)["consolidated_metadata"]["metadata"]
        dims = {name: tuple(meta.get("dimension_names") or ()) for name, meta in
                consolidated.items()}
    for run in runs:
        problem = reference.mismatch(run.grid)
        if problem is not None:
            raise IngestError(
                f"run {run.label} ({_files(run)}) does not fit the store's grid: it has {problem}"
            )
        for name in run.variables:
            theirs = (RUN_DIM, *run.dims(name))
            ours = dims.setdefault(name, theirs)
            if ours != theirs:
                raise IngestError(
                    f"run {run.label} ({_files(run)}): variable '{name}' has dimensions "
                    f"{theirs[1:]}, the store has {ours[1:]}"
                )


def _assemble(t0: np.datetime64, pieces: list[RunPiece],
              described: Mapping[Path, SourceFile]) -> RunData:
    """Join the pieces of one run, checking they share a grid and never overlap.

    ``described`` holds the description (hash) of every input file.
    """
    first = pieces[0]
    fields: dict[str, list[xr.DataArray]] = defaultdict(list)
    seen: dict[tuple[object, ...], Path] = {}
    for piece in pieces:
        problem = first.grid.mismatch(piece.grid)
        if problem is not None:
            raise IngestError(
                f"{piece.source}: run {format_time(t0)} is on another grid than in "
                f"{first.source}: {problem}"
            )
        for name, field in piece.fields.items():
            if fields[name] and fields[name][0].dims != field.dims:
                raise IngestError(
                    f"{piece.source}: variable '{name}' has dimensions {field.dims}, "
                    f"{fields[name][0].dims} in another file of run {format_time(t0)}"
                )
            for labels in itertools.product(*(field[d].values.tolist() for d in field.dims[:-2])):
                key = (name, *labels)
                if key in seen:
                    raise IngestError(
                        f"{piece.source}: field {name} {labels} of run {format_time(t0)} "
                        f"is also in {seen[key]}"
                    )
                seen[key] = piece.source
            field = field.copy(deep=False)
            field.encoding["source"] = str(piece.source)  # named by write errors
            fields[name].append(field)
    sources = tuple(described[p] for p in dict.fromkeys(p.source for p in pieces))
    origins = sorted({p.reference_time_from for p in pieces})
    return RunData(
        reference_time=t0,
        # GRIB accumulations since the run started are stored per step (docs/design)
        fields={name: per_step_pieces(parts) for name, parts in fields.items()},
        grid=first.grid,
        sources=sources,
        reference_time_from="; ".join(origins),
        attrs=first.attrs,
    )


def _load(run: RunData) -> None:
    """Decode every field once, so that damaged data fails here and not half-way a write."""
    size = sum(p.nbytes for ps in run.fields.values() for p in ps)
    for name, parts in run.fields.items():
        for part in parts:
            try:
                if size <= PRELOAD_LIMIT_BYTES:
                    part.load()
                else:
                    for index in np.ndindex(*part.shape[:-2]):
                        np.asarray(part[index].values)
            except Exception as exc:  # readers raise anything when data is damaged
                raise IngestError(
                    f"run {run.label} ({_files(run)}): '{name}' cannot be decoded: {exc}"
                ) from exc


def _files(run: RunData) -> str:
    names = [Path(s.path).name for s in run.sources]
    return ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
