"""Read a forecast cube: its published runs, their valid times, and raw slices.

Readers trust only the consolidated root ``zarr.json``: the writer replaces that one file
atomically to publish a run, so a reader sees the old set of runs or the new one.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Hashable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import xarray as xr
import zarr
from obstore.exceptions import BaseError as ObjectStoreError
from zarr.abc.store import Store

from fewsmap.errors import StoreError
from fewsmap.store.backend import ROOT_METADATA as ROOT_METADATA
from fewsmap.store.backend import Backend, backend_of
from fewsmap.store.backend import StoreVersion as StoreVersion  # re-exported: its old home
from fewsmap.store.direct import DirectReader
from fewsmap.store.files import StoreFiles, reading
from fewsmap.store.files import store_name as store_name  # its home before the files rule
from fewsmap.store.layout import (
    ATTRS_KEY,
    FORMAT_VERSION,
    GRID_MAPPING,
    NAT,
    RUN_DIM,
    SERIES_RECORD,
    STEP_DIM,
    VALID_TIME,
    is_series_copy,
    parse_indices,
    series_name,
)
from fewsmap.store.location import WRITABLE_SCHEMES, Location
from fewsmap.time.instants import as_seconds, format_time, parse_stamp

if TYPE_CHECKING:
    from fewsmap.store.geometry import GridGeometry

# Attribute naming the store an `open_cube` Dataset (and each of its variables) came from.
SOURCE_ATTR = "fewsmap_store"
# Results `ForecastStore.remembered` keeps per store state (a layer's dimensions per run and
# step: a few hundred bytes each).
REMEMBERED_ITEMS = 4096
T = TypeVar("T")


@contextmanager
def quiet_zarr() -> Iterator[None]:
    """Silence zarr's note that consolidated metadata is not yet in the v3 spec.

    We rely on it deliberately: it is the atomic publish point (docs/design/cube.md).
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Consolidated metadata", module="zarr")
        warnings.filterwarnings("ignore", message="Consolidated metadata")
        yield


@dataclass(frozen=True)
class RunInfo:
    """A published run: where it lives in the cube, its valid times and its provenance."""

    reference_time: np.datetime64
    slot: int
    step_slots: np.ndarray  # indices into the step axis, ordered by valid time
    valid_times: np.ndarray  # datetime64[s], ascending
    record: dict[str, Any] = field(repr=False)

    @property
    def label(self) -> str:
        """The run's reference time as ``yyyy-MM-ddTHH:mm:ssZ``."""
        return format_time(self.reference_time)

    @property
    def sources(self) -> list[dict[str, Any]]:
        """Input files of this run: path, sha256 and size."""
        return list(self.record.get("sources", []))

    @property
    def statistics(self) -> dict[str, dict[str, float | None]]:
        """Per-variable min/max/mean/nan_fraction computed when the run was ingested."""
        return dict(self.record.get("statistics", {}))

    def data_labels(self, variable: str, dim: str, step: int | None = None) -> np.ndarray | None:
        """Store indices along ``dim`` where ``variable`` holds any value in this run.

        ``dim`` is ``step`` or a member/level dimension; ``step`` (a store step index) narrows
        a member or level dimension to that step. None where the run record says nothing:
        runs ingested before fewsmap recorded it count every index as holding data
        (docs/design/cube.md, "Which fields hold data").
        """
        entry = self.record.get("present", {}).get(variable)
        if entry is None or dim not in entry:
            return None
        at = entry.get("by_step", {}).get(dim, {}).get(str(step)) if step is not None else None
        return parse_indices(entry[dim] if at is None else at)

    def step_of(self, valid_time: np.datetime64) -> int | None:
        """The store step index of ``valid_time`` in this run, or None."""
        where = np.flatnonzero(self.valid_times == valid_time)
        return int(self.step_slots[where[0]]) if where.size else None

    def holding(self, variables: Sequence[str]) -> RunInfo:
        """This run narrowed to the valid times where every one of ``variables`` holds data."""
        keep = np.ones(self.step_slots.size, dtype=bool)
        for variable in variables:
            steps = self.data_labels(variable, STEP_DIM)
            if steps is not None:
                keep &= np.isin(self.step_slots, steps)
        if keep.all():
            return self
        return replace(self, step_slots=self.step_slots[keep], valid_times=self.valid_times[keep])


def read_root_metadata(location: Location | Backend) -> dict[str, Any]:
    """Read the consolidated root ``zarr.json`` of a store.

    Raises
    ------
    StoreError
        If the location is not a Zarr v3 group written by fewsmap.
    """
    backend = backend_of(location)
    where = backend.location
    try:
        root = backend.read_json(ROOT_METADATA)
    except (OSError, ValueError) as exc:
        raise StoreError(f"{where}/{ROOT_METADATA} cannot be read: {exc}") from exc
    if root is None:
        raise StoreError(f"{where} is not a Zarr store (no {ROOT_METADATA})")
    attrs = root.get("attributes", {}).get(ATTRS_KEY)
    if root.get("zarr_format") != 3 or not isinstance(attrs, dict):
        raise StoreError(f"{where} is not a fewsmap forecast cube (no '{ATTRS_KEY}' attributes)")
    if attrs.get("format_version") != FORMAT_VERSION:
        raise StoreError(
            f"{where} has cube format {attrs.get('format_version')!r}; "
            f"this fewsmap reads format {FORMAT_VERSION}"
        )
    return dict(root)


class ForecastStore:
    """A published forecast cube, opened once and read directly with zarr.

    The hot path reads arrays with zarr, not xarray or dask (docs/design/cube.md); local
    chunk files with the direct reader where it serves (`reader`).
    """

    def __init__(self, location: Location | Backend) -> None:
        self.backend = backend_of(location)
        self.location = self.backend.location
        self.name = self.backend.name
        # Version before reading: a publish in between leaves an older version, read again.
        try:
            self.version = self.backend.version()
        except FileNotFoundError as exc:
            raise StoreError(f"{self.location} is not a Zarr store (no {ROOT_METADATA})") \
                from exc
        root = read_root_metadata(self.backend)
        self.attrs: dict[str, Any] = root["attributes"][ATTRS_KEY]
        # Data chunks of the published runs never change: object storage may cache them.
        immutable = [name for name, meta in root["consolidated_metadata"]["metadata"].items()
                     if _is_variable(meta.get("dimension_names") or ())]
        with quiet_zarr():
            self.group = zarr.open_group(self.backend.zarr_store(immutable=immutable),
                                         mode="r", use_consolidated=True)
        # Opening an array through the group costs ~0.3 ms (zarr's sync machinery); the
        # published state is fixed for this object's life, so each is opened once.
        self._arrays: dict[str, zarr.Array[Any]] = {}
        self._readers: dict[str, DirectReader | None] = {}
        self._labels: dict[str, np.ndarray] = {}
        self.runs: tuple[RunInfo, ...] = self._read_runs()
        self._holding: dict[tuple[str, ...], tuple[RunInfo, ...]] = {}
        self._series_slots: dict[str, frozenset[int]] = {}
        self._remembered: dict[Hashable, Any] = {}

    @property
    def spatial_dims(self) -> tuple[str, str]:
        """The two spatial dimension names, y first."""
        y, x = self.attrs["spatial_dims"]
        return str(y), str(x)

    @cached_property
    def curvilinear(self) -> bool:
        """Whether the grid is placed by 2-D latitude/longitude on its spatial dims (a
        rotated-pole or GFE grid, kept as stored); such a grid has no 1-D axes to read.
        Asked once per store state: a store's grid never changes, and zarr's membership test
        waits on its I/O thread (a fifth of a tile's CPU when asked per tile)."""
        return "latitude" in self.group and self.dims("latitude") == self.spatial_dims

    @cached_property
    def grid_shape(self) -> tuple[int, int]:
        """(rows, columns) of the grid, read from metadata only (once per store state)."""
        y_dim, x_dim = self.spatial_dims
        if self.curvilinear:
            rows, columns = self.array("latitude").shape
            return int(rows), int(columns)
        return int(self.array(y_dim).shape[0]), int(self.array(x_dim).shape[0])

    @property
    def variables(self) -> list[str]:
        """Forecast variables: arrays indexed by run and step."""
        return sorted(name for name, array in self.group.arrays()
                      if _is_variable(dimension_names(array)))

    def array(self, name: str) -> zarr.Array[Any]:
        """Return the zarr array ``name`` (published shape)."""
        array = self._arrays.get(name)
        if array is None:
            array = self._arrays[name] = GuardedArray.of(array_of(self.group, name), self.name)
        return array

    @property
    def path(self) -> Path:
        """The store's folder (local stores only; see `files`)."""
        if self.files is None:
            raise StoreError(f"store {self.name!r} is not a local folder: {self.location}")
        return self.files.path

    @property
    def files(self) -> StoreFiles | None:
        """The store's files where it is a local folder (None in object storage)."""
        return self.backend.files

    def reader(self, name: str) -> DirectReader | None:
        """A reader of array ``name``'s chunk files that bypasses zarr (None: read with zarr,
        as for every store in object storage)."""
        if name not in self._readers:
            self._readers[name] = None if self.files is None else DirectReader.of(
                self.files, name, self.array(name).metadata, keep_blocks=True)
        return self._readers[name]

    def dims(self, name: str) -> tuple[str, ...]:
        """Dimension names of array ``name``."""
        return dimension_names(self.array(name))

    def attributes(self, name: str) -> dict[str, Any]:
        """CF attributes of array ``name``."""
        return dict(self.array(name).attrs)

    def coordinate(self, name: str) -> np.ndarray:
        """Values of a coordinate array, as stored."""
        return np.asarray(self.array(name)[...])

    def remembered(self, key: Hashable, make: Callable[[], T]) -> T:
        """``make()``, worked out once per store state and ``key`` (what this state's
        metadata alone decides, e.g. a layer's dimensions in a run), at most
        `REMEMBERED_ITEMS` kept. Render threads share it: a result is returned from a local
        name, never read back after another thread may have cleared the dict."""
        found: T | None = self._remembered.get(key)
        if found is None:
            if len(self._remembered) >= REMEMBERED_ITEMS:
                self._remembered.clear()
            found = self._remembered[key] = make()
        return found

    def labels(self, dim: str) -> np.ndarray:
        """The labels of a member or level dimension, read once (read-only): every map of
        an ensemble asks for them, and a zarr read costs ~1 ms of the event loop's time."""
        if dim not in self._labels:
            labels = self.coordinate(dim)
            labels.flags.writeable = False
            self._labels[dim] = labels
        return self._labels[dim]

    def run(self, reference_time: np.datetime64 | str) -> RunInfo:
        """Return the published run with this reference time.

        Raises
        ------
        KeyError
            If no such run is published.
        """
        t0 = parse_stamp(reference_time) if isinstance(reference_time, str) else reference_time
        for info in self.runs:
            if info.reference_time == as_seconds(t0):
                return info
        raise KeyError(format_time(t0))

    def runs_holding(self, variables: Sequence[str]) -> tuple[RunInfo, ...]:
        """Runs holding data of every one of ``variables``, each narrowed to the valid times
        where they all do (`RunInfo.holding`), oldest first; runs with none are left out."""
        key = tuple(variables)
        found = self._holding.get(key)
        if found is None:
            narrowed = (run.holding(key) for run in self.runs
                        if set(key) <= set(run.record.get("variables", ())))
            found = self._holding[key] = tuple(run for run in narrowed if run.valid_times.size)
        return found

    def series_copy(self, variable: str, slot: int) -> str | None:
        """The time-chunked copy of ``variable`` if it holds the run in ``slot``
        (`fewsmap.store.series`), else None: read the variable itself."""
        slots = self._series_slots.get(variable)
        if slots is None:
            slots = self._series_slots[variable] = frozenset(
                int(run.slot) for run in self.runs
                if variable in run.record.get(SERIES_RECORD, ()))
        return series_name(variable) if slot in slots else None

    @property
    def latest_run(self) -> RunInfo | None:
        """The published run with the latest reference time."""
        return self.runs[-1] if self.runs else None

    def read_slice(
        self, variable: str, run: RunInfo, valid_time: np.datetime64, **labels: int
    ) -> np.ndarray:
        """Read the 2-D field of ``variable`` for one run and valid time.

        ``labels`` give the index along any other dimension (``realization=0``); missing ones
        default to index 0.

        Raises
        ------
        KeyError
            If the run has no such valid time, or ``labels`` names a dimension the variable
            does not have (a misspelt one would silently read index 0).
        """
        where = np.flatnonzero(run.valid_times == as_seconds(valid_time))
        if where.size == 0:
            raise KeyError(f"{run.label} has no valid time {format_time(valid_time)}")
        dims = self.dims(variable)[2:-2]
        unknown = sorted(set(labels) - set(dims))
        if unknown:
            raise KeyError(f"'{variable}' has no dimension {', '.join(unknown)}; "
                           f"its other dimensions are {list(dims)}")
        index: list[int | slice] = [run.slot, int(run.step_slots[where[0]])]
        for dim in dims:
            index.append(labels.get(dim, 0))
        return np.asarray(self.array(variable)[tuple(index)])

    def _read_runs(self) -> tuple[RunInfo, ...]:
        records = self.attrs.get("runs", [])
        if not records:
            return ()
        valid = np.asarray(self.array(VALID_TIME)[...])
        runs = []
        for record in records:
            slot = int(record["slot"])
            row = valid[slot]
            has = np.flatnonzero(row != NAT)
            order = has[np.argsort(row[has], kind="stable")]
            times = row[order].astype("datetime64[s]")
            order.flags.writeable = times.flags.writeable = False  # shared by every request
            runs.append(
                RunInfo(
                    reference_time=parse_stamp(record["reference_time"]),
                    slot=slot,
                    step_slots=order,
                    valid_times=times,
                    record=record,
                )
            )
        return tuple(sorted(runs, key=lambda r: r.reference_time))

    @cached_property
    def geometry(self) -> GridGeometry:
        """The grid's geometry: CRS, axes, and the cells a bbox, point or polygon selects
        (`fewsmap.store.geometry`), built once per published state."""
        from fewsmap.store.geometry import geometry_of  # it reads the grid through this class

        return geometry_of(self)


def _is_variable(dims: Sequence[str]) -> bool:
    """Whether an array of these dimensions is a forecast variable (run, step, …, y, x)."""
    return tuple(dims[:2]) == (RUN_DIM, STEP_DIM) and len(dims) > 2


def _guarded_read(name: str) -> Callable[..., Any]:
    """zarr.Array's read method ``name``, its failures turned into `StoreError`."""

    def read(self: GuardedArray, *args: Any, **kwargs: Any) -> Any:
        with reading(self.store_name, self.basename):
            return getattr(zarr.Array, name)(self, *args, **kwargs)

    read.__name__ = name
    return read


class GuardedArray(zarr.Array[Any]):
    """A zarr array whose reads fail as a coded `StoreError` where a chunk is damaged
    (`fewsmap.store.files.reading`); everything else is zarr's."""

    store_name: str

    @classmethod
    def of(cls, array: zarr.Array[Any], store_name: str) -> GuardedArray:
        """Guard the reads of ``array``, an array of the store named ``store_name``."""
        guarded = cls(array._async_array)
        guarded.store_name = store_name
        return guarded

    # Every read (``array[…]``, ``.oindex``, ``.vindex``, ``.blocks``) ends in one of these.
    get_basic_selection = _guarded_read("get_basic_selection")
    get_orthogonal_selection = _guarded_read("get_orthogonal_selection")
    get_coordinate_selection = _guarded_read("get_coordinate_selection")
    get_mask_selection = _guarded_read("get_mask_selection")
    get_block_selection = _guarded_read("get_block_selection")


def array_of(group: zarr.Group, name: str) -> zarr.Array[Any]:
    """Return the array ``name`` of ``group``.

    Raises
    ------
    StoreError
        If ``name`` is a group: a forecast cube holds arrays only.
    """
    node = group[name]
    if not isinstance(node, zarr.Array):
        raise StoreError(f"'{name}' is a group, not an array of a forecast cube")
    return node


def dimension_names(array: zarr.Array[Any]) -> tuple[str, ...]:
    """Dimension names of ``array`` (Zarr v3 metadata); empty if it has none."""
    names = getattr(array.metadata, "dimension_names", None) or ()
    return tuple(str(n) for n in names)


def is_store(location: Location | Backend) -> bool:
    """Tell whether ``location`` looks like a fewsmap store (cheap: one small object read)."""
    try:
        read_root_metadata(location)
    except StoreError:
        return False
    return True


def open_cube(path_or_url: str | os.PathLike[str], chunks: Any = None) -> xr.Dataset:
    """Open a forecast cube as a lazy xarray Dataset of its published runs.

    The result has dimensions ``forecast_reference_time × step × …`` with runs in
    reference-time order, steps in lead-time order, and a 2-D ``valid_time`` coordinate;
    nothing is read until values are used. Works on local paths, ``s3://`` URLs (obstore,
    configured by the AWS variables) and fsspec URLs, such as a running service's
    ``http://host/zarr/<store>`` (read over HTTP with fsspec/aiohttp).
    ``chunks`` is xarray's: None reads values when indexed; ``{}`` (the store's chunks),
    ``"auto"`` or a mapping give dask arrays, for computations larger than memory.

    The Dataset and each variable record the location in the ``fewsmap_store`` attribute, so
    ``ds.fewsmap.map()`` can draw a stored field with the service's pipeline (how it tells
    stored fields from computed ones, which keep attributes too: `fewsmap.client.maps`).

    Raises
    ------
    StoreError
        If the location is not a fewsmap forecast cube, or cannot be reached.
    """
    target = os.fspath(path_or_url)
    is_url = "://" in target
    failures: tuple[type[Exception], ...] = (OSError, KeyError, ValueError,
                                             ObjectStoreError, *_http_errors(is_url))
    # A local store is read under the store's file rule (fewsmap.store.files), as by the
    # service; object storage through the service's backend.
    source: str | Store = target
    if not is_url or target.startswith(tuple(f"{s}://" for s in WRITABLE_SCHEMES)):
        source = backend_of(target).zarr_store()
    try:
        with quiet_zarr():
            ds: xr.Dataset = xr.open_zarr(
                source, consolidated=True, chunks=chunks, decode_timedelta=True
            )
    except failures as exc:
        raise StoreError(f"cannot open forecast cube {target}: {exc}") from exc
    attrs = ds.attrs.get(ATTRS_KEY)
    if not isinstance(attrs, dict) or "runs" not in attrs:
        raise StoreError(f"{target} is not a fewsmap forecast cube")
    # Time-chunked copies are the time series' layout, not more variables.
    ds = ds.drop_vars([name for name in ds.data_vars if is_series_copy(str(name))])
    records = sorted(attrs["runs"], key=lambda r: r["reference_time"])
    slots = [int(r["slot"]) for r in records]
    step_order = np.argsort(ds[STEP_DIM].values, kind="stable")
    ds = ds.isel({RUN_DIM: slots, STEP_DIM: step_order})
    if GRID_MAPPING in ds.data_vars:
        ds = ds.set_coords(GRID_MAPPING)
    source = target if is_url else str(Path(target).resolve())
    ds.attrs[SOURCE_ATTR] = source
    for variable in ds.data_vars.values():
        variable.attrs[SOURCE_ATTR] = source
    return ds


def _http_errors(is_url: bool) -> tuple[type[Exception], ...]:
    """aiohttp's errors (an HTTP status other than 404, a broken connection) for URLs."""
    if not is_url:
        return ()
    try:
        from aiohttp import ClientError
    except ImportError:  # fsspec's HTTP filesystem then fails with ImportError itself
        return (ImportError,)
    return (ClientError,)
