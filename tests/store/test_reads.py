"""The cube's one read path: reads from the chunk files equal reads through zarr (issue #14).

Windows (maps, tiles, exports) and blocks over times and members (time series, EDR) read the
same values whichever way `fewsmap.store.reads` takes, and the values xarray reads from
`open_cube`. A store whose direct reader is unavailable (as on object storage) serves every
reader through zarr.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

import fewsmap
from fewsmap import open_cube
from fewsmap.points import find_cell, read_cell
from fewsmap.render.regrid import Canvas
from fewsmap.render.regrid import read_window as read_map_window
from fewsmap.store.cube import ForecastStore
from fewsmap.store.direct import DirectReader
from fewsmap.store.reads import read_block, read_window
from tests.synthetic import field_store, lagged_ensemble_store, lonlat_grid

ROWS, COLS = 600, 700  # more than one 512 × 512 chunk along each axis


class ZarrOnlyStore(ForecastStore):
    """A store whose chunk files cannot be read directly (as an object store's)."""

    def reader(self, name: str) -> DirectReader | None:
        return None


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 600 × 700 lon/lat grid of noise with a NaN patch (variables ``lon``, ``lat``)."""
    rng = np.random.default_rng(14)
    lat, lon = np.linspace(70.0, 30.0, ROWS), np.linspace(-20.0, 40.0, COLS)
    first = rng.normal(size=(ROWS, COLS))
    first[100:200, 400:650] = np.nan
    path = tmp_path_factory.mktemp("reads") / "big.zarr"
    return field_store(path, lonlat_grid(lat, lon), first, rng.normal(size=(ROWS, COLS)))


@pytest.fixture(scope="module")
def lagged(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return lagged_ensemble_store(tmp_path_factory.mktemp("lagged") / "lagged.zarr")


WINDOWS = {
    "across chunks": (np.arange(400, 580), np.arange(450, 620)),
    "rows north to south reversed": (np.arange(580, 400, -1), np.arange(10, 90)),
    "a wrapped longitude axis": (np.arange(50, 70), np.r_[np.arange(690, 700), np.arange(12)]),
    "a wrapped axis read east to west": (np.arange(530, 500, -1),
                                         np.r_[np.arange(5, -1, -1), np.arange(699, 680, -1)]),
    "one cell": (np.array([513]), np.array([515])),
    "columns in many runs": (np.arange(10, 20), np.array([1, 3, 5, 7, 9, 600, 650])),
    "scattered rows": (np.array([3, 70, 520, 599]), np.arange(100, 104)),
    "the NaN patch": (np.arange(90, 210), np.arange(390, 660)),
}


@pytest.mark.parametrize("name", list(WINDOWS))
def test_a_window_reads_the_same_values_directly_and_through_zarr(big: Path, name: str) -> None:
    rows, cols = WINDOWS[name]
    store = ForecastStore(big)
    assert store.reader("lon") is not None  # the direct path is taken where it can be
    run = store.runs[0]
    prefix = (run.slot, int(run.step_slots[1]))
    direct = read_window(store, "lon", prefix, rows, cols)
    through_zarr = read_window(store, "lon", prefix, rows, cols, direct=False)
    without_reader = read_window(ZarrOnlyStore(big), "lon", prefix, rows, cols)
    with open_cube(big) as ds:
        expected = ds["lon"].isel(forecast_reference_time=0, step=1).values[np.ix_(rows, cols)]
    assert direct.dtype == np.float32 and direct.shape == (rows.size, cols.size)
    np.testing.assert_array_equal(direct, expected)
    np.testing.assert_array_equal(through_zarr, expected)
    np.testing.assert_array_equal(without_reader, expected)


@pytest.mark.parametrize(("rows", "cols"), [
    (np.array([4]), np.array([7])),  # a time series: one cell
    (np.arange(2, 6), np.array([15, 0, 1])),  # an EDR area: a block of cells
])
def test_a_block_over_steps_and_members_reads_the_same_both_ways(
        lagged: Path, rows: np.ndarray, cols: np.ndarray) -> None:
    store = ForecastStore(lagged)
    run = store.runs[3]
    members = [0, 5, 21, 22, 27]
    direct = read_block(store, "t2m", run.slot, run.step_slots, [members], rows, cols)
    through_zarr = read_block(store, "t2m", run.slot, run.step_slots, [members], rows, cols,
                              direct=False)
    with open_cube(lagged) as ds:
        field = ds["t2m"].isel(forecast_reference_time=3).values  # step, member, y, x
    expected = field[np.ix_(np.arange(run.step_slots.size), members, rows, cols)]
    assert direct.shape == (run.step_slots.size, len(members), rows.size, cols.size)
    assert np.isfinite(expected).any() and np.isnan(expected).any()  # held and never written
    np.testing.assert_array_equal(direct, expected)
    np.testing.assert_array_equal(through_zarr, expected)


def test_maps_and_time_series_work_on_a_store_without_a_direct_reader(big: Path) -> None:
    """What a map draws and a time series answers is the same through zarr alone."""
    local, zarr_only = ForecastStore(big), ZarrOnlyStore(big)
    run = local.runs[0]
    canvas = Canvas("EPSG:3857", (0.0, 5.0e6, 1.5e6, 6.5e6), 256, 256)
    for step in run.step_slots:
        prefix = (run.slot, int(step))
        drawn, again = (read_map_window(s, "lat", prefix, canvas) for s in (local, zarr_only))
        assert drawn is not None and again is not None
        np.testing.assert_array_equal(drawn.values, again.values)
        np.testing.assert_array_equal(drawn.x, again.x)
    cell = find_cell(zarr_only, "EPSG:4326", 12.34, 45.67)
    assert cell is not None
    np.testing.assert_array_equal(read_cell(zarr_only, "lat", cell, run),
                                  read_cell(local, "lat", cell, run))


def test_only_the_read_path_chooses_between_chunk_files_and_zarr() -> None:
    """No reader of stored values asks for the direct reader or indexes zarr itself."""
    package = Path(fewsmap.__file__).parent
    # The read path and the store it reads; the writers index what they write.
    owners = {package / "store" / name
              for name in ("reads.py", "cube.py", "direct.py", "writer.py", "chunk_writes.py")}
    choosing = re.compile(r"\.reader\(|\.oindex\[|\.vindex\[")
    offenders = [str(path.relative_to(package)) for path in package.rglob("*.py")
                 if path not in owners and not path.is_relative_to(package / "ingest")
                 and choosing.search(path.read_text())]
    assert offenders == []


def test_a_small_fields_window_is_read_directly_from_its_shared_chunk(lagged: Path) -> None:
    """The lagged ensemble's 11 × 16 fields share chunks (steps × members): each field's
    window is read from the chunk file, the same values zarr and xarray read."""
    store = ForecastStore(lagged)
    chunks = store.array("t2m").chunks
    assert chunks[1] > 1 and chunks[2] > 1
    reader = store.reader("t2m")
    assert reader is not None
    rows, cols = np.arange(2, 9), np.arange(15, 3, -1)
    with open_cube(lagged) as ds:
        cube = ds["t2m"].values  # run, step, member, y, x
    for k, run in enumerate(store.runs):
        for step in range(cube.shape[1]):
            for member in (0, 6, 27):
                prefix = (run.slot, int(run.step_slots[step]), member)
                assert reader.read_window(prefix, slice(2, 9), slice(4, 16)) is not None
                direct = read_window(store, "t2m", prefix, rows, cols)
                np.testing.assert_array_equal(direct, cube[k, step, member][np.ix_(rows, cols)])
                np.testing.assert_array_equal(
                    direct, read_window(store, "t2m", prefix, rows, cols, direct=False))
