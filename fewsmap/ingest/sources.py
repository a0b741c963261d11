"""Open input files (NetCDF 3/4, GRIB 1/2) as xarray datasets, refusing damaged ones.

Neither reader reports every damaged file: cfgrib skips a truncated last GRIB message and
netCDF4 returns zeros past the end of a truncated HDF5 file. So we check integrity first.
"""

from __future__ import annotations

import gzip
import struct
import warnings
from pathlib import Path

import xarray as xr

from fewsmap.errors import IngestError
from fewsmap.ingest.limits import IngestLimits, check_declared_sizes, gunzip_bounded
from fewsmap.store.run import START_STEPS_ATTR

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
# GRIB keys the grid module needs that cfgrib does not read by default.
GRIB_EXTRA_KEYS = [
    "projString", "DxInMetres", "DyInMetres", "latitudeOfFirstGridPointInDegrees",
    "longitudeOfFirstGridPointInDegrees", "iScansNegatively", "jScansPositively",
    "jPointsAreConsecutive", "N", "pl",
]


def sniff_format(path: Path) -> str:
    """Return ``grib``, ``netcdf4``, ``netcdf3`` or ``netcdf3-gzip`` from the file's bytes.

    Raises
    ------
    IngestError
        If the file cannot be read or is none of these formats.
    """
    try:
        with path.open("rb") as f:
            head = f.read(1024)
    except OSError as exc:
        raise IngestError(f"{path}: cannot be read: {exc.strerror}") from exc
    if not head:
        raise IngestError(f"{path}: empty file")
    # NetCDF signatures first: a NetCDF file converted from GRIB has "GRIB_*" attribute
    # names in its first bytes.
    if head.startswith(HDF5_SIGNATURE):
        return "netcdf4"
    if head.startswith(b"CDF"):
        return "netcdf3"
    if head.startswith(b"\x1f\x8b"):
        try:
            with gzip.open(path) as f:
                if f.read(3) == b"CDF":
                    return "netcdf3-gzip"
        except (OSError, EOFError) as exc:
            raise IngestError(f"{path}: damaged gzip file: {exc}") from exc
    if b"GRIB" in head[:200]:  # NWS files may start with a WMO bulletin header
        return "grib"
    raise IngestError(f"{path}: not a NetCDF or GRIB file (starts with {head[:8]!r})")


def open_source(path: Path, limits: IngestLimits | None = None, *,
                lazy: bool = False) -> list[xr.Dataset]:
    """Open ``path`` as one or more datasets (a GRIB file may hold several hypercubes).

    Sizes declared by the file are checked against ``limits`` before any data is read.
    ``lazy`` gives variables backed by dask, read from the file where they are computed
    (a dask worker); a gzipped file, unpacked here anyway, is loaded instead, so that a
    task carries its own piece rather than the whole file.

    Raises
    ------
    IngestError
        If the file is damaged, cannot be decoded or exceeds the limits.
    """
    limits = limits or IngestLimits()
    kind = sniff_format(path)
    try:
        if kind == "grib":
            check_grib(path, limits.max_field_cells)
            datasets = _open_grib(path)
        elif kind == "netcdf4":
            check_hdf5_length(path)
            datasets = [xr.open_dataset(path, engine="netcdf4", decode_timedelta=True)]
        elif kind == "netcdf3-gzip":  # unpacked here, bounded: xarray would unpack it all
            unpacked = gunzip_bounded(path, limits.max_gunzip_bytes)
            datasets = [xr.open_dataset(unpacked, engine="scipy", decode_timedelta=True)]
        else:  # scipy reads NetCDF 3 and fails loudly on short files
            datasets = [xr.open_dataset(path, engine="scipy", decode_timedelta=True)]
    except IngestError:
        raise
    except Exception as exc:  # readers raise anything from OSError to KeyError
        raise IngestError(f"{path}: cannot be read as {kind}: {exc}") from exc
    for ds in datasets:
        check_declared_sizes(ds, path, limits)
    if lazy:
        datasets = [ds.load() if kind == "netcdf3-gzip" else ds.chunk() for ds in datasets]
    return datasets


def _open_grib(path: Path) -> list[xr.Dataset]:
    import cfgrib

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        datasets = cfgrib.open_datasets(
            str(path), backend_kwargs={"indexpath": "", "read_keys": GRIB_EXTRA_KEYS},
            decode_timedelta=True,
        )
    if not datasets:
        raise IngestError(f"{path}: GRIB file holds no decodable fields")
    starts = accumulation_starts(path)
    for ds in datasets:
        for var in ds.data_vars.values():
            key = (var.attrs.get("GRIB_shortName"), var.attrs.get("GRIB_typeOfLevel"))
            if var.attrs.get("GRIB_stepType") == "accum" and key in starts:
                var.attrs[START_STEPS_ATTR] = sorted(starts[key])
    return list(datasets)


def accumulation_starts(path: Path) -> dict[tuple[str, str], set[int]]:
    """The start steps of the accumulations in a GRIB file, by (shortName, typeOfLevel).

    cfgrib keeps one message's ``startStep`` at most; whether a field is accumulated since
    the run started (every message from step 0: ECMWF's tp) or over each step's period
    (buckets) is told by all of them (`fewsmap.products.accumulate.per_step_pieces`).
    """
    import eccodes

    found: dict[tuple[str, str], set[int]] = {}
    with path.open("rb") as f:
        while (handle := eccodes.codes_grib_new_from_file(f)) is not None:
            try:
                if eccodes.codes_get(handle, "stepType") == "accum":
                    key = (str(eccodes.codes_get(handle, "shortName")),
                           str(eccodes.codes_get(handle, "typeOfLevel")))
                    found.setdefault(key, set()).add(int(eccodes.codes_get(handle,
                                                                           "startStep")))
            finally:
                eccodes.codes_release(handle)
    return found


def check_grib(path: Path, max_field_cells: int = IngestLimits.max_field_cells) -> None:
    """Walk every GRIB message with ecCodes; refuse truncated, garbled or oversized ones."""
    import eccodes

    count = 0
    with path.open("rb") as f:
        try:
            while (handle := eccodes.codes_grib_new_from_file(f)) is not None:
                try:
                    points = int(eccodes.codes_get(handle, "numberOfDataPoints"))
                finally:
                    eccodes.codes_release(handle)
                count += 1
                if points > max_field_cells:
                    raise IngestError(
                        f"{path}: GRIB message {count} has {points:,} points, more than the "
                        f"limit of {max_field_cells:,} (max_field_cells)")
        except eccodes.GribInternalError as exc:
            raise IngestError(
                f"{path}: GRIB message {count + 1} is damaged or truncated ({exc})"
            ) from exc
    if count == 0:
        raise IngestError(f"{path}: no GRIB message found")


def check_hdf5_length(path: Path) -> None:
    """Refuse an HDF5 (NetCDF-4) file shorter than the end-of-file its superblock records."""
    with path.open("rb") as f:
        head = f.read(96)
    version = head[8]
    if version in (0, 1):
        size_offsets = head[13]
        eof_at = (24 if version == 0 else 28) + 2 * size_offsets
        base_at = eof_at - 2 * size_offsets
    elif version in (2, 3):
        size_offsets = head[9]
        base_at, eof_at = 12, 12 + 2 * size_offsets
    else:
        return  # a superblock version we do not know: let the reader decide
    fmt = {4: "<I", 8: "<Q"}.get(size_offsets)
    if fmt is None:
        return
    base = struct.unpack_from(fmt, head, base_at)[0]
    end = struct.unpack_from(fmt, head, eof_at)[0]
    actual = path.stat().st_size
    if actual < base + end:
        raise IngestError(
            f"{path}: truncated NetCDF-4 file ({actual} bytes, its header says {base + end})"
        )
