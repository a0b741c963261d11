"""Recognise and open input files by their bytes; refuse damaged ones before any decoding."""

from __future__ import annotations

import gzip
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from fewsmap import ForecastStore
from fewsmap.errors import IngestError
from fewsmap.ingest import ingest
from fewsmap.ingest.sources import check_grib, check_hdf5_length, open_source, sniff_format
from tests.conftest import assert_values, seconds
from tests.conftest import open_source as open_directly

Sample = Callable[[str], list[Path]]


@pytest.mark.parametrize(
    ("name", "kind"),
    [("wgust", "grib"), ("maxt", "grib"), ("naefs", "netcdf3"), ("arome", "netcdf4")],
)
def test_format_is_told_by_the_bytes(name: str, kind: str, sample: Sample) -> None:
    assert sniff_format(sample(name)[0]) == kind


def test_gefs_members_are_netcdf4(sample: Sample) -> None:
    assert {sniff_format(p) for p in sample("gefs")[0].iterdir()} == {"netcdf4"}


@pytest.mark.parametrize("fmt", ["NETCDF3_CLASSIC", "NETCDF4"])
def test_netcdf_converted_from_grib_is_netcdf(fmt: str, tmp_path: Path, sample: Sample) -> None:
    # xarray writes cfgrib's GRIB_* attributes into the header, within the first 200 bytes.
    src = open_directly(sample("fmat")[0])
    converted = tmp_path / "fmat_00z.nc"
    src.to_netcdf(converted, format=fmt)
    assert b"GRIB_" in converted.read_bytes()[:200]

    assert sniff_format(converted) == ("netcdf3" if fmt == "NETCDF3_CLASSIC" else "netcdf4")
    ingest(tmp_path / "s.zarr", [converted], progress=False)
    [run] = ForecastStore(tmp_path / "s.zarr").runs
    assert run.label == "2022-06-01T00:00:00Z"
    np.testing.assert_array_equal(run.valid_times, [seconds(src.valid_time.values)])
    assert_values(ForecastStore(tmp_path / "s.zarr").read_slice("t", run, run.valid_times[0]),
                  src.t.values)


def test_gzipped_netcdf3_is_read(tmp_path: Path, sample: Sample) -> None:
    [path] = sample("naefs")
    packed = tmp_path / (path.name + ".gz")
    packed.write_bytes(gzip.compress(path.read_bytes()))

    assert sniff_format(packed) == "netcdf3-gzip"
    [ds] = open_source(packed)
    assert_values(ds.QPF.values, open_directly(path).QPF.values)


@pytest.mark.parametrize("size", [3, 12, 1_000_000])
def test_damaged_gzip_is_refused(size: int, tmp_path: Path, sample: Sample) -> None:
    packed = tmp_path / "NAEFSmean.nc.gz"
    packed.write_bytes(gzip.compress(sample("naefs")[0].read_bytes())[:size])
    with pytest.raises(IngestError, match=re.escape(str(packed))):
        open_source(packed)


@pytest.mark.parametrize("content", [b"", b"hello\n", b"CDX\x01" + bytes(100), b"\x89PNG\r\n"])
def test_other_files_are_refused(content: bytes, tmp_path: Path) -> None:
    other = tmp_path / "other.nc"
    other.write_bytes(content)
    with pytest.raises(IngestError, match=r"not a NetCDF or GRIB file|: empty file$"):
        sniff_format(other)


def test_truncated_grib_message_is_found(tmp_path: Path, sample: Sample) -> None:
    data = sample("wgust")[0].read_bytes()
    assert data.count(b"GRIB") == 150
    cut = tmp_path / "wgust_ens.grib"
    cut.write_bytes(data[:300_000])
    check_grib(sample("wgust")[0])  # the whole file passes
    with pytest.raises(IngestError, match=r"wgust_ens\.grib: GRIB message 90 is damaged"):
        check_grib(cut)


def test_last_grib_message_cut_short_is_found(tmp_path: Path, sample: Sample) -> None:
    # maxt ends exactly with its last message's end marker 7777; cfgrib would drop the message.
    data = sample("maxt")[0].read_bytes()
    assert data.endswith(b"7777")
    cut = tmp_path / "ds.maxt.bin"
    cut.write_bytes(data[:-1])
    with pytest.raises(IngestError, match=r"GRIB message 4 is damaged"):
        open_source(cut)


@pytest.mark.parametrize("missing", [1, 15_000])
def test_truncated_hdf5_is_found(missing: int, tmp_path: Path, sample: Sample) -> None:
    path = sample("gefs")[0] / "gefs_p05.nc"
    check_hdf5_length(path)
    cut = tmp_path / path.name
    cut.write_bytes(path.read_bytes()[:-missing])
    with pytest.raises(IngestError, match=r"gefs_p05\.nc: truncated NetCDF-4 file"):
        open_source(cut)


@pytest.mark.parametrize("size", [100, 2_000_000, 3_842_783])
def test_truncated_netcdf3_is_refused(size: int, tmp_path: Path, sample: Sample) -> None:
    cut = tmp_path / sample("naefs")[0].name
    cut.write_bytes(sample("naefs")[0].read_bytes()[:size])
    with pytest.raises(IngestError, match="cannot be read as netcdf3"):
        open_source(cut)
