"""Append runs to a forecast cube: write what readers cannot see, then publish atomically.

Protocol (docs/design/cube.md):

1. Take the store's writer lock; recover from an interrupted writer if its marker is there.
2. Grow the arrays (run axis by one slot, label axes by any new labels): only the arrays'
   own ``zarr.json`` change, which readers ignore: they read the consolidated root.
3. Write the run's chunks into its new slot, then its coordinate entries.
4. Publish: replace the root ``zarr.json`` (consolidated metadata + run list) in one atomic
   step (a rename locally, a conditional PUT in object storage: fewsmap.store.backend).
   Until then readers see the previous state; afterwards, the complete run.
"""

from __future__ import annotations

import itertools
import json
import os
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Protocol, TypeVar

import numba
import numpy as np
import xarray as xr
import zarr
from tqdm import tqdm

from fewsmap import __version__
from fewsmap.errors import ConfigError, IngestError
from fewsmap.store.backend import Backend, LocalBackend, StoreVersion, backend_of
from fewsmap.store.chunk_writes import write_fields
from fewsmap.store.cube import (
    ROOT_METADATA,
    array_of,
    dimension_names,
    quiet_zarr,
    read_root_metadata,
)
from fewsmap.store.layout import (
    ATTRS_KEY,
    COORD_CHUNK,
    FORMAT_VERSION,
    GRID_MAPPING,
    MEMBER_DIM,
    NAT,
    RUN_DIM,
    STEP_ATTRS,
    STEP_DIM,
    TIME_ATTRS,
    VALID_TIME,
    VALID_TIME_STEPS,
    coordinate_codec,
    data_chunks,
    data_codec,
    format_indices,
    has_field_blocks,
)
from fewsmap.store.location import Location
from fewsmap.store.overviews import (
    RUN_LEVELS,
    ensure_levels,
    is_categorical,
    level_fields,
    level_path,
)
from fewsmap.store.run import Grid, RunData
from fewsmap.store.series import RECORD_KEY as SERIES_KEY
from fewsmap.store.series import create_copy, needs_copy, write_copies, write_piece_copy
from fewsmap.time.instants import format_time

_Item = TypeVar("_Item")
_Result = TypeVar("_Result")

# A replaced run's chunks stay this long so that readers holding the old metadata finish.
RETIRED_GRACE_S = 600.0
# Above this size a piece is written one step at a time.
WRITE_BATCH_BYTES = 256 << 20
# Statistics of pieces of at least this many values are taken by a compiled loop (numba's
# first use in a process costs a second or two: a run of tiny grids never pays it).
COMPILED_STATISTICS = 1 << 20
# Pieces written at once by an ingest without dask (`InProcess`), at most one per core.
INGEST_THREADS = 2
# Dataset-level attributes worth keeping on the cube's root group.
GLOBAL_ATTRS = ("Conventions", "title", "institution", "source", "references", "summary")


@dataclass(frozen=True)
class AppendResult:
    """What ``append_run`` did with a run."""

    reference_time: str
    status: Literal["written", "replaced", "skipped"]
    message: str


def append_run(
    location: Location | Backend, run: RunData, *, replace: bool = False,
    progress: bool | None = None, executor: Executor | None = None, overviews: bool = True,
    series_copy: bool = True,
) -> AppendResult:
    """Append one run to the store at ``location``, creating the store if needed.

    ``executor`` writes the run's pieces (default: a few threads of this process).
    ``overviews`` writes the run's overview levels where the grid is larger than a chunk
    (`fewsmap.store.overviews`); False writes full resolution only, as fewsmap did before.
    ``series_copy`` writes the run into the time-chunked copy of its variables
    (`fewsmap.store.series`): point series read 10-50x faster, for about twice the bytes
    written and stored (docs/design/cube.md, "The time-series copy"); a store's runs may
    differ (each run record lists the variables it copied).

    Re-ingesting a published run is idempotent: it is skipped, unless ``replace`` is set, in
    which case the new data is published atomically in place of the old.

    Raises
    ------
    IngestError
        If the run does not fit the store (other grid, other dimensions of a variable).
    ConfigError
        If ``location`` is a URL fewsmap cannot write to (`store_location`).
    """
    store = writable_backend(location)
    with store.lock():
        if _creation_needed(store):
            _create_store(store, run)
        recover(store)
        published = store.version()  # what this writer's publish replaces (If-Match)
        attrs = read_root_metadata(store)["attributes"][ATTRS_KEY]
        existing = next((r for r in attrs["runs"] if r["reference_time"] == run.label), None)
        if existing is not None and not replace:
            return AppendResult(run.label, "skipped", _skip_message(run, existing))
        _check_grid(store, run)
        run = _fit_stored_dimensions(store, run)
        with unpublished_changes(store):
            attrs = vacuum_retired(store, attrs)
            slot, attrs, published, previous = reserve_slot(store, attrs, published)
            with reservation_undone_on_failure(store, previous, published):
                record = _write_run(store, run, progress, executor, overviews, series_copy)
            assert record["slot"] == slot, "the run went into its reserved slot"
            store.make_durable(record["slot"])  # durable before published (power loss)
            runs = [r for r in attrs["runs"] if r["reference_time"] != run.label] + [record]
            retired = list(attrs.get("retired", []))
            if existing is not None:
                retired.append({**_slot_ref(existing), "retired_at": _now()})
            publish(store, {**attrs, "runs": runs, "retired": retired, "reserved": []},
                    published)
    if existing is not None:
        return AppendResult(run.label, "replaced", f"run {run.label} replaced")
    return AppendResult(run.label, "written", f"run {run.label} written")


def writable_backend(location: Location | Backend) -> Backend:
    """The backend of a store a writer may change.

    Raises
    ------
    ConfigError
        If the location is a URL fewsmap cannot reach, or a read-only one (http(s)://).
    """
    store = backend_of(location)
    if not store.writable:
        raise ConfigError(f"store {store.location} is read-only (http(s)://): ingest and "
                          "prune write to a folder or an s3:// location")
    return store


def writing_marker(path: Path) -> Path:
    """The file that exists while a writer changes a local store; left behind by a crash.

    It and the lock live beside the store, so the store folder holds only Zarr objects.
    """
    return LocalBackend(path).marker_path


@contextmanager
def unpublished_changes(store: Backend) -> Iterator[None]:
    """Mark the store as being changed; undo every unpublished change if the block fails.

    A crash inside the block leaves the marker, and the next writer undoes the changes
    (``recover``); an exception undoes them at once, so the store is left as it was.
    """
    store.marker(True)
    try:
        yield
    except Exception:
        if store.holding():  # else another writer may be at work: it recovers, not us
            recover(store)
        raise
    store.marker(False)


def writer_lock(location: Location | Backend) -> AbstractContextManager[None]:
    """Hold the store's exclusive writer lock (one writer at a time, readers never wait)."""
    return backend_of(location).lock()


def reserve_slot(store: Backend, attrs: dict[str, Any], published: StoreVersion
                 ) -> tuple[int, dict[str, Any], StoreVersion, bytes]:
    """Claim the run slot this writer will write, in the manifest, before writing it.

    A slot is never written by two writers: one whose lease lapsed while it wrote (a paused
    process) keeps writing only into its own reservation, which the next writer retires
    instead of reusing (docs/design/object-storage.md, "Why the reservation"). Reservations
    left by writers that never published are retired here, and their chunks vacuumed after
    the grace period like a replaced run's. The run axis is grown to the slot, so the run
    is written there. Returns the slot, the attributes published, their version and the
    manifest as it was (to put back if the write fails).
    """
    previous = store.read(ROOT_METADATA)
    assert previous is not None, "a store's manifest exists once it is created"
    root = json.loads(previous)
    axis = int(root["consolidated_metadata"]["metadata"][RUN_DIM]["shape"][0])
    abandoned = [int(s) for s in attrs.get("reserved", [])]
    taken = [int(r["slot"]) for r in (*attrs["runs"], *attrs.get("retired", []))]
    slot = max([axis, *(s + 1 for s in (*taken, *abandoned))])
    retired = [*attrs.get("retired", []), *(
        {"slot": s, "reference_time": "unpublished", "retired_at": _now()} for s in abandoned)]
    attrs = {**attrs, "retired": retired, "reserved": [slot]}
    # Only the attributes change: the arrays' metadata stays the one published.
    root["attributes"][ATTRS_KEY] = attrs
    store.check_held()
    version = store.replace_root(json.dumps(root, indent=1).encode(), published)
    with quiet_zarr():
        group = zarr.open_group(store.zarr_store(writable=True), mode="r+",
                                use_consolidated=False)
    _grow(group, RUN_DIM, slot)
    return slot, attrs, version, previous


@contextmanager
def reservation_undone_on_failure(store: Backend, previous: bytes,
                                  reserved: StoreVersion) -> Iterator[None]:
    """Put the manifest back as it was if the block fails, so a failed write leaves the
    store as it was (a crash leaves the reservation, which the next writer retires)."""
    try:
        yield
    except Exception:
        if store.holding():
            store.replace_root(previous, reserved)
        raise


def publish(location: Location | Backend, attrs: dict[str, Any],
            expected: StoreVersion | None = None) -> StoreVersion:
    """Atomically replace the root metadata: consolidated array metadata and the run list;
    return the new version.

    ``expected`` is the version the writer read under its lock: in object storage the
    replacement is conditional on it (a writer whose lease lapsed cannot publish).
    """
    store = backend_of(location)
    root = store.read_json(ROOT_METADATA)
    assert root is not None, "publish follows the creation of the root group"
    metadata = dict(_nodes(store))
    root["attributes"][ATTRS_KEY] = attrs
    root["consolidated_metadata"] = {"kind": "inline", "must_understand": False,
                                     "metadata": metadata}
    expected = expected or store.version()
    store.check_held()
    return store.replace_root(json.dumps(root, indent=1).encode(), expected)


def recover(location: Location | Backend) -> None:
    """Undo whatever an interrupted writer left: unpublished arrays, growth and temp files.

    The consolidated root metadata is the truth; every array is put back to the shape and
    attributes published there, which deletes chunks outside it (an unfinished run's slot).
    """
    store = backend_of(location)
    if not store.marker():
        return
    published = read_root_metadata(store)["consolidated_metadata"]["metadata"]
    _put_back(store, published, store.zarr_store(writable=True))
    store.remove_temporaries()
    store.marker(False)


def _put_back(store: Backend, published: dict[str, Any], zarr_store: Any,
              prefix: str = "") -> None:
    """Put every node under group ``prefix`` back as ``published`` (flat paths) has it:
    delete the unpublished ones, shrink grown arrays, descend into groups (overviews)."""
    for path, own in _nodes(store, prefix, descend=False):
        if path not in published:
            store.delete_tree(path)
            continue
        if own.get("node_type") == "group":
            _put_back(store, published, zarr_store, path)
        if own == published[path]:
            continue
        if own.get("node_type") == "array":
            with quiet_zarr():
                zarr.open_array(zarr_store, path=path, mode="r+").resize(
                    tuple(published[path]["shape"]))
        # zarr rewrote the metadata with the published shape, normally all that changed.
        if store.read_json(f"{path}/{ROOT_METADATA}") != published[path]:
            store.write(f"{path}/{ROOT_METADATA}", json.dumps(published[path]).encode())


def _nodes(store: Backend, prefix: str = "", descend: bool = True
           ) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every array and group under group ``prefix`` (all of the store by default): its path
    and own metadata; groups' members too where ``descend`` (the overview levels)."""
    for name in store.children(prefix):
        path = f"{prefix}/{name}" if prefix else name
        own = store.read_json(f"{path}/{ROOT_METADATA}")
        if own is None:  # a leftover file (*.partial) or folder of an interrupted writer
            continue
        yield path, own
        if descend and own.get("node_type") == "group":
            yield from _nodes(store, path)


def every_array(group: zarr.Group) -> list[tuple[str, zarr.Array[Any]]]:
    """Every array of the store with its path: the root's and the overview levels'."""
    return [(path, node) for path, node in group.members(max_depth=None)
            if isinstance(node, zarr.Array)]


def _creation_needed(store: Backend) -> bool:
    """Tell whether no store was ever published at ``store``.

    zarr writes a root ``zarr.json`` as soon as the group is created, so a creation that was
    interrupted leaves one without fewsmap attributes, beside the writing marker.
    """
    try:
        root = store.read_json(ROOT_METADATA)
    except ValueError:
        return True
    if root is None:
        return True
    if not store.marker():
        return False
    return ATTRS_KEY not in root.get("attributes", {})


def _create_store(store: Backend, run: RunData) -> None:
    """Create an empty cube on ``run``'s grid and publish it with no runs.

    Raises
    ------
    IngestError
        If the location holds objects that are not the leftovers of an interrupted creation.
    """
    leftovers = store.children()
    if leftovers and not store.marker():
        raise IngestError(f"{store.location} is neither empty nor a fewsmap store: refusing "
                          "to write there")
    store.marker(True)
    for leftover in leftovers:  # an interrupted creation: nothing was ever published
        store.delete_tree(leftover)
    group = zarr.open_group(store.zarr_store(writable=True), mode="w", zarr_format=3)
    _array(group, RUN_DIM, (0,), "int64", (RUN_DIM,), {**TIME_ATTRS, "standard_name": RUN_DIM,
           "long_name": "forecast reference time"}, NAT)
    _array(group, STEP_DIM, (0,), "int64", (STEP_DIM,), STEP_ATTRS, NAT)
    _array(group, VALID_TIME, (0, 0), "int64", (RUN_DIM, STEP_DIM),
           {**TIME_ATTRS, "standard_name": "time", "long_name": "valid time"}, NAT)
    for dim in run.label_dims():
        _label_axis_array(group, dim, run)
    for name, coord in run.grid.coords.items():
        values = np.asarray(coord.values, dtype="float64")
        array = _array(group, name, values.shape, "float64", coord.dims,
                       _json_attrs(coord.attrs), np.nan)
        array[...] = values
    crs = group.create_array(GRID_MAPPING, shape=(), dtype="int32", fill_value=0,
                             attributes=_json_attrs(run.grid.crs_attrs))
    crs[...] = 0
    globals_ = {k: str(run.attrs[k]) for k in GLOBAL_ATTRS if k in run.attrs}
    group.attrs.update({**globals_, "Conventions": "CF-1.10"})
    publish(store, {
        "format_version": FORMAT_VERSION,
        "spatial_dims": list(run.grid.dims),
        "created": _now(),
        "runs": [],
        "retired": [],
    })
    store.marker(False)


def _label_axis_array(group: zarr.Group, dim: str, run: RunData) -> zarr.Array[Any]:
    """Create the empty coordinate array of a member or level axis."""
    dtype = "int64" if dim == MEMBER_DIM else "float64"
    return _array(group, dim, (0,), dtype, (dim,), _json_attrs(run.coord_attrs(dim)), 0)


def _array(group: zarr.Group, name: str, shape: tuple[int, ...], dtype: str,
           dims: tuple[Any, ...], attrs: dict[str, Any], fill: Any) -> zarr.Array[Any]:
    """Create a coordinate array, chunked along each axis by ``COORD_CHUNK`` entries."""
    chunks: tuple[int, ...] = (COORD_CHUNK,)
    if name == VALID_TIME:
        chunks = (COORD_CHUNK, VALID_TIME_STEPS)
    elif len(shape) == 2:  # 2-D spatial coordinates: spatial tiles
        chunks = data_chunks(shape, 2)
    return group.create_array(
        name, shape=shape, chunks=chunks, dtype=dtype, fill_value=fill,
        dimension_names=[str(d) for d in dims], attributes=attrs,
        compressors=coordinate_codec(),
    )


def _check_grid(store: Backend, run: RunData) -> None:
    """Refuse a run whose spatial grid differs from the store's."""
    stored = stored_grid(store)
    problem = stored.mismatch(run.grid)
    if problem is not None:
        raise IngestError(f"run {run.label} does not fit the store's grid: it has {problem}")


def _fit_stored_dimensions(store: Backend, run: RunData) -> RunData:
    """Drop a length-1 level from pieces of a variable the store holds without it.

    Ingest keeps a single level (geopotential at 850 hPa) as a level dimension of length 1;
    stores written before kept none, and their variables' arrays must keep their shape.
    """
    with quiet_zarr():
        group = zarr.open_group(store.zarr_store(), mode="r", use_consolidated=True)
    fields = {}
    for name, pieces in run.fields.items():
        stored = dimension_names(array_of(group, name))[1:] if name in group else None
        fields[name] = pieces if stored is None else tuple(
            piece.squeeze([d for d in piece.dims if d not in stored and piece.sizes[d] == 1
                           and piece[d].attrs.get("axis") == "Z"], drop=True)
            for piece in pieces)
    return replace(run, fields=fields)


def stored_grid(location: Location | Backend) -> Grid:
    """Read the published grid of the store at ``location``."""
    with quiet_zarr():
        group = zarr.open_group(backend_of(location).zarr_store(), mode="r",
                                use_consolidated=True)
    cube_attrs: Any = group.attrs[ATTRS_KEY]
    dims = tuple(cube_attrs["spatial_dims"])
    coords = {}
    for name, array in group.arrays():
        array_dims = dimension_names(array)
        if array_dims and set(array_dims) <= set(dims):
            coords[name] = xr.DataArray(array[...], dims=array_dims, attrs=dict(array.attrs))
    return Grid((str(dims[0]), str(dims[1])), coords, dict(array_of(group, GRID_MAPPING).attrs))


def _write_run(store: Backend, run: RunData, progress: bool | None,
               executor: Executor | None = None, overviews: bool = True,
               series_copy: bool = True) -> dict[str, Any]:
    """Write ``run`` into a new slot (invisible until published); return its run record.

    The store's metadata (slot, axes, arrays) is changed here, in this process; the pieces'
    chunks are written by ``executor`` (in this process by default, or by dask workers,
    `fewsmap.ingest.distributed`), whose statistics and presence are merged here.
    """
    with quiet_zarr():
        group = zarr.open_group(store.zarr_store(writable=True), mode="r+",
                                use_consolidated=False)
    slot = array_of(group, RUN_DIM).shape[0]
    _grow(group, RUN_DIM, slot + 1)
    axes = {STEP_DIM: _LabelAxis(group, STEP_DIM, _step_seconds)}
    for dim in run.label_dims():
        if dim not in group:  # the store's earlier runs had no members (or no such level)
            _label_axis_array(group, dim, run)
        axes[dim] = _LabelAxis(group, dim, np.asarray)
    step_seconds = _step_seconds(run.steps)
    axes[STEP_DIM].place(step_seconds)
    for dim in run.label_dims():
        axes[dim].place(run.labels(dim))
    location = _shared_location(store)
    writes = [w for name in run.variables
              for w in _variable_writes(group, location, name, run, slot, axes, overviews,
                                        series_copy)]
    statistics = {name: _Statistics() for name in run.variables}
    presence = {name: _Presence(run.dims(name)[:-2], axes) for name in run.variables}
    with tqdm(total=sum(w.fields for w in writes), desc=f"run {run.label}", unit="field",
              leave=False, disable=None if progress is None else not progress) as bar:
        results = (executor or IN_PROCESS).map(write_piece, writes,
                                                lambda done: bar.update(done.fields))
    for write, result in zip(writes, results, strict=True):  # in order: the same sums
        statistics[write.variable].merge(result.statistics)
        presence[write.variable].mark(result.held, write.where)
    # The copy of what no piece copied from memory, read back from the variable.
    series = {w.variable for w in writes if w.series} | set(write_copies(
        group, location, slot, _labels_left(writes), executor or IN_PROCESS)) \
        if series_copy else set()
    # The pieces went into this writer's own slot; the coordinate chunks below hold other
    # runs' entries too, so a writer whose lease lapsed meanwhile stops here.
    store.check_held()
    t0 = int(run.reference_time.astype("datetime64[s]").astype("int64"))
    array_of(group, RUN_DIM)[slot] = t0
    row = np.full(array_of(group, STEP_DIM).shape[0], NAT, dtype="int64")
    row[axes[STEP_DIM].place(step_seconds)] = t0 + step_seconds
    array_of(group, VALID_TIME)[slot, :] = row
    return {
        "slot": slot,
        "reference_time": run.label,
        "reference_time_from": run.reference_time_from,
        "ingested_at": _now(),
        "fewsmap_version": __version__,
        "steps": len(step_seconds),
        "first_valid_time": format_time(run.reference_time + run.steps.min()),
        "last_valid_time": format_time(run.reference_time + run.steps.max()),
        "variables": run.variables,
        "sources": [vars(s) for s in run.sources],
        "statistics": {name: s.summary() for name, s in statistics.items()},
        "present": {name: p.record() for name, p in presence.items()},
        **({RUN_LEVELS: levels} if (levels := max((w.overview_levels for w in writes),
                                                  default=0)) else {}),
        **({"missing_values": run.missing_values} if run.missing_values else {}),
        **({"accumulation": accumulations} if (accumulations := run.accumulations) else {}),
        **({SERIES_KEY: sorted(series)} if series else {}),
    }


def _labels_left(writes: Sequence[PieceWrite]) -> dict[str, list[tuple[int, ...]]]:
    """By variable, the member/level combinations (store indices) its pieces wrote but did
    not copy into the time-chunked copy."""
    found: dict[str, set[tuple[int, ...]]] = {}
    for write in writes:
        combos = found.setdefault(write.variable, set())
        if not write.series:
            combos.update(_combinations(write))
    return {variable: sorted(combos) for variable, combos in found.items()}


def _combinations(write: PieceWrite) -> list[tuple[int, ...]]:
    """The member/level combinations (store indices) a piece writes."""
    return list(itertools.product(*(map(int, w) for w in write.where[1:])))


def _step_seconds(steps: np.ndarray) -> np.ndarray:
    return np.asarray(steps).astype("timedelta64[s]").astype("int64")


def _grow(group: zarr.Group, dim: str, size: int) -> None:
    """Resize every array along ``dim`` to ``size`` (no-op where already that size)."""
    for _, array in every_array(group):
        dims = list(dimension_names(array))
        if dim in dims and array.shape[dims.index(dim)] < size:
            shape = list(array.shape)
            shape[dims.index(dim)] = size
            array.resize(tuple(shape))


class _LabelAxis:
    """A labelled store axis (steps, members, levels) that only ever grows at its end.

    Appending keeps every published chunk where it is; readers sort for display.
    """

    def __init__(self, group: zarr.Group, dim: str, encode: Any) -> None:
        self.group, self.dim, self.encode = group, dim, encode
        self.index = {v.item(): i for i, v in enumerate(np.asarray(array_of(group, dim)[...]))}

    def place(self, labels: np.ndarray) -> np.ndarray:
        """Return each label's index on the axis, appending unseen labels."""
        values = np.asarray(self.encode(labels)).tolist()
        new = [v for v in dict.fromkeys(values) if v not in self.index]
        if new:
            start = len(self.index)
            _grow(self.group, self.dim, start + len(new))
            axis = array_of(self.group, self.dim)
            axis[start:] = np.asarray(new, dtype=axis.dtype)
            self.index.update({v: start + i for i, v in enumerate(new)})
        return np.asarray([self.index[v] for v in values], dtype="int64")


@dataclass(frozen=True, eq=False)
class PieceWrite:
    """One piece of a run (or one step of a big piece) to write into the run's slot.

    Self-contained, so that a dask worker can do it: ``values`` are in memory, or lazy
    (dask) and read from the input file wherever the write runs; ``store`` is the store's
    location as text.
    """

    store: str
    variable: str
    slot: int
    values: xr.DataArray
    # The store indices along each dimension between the run and the two spatial ones.
    where: tuple[np.ndarray, ...]
    missing_value: float | None
    source: str
    # Overview levels to write from the piece's values (`fewsmap.store.overviews`).
    overview_levels: int = 0
    # Which fields of ``values`` came from the run (a merged write's holes do not count).
    covered: np.ndarray | None = None
    # Whether to write the piece's shards of the time-chunked copy from its values: it
    # holds every step the run has of its members/levels (`fewsmap.store.series`).
    series: bool = False

    def __str__(self) -> str:
        return f"{self.source}: '{self.variable}'"

    @property
    def fields(self) -> int:
        """How many 2-D fields the piece holds."""
        return int(np.prod(self.values.shape[:-2]))


@dataclass(frozen=True)
class PieceResult:
    """What writing a piece found: its statistics and which of its fields hold any value."""

    statistics: _Statistics
    held: np.ndarray
    fields: int


class Executor(Protocol):
    """Where an ingest's work per piece or file runs: this process, or dask workers
    (`fewsmap.ingest.distributed.DaskExecutor`)."""

    def map(self, function: Callable[[_Item], _Result], items: Sequence[_Item],
            done: Callable[[_Result], None] | None = None) -> list[_Result]:
        """Apply ``function`` to every item, anywhere, in any order; return the results in
        the items' order and call ``done`` with each as it comes (progress).

        Raises
        ------
        FewsmapError
            The first failed item's, after every item's work has finished or failed.
        """


class InProcess:
    """The ``Executor`` of an ingest without dask: the items on a few threads of this process.

    Compressing (blosc), overview sums (numba), hashing and file writes release the GIL, so
    two pieces written at once keep both cores of a small machine busy where one left the
    second idle (benchmarks/results/ingest_throughput.md). Readers of input files serialise
    themselves (xarray's HDF5 and ecCodes locks); memory holds ``threads`` pieces at most.
    """

    def __init__(self, threads: int | None = None) -> None:
        self.threads = threads or min(INGEST_THREADS, os.cpu_count() or 1)

    def map(self, function: Callable[[_Item], _Result], items: Sequence[_Item],
            done: Callable[[_Result], None] | None = None) -> list[_Result]:
        """Apply ``function`` to every item (see ``Executor.map``); every item's work has
        ended when this returns or raises, so nothing writes into a slot being undone."""
        if self.threads < 2 or len(items) < 2:
            return _serially(function, items, done)
        with ThreadPoolExecutor(self.threads, thread_name_prefix="fewsmap-ingest") as pool:
            futures = [pool.submit(function, item) for item in items]
            for future in as_completed(futures):
                if done is not None and future.exception() is None:
                    done(future.result())
        failed = next((f.exception() for f in futures if f.exception() is not None), None)
        if failed is not None:
            raise failed
        return [future.result() for future in futures]


def _serially(function: Callable[[_Item], _Result], items: Sequence[_Item],
              done: Callable[[_Result], None] | None) -> list[_Result]:
    """Apply ``function`` to every item in turn, in this thread."""
    results = []
    for item in items:
        results.append(function(item))
        if done is not None:
            done(results[-1])
    return results


IN_PROCESS = InProcess()


def write_piece(write: PieceWrite) -> PieceResult:
    """Read one piece, write its chunks into the run's slot, return its statistics.

    Pieces never share a chunk (one chunk holds one field), so pieces may be written
    concurrently by many processes.

    Raises
    ------
    IngestError
        If the piece's data cannot be read from its input file.
    """
    values = _decoded(write)
    if write.missing_value is not None:  # a new array: the run's data stay untouched
        missing = values == np.float32(write.missing_value)
        values = np.where(missing, np.float32(np.nan), values)
    with quiet_zarr():
        group = zarr.open_group(backend_of(write.store).zarr_store(writable=True), mode="r+",
                                use_consolidated=False)
    selection = tuple(_as_slice(where) for where in write.where)
    write_fields(array_of(group, write.variable), write.slot, selection, values)
    # The run's overview levels go into its slot too (fewsmap.store.overviews).
    categorical = is_categorical(dict(array_of(group, write.variable).attrs))
    for level, fields in enumerate(level_fields(values, write.overview_levels, categorical),
                                   start=1):
        write_fields(array_of(group, level_path(level, write.variable)), write.slot,
                     selection, fields)
    if write.series:
        write_piece_copy(group, write.variable, write.slot, values, write.where)
    statistics = _Statistics()
    statistics.add(values if write.covered is None else values[write.covered])
    held = ~np.isnan(values).all(axis=(-2, -1))
    return PieceResult(statistics, held, int(held.size))


def _decoded(write: PieceWrite) -> np.ndarray:
    """The values of a piece as float32.

    Raises
    ------
    IngestError
        If they cannot be read from the piece's input file.
    """
    try:
        return np.asarray(write.values.values, dtype="float32")
    except Exception as exc:  # readers raise anything when data is damaged
        raise IngestError(f"{write} cannot be decoded: {type(exc).__name__}: {exc}") from exc


def _merged(writes: list[PieceWrite]) -> list[PieceWrite]:
    """A variable's writes as one, where its chunks hold several fields (a small field's
    layout, `fewsmap.store.layout.data_chunks`): pieces then share chunks, which two
    writers must never write at once, and one write of the whole run's block costs
    milliseconds where a write per field cost one each (docs/design/points.md).

    The block spans every index any piece wrote; fields no piece holds stay NaN (as
    unwritten chunks read) and are left out of the run's statistics.
    """
    if len(writes) < 2:
        return writes
    first = writes[0]
    where = tuple(np.unique(np.concatenate([w.where[k] for w in writes]))
                  for k in range(len(first.where)))
    block = np.full((*(w.size for w in where), *first.values.shape[-2:]), np.nan, "float32")
    covered = np.zeros(block.shape[:-2], dtype=bool)
    for write in writes:
        at = np.ix_(*(np.searchsorted(axis, w) for axis, w in zip(where, write.where,
                                                                   strict=True)))
        block[at] = _decoded(write)
        covered[at] = True
    values = xr.DataArray(block, dims=first.values.dims)
    return [replace(first, values=values, where=where, covered=covered,
                    source=first.source.split(" (")[0])]


def _as_slice(indices: np.ndarray) -> np.ndarray | slice:
    """Contiguous ascending store indices as a slice: zarr then knows each chunk is written
    whole and does not read it first (with index arrays it reads every chunk it writes:
    half the requests of an ingest to object storage, docs/design/object-storage.md)."""
    if indices.ndim == 1 and indices.size and np.array_equal(
            indices, np.arange(indices[0], indices[0] + indices.size)):
        return slice(int(indices[0]), int(indices[0]) + indices.size)
    return indices


def _shared_location(store: Backend) -> str:
    """The store's location as another process names it: a URL, or an absolute path (dask
    workers may run in another working folder)."""
    return str(store.path.absolute()) if isinstance(store, LocalBackend) else store.location


def _variable_writes(group: zarr.Group, store: str, name: str, run: RunData, slot: int,
                     axes: dict[str, _LabelAxis], overviews: bool = True,
                     series_copy: bool = True) -> list[PieceWrite]:
    """Create the array of one variable if the store has none (and its overview arrays and
    time-chunked copy, where it gets them); return its pieces' writes.

    A big piece is written one step at a time to bound memory; smaller ones whole, so that
    zarr writes their chunks concurrently. A piece written whole that alone holds its
    members/levels writes their time-chunked copy too, from memory.
    """
    dims = (RUN_DIM, *run.dims(name))
    if name not in group:
        shape = tuple(array_of(group, d).shape[0] if d in axes or d == RUN_DIM else n
                      for d, n in zip(dims, (0, *run.fields[name][0].shape), strict=True))
        attrs = {**_json_attrs(run.fields[name][0].attrs), "grid_mapping": GRID_MAPPING,
                 "coordinates": _coordinates_attr(run)}
        group.create_array(name, shape=shape, chunks=data_chunks(shape, 2), dtype="float32",
                           fill_value=np.nan, dimension_names=list(dims), attributes=attrs,
                           compressors=data_codec())
    array = array_of(group, name)
    if dimension_names(array) != dims:
        raise IngestError(
            f"run {run.label}: variable '{name}' has dimensions {dims[1:]}, "
            f"the store has {dimension_names(array)[1:]}"
        )
    levels = ensure_levels(group, name) if overviews else 0
    writes = []
    for piece in run.fields[name]:
        where = [axes[d].place(piece[d].values) for d in dims[1:-2]]
        steps = piece.sizes[STEP_DIM]
        batches = [slice(i, i + 1) for i in range(steps)] \
            if piece.nbytes > WRITE_BATCH_BYTES else [slice(None)]
        writes += [PieceWrite(store, name, slot, piece[batch], (where[0][batch], *where[1:]),
                              run.missing_values.get(name), _piece_source(run, piece),
                              levels)
                   for batch in batches]
    if has_field_blocks(array.chunks):
        return _merged(writes)
    if not (series_copy and needs_copy(array)):
        return writes
    create_copy(group, name)
    holders = Counter(c for w in writes for c in _combinations(w))
    return [replace(w, series=w.values.shape[0] == w.where[0].size == run.steps.size
                    and all(holders[c] == 1 for c in _combinations(w))) for w in writes]


class _Statistics:
    """Running min/max/mean and missing fraction over a variable's fields."""

    def __init__(self) -> None:
        self.min, self.max, self.sum = np.inf, -np.inf, 0.0
        self.count = self.missing = 0

    def add(self, field: np.ndarray) -> None:
        low, high, total, count = _finite_summary(np.ascontiguousarray(field).ravel()) \
            if field.size >= COMPILED_STATISTICS else _summary(field[np.isfinite(field)])
        self.missing += field.size - count
        if count:
            self.min, self.max = min(self.min, low), max(self.max, high)
            self.sum += total
            self.count += count

    def merge(self, other: _Statistics) -> None:
        """Add the fields ``other`` saw (another piece's, written elsewhere)."""
        self.min, self.max = min(self.min, other.min), max(self.max, other.max)
        self.sum += other.sum
        self.count += other.count
        self.missing += other.missing

    def summary(self) -> dict[str, float | None]:
        total = self.count + self.missing
        if not self.count:
            return {"min": None, "max": None, "mean": None, "nan_fraction": 1.0}
        return {"min": self.min, "max": self.max, "mean": self.sum / self.count,
                "nan_fraction": self.missing / total}


def _summary(finite: np.ndarray) -> tuple[float, float, float, int]:
    """Min, max, sum (float64) and count of finite values."""
    if not finite.size:
        return np.inf, -np.inf, 0.0, 0
    return (float(finite.min()), float(finite.max()), float(finite.sum(dtype="float64")),
            finite.size)


@numba.njit(nogil=True, cache=True)
def _finite_summary(values: np.ndarray) -> tuple[float, float, float, int]:
    """Min, max, sum (float64) and count of the finite values: one compiled pass without
    the GIL (numpy's masked copy and three reductions cost as much as compressing them)."""
    low, high, total, count = np.inf, -np.inf, 0.0, 0
    for v in values:
        if np.isfinite(v):
            low, high = min(low, v), max(high, v)
            total += v
            count += 1
    return float(low), float(high), total, count


class _Presence:
    """Which fields of a variable hold any value: a boolean per (step, [member], [level]…)
    index of the store's axes, reduced to index lists for the run record.

    Lagged ensembles hold data for some members at some steps only, and a variable may
    exist at one step of a run: capabilities list only what holds data (issue #13 item 7).
    """

    def __init__(self, dims: tuple[str, ...], axes: dict[str, _LabelAxis]) -> None:
        self.dims = dims
        self.held = np.zeros([len(axes[d].index) for d in dims], dtype=bool)

    def mark(self, held: np.ndarray, where: tuple[np.ndarray, ...]) -> None:
        """Note which fields of a piece (placed at store indices ``where``) hold data."""
        self.held[np.ix_(*where)] |= held.reshape([w.size for w in where])

    def record(self) -> dict[str, Any]:
        """Index lists per dimension (see `fewsmap.store.cube.RunInfo.data_labels`)."""
        axes = range(self.held.ndim)
        out: dict[str, Any] = {}
        for k, dim in enumerate(self.dims):
            out[dim] = np.flatnonzero(self.held.any(axis=tuple(a for a in axes if a != k)))
        steps = out[self.dims[0]]
        by_step: dict[str, dict[str, str]] = {}
        for k, dim in enumerate(self.dims[1:], start=1):
            others = tuple(a for a in axes[1:] if a != k)
            for step in steps:
                at = np.flatnonzero(self.held[step].any(axis=tuple(a - 1 for a in others)))
                if not np.array_equal(at, out[dim]):  # only where a step differs: compact
                    by_step.setdefault(dim, {})[str(step)] = format_indices(at)
        return {**{dim: format_indices(v) for dim, v in out.items()},
                **({"by_step": by_step} if by_step else {})}


def _piece_source(run: RunData, piece: xr.DataArray) -> str:
    """Name a piece in messages: its run and input file (``encoding["source"]``)."""
    source = piece.encoding.get("source")
    return f"run {run.label} ({Path(source).name})" if source else f"run {run.label}"


def _coordinates_attr(run: RunData) -> str:
    """The CF ``coordinates`` attribute: valid time and any 2-D latitude/longitude."""
    return " ".join([VALID_TIME, *(n for n, c in run.grid.coords.items() if c.ndim == 2)])


def vacuum_retired(store: Backend, attrs: dict[str, Any],
                   grace_s: float = RETIRED_GRACE_S) -> dict[str, Any]:
    """Delete the chunks of runs replaced or pruned longer ago than the grace period.

    Returns the attributes to publish next (without the vacuumed entries). The caller holds
    the writer lock and the writing marker: a crash half-way deletes only chunks of slots no
    published run refers to, and the next writer deletes the rest.
    """
    keep: list[dict[str, Any]] = []
    gone: list[dict[str, Any]] = []
    for entry in attrs.get("retired", []):
        (gone if retired_age_s(entry) >= grace_s else keep).append(entry)
    if not gone:
        return attrs
    with quiet_zarr():
        group = zarr.open_group(store.zarr_store(writable=True), mode="r+",
                                use_consolidated=False)
    for entry in gone:
        slot = int(entry["slot"])
        for name, array in every_array(group):
            if dimension_names(array)[:1] == (RUN_DIM,) and array.ndim > 2:
                store.delete_tree(f"{name}/c/{slot}")
        array_of(group, RUN_DIM)[slot] = NAT
        array_of(group, VALID_TIME)[slot, :] = NAT
    return {**attrs, "retired": keep}


def retired_age_s(entry: dict[str, Any]) -> float:
    """Seconds since the run of a retired slot was replaced or pruned."""
    return (datetime.now(UTC) - datetime.fromisoformat(entry["retired_at"])).total_seconds()


def _slot_ref(record: dict[str, Any]) -> dict[str, Any]:
    return {"slot": record["slot"], "reference_time": record["reference_time"]}


def _skip_message(run: RunData, existing: dict[str, Any]) -> str:
    same = {s["sha256"] for s in existing.get("sources", [])} == {s.sha256 for s in run.sources}
    why = "from the same files" if same else "from other files; pass --replace to replace it"
    return (f"run {run.label} is already in the store (ingested {existing['ingested_at']} "
            f"{why}): skipped")


def _json_attrs(attrs: dict[Any, Any]) -> dict[str, Any]:
    """Keep attributes that JSON can hold, as plain Python values."""
    out: dict[str, Any] = {}
    for key, value in attrs.items():
        if isinstance(value, np.ndarray):
            value = value.tolist()
        elif isinstance(value, np.generic):
            value = value.item()
        if isinstance(value, float) and not np.isfinite(value):
            continue
        if isinstance(value, str | int | float | bool | list):
            out[str(key)] = value
    return out


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


__all__ = ["IN_PROCESS", "AppendResult", "Executor", "InProcess", "PieceResult", "PieceWrite",
           "append_run", "publish", "recover", "retired_age_s", "unpublished_changes",
           "vacuum_retired", "writable_backend", "write_piece", "writer_lock"]
