"""Names, encodings and chunking of the on-disk forecast cube (see docs/design/cube.md)."""

from __future__ import annotations

from typing import TypeVar

import numpy as np
from zarr.codecs import BloscCodec, ZstdCodec
from zarr.codecs.sharding import ShardingCodecIndexLocation
from zarr.core.array import ShardsConfigParam

_Item = TypeVar("_Item")

RUN_DIM = "forecast_reference_time"
STEP_DIM = "step"
VALID_TIME = "valid_time"
MEMBER_DIM = "realization"
GRID_MAPPING = "crs"

# Root-group attribute holding the published run list: the single source of truth for readers.
ATTRS_KEY = "fewsmap"
FORMAT_VERSION = 1

# int64 seconds since the epoch, NaT where a run has no data for a step.
NAT = int(np.iinfo(np.int64).min)
TIME_UNITS = "seconds since 1970-01-01T00:00:00Z"
TIME_ATTRS = {"units": TIME_UNITS, "calendar": "proleptic_gregorian"}
# xarray decodes an int64 "seconds" array to timedelta64 only when told the dtype.
STEP_ATTRS = {
    "units": "seconds",
    "dtype": "timedelta64[ns]",
    "standard_name": "forecast_period",
    "long_name": "lead time",
}

# Spatial tile edge of a data chunk; one (run, step, member, level) slice per chunk otherwise.
# Chosen by benchmarks/cube_layout.py (docs/design/cube.md).
SPATIAL_CHUNK = 512
# Fields of at most this many cells (16 × 16) are chunked together, `FIELD_BLOCK_CELLS`
# values a chunk: up to `FIELD_BLOCK_STEPS` steps, then `FIELD_BLOCK_LABELS` members/levels.
SMALL_FIELD_CELLS = 256
FIELD_BLOCK_CELLS = SPATIAL_CHUNK * SPATIAL_CHUNK
FIELD_BLOCK_STEPS = 128
FIELD_BLOCK_LABELS = 64
# The time-chunked copy of a larger variable, read by time series (docs/design/points.md):
# `<variable>.series`, shards of 512 × 512 cells × up to 128 steps, inner chunks of 8 × 8
# cells where those hold `SERIES_INNER_BYTES` of the feed's steps (64 steps or more), else
# 32 × 32: one blosc block that a series reads whole with one `pread` and decompresses in
# ~2 µs (32 × 32 cells of 80 steps: a 64 KiB block of the 327 KiB chunk, 10-50 µs; blosc-lz4
# with shuffle keeps blocks ≥ 64 KiB, so only smaller inner chunks help). 8 × 8 × 80 steps:
# within 2 % of 32 × 32's size on three of four fields, 9 % larger on a sparse
# precipitation one. Short feeds keep 32 × 32: for a 10-step feed (then 16 steps stored) 8 × 8
# made the copy 30 % larger and 16 × 16 17 %, and ingest slower, for series already cheap.
SERIES_SUFFIX = ".series"
# The run record's list of the variables whose copy holds the run (runs written before have
# none: their series are read from the variable).
SERIES_RECORD = "series"
SERIES_SHARD = SPATIAL_CHUNK
SERIES_TILE = 8  # cells along each side of an inner chunk of a long feed
SERIES_TILE_MAX = 32  # of a short one
SERIES_INNER_BYTES = 16 * 1024
SERIES_INNER_STEPS = SERIES_INNER_BYTES // (SERIES_TILE * SERIES_TILE * 4)  # 64
SERIES_STEPS = 128
# Coordinates along the run axis: one chunk per this many runs (one chunk per run made
# opening 40-120 ms slower per 100 runs); valid_time rows are chunked by VALID_TIME_STEPS.
COORD_CHUNK = 1024
VALID_TIME_STEPS = 128


def data_codec() -> BloscCodec:
    """Compressor of data chunks: blosc-lz4 with byte shuffle.

    Measured against zstd-3 on a smooth quantised field: same size, 1.45x faster
    full-slice reads, 2x faster writes (benchmarks/results/cube_layout.md).
    Blocks of 64 KiB (blosc's own choice was 512 KiB) let a time series decompress one
    block per value instead of half a chunk (`fewsmap.store.direct`): chunks grow about 4 %,
    whole-chunk decoding is no slower.
    """
    # blosc counts this in items of the type size for shuffled data: 16384 × 4 B = 64 KiB.
    return BloscCodec(cname="lz4", clevel=5, shuffle="shuffle", blocksize=16384)


def coordinate_codec() -> ZstdCodec:
    """Compressor of coordinate arrays: small, read once per open, mostly NaT fill."""
    return ZstdCodec(level=3)


def data_chunks(shape: tuple[int, ...], n_spatial: int) -> tuple[int, ...]:
    """Return the chunk shape of a data array: 1 along leading axes, tiles over space.

    A small field (at most `SMALL_FIELD_CELLS`) is chunked with its run's other fields
    instead: up to `FIELD_BLOCK_STEPS` steps, then members and levels, up to
    `FIELD_BLOCK_CELLS` values a chunk. One file per 2 × 2 field cost about 1 ms each to
    write (a GEFS point run of 8,904 fields took 10-16 s); one chunk per run and variable
    writes it in milliseconds and keeps a point's times together for time series
    (benchmarks/results/point_series.md).
    """
    spatial = tuple(min(n, SPATIAL_CHUNK) for n in shape[len(shape) - n_spatial :])
    leading = [1] * (len(shape) - n_spatial)
    cells = int(np.prod(shape[len(shape) - n_spatial :]))
    if n_spatial == 2 and len(leading) >= 2 and 0 < cells <= SMALL_FIELD_CELLS:
        room = FIELD_BLOCK_CELLS // cells
        for axis, cap in enumerate([FIELD_BLOCK_STEPS, *[FIELD_BLOCK_LABELS] * (len(leading) - 2)],
                                   start=1):
            leading[axis] = max(1, min(cap, room))
            room //= leading[axis]
    return (*leading, *spatial)


def has_field_blocks(chunks: tuple[int, ...]) -> bool:
    """Whether a data array with these chunks holds several fields per chunk (a small
    field's layout, `data_chunks`) rather than one (run, step, member, level) slice."""
    return any(n != 1 for n in chunks[:-2])


def series_name(variable: str) -> str:
    """The name of the time-chunked copy of ``variable`` (`series_dims`)."""
    return f"{variable}{SERIES_SUFFIX}"


def is_series_copy(name: str) -> bool:
    """Whether the array ``name`` is the time-chunked copy of a variable."""
    return name.endswith(SERIES_SUFFIX)


def series_dims(dims: tuple[_Item, ...]) -> tuple[_Item, ...]:
    """A variable's dimensions (or shape, or index) in its time-chunked copy's order: run,
    the grid, step, members and levels, so that a cell's values of one run lie together
    (docs/design/points.md)."""
    return (dims[0], *dims[-2:], *dims[1:-2])


def series_chunks(ndim: int, steps: int) -> tuple[tuple[int, ...], ShardsConfigParam]:
    """The inner chunks and shards of a time-chunked copy with ``ndim`` dimensions, for a
    step axis of ``steps`` entries when it is created.

    Shards of `SERIES_SHARD` cells × the steps (one file per run and spatial tile), inner
    chunks of `series_tile` cells × the same steps. Steps are `series_steps`; later runs
    with more steps spill into a second shard. The shard index comes first, so a reader
    finds an inner chunk with one read at a known offset (`fewsmap.store.direct`); on
    object storage zarr reads the index and the inner chunk with two range requests.
    """
    steps = series_steps(steps)
    rest = (1,) * (ndim - 4)
    tile = series_tile(steps)
    inner = (1, tile, tile, steps, *rest)
    shards: ShardsConfigParam = {"shape": (1, SERIES_SHARD, SERIES_SHARD, steps, *rest),
                                 "index_location": ShardingCodecIndexLocation.start}
    return inner, shards


def series_steps(steps: int) -> int:
    """The steps a time-chunked copy's shards and inner chunks hold for a step axis of
    ``steps`` entries: at least 8; from `SERIES_INNER_STEPS` rounded up to a multiple of 8
    (at most `SERIES_STEPS`), which leaves room for a longer run at a cost of at most 11 %;
    below, exactly ``steps``: padding a 10-step feed to 16 made the writer transpose and
    compress 60 % more values (a shard's encoding 14 → 27 ms, its size 6.7 → 8.1 MB)."""
    stored = max(8, steps) if steps < SERIES_INNER_STEPS else -(-steps // 8) * 8
    return min(SERIES_STEPS, stored)


def series_tile(steps: int) -> int:
    """The cells along each side of a time-chunked copy's inner chunk for ``steps`` steps:
    `SERIES_TILE` where those cells hold at least `SERIES_INNER_BYTES` of float32 values
    (64 steps or more), else `SERIES_TILE_MAX`."""
    return SERIES_TILE if steps >= SERIES_INNER_STEPS else SERIES_TILE_MAX


def format_indices(indices: np.ndarray) -> str:
    """Write ascending axis indices as ranges: ``[0, 1, 2, 5, 7, 8]`` → ``"0-2,5,7-8"``.

    Run records list which indices of each axis hold data; ranges keep a full run of 97
    steps one short string in the root metadata every reader opens.
    """
    values = np.asarray(indices, dtype=np.int64)
    if values.size == 0:
        return ""
    breaks = np.flatnonzero(np.diff(values) != 1)
    starts = values[np.r_[0, breaks + 1]]
    ends = values[np.r_[breaks, values.size - 1]]
    return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in zip(starts, ends, strict=True))


def parse_indices(text: str) -> np.ndarray:
    """Read what `format_indices` wrote (int64, ascending)."""
    parts = []
    for item in filter(None, text.split(",")):
        first, _, last = item.partition("-")
        parts.append(np.arange(int(first), int(last or first) + 1))
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
