"""Names, encodings and chunking of the on-disk forecast cube (see docs/design/cube.md)."""

from __future__ import annotations

import numpy as np
from zarr.codecs import BloscCodec, ZstdCodec

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
    """Return the chunk shape of a data array: 1 along leading axes, tiles over space."""
    leading = (1,) * (len(shape) - n_spatial)
    return leading + tuple(min(n, SPATIAL_CHUNK) for n in shape[len(shape) - n_spatial :])


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
