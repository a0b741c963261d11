"""Where a run's reference time, members, variables and units come from (no store needed)."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from fewsmap import open_cube
from fewsmap.errors import IngestError
from fewsmap.ingest import ingest, read_runs
from tests.conftest import assert_values, open_source
from tests.forecast_files import T0, forecast_file, single_level_grib

Sample = Callable[[str], list[Path]]


def copy_as(source: Path, target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(source, target)
    return target


def test_cf_reference_time_wins_over_the_file_name(sample: Sample) -> None:
    [run] = read_runs(sample("naefs"))
    assert run.label == "2022-08-09T00:00:00Z"  # not the 2022080912 in the name
    assert run.reference_time_from == "file"
    assert run.variables == ["QPF", "QTF"]
    assert run.fields["QPF"][0].attrs["units"] == "mm"
    assert run.fields["QPF"][0].attrs["source_units"] == "MM"
    assert run.fields["QTF"][0].attrs["units"] == "degC"
    assert run.fields["QTF"][0].attrs["source_units"] == "DEGC"


def test_reference_time_from_the_first_valid_time_needs_the_date_in_the_name(
    tmp_path: Path, sample: Sample
) -> None:
    [arome] = sample("arome")
    [run] = read_runs([arome])
    assert run.label == "2016-01-14T00:00:00Z"
    assert run.reference_time_from == "first valid time (date 20160114 in the file name)"
    np.testing.assert_array_equal(run.steps, np.array([0, 1, 2], dtype="timedelta64[h]"))

    # Without that date, or with another one, the run is unknown: say how to give it.
    for name in ("arome_subset.nc", "AROME_MetCoOp_00_DEF_20160115_subset.nc"):
        renamed = copy_as(arome, tmp_path / name)
        with pytest.raises(IngestError, match=rf"{name}: no forecast reference time.*"
                                              "--reference-time"):
            read_runs([renamed])


def test_reference_time_from_a_run_folder(tmp_path: Path, sample: Sample) -> None:
    copy = copy_as(sample("arome")[0], tmp_path / "2016011400" / "arome.nc")
    [run] = read_runs([copy])
    assert run.label == "2016-01-14T00:00:00Z"
    assert run.reference_time_from == "path ('2016011400')"


def test_given_reference_time_is_used_when_the_file_has_none(sample: Sample) -> None:
    given = np.datetime64("2016-01-13T18:00:00")
    [run] = read_runs(sample("arome"), reference_time=given)
    assert run.label == "2016-01-13T18:00:00Z"
    assert run.reference_time_from == "--reference-time"
    np.testing.assert_array_equal(run.steps, np.array([6, 7, 8], dtype="timedelta64[h]"))


@pytest.mark.parametrize("name", ["naefs", "wgust"])
def test_given_reference_time_must_agree_with_the_file(name: str, sample: Sample) -> None:
    with pytest.raises(IngestError, match="differs from --reference-time"):
        read_runs(sample(name), reference_time=np.datetime64("2000-01-01T00:00:00"))


def test_gefs_member_and_statistic_files(sample: Sample) -> None:
    [folder] = sample("gefs")
    [run] = read_runs([folder / n for n in ("gefs_c00.nc", "gefs_p07.nc", "gefs_avg.nc",
                                            "gefs_spr.nc")])
    assert run.label == "2019-05-15T00:00:00Z"
    assert run.reference_time_from == "file (wgrib2 reference_time)"
    assert list(run.labels("realization")) == [0, 7]
    assert run.dims("t2m") == ("step", "realization", "latitude", "longitude")
    assert run.dims("t2m_ens_mean") == ("step", "latitude", "longitude")
    assert run.fields["si10_ens_spread"][0].attrs["cell_methods"] == (
        "realization: standard_deviation")
    assert run.fields["tcdc"][0].attrs["units"] == "%"

    # Irregular lead times, straight from the valid times.
    times = open_source(folder / "gefs_c00.nc").time.values
    np.testing.assert_array_equal(run.steps, (times - times[0]).astype("timedelta64[s]"))
    # 3-hourly up to 192 h, then 6-hourly (SOURCE.md's "240 h" is not what the files hold).
    assert set(np.diff(run.steps[:65])) == {np.timedelta64(3, "h")}
    assert set(np.diff(run.steps[64:])) == {np.timedelta64(6, "h")}
    assert run.steps[64] == np.timedelta64(192, "h")


def test_cfgrib_ensemble_number_becomes_realization(sample: Sample) -> None:
    [run] = read_runs(sample("wgust"))
    assert run.dims("fg10_6") == ("step", "realization", "latitude", "longitude")
    np.testing.assert_array_equal(run.labels("realization"), np.arange(1, 51))


def test_pressure_levels_are_marked_as_z_axis(sample: Sample) -> None:
    [run] = read_runs(sample("multi_param"))
    assert run.label_dims() == ["isobaricInhPa"]
    assert run.coord_attrs("isobaricInhPa")["axis"] == "Z"
    np.testing.assert_array_equal(run.labels("isobaricInhPa"), [300, 500, 850, 1000])


def test_a_single_pressure_level_is_kept_as_a_level(tmp_path: Path, sample: Sample) -> None:
    [run] = read_runs([single_level_grib(tmp_path, 850)])
    assert run.dims("z") == ("step", "isobaricInhPa", "latitude", "longitude")
    np.testing.assert_array_equal(run.labels("isobaricInhPa"), [850])
    assert run.coord_attrs("isobaricInhPa")["axis"] == "Z"
    [n48] = read_runs(sample("t_n48"))  # ECMWF temperature at 1000 hPa, reduced Gaussian
    assert n48.dims("t") == ("step", "isobaricInhPa", "latitude", "longitude")
    np.testing.assert_array_equal(n48.labels("isobaricInhPa"), [1000])


def test_heights_above_ground_stay_out_of_the_dimensions(tmp_path: Path) -> None:
    """2 m temperature (CF: a scalar ``height`` of 2 m) says its height in its name."""
    with xr.open_dataset(forecast_file(tmp_path, T0)) as ds:
        height = xr.DataArray(2.0, attrs={"standard_name": "height", "units": "m",
                                          "positive": "up", "axis": "Z"})
        ds.assign_coords(height=height).to_netcdf(tmp_path / "t2m.nc")
    [run] = read_runs([tmp_path / "t2m.nc"])
    assert "height" not in run.dims("tp") and run.label_dims() == []


def test_files_of_one_level_each_keep_both_levels(tmp_path: Path) -> None:
    paths = [single_level_grib(tmp_path, level) for level in (850, 500)]
    ingest(tmp_path / "z.zarr", paths, progress=False)
    with open_cube(tmp_path / "z.zarr") as cube:
        stored = cube["z"].isel(forecast_reference_time=0)
        assert sorted(stored["isobaricInhPa"].values.tolist()) == [500.0, 850.0]
        for level, path in zip((850, 500), paths, strict=True):
            assert_values(stored.sel(isobaricInhPa=level).values, open_source(path)["z"].values)
