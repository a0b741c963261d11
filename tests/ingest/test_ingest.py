"""Ingest real sample files into stores and compare what readers see with the source files.

Every expectation comes from opening the source file directly (xarray, cfgrib), never from
fewsmap itself. Grid-specific samples (projected, reduced Gaussian) are in ``test_grids.py``.
"""

from __future__ import annotations

import gc
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from fewsmap import ForecastStore, open_cube
from fewsmap.errors import IngestError
from fewsmap.ingest import ingest
from tests.conftest import assert_values, open_source, sample_paths, seconds, tree_digest

Sample = Callable[[str], list[Path]]
Ingested = Callable[[str], Path]
RUN = "forecast_reference_time"


# --- one test per sample: runs, valid times, members, levels, units, values ------------------


def test_naefs_fews_export(ingested: Ingested, sample: Sample) -> None:
    [path] = sample("naefs")
    src = open_source(path)
    fs = ForecastStore(ingested("naefs"))

    # The file name says ...12; the run is the CF forecast_reference_time (analysis_time).
    assert [r.label for r in fs.runs] == ["2022-08-09T00:00:00Z"]
    [run] = fs.runs
    assert run.record["reference_time_from"] == "file"
    np.testing.assert_array_equal(run.valid_times, seconds(src.time))
    assert len(run.valid_times) == 64
    assert set(np.diff(run.valid_times)) == {np.timedelta64(6, "h")}
    assert run.valid_times[0] == np.datetime64("2022-08-09T06:00:00")

    # `z` (y, x) has no time axis: it is not a forecast variable.
    assert fs.variables == ["QPF", "QTF"]
    assert fs.attributes("QPF")["units"] == "mm"
    assert fs.attributes("QPF")["source_units"] == "MM"
    assert fs.attributes("QTF")["units"] == "degC"
    assert fs.attributes("QTF")["source_units"] == "DEGC"
    assert fs.spatial_dims == ("latitude", "longitude")
    np.testing.assert_array_equal(fs.coordinate("latitude"), src.y.values)
    np.testing.assert_array_equal(fs.coordinate("longitude"), src.x.values)
    for name in ("QPF", "QTF"):
        for vt in run.valid_times[[0, 31, 63]]:
            assert_values(fs.read_slice(name, run, vt), src[name].sel(time=vt).values)

    ds = open_cube(ingested("naefs"))
    assert "z" not in ds.variables
    assert list(ds.data_vars) == ["QPF", "QTF"]
    assert ds.QPF.dims == (RUN, "step", "latitude", "longitude")
    np.testing.assert_array_equal(ds[RUN].values, [np.datetime64("2022-08-09T00:00", "ns")])
    np.testing.assert_array_equal(ds.valid_time.values[0], src.time.values)
    np.testing.assert_array_equal(ds.step.values, src.time.values - src.analysis_time.values[0])
    assert ds.QPF.attrs["units"] == "mm" and ds.QTF.attrs["units"] == "degC"
    for name in ("QPF", "QTF"):
        assert_values(ds[name].isel({RUN: 0}).values, src[name].values)


def test_multi_param_keeps_pressure_levels(ingested: Ingested, sample: Sample) -> None:
    [path] = sample("multi_param")
    src = open_source(path)
    store = ingested("multi_param")
    fs = ForecastStore(store)

    [run] = fs.runs
    assert run.label == "2018-04-04T12:00:00Z"
    np.testing.assert_array_equal(run.valid_times, seconds(src.valid_time))
    assert fs.variables == ["t", "u", "z"]
    assert fs.dims("t") == (RUN, "step", "isobaricInhPa", "latitude", "longitude")
    assert fs.attributes("isobaricInhPa")["axis"] == "Z"
    assert fs.attributes("isobaricInhPa")["units"] == "hPa"
    levels = list(fs.coordinate("isobaricInhPa"))
    assert sorted(levels) == [300, 500, 850, 1000]
    assert fs.attributes("t")["units"] == "K"
    assert fs.attributes("u")["units"] == "m s-1"
    assert fs.attributes("u")["source_units"] == "m s**-1"

    vt = run.valid_times[2]
    assert_values(fs.read_slice("t", run, vt, isobaricInhPa=levels.index(500)),
                  src.t.sel(valid_time=vt, isobaricInhPa=500).values)

    ds = open_cube(store)
    np.testing.assert_array_equal(ds.step.values, src.step.values)
    assert ds.isobaricInhPa.attrs["axis"] == "Z"
    for name in ("t", "u", "z"):
        for level in (1000, 850, 500, 300):
            assert_values(ds[name].isel({RUN: 0}).sel(isobaricInhPa=level).values,
                          src[name].sel(isobaricInhPa=level).values)


def test_wgust_members_become_realizations(ingested: Ingested, sample: Sample) -> None:
    [path] = sample("wgust")
    src = open_source(path)
    store = ingested("wgust")
    fs = ForecastStore(store)

    [run] = fs.runs
    assert run.label == "2018-11-20T12:00:00Z"
    np.testing.assert_array_equal(run.valid_times, seconds(src.valid_time))
    assert fs.variables == ["fg10_6"]
    assert fs.dims("fg10_6") == (RUN, "step", "realization", "latitude", "longitude")
    members = list(fs.coordinate("realization"))
    assert members == list(range(1, 51))
    assert fs.attributes("fg10_6")["units"] == "m s-1"

    vt = run.valid_times[1]
    assert_values(fs.read_slice("fg10_6", run, vt, realization=members.index(17)),
                  src.fg10_6.sel(number=17, step=vt - run.reference_time).values)

    ds = open_cube(store)
    np.testing.assert_array_equal(ds.realization.values, np.arange(1, 51))
    np.testing.assert_array_equal(ds.step.values, src.step.values)
    assert_values(ds.fg10_6.isel({RUN: 0}).values,
                  src.fg10_6.transpose("step", "number", ...).values)


def test_gefs_folder_is_one_ensemble_run(ingested: Ingested, sample: Sample) -> None:
    [folder] = sample("gefs")
    files = {p.stem.removeprefix("gefs_"): p for p in folder.glob("gefs_*.nc")}
    assert len(files) == 23
    sources = {key: open_source(p) for key, p in files.items()}
    control = sources["c00"]
    fs = ForecastStore(ingested("gefs"))

    # No reference-time variable: the run comes from wgrib2's reference_time attribute.
    [run] = fs.runs
    assert run.label == "2019-05-15T00:00:00Z"
    assert run.record["reference_time_from"] == "file (wgrib2 reference_time)"
    assert len(run.sources) == 23
    np.testing.assert_array_equal(run.valid_times, seconds(control.time))
    assert set(np.diff(run.valid_times)) == {np.timedelta64(3, "h"), np.timedelta64(6, "h")}

    base = ["dswrf", "si10", "t2m", "tcdc"]
    assert fs.variables == sorted(base + [f"{v}_ens_mean" for v in base]
                                  + [f"{v}_ens_spread" for v in base])
    members = list(fs.coordinate("realization"))
    assert sorted(members) == list(range(21))
    assert fs.dims("t2m") == (RUN, "step", "realization", "latitude", "longitude")
    assert fs.dims("t2m_ens_mean") == (RUN, "step", "latitude", "longitude")
    assert fs.attributes("t2m_ens_mean")["cell_methods"] == "realization: mean"
    assert fs.attributes("t2m_ens_spread")["cell_methods"] == "realization: standard_deviation"
    assert fs.attributes("t2m")["units"] == "K"
    assert fs.attributes("si10")["units"] == "m s-1"
    assert fs.attributes("tcdc")["units"] == "%"
    assert fs.attributes("dswrf")["units"] == "W m-2"

    vt = run.valid_times[85]  # in the 6-hourly part
    assert_values(fs.read_slice("t2m", run, vt, realization=members.index(7)),
                  sources["p07"].t2m.sel(time=vt).values)

    ds = open_cube(ingested("gefs"))
    np.testing.assert_array_equal(ds.step.values,
                                  control.time.values - np.datetime64("2019-05-15T00:00"))
    # Every member of one variable (c00 → 0, pNN → NN), every variable of a few files;
    # each member is 97 one-step chunks, so reading them all for all variables is slow.
    t2m = ds.t2m.isel({RUN: 0}).load()
    for key, src in sources.items():
        if key not in ("avg", "spr"):
            assert_values(t2m.sel(realization=int(key[1:])).values, src.t2m.values)
    for key in ("c00", "p20"):
        for name in base:
            stored = ds[name].isel({RUN: 0}).sel(realization=int(key[1:]))
            assert_values(stored.values, sources[key][name].values)
    for key, suffix in (("avg", "_ens_mean"), ("spr", "_ens_spread")):
        for name in base:
            assert_values(ds[name + suffix].isel({RUN: 0}).values, sources[key][name].values)


# --- bad inputs: IngestError naming the file, store byte-for-byte unchanged -------------------


def cut(source: Path, size: int, folder: Path) -> Path:
    """Copy the first ``size`` bytes of ``source`` into ``folder``, under the same name."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / source.name
    target.write_bytes(source.read_bytes()[:size])
    return target


def text_file(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / "README.txt"
    target.write_text("Forecast files for 2022-08-09 are in this folder.\n")
    return target


BAD_INPUTS: dict[str, Callable[[Path], Path]] = {
    "truncated GRIB": lambda d: cut(sample_paths("wgust")[0], 300_000, d),
    "truncated NetCDF-4": lambda d: cut(
        sample_paths("gefs")[0] / "gefs_p05.nc",
        (sample_paths("gefs")[0] / "gefs_p05.nc").stat().st_size // 2, d),
    "truncated NetCDF-3": lambda d: cut(sample_paths("naefs")[0], 2_000_000, d),
    "text file": text_file,
}


@pytest.fixture
def store_with_a_run(tmp_path: Path, sample: Sample) -> Path:
    """A store holding one published run (FMAT 00Z) in its own folder."""
    store = tmp_path / "stores" / "fmat.zarr"
    ingest(store, sample("fmat")[:1], progress=False)
    return store


@pytest.mark.parametrize("kind", BAD_INPUTS)
def test_bad_input_changes_nothing(kind: str, store_with_a_run: Path, tmp_path: Path) -> None:
    bad = BAD_INPUTS[kind](tmp_path / "in")
    before = tree_digest(store_with_a_run.parent)

    with pytest.raises(IngestError, match=re.escape(bad.name)):
        ingest(store_with_a_run, [bad], progress=False)

    assert tree_digest(store_with_a_run.parent) == before


def test_an_ingest_leaves_every_object_to_the_garbage_collector(
        store_with_a_run: Path, sample: Sample, tmp_path: Path) -> None:
    """The objects an ingest keeps away from the collector (`long_lived_objects_frozen`)
    are collectable again afterwards, whether it wrote or failed."""
    assert gc.get_freeze_count() == 0
    ingest(store_with_a_run, sample("fmat")[1:2], progress=False)
    assert gc.get_freeze_count() == 0
    with pytest.raises(IngestError):
        ingest(store_with_a_run, [text_file(tmp_path)], progress=False)
    assert gc.get_freeze_count() == 0


@pytest.mark.parametrize("kind", BAD_INPUTS)
def test_bad_input_creates_no_store(kind: str, tmp_path: Path) -> None:
    bad = BAD_INPUTS[kind](tmp_path / "in")
    with pytest.raises(IngestError, match=re.escape(bad.name)):
        ingest(tmp_path / "new.zarr", [bad], progress=False)
    assert not (tmp_path / "new.zarr").exists()


def test_file_without_forecast_variable_is_refused(
    store_with_a_run: Path, tmp_path: Path, sample: Sample
) -> None:
    # A real NetCDF file holding only NAEFS's static terrain height: no time axis.
    static = tmp_path / "naefs_terrain.nc"
    open_source(sample("naefs")[0])[["z"]].to_netcdf(static)
    before = tree_digest(store_with_a_run.parent)

    with pytest.raises(IngestError, match=r"naefs_terrain\.nc: no gridded variable"):
        ingest(store_with_a_run, [static], progress=False)

    assert tree_digest(store_with_a_run.parent) == before


def test_other_grid_than_the_store_is_refused(tmp_path: Path, sample: Sample) -> None:
    store = tmp_path / "naefs.zarr"
    ingest(store, sample("naefs"), progress=False)
    before = tree_digest(tmp_path)

    with pytest.raises(IngestError, match=r"FMAT12hr_20220601\.00z\.grb.*grid"):
        ingest(store, sample("fmat"), progress=False)

    assert tree_digest(tmp_path) == before
    assert [r.label for r in ForecastStore(store).runs] == ["2022-08-09T00:00:00Z"]


@pytest.mark.parametrize("bad_kind", ["truncated NetCDF-4", "text file"])
def test_folder_mixing_good_and_bad_files_writes_nothing(
    bad_kind: str, store_with_a_run: Path, tmp_path: Path, sample: Sample
) -> None:
    folder = tmp_path / "gefs" / "2019051500"
    folder.mkdir(parents=True)
    for name in ("gefs_c00.nc", "gefs_p01.nc", "gefs_p02.nc"):
        shutil.copy(sample("gefs")[0] / name, folder)
    bad = BAD_INPUTS[bad_kind](folder)
    assert len(list(folder.iterdir())) == 4

    # Into a new store: nothing is created.
    new_store = tmp_path / "gefs.zarr"
    with pytest.raises(IngestError, match=re.escape(bad.name)):
        ingest(new_store, [folder], progress=False)
    assert not new_store.exists()

    # Into a store that exists: it is left exactly as it was (the grid would not even fit,
    # but the bad file is found first, while reading).
    before = tree_digest(store_with_a_run.parent)
    with pytest.raises(IngestError, match=re.escape(bad.name)):
        ingest(store_with_a_run, [folder], progress=False)
    assert tree_digest(store_with_a_run.parent) == before


def test_same_member_in_two_files_is_refused(tmp_path: Path, sample: Sample) -> None:
    [folder] = sample("gefs")
    copy = tmp_path / "again" / "gefs_p03.nc"
    copy.parent.mkdir()
    shutil.copy(folder / "gefs_p03.nc", copy)

    with pytest.raises(IngestError, match=r"gefs_p03\.nc.*is also in"):
        ingest(tmp_path / "gefs.zarr", [folder / "gefs_p03.nc", copy], progress=False)
    assert not (tmp_path / "gefs.zarr").exists()


def test_missing_input_is_named(tmp_path: Path) -> None:
    with pytest.raises(IngestError, match=r"nothing_here\.grib: no such file"):
        ingest(tmp_path / "s.zarr", [tmp_path / "nothing_here.grib"], progress=False)


# --- values that mean "no value" (a GRIB without a bitmap) ------------------------------------

FMAT_FILL = 233.16  # MARFC's value outside its forecast area (fewsmap.demo)


def test_a_missing_value_is_stored_as_nan_and_left_out_of_the_statistics(
    tmp_path: Path, sample: Sample
) -> None:
    [source] = sample("fmat")[:1]
    raw = open_source(source)["t"].values.astype("float32")
    filled = raw == np.float32(FMAT_FILL)
    assert 0 < filled.sum() < raw.size  # the corner outside the forecast area

    store = tmp_path / "fmat.zarr"
    ingest(store, [source], progress=False, missing_values={"t": FMAT_FILL})

    stored = open_cube(store)["t"].isel({RUN: 0, "step": 0}).values
    np.testing.assert_array_equal(np.isnan(stored), filled)
    np.testing.assert_array_equal(stored[~filled], raw[~filled])
    [run] = ForecastStore(store).runs
    assert run.statistics["t"]["min"] == float(raw[~filled].min())
    assert run.statistics["t"]["nan_fraction"] == pytest.approx(filled.mean())
    assert run.record["missing_values"] == {"t": FMAT_FILL}


@pytest.mark.parametrize(("missing", "message"), [
    ({"temperature": 1.0}, r"missing values for temperature, which it does not hold"),
    ({"t": float("nan")}, r"missing values must be finite numbers"),
])
def test_a_bad_missing_value_writes_nothing(
    missing: dict[str, float], message: str, store_with_a_run: Path, sample: Sample
) -> None:
    before = tree_digest(store_with_a_run.parent)
    with pytest.raises(IngestError, match=message):
        ingest(store_with_a_run, sample("fmat")[1:2], progress=False, missing_values=missing)
    assert tree_digest(store_with_a_run.parent) == before
