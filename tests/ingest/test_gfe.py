"""NWS GFE NetCDF exports (fewsmap/ingest/gfe.py): the CNRFC QPF runs, checked against the
files as scipy reads them and as their layout defines times, run, grid and missing values."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyproj
import pytest

from fewsmap import ForecastStore, open_cube
from fewsmap.errors import IngestError
from fewsmap.ingest import ingest
from tests.conftest import assert_values
from tests.forecast_files import gfe_copy, read_gfe

Sample = Callable[[str], list[Path]]
Ingested = Callable[[str], Path]
FILL = -30000.0
# The file's float32 latitudes/longitudes carry ~4e-6° of rounding; a wrong grid is off by
# kilometres (0.04° is one cell).
DEGREES_TOLERANCE = 2e-5


def element(gfe: dict[str, Any], name: str = "QPF_SFC") -> tuple[np.ndarray, dict[str, Any]]:
    values, _, attrs = gfe["variables"][name]
    return values, attrs


def period_ends(attrs: dict[str, Any]) -> np.ndarray:
    return np.asarray(attrs["validTimes"]).reshape(-1, 2)[:, 1].astype("datetime64[s]")


def test_two_gfe_runs_become_two_runs_of_one_store(ingested: Ingested, sample: Sample) -> None:
    # Issue #13 item 16: refused before ("no gridded variable with a time axis").
    fs = ForecastStore(ingested("cnrfc_qpf"))
    assert [run.label for run in fs.runs] == ["2022-12-01T12:00:00Z", "2022-12-08T12:00:00Z"]
    assert fs.variables == ["QPF_SFC"]
    attrs = fs.attributes("QPF_SFC")
    assert (attrs["units"], attrs["long_name"], attrs["cell_methods"]) == ("in", "QPF",
                                                                          "time: sum")
    for run, path in zip(fs.runs, sample("cnrfc_qpf"), strict=True):
        gfe = read_gfe(path)
        values, var_attrs = element(gfe)
        start_proc = np.datetime64(
            f"{gfe['attrs']['startProcTime'][:4]}-{gfe['attrs']['startProcTime'][4:6]}-"
            f"{gfe['attrs']['startProcTime'][6:8]}T{gfe['attrs']['startProcTime'][9:11]}:00", "s")
        assert run.reference_time == start_proc
        assert run.record["reference_time_from"] == "file"
        # Valid time: the end of each 6-hour period the accumulation covers.
        ends = period_ends(var_attrs)
        assert ends.size == 24 and (np.diff(ends) == np.timedelta64(6, "h")).all()
        np.testing.assert_array_equal(run.valid_times, ends)
        for index, valid_time in enumerate(run.valid_times):
            assert_values(fs.read_slice("QPF_SFC", run, valid_time), values[index])
        assert np.nanmax(values) > 0.5  # real precipitation, not an empty field


def test_the_grid_is_polar_stereographic_on_the_files_points(ingested: Ingested,
                                                             sample: Sample) -> None:
    fs = ForecastStore(ingested("cnrfc_qpf"))
    assert fs.spatial_dims == ("y", "x") and "latitude" not in fs.group
    crs = pyproj.CRS.from_wkt(fs.attributes("crs")["crs_wkt"])
    cf = crs.to_cf()
    assert cf["grid_mapping_name"] == "polar_stereographic"
    assert (cf["straight_vertical_longitude_from_pole"], cf["standard_parallel"]) == (-105, 60)
    x, y = fs.coordinate("x"), fs.coordinate("y")
    # HRAP's cell: 4,762.5 m at 60°N on AWIPS's sphere.
    np.testing.assert_allclose(np.diff(x), 4762.5, atol=0.1)
    np.testing.assert_allclose(np.diff(y), 4762.5, atol=0.1)
    to_lonlat = pyproj.Transformer.from_crs(crs, crs.geodetic_crs, always_xy=True)
    lon, lat = to_lonlat.transform(*np.meshgrid(x, y))
    for path in sample("cnrfc_qpf"):
        gfe = read_gfe(path)
        np.testing.assert_allclose(lat, element(gfe, "latitude")[0], rtol=0,
                                   atol=DEGREES_TOLERANCE)
        np.testing.assert_allclose(lon, element(gfe, "longitude")[0], rtol=0,
                                   atol=DEGREES_TOLERANCE)


def test_fill_values_are_missing(tmp_path: Path, sample: Sample) -> None:
    source = sample("cnrfc_qpf")[0]
    values, _ = element(read_gfe(source))
    holes = values.copy()
    holes[3, 100:120, 50:60] = FILL
    store = tmp_path / "qpf.zarr"
    ingest(store, [gfe_copy(source, tmp_path / source.name, {"QPF_SFC": holes})],
           progress=False)
    fs = ForecastStore(store)
    [run] = fs.runs
    stored = fs.read_slice("QPF_SFC", run, run.valid_times[3])
    assert np.isnan(stored[100:120, 50:60]).all()
    expected = values[3].copy()
    expected[100:120, 50:60] = np.nan
    assert_values(stored, expected)
    assert run.statistics["QPF_SFC"]["min"] == 0.0  # -30000 is not a value


@pytest.mark.parametrize("change", ["bent", "lambert"])
def test_a_grid_the_projection_does_not_reproduce_stays_curvilinear(
        change: str, tmp_path: Path, sample: Sample) -> None:
    source = sample("cnrfc_qpf")[0]
    gfe = read_gfe(source)
    lat, _ = element(gfe, "latitude")
    values: dict[str, np.ndarray] = {}
    attrs: dict[str, dict[str, Any]] = {}
    if change == "bent":  # points moved by up to half a cell: no regular x/y grid
        rows = np.arange(lat.shape[0])[:, None]
        values["latitude"] = (lat + 0.02 * np.sin(rows / 10.0)).astype(lat.dtype)
    else:  # a projection type without the parameters to rebuild it
        attrs["QPF_SFC"] = {"projectionType": "LAMBERT_CONFORMAL"}
    store = tmp_path / "qpf.zarr"
    ingest(store, [gfe_copy(source, tmp_path / source.name, values, attrs)], progress=False)
    with open_cube(store) as ds:
        assert ds["QPF_SFC"].dims[-2:] == ("y", "x") and ds["latitude"].dims == ("y", "x")
        expected = values.get("latitude", lat)
        np.testing.assert_array_equal(ds["latitude"].values, expected.astype("float64"))
        np.testing.assert_array_equal(ds["longitude"].values,
                                      element(gfe, "longitude")[0].astype("float64"))


@pytest.mark.parametrize(("attrs", "says"), [
    ({"QPF_SFC": {"validTimes": np.arange(47, dtype="int32")}},
     "QPF_SFC: validTimes holds 47 numbers; its 24 grids need 24 .start, end. pairs"),
    ({"QPF_SFC": {"validTimes": np.repeat(np.int32(1669896000), 48)}},
     "QPF_SFC: validTimes has a period that does not end after it starts"),
    ({"": {"startProcTime": "yesterday"}}, "startProcTime 'yesterday' is not YYYYMMDD_HHMM"),
])
def test_a_damaged_gfe_layout_is_refused_naming_it(attrs: dict[str, dict[str, Any]], says: str,
                                                   tmp_path: Path, sample: Sample) -> None:
    source = sample("cnrfc_qpf")[0]
    damaged = gfe_copy(source, tmp_path / source.name, {}, attrs)
    store = tmp_path / "qpf.zarr"
    with pytest.raises(IngestError, match=says):
        ingest(store, [damaged], progress=False)
    assert not store.exists()
