"""Size limits of an ingest, checked on file headers before any data is read.

A file may declare sizes it cannot hold (a NetCDF header declaring a 10^9 x 10^9 grid costs
a few bytes) or unpack to far more than it is (a gzip bomb). Either would exhaust memory
in the readers, so the declared sizes are checked first and decompression is bounded.
"""

from __future__ import annotations

import gzip
import io
import math
import zlib
from dataclasses import dataclass
from pathlib import Path

import xarray as xr

from fewsmap.errors import IngestError

GUNZIP_BLOCK_BYTES = 1 << 20


@dataclass(frozen=True)
class IngestLimits:
    """Largest input an ingest accepts (``FEWSMAP_MAX_FIELD_CELLS`` …, docs/reliability.md).

    ``max_field_cells``: one 2-D field, and any single dimension (a coordinate): 2^28 cells
    is 1 GiB of float32, a 0.01° grid over all of Europe. ``max_run_cells``: all fields of
    one run together, 2^34 (64 GiB of float32: 51 members x 145 steps of a 0.1° global
    grid fit). ``max_gunzip_bytes``: a gzipped NetCDF-3 file, unpacked in memory.
    """

    max_field_cells: int = 1 << 28
    max_run_cells: int = 1 << 34
    max_gunzip_bytes: int = 4 << 30


def check_declared_sizes(ds: xr.Dataset, path: Path, limits: IngestLimits) -> None:
    """Refuse a dataset whose header declares more cells than the limits allow.

    Raises
    ------
    IngestError
        Naming the file, the dimension or variable, its size and the limit.
    """
    for dim, size in ds.sizes.items():
        if size > limits.max_field_cells:
            raise IngestError(f"{path}: dimension '{dim}' has {size:,} entries, more than "
                              f"the limit of {limits.max_field_cells:,} (max_field_cells)")
    total = 0
    for name, var in ds.data_vars.items():
        spatial = var.shape[-1:] if var.dims[-1:] == ("values",) else var.shape[-2:]
        field = math.prod(spatial)
        if field > limits.max_field_cells:
            raise IngestError(f"{path}: variable '{name}' has fields of {field:,} cells, more "
                              f"than the limit of {limits.max_field_cells:,} (max_field_cells)")
        total += math.prod(var.shape)
    if total > limits.max_run_cells:
        raise IngestError(f"{path}: holds {total:,} values, more than the limit of "
                          f"{limits.max_run_cells:,} per run (max_run_cells)")


def check_run_size(label: str, cells: int, limits: IngestLimits) -> None:
    """Refuse a run whose fields (from all its files) hold more than ``max_run_cells``."""
    if cells > limits.max_run_cells:
        raise IngestError(f"run {label} holds {cells:,} values, more than the limit of "
                          f"{limits.max_run_cells:,} per run (max_run_cells)")


def gunzip_bounded(path: Path, limit_bytes: int) -> io.BytesIO:
    """Unpack a gzip file into memory, refusing one that unpacks to more than the limit.

    Raises
    ------
    IngestError
        If the file is damaged or unpacks to more than ``limit_bytes``.
    """
    out = io.BytesIO()
    try:
        with gzip.open(path) as f:
            while block := f.read(GUNZIP_BLOCK_BYTES):
                if out.tell() + len(block) > limit_bytes:
                    raise IngestError(f"{path}: unpacks to more than {limit_bytes:,} bytes "
                                      "(max_gunzip_bytes): refused as a possible gzip bomb")
                out.write(block)
    except (OSError, EOFError, zlib.error) as exc:
        raise IngestError(f"{path}: damaged gzip file: {exc}") from exc
    out.seek(0)
    return out
