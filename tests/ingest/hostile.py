"""Hostile input files: damaged, truncated, lying about their sizes, or not files at all.

Each maker writes its file into a folder and returns the path to pass to ``fewsmap ingest``.
"""

from __future__ import annotations

import gzip
import os
import struct
from collections.abc import Callable
from pathlib import Path

import netCDF4
import numpy as np
import xarray as xr

from tests.conftest import sample_paths
from tests.forecast_files import forecast_file, run_time

HUGE = 10**9


def huge_netcdf4(folder: Path) -> Path:
    """A NetCDF-4 file declaring a 10^9 x 10^9 grid (chunked, never written: a few KB)."""
    path = folder / "huge_grid.nc"
    with netCDF4.Dataset(path, "w") as nc:
        nc.createDimension("time", 1)
        nc.createDimension("latitude", HUGE)
        nc.createDimension("longitude", HUGE)
        time = nc.createVariable("time", "f8", ("time",))
        time.units = "hours since 2026-03-01 00:00:00"
        time[:] = [3.0]
        nc.createVariable("tp", "f4", ("time", "latitude", "longitude"),
                          chunksizes=(1, 64, 64))
    return path


def _name(text: str) -> bytes:
    raw = text.encode()
    return struct.pack(">i", len(raw)) + raw + b"\0" * (-len(raw) % 4)


def netcdf3_header(dims: dict[str, int], variable: str = "tp") -> bytes:
    """A NetCDF-3 (64-bit offset) header declaring ``dims`` and one float variable on them."""
    header = b"CDF\x02" + struct.pack(">i", 0)
    header += struct.pack(">ii", 0x0A, len(dims))
    for name, size in dims.items():
        header += _name(name) + struct.pack(">i", size)
    header += struct.pack(">ii", 0, 0)  # no global attributes
    header += struct.pack(">ii", 0x0B, 1) + _name(variable) + struct.pack(">i", len(dims))
    header += b"".join(struct.pack(">i", i) for i in range(len(dims)))
    header += struct.pack(">ii", 0, 0)  # no variable attributes
    header += struct.pack(">iI", 5, 0xFFFFFFFF)  # NC_FLOAT, size too big to say
    return header + struct.pack(">q", len(header) + 8)


def huge_netcdf3(folder: Path) -> Path:
    """A 100-byte NetCDF-3 file whose header declares a 10^9 x 10^9 grid."""
    path = folder / "huge_grid_classic.nc"
    path.write_bytes(netcdf3_header({"time": 1, "latitude": HUGE, "longitude": HUGE}))
    return path


def gzip_bomb(folder: Path) -> Path:
    """A 1 MB ``.nc.gz`` that unpacks to 1 GiB: a NetCDF-3 header, then zeros.

    gzip members may be concatenated, so one compressed member of 64 MiB of zeros is
    repeated instead of compressing a gigabyte here.
    """
    zeros = gzip.compress(bytes(64 << 20), compresslevel=9)
    path = folder / "bomb.nc.gz"
    header = netcdf3_header({"time": 1, "latitude": 1 << 14, "longitude": 1 << 14})
    path.write_bytes(gzip.compress(header) + zeros * 16)
    return path


def truncated_grib(folder: Path) -> Path:
    """The ECMWF gust ensemble cut in the middle of a message."""
    source = sample_paths("wgust")[0]
    path = folder / source.name
    path.write_bytes(source.read_bytes()[:300_000])
    return path


def grib_declaring_huge_grid(folder: Path) -> Path:
    """A GRIB 1 message whose grid section says Ni x Nj = 65534 x 65534 (4.3e9 points)."""
    data = bytearray(sample_paths("wgust")[0].read_bytes())
    message_length = int.from_bytes(data[4:7], "big")
    pds_length = int.from_bytes(data[8:11], "big")
    gds = 8 + pds_length  # section 2 (GDS) follows the PDS; Ni, Nj at its octets 7-10
    data[gds + 6: gds + 10] = b"\xff\xfe\xff\xfe"  # 0xffff would mean "missing"
    path = folder / "huge_grid.grib"
    path.write_bytes(bytes(data[:message_length]))
    return path


def empty_file(folder: Path) -> Path:
    path = folder / "empty.nc"
    path.write_bytes(b"")
    return path


def junk_after_signature(folder: Path) -> Path:
    """NetCDF-3 and HDF5 magic bytes followed by random bytes."""
    path = folder / "junk.nc"
    path.write_bytes(b"CDF\x01" + np.random.default_rng(7).bytes(4096))
    return path


def link_to_dev_zero(folder: Path) -> Path:
    path = folder / "zero.grib"
    path.symlink_to("/dev/zero")
    return path


def named_pipe(folder: Path) -> Path:
    path = folder / "pipe.nc"
    os.mkfifo(path)
    return path


def empty_folder(folder: Path) -> Path:
    path = folder / "2026030100"
    path.mkdir()
    return path


def other_grid(folder: Path) -> Path:
    """A sound forecast file on another grid than the store's."""
    return forecast_file(folder / "other", run_time(1), shape=(30, 40))


def no_coordinates(folder: Path) -> Path:
    """A forecast variable on (time, y, x) with no spatial coordinates or grid mapping."""
    path = folder / "no_coords.nc"
    with netCDF4.Dataset(path, "w") as nc:
        nc.createDimension("time", 2)
        nc.createDimension("y", 20)
        nc.createDimension("x", 30)
        time = nc.createVariable("time", "f8", ("time",))
        time.units = "hours since 2026-03-01 00:00:00"
        time[:] = [3.0, 6.0]
        tp = nc.createVariable("tp", "f4", ("time", "y", "x"))
        tp[:] = np.ones((2, 20, 30), "float32")
        ref = nc.createVariable("forecast_reference_time", "f8", ())
        ref.units = "hours since 2026-03-01 00:00:00"
        ref.standard_name = "forecast_reference_time"
        ref.assignValue(0.0)
    return path


HOSTILE: dict[str, Callable[[Path], Path]] = {
    "NetCDF-4 declaring a 10^9 x 10^9 grid": huge_netcdf4,
    "NetCDF-3 declaring a 10^9 x 10^9 grid": huge_netcdf3,
    "gzip bomb": gzip_bomb,
    "truncated GRIB": truncated_grib,
    "GRIB declaring a 65534 x 65534 grid": grib_declaring_huge_grid,
    "empty file": empty_file,
    "junk after a NetCDF signature": junk_after_signature,
    "symlink to /dev/zero": link_to_dev_zero,
    "named pipe": named_pipe,
    "empty folder": empty_folder,
    "other grid than the store": other_grid,
    "no spatial coordinates": no_coordinates,
}


def damaged_chunk_netcdf4(folder: Path) -> Path:
    """The NAEFS sample as the next day's run, its QPF chunk garbled (QTF intact).

    Header, coordinates and length are sound, so the file opens and passes every check that
    reads no data; reading QPF fails (HDF5's deflate filter: a bad stream or checksum).
    """
    [source] = sample_paths("naefs")
    ds = xr.open_dataset(source, decode_timedelta=True).load()
    day = np.timedelta64(1, "D")
    ds = ds.assign_coords(time=ds.time + day, analysis_time=ds.analysis_time + day)
    path = folder / "NAEFSmean_netcdf2022081012.nc"
    encoding = {name: {"zlib": True, "complevel": 1, "shuffle": False,
                       "chunksizes": ds[name].shape} for name in ("QPF", "QTF")}
    ds.to_netcdf(path, engine="netcdf4", encoding=encoding)
    data = bytearray(path.read_bytes())
    at = int(len(data) * 0.3)  # inside QPF's compressed chunk, the first of the two
    data[at:at + 64] = bytes(64)
    path.write_bytes(data)
    return path
