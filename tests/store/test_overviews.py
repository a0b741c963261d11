"""Overviews (fewsmap/store/overviews.py): written with each run, published with it, read for
zoomed-out views, equal to datashader's mean of the full grid within one pixel's change."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import dask
import dask.array as da
import datashader as dsh
import httpx
import numpy as np
import obstore
import pyproj
import pytest
import xarray as xr
import zarr
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from obstore.store import from_url
from scipy.ndimage import maximum_filter

from fewsmap import ForecastStore
from fewsmap.app.server import create_app
from fewsmap.errors import IngestError
from fewsmap.products.ensemble import EnsembleStatistic, MemberStatistic
from fewsmap.render.regrid import Canvas, read_window, regrid
from fewsmap.settings import Settings
from fewsmap.store import reads
from fewsmap.store.cube import quiet_zarr
from fewsmap.store.geometry import Centres, GridGeometry
from fewsmap.store.overviews import (
    MULTISCALES_CONVENTION,
    block_modes,
    level_count,
    overview_window,
)
from fewsmap.store.retention import RetentionPolicy, prune
from fewsmap.store.run import RunData, SourceFile
from fewsmap.store.writer import append_run
from tests.asgi_client import AppClient
from tests.conftest import tree_digest
from tests.grid_kinds import ROTATED, curvilinear_store
from tests.live_server import live_server
from tests.s3server import S3Server
from tests.synthetic import T0, lonlat_grid, projected_xy_store

NY, NX = 700, 1100  # levels 350 × 550, 175 × 275, 88 × 138
LAT = np.linspace(70.0, 30.0, NY)  # north first, as GRIB
LON = np.linspace(-20.0, 40.0, NX)
HOLE = (slice(100, 203), slice(301, 350))  # NaN "sea", not aligned with any block
# The field's largest slopes (K per degree): 30 sin(3 lat) and 5 cos(5 lon).
SLOPE_LAT, SLOPE_LON = 30 * 3 * np.pi / 180, 5 * 5 * np.pi / 180
EARTH_M = 6378137.0


def field(offset: float = 0.0) -> np.ndarray:
    """A smooth field with a hole of missing values."""
    values = (30 * np.sin(np.radians(3 * LAT))[:, None] + 5 * np.cos(np.radians(5 * LON))[None]
              + offset).astype("float32")
    values[HOLE] = np.nan
    return values


def run_data(t0: np.datetime64 = T0, *, flags: bool = False,
             broken: bool = False) -> RunData:
    """A run of two steps of ``t`` (and a categorical ``kind`` where ``flags``); ``broken``
    adds a variable whose data fail to decode, after ``t`` is written."""
    step = np.array([0, 3600], "timedelta64[s]").astype("timedelta64[ns]")
    dims = ("step", "latitude", "longitude")

    def data(values: np.ndarray | da.Array, **attrs: object) -> xr.DataArray:
        return xr.DataArray(values, dims=dims, coords={"step": step}, attrs=attrs)

    fields = {"t": (data(np.stack([field(), field(1.0)]), units="K"),)}
    if flags:
        classes = np.stack([np.indices((NY, NX))[1] % 3] * 2).astype("float32")
        fields["kind"] = (data(classes, flag_values=[0, 1, 2],
                               flag_meanings="land sea ice"),)
    if broken:
        def fail() -> np.ndarray:
            raise OSError("truncated file")
        lazy = da.from_delayed(dask.delayed(fail)(), (2, NY, NX), dtype=np.float32)
        fields["zz_broken"] = (data(lazy, units="K"),)
    return RunData(t0, fields, lonlat_grid(LAT, LON), (SourceFile("synthetic", "0" * 64, 0),),
                   "synthetic")


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``big`` written with overviews, ``plain`` the same run without (as older fewsmap)."""
    folder = tmp_path_factory.mktemp("overview-stores")
    append_run(folder / "big.zarr", run_data(flags=True), progress=False)
    append_run(folder / "plain.zarr", run_data(), progress=False, overviews=False)
    return folder


def datashader_mean(store: ForecastStore, variable: str, canvas: Canvas) -> np.ndarray:
    """datashader's mean of the full-resolution cells in each pixel (row 0 at the top)."""
    window = store.geometry.window_in(canvas.crs, canvas.bbox)
    assert window is not None
    values = reads.read_window(store, variable, (0, 0), window.rows, window.cols)
    minx, miny, maxx, maxy = canvas.bbox
    dims = ("y", "x")
    source = xr.DataArray(values, dims=dims, name="v", coords={
        "y": (dims if window.y.ndim == 2 else "y", window.y),
        "x": (dims if window.x.ndim == 2 else "x", window.x)})
    cvs = dsh.Canvas(plot_width=canvas.width, plot_height=canvas.height,
                     x_range=(minx, maxx), y_range=(miny, maxy))
    return np.asarray(cvs.quadmesh(source, x="x", y="y", agg=dsh.mean("v")).values[::-1],
                      dtype=np.float32)


def pixel_degrees(canvas: Canvas) -> tuple[float, float]:
    """The largest (longitude, latitude) extent of one pixel of the canvas, in degrees."""
    minx, miny, maxx, maxy = canvas.bbox
    dx, dy = (maxx - minx) / canvas.width, (maxy - miny) / canvas.height
    if canvas.crs == "EPSG:4326":
        return dx, dy
    lowest = min(abs(np.degrees(2 * np.arctan(np.exp(v / EARTH_M)) - np.pi / 2))
                 for v in (miny, maxy))
    return np.degrees(dx / EARTH_M), np.degrees(dy / EARTH_M) * np.cos(np.radians(lowest))


ZOOMED_OUT = [
    Canvas("EPSG:4326", (-20.0, 30.0, 40.0, 70.0), 400, 300),  # level 1, painted
    Canvas("EPSG:4326", (-20.0, 30.0, 40.0, 70.0), 160, 100),  # level 2, averaged
    Canvas("EPSG:4326", (-30.0, 20.0, 50.0, 80.0), 256, 256),  # level 2, beyond the grid
    Canvas("EPSG:3857", (-2504689.0, 2504689.0, 5009377.0, 10018755.0), 256, 256),  # z=2
    Canvas("EPSG:3857", (0.0, 5009377.0, 5009377.0, 10018755.0), 256, 256),  # z=3
]


@pytest.mark.parametrize("canvas", ZOOMED_OUT, ids=lambda c: f"{c.crs}-{c.width}x{c.height}")
def test_zoomed_out_maps_read_an_overview_equal_to_datashaders_mean_within_a_pixel(
    stores: Path, canvas: Canvas
) -> None:
    """Tolerance: the field's change over one output pixel (its largest slope along each
    axis times the pixel's extent), which is what moving a cell to its neighbouring pixel
    changes; missing values only differ next to the hole's edge."""
    store = ForecastStore(stores / "big.zarr")
    window = read_window(store, "t", (0, 0), canvas)
    assert window is not None
    full = store.geometry.window_in(canvas.crs, canvas.bbox)
    assert full is not None
    assert window.values.size * 3 < full.rows.size * full.cols.size  # a level was read
    drawn, expected = regrid(window, canvas), datashader_mean(store, "t", canvas)
    dlon, dlat = pixel_degrees(canvas)
    tolerance = SLOPE_LON * dlon + SLOPE_LAT * dlat
    both = np.isfinite(drawn) & np.isfinite(expected)
    assert both.sum() > 0.2 * drawn.size
    assert np.abs(drawn - expected)[both].max() <= tolerance
    hole_edge = maximum_filter(np.isnan(expected), size=3) & maximum_filter(
        np.isfinite(expected), size=3)
    assert not ((np.isfinite(drawn) != np.isfinite(expected)) & ~hole_edge).any()


def members_run(members: int = 5) -> RunData:
    """One step of ``members`` members of `field` (member k offset by k K), the hole in
    every member and one more in member 1 alone."""
    values = np.stack([field(float(k)) for k in range(members)])
    values[1, 400:420, 600:650] = np.nan
    grid = lonlat_grid(LAT, LON)
    data = xr.DataArray(values[None], dims=("step", "realization", *grid.dims), coords={
        "step": np.array([0], "timedelta64[ns]"), "realization": np.arange(members)},
        attrs={"units": "K"})
    return RunData(T0, {"t": (data,)}, grid, (SourceFile("synthetic", "0" * 64, 0),),
                   "synthetic")


def test_zoomed_out_the_members_mean_reads_their_levels_and_other_statistics_every_cell(
        tmp_path: Path) -> None:
    """The mean of the members' block means is the block mean of their mean where they miss
    the same cells; a percentile or probability of block means is not (a member's local
    extreme would fade zoomed out), so those read full resolution."""
    append_run(tmp_path / "ens.zarr", members_run(), progress=False)
    store = ForecastStore(tmp_path / "ens.zarr")
    canvas = ZOOMED_OUT[1]  # level 2: 160 x 100 pixels over 700 x 1100 cells
    members = tuple(range(5))
    one = read_window(store, "t", (0, 0, 0), canvas)
    mean = read_window(store, "t", (0, 0, MemberStatistic(EnsembleStatistic("mean"), members)),
                       canvas)
    assert one is not None and mean is not None
    assert mean.values.shape == one.values.shape  # the level a member reads
    each = np.stack([window.values for k in members
                     if (window := read_window(store, "t", (0, 0, k), canvas)) is not None])
    held = np.isfinite(each).sum(axis=0)
    with np.errstate(invalid="ignore"):  # no member in the hole: NaN
        expected_mean = np.where(np.isfinite(each), each, 0).sum(axis=0) / held
    np.testing.assert_allclose(mean.values, expected_mean, rtol=1e-6)
    # against the full-resolution mean drawn as datashader draws it: within a pixel's change
    # of the field, except by member 1's own hole (the members miss different cells there)
    full_mean = read_window(store, "t", (0, 0, MemberStatistic(EnsembleStatistic("mean"),
                                                                members)), canvas,
                            overviews=False)
    assert full_mean is not None
    drawn, expected = regrid(mean, canvas), regrid(full_mean, canvas)
    dx, dy = pixel_degrees(canvas)
    tolerance = SLOPE_LON * dx + SLOPE_LAT * dy
    both = np.isfinite(drawn) & np.isfinite(expected)
    assert np.nanpercentile(np.abs(drawn - expected)[both], 99) <= tolerance
    for label in ("p90", "above:30", "std"):
        kind, _, parameter = label.partition(":")
        statistic = EnsembleStatistic("percentile", 90.0) if label == "p90" else \
            EnsembleStatistic(kind, float(parameter) if parameter else None)  # type: ignore[arg-type]
        window = read_window(store, "t", (0, 0, MemberStatistic(statistic, members)), canvas)
        assert window is not None and window.values.size > 10 * one.values.size, label


def test_zoomed_in_views_read_full_resolution(stores: Path) -> None:
    store = ForecastStore(stores / "big.zarr")
    tile = Canvas("EPSG:4326", (0.0, 40.0, 10.0, 50.0), 256, 256)  # 0.055° cells, 0.039° px
    assert overview_window(store, "t", 0, tile.crs, tile.bbox, (256, 256)) is None
    window = read_window(store, "t", (0, 0), tile)
    assert window is not None
    np.testing.assert_array_equal(regrid(window, tile), regrid(
        read_window(ForecastStore(stores / "plain.zarr"), "t", (0, 0), tile), tile))


def test_levels_are_nan_aware_block_means_in_plain_zarr_that_xarray_opens(
    stores: Path
) -> None:
    root = json.loads((stores / "big.zarr" / "zarr.json").read_bytes())
    attrs = root["consolidated_metadata"]["metadata"]["overviews"]["attributes"]
    assert attrs["zarr_conventions"] == [MULTISCALES_CONVENTION]
    layout = attrs["multiscales"]["layout"]
    assert [entry["asset"] for entry in layout] == ["1", "2", "3"] and level_count((NY, NX)) == 3
    assert layout[1]["transform"] == {"scale": [4.0, 4.0], "translation": [1.5, 1.5]}
    assert root["attributes"]["fewsmap"]["runs"][0]["overview_levels"] == 3
    full = xr.open_zarr(stores / "big.zarr", consolidated=True)
    assert "overviews" not in full.variables  # the cube itself is unchanged for xarray
    for level in (1, 2, 3):
        opened = xr.open_zarr(stores / "big.zarr", group=f"overviews/{level}")
        expected = full.t.coarsen(latitude=2 ** level, longitude=2 ** level,
                                  boundary="pad").mean()
        np.testing.assert_allclose(opened.t.values, expected.values, rtol=2e-6, atol=2e-5)
        np.testing.assert_allclose(opened.latitude, expected.latitude, rtol=1e-12)
        np.testing.assert_allclose(opened.longitude, expected.longitude, rtol=1e-12)
    level1 = xr.open_zarr(stores / "big.zarr", group="overviews/1").t.values[0, 0]
    assert np.isnan(level1[51:101, 151:175]).all()  # wholly inside the hole
    assert np.isfinite(level1[50, 150]) and np.isfinite(level1[101, 175])  # partly


def numpy_modes(field: np.ndarray, factor: int) -> np.ndarray:
    """Each block's most frequent non-NaN value, the smallest of a tie (NaN: none)."""
    ny, nx = field.shape
    out = np.full((-(-ny // factor), -(-nx // factor)), np.nan, dtype=np.float32)
    for bi in range(out.shape[0]):
        for bj in range(out.shape[1]):
            block = field[bi * factor:(bi + 1) * factor, bj * factor:(bj + 1) * factor]
            values, counts = np.unique(block[np.isfinite(block)], return_counts=True)
            if values.size:
                out[bi, bj] = values[np.argmax(counts)]  # argmax: the first, smallest
    return out


def test_categorical_variables_get_levels_of_block_modes(stores: Path) -> None:
    """A mean would invent classes: each level cell is the most frequent class of its
    full-resolution block (the smallest of a tie), NaN where the block has none."""
    full = xr.open_zarr(stores / "big.zarr").kind.values[0, 0]
    overviews = zarr.open_group(str(stores / "big.zarr" / "overviews"), mode="r")
    for level in (1, 2, 3):
        array = overviews[f"{level}/kind"]
        assert array.attrs["resampling_method"] == "mode"
        assert array.attrs["flag_meanings"] == "land sea ice"
        stored = np.asarray(array[0, 0])
        np.testing.assert_array_equal(stored, numpy_modes(full, 2 ** level))
        assert set(np.unique(stored[np.isfinite(stored)])) <= {0.0, 1.0, 2.0}


@settings(max_examples=100, deadline=None)
@given(hnp.arrays(np.float32, st.tuples(st.integers(1, 20), st.integers(1, 20)),
                  elements=st.sampled_from([0.0, 1.0, 2.0, 7.0, np.nan])),
       st.integers(1, 3))
def test_block_modes_equal_numpy_on_any_field(field: np.ndarray, levels: int) -> None:
    for level, modes in enumerate(block_modes(field, levels), start=1):
        np.testing.assert_array_equal(modes, numpy_modes(field, 2 ** level))


@pytest.mark.parametrize("canvas", ZOOMED_OUT, ids=lambda c: f"{c.crs}-{c.width}x{c.height}")
def test_zoomed_out_classes_show_one_cells_class_never_a_mean(stores: Path,
                                                              canvas: Canvas) -> None:
    """Columns alternate classes 0, 1, 2: a mean of neighbouring cells is 1 (or 0.67, 1.33)
    everywhere, a class is the one of the cell under the pixel's centre."""
    store = ForecastStore(stores / "big.zarr")
    window = read_window(store, "kind", (0, 0), canvas)
    assert window is not None and window.categorical
    assert window.values.size * 3 < NY * NX  # a level of modes was read
    for level in (window, read_window(store, "kind", (0, 0), canvas, overviews=False)):
        assert level is not None
        drawn = regrid(level, canvas)
        shown = drawn[np.isfinite(drawn)]
        assert set(np.unique(shown)) <= {0.0, 1.0, 2.0} and shown.size
    # at full resolution, the class of the cell under each pixel's centre
    minx, _, maxx, _ = canvas.bbox
    x = minx + (np.arange(canvas.width) + 0.5) * (maxx - minx) / canvas.width
    lon = np.degrees(x / EARTH_M) if canvas.crs == "EPSG:3857" else x
    column = np.abs(LON[None, :] - lon[:, None]).argmin(axis=1)  # nearest cell centre
    inside = (lon >= LON[0]) & (lon <= LON[-1])
    painted_row = drawn[np.isfinite(drawn).any(axis=1)][0]
    np.testing.assert_array_equal(painted_row[inside], (column % 3)[inside])


def test_stores_and_runs_without_overviews_still_serve(stores: Path, tmp_path: Path) -> None:
    plain = ForecastStore(stores / "plain.zarr")
    canvas = ZOOMED_OUT[1]
    window = read_window(plain, "t", (0, 0), canvas)
    assert window is not None and window.values.shape == (NY, NX)
    # A run written by older code in a store whose later runs have overviews.
    mixed = tmp_path / "mixed.zarr"
    append_run(mixed, run_data(), progress=False, overviews=False)
    append_run(mixed, run_data(T0 + np.timedelta64(6, "h")), progress=False)
    store = ForecastStore(mixed)
    old, new = store.runs
    assert read_window(store, "t", (old.slot, 0), canvas).values.shape == (NY, NX)
    assert read_window(store, "t", (new.slot, 0), canvas).values.shape == (175, 275)
    client = AppClient(create_app(Settings(stores_dir=stores)))
    for layer in ("plain.t", "big.t"):
        response = client.get(f"/tiles/{layer}/2/2/1.png")
        assert response.status_code == 200 and response.content.startswith(b"\x89PNG")


def test_a_failed_write_leaves_no_overview_behind(tmp_path: Path) -> None:
    store = tmp_path / "big.zarr"
    append_run(store, run_data(), progress=False)
    before = files_of(store)
    with pytest.raises(IngestError, match="truncated file"):
        append_run(store, run_data(T0 + np.timedelta64(6, "h"), broken=True), progress=False)
    assert files_of(store) == before  # (zarr leaves the emptied chunk folders, as for t)


def files_of(store: Path) -> dict[str, str]:
    return {path: kind for path, kind in tree_digest(store).items() if kind != "folder"}


def test_retention_removes_a_runs_overviews_with_it(tmp_path: Path) -> None:
    store = tmp_path / "big.zarr"
    for k in range(2):
        append_run(store, run_data(T0 + np.timedelta64(6 * k, "h")), progress=False)
    level_chunks = [store / "overviews" / str(level) / "t" / "c" / "0" for level in (1, 2, 3)]
    assert all(folder.is_dir() for folder in level_chunks)
    prune(store, RetentionPolicy(keep_runs=1), grace_s=0.0)  # removed, then vacuumed next
    prune(store, RetentionPolicy(keep_runs=1), grace_s=0.0)
    assert not any(folder.exists() for folder in level_chunks)
    assert (store / "overviews" / "1" / "t" / "c" / "1").is_dir()


def test_overviews_on_object_storage(s3_env: S3Server, stores: Path) -> None:
    url = f"s3://{s3_env.new_bucket()}/forecasts/big.zarr"
    append_run(url, run_data(), progress=False)
    keys = {entry["path"] for batch in obstore.list(from_url(url)) for entry in batch}
    assert {"overviews/zarr.json", "overviews/3/t/zarr.json", "overviews/3/t/c/0/0/0/0"} <= keys
    remote, local = ForecastStore(url), ForecastStore(stores / "big.zarr")
    for canvas in ZOOMED_OUT[:2]:
        window = read_window(remote, "t", (0, 0), canvas)
        assert window is not None and window.values.size < NY * NX / 3
        np.testing.assert_array_equal(regrid(window, canvas),
                                      regrid(read_window(local, "t", (0, 0), canvas), canvas))


@pytest.mark.parametrize("crs", ["EPSG:3035", "EPSG:3857"])
def test_projected_grids_read_overviews_in_their_own_crs_and_in_others(
    tmp_path: Path, crs: str
) -> None:
    """A 1 km LAEA grid of 800 × 600 (variable ``lon`` = its x in metres) zoomed out in its
    own CRS (separable axes) and in Web Mercator (2-D centres, datashader's curvilinear
    quadmesh of the level): within the field's change over one pixel of datashader's mean
    of the full grid (x changes by at most a metre per metre in either CRS)."""
    x = 4_002_500.0 + 1_000.0 * np.arange(800)
    y = 2_302_500.0 + 1_000.0 * np.arange(600)
    store = ForecastStore(projected_xy_store(tmp_path / "laea.zarr",
                                             pyproj.CRS.from_epsg(3035), x, y))
    bbox = pyproj.Transformer.from_crs("EPSG:3035", crs, always_xy=True).transform_bounds(
        x[0], y[0], x[-1], y[-1])
    canvas = Canvas(crs, tuple(float(v) for v in bbox), 150, 120)
    window = read_window(store, "lon", (0, 0), canvas)
    full = store.geometry.window_in(canvas.crs, canvas.bbox)
    assert window is not None and full is not None
    assert window.values.size * 3 < full.rows.size * full.cols.size
    drawn, expected = regrid(window, canvas), datashader_mean(store, "lon", canvas)
    minx, miny, maxx, maxy = canvas.bbox
    tolerance = (maxx - minx) / canvas.width + (maxy - miny) / canvas.height
    both = np.isfinite(drawn) & np.isfinite(expected)
    assert both.sum() > 0.5 * drawn.size
    assert np.abs(drawn - expected)[both].max() <= tolerance


def test_levels_are_served_over_http(stores: Path) -> None:
    """zarr-python reads a level through the root's consolidated metadata over HTTP.
    (xarray opens a level group of a local store, not over HTTP: without a listing it needs
    the level group's own consolidated metadata, which is not written; and a DataTree of
    the store refuses levels whose dimensions share the root's names at other sizes.)"""
    local = zarr.open_group(stores / "big.zarr", mode="r", use_consolidated=True)
    with live_server("--stores", str(stores)) as base, quiet_zarr():
        remote = zarr.open_group(f"{base}/zarr/big", mode="r", use_consolidated=True)
        for level in (1, 3):
            np.testing.assert_array_equal(np.asarray(remote[f"overviews/{level}/t"][...]),
                                          np.asarray(local[f"overviews/{level}/t"][...]))
        chunk = httpx.get(f"{base}/zarr/big/overviews/2/t/c/0/0/0/0")
        assert chunk.status_code == 200 and "immutable" in chunk.headers["cache-control"]
        assert httpx.get(f"{base}/zarr/big/overviews/2/zarr.json").status_code == 200
        assert httpx.get(f"{base}/zarr/big/overviews/2/t/x/0").status_code == 404


@pytest.mark.parametrize("crs", ["EPSG:4326", "EPSG:3857"])
def test_curvilinear_grids_read_overviews_placed_on_the_sphere(tmp_path: Path,
                                                               crs: str) -> None:
    """A rotated-pole grid of 700 × 600 cells kept as 2-D latitude/longitude (variable
    ``lat`` = each cell's latitude) zoomed out: the level's centres are block means on the
    sphere, and the map is within one pixel's change of latitude of datashader's
    curvilinear mean of the full grid."""
    x, y = np.linspace(-10.0, 10.0, 700), np.linspace(-8.0, 8.0, 600)
    store = ForecastStore(curvilinear_store(tmp_path / "rotated.zarr", ROTATED, x, y))
    assert store.curvilinear
    west, south, east, north = store.geometry.lonlat_bbox()
    bbox = pyproj.Transformer.from_crs("EPSG:4326", crs, always_xy=True).transform_bounds(
        west, max(south, -85.0), east, min(north, 85.0))
    canvas = Canvas(crs, tuple(float(v) for v in bbox), 160, 130)
    window = read_window(store, "lat", (0, 0), canvas)
    full = store.geometry.window_in(canvas.crs, canvas.bbox)
    assert window is not None and full is not None
    assert window.values.size * 3 < full.rows.size * full.cols.size
    level = xr.open_zarr(store.location, group="overviews/1", chunks=None)
    np.testing.assert_allclose(level.lat.values[0, 0], level.latitude.values, atol=0.02)
    drawn, expected = regrid(window, canvas), datashader_mean(store, "lat", canvas)
    both = np.isfinite(drawn) & np.isfinite(expected)
    assert both.sum() > 0.3 * drawn.size
    assert np.abs(drawn - expected)[both].max() <= pixel_degrees(canvas)[1]


def test_readers_during_an_ingest_never_see_a_run_without_its_levels(tmp_path: Path) -> None:
    """While a run is appended, every state a reader opens lists only runs whose levels
    are there: the zoomed-out map of each run it lists is drawn from a level and holds data
    (a level chunk not yet written would read as all NaN)."""
    path = tmp_path / "big.zarr"
    append_run(path, run_data(), progress=False)
    canvas = ZOOMED_OUT[1]
    done = threading.Event()

    def ingest() -> None:
        try:
            for k in range(1, 4):
                append_run(path, run_data(T0 + np.timedelta64(6 * k, "h")), progress=False)
        finally:
            done.set()

    writer = threading.Thread(target=ingest)
    writer.start()
    seen: set[int] = set()
    while not done.is_set() or len(seen) < 4:
        store = ForecastStore(path)
        for run in store.runs:
            window = read_window(store, "t", (run.slot, 1), canvas)
            assert window is not None and window.values.shape == (175, 275)
            assert np.isfinite(window.values).mean() > 0.9
            seen.add(run.slot)
        if done.is_set() and len(seen) < 4:
            break
    writer.join()
    assert len(ForecastStore(path).runs) == 4


@pytest.mark.parametrize("crs", ["EPSG:4326", "EPSG:3857"])
def test_zoomed_in_no_level_is_searched_and_the_choice_is_unchanged(
        tmp_path: Path, crs: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Zoomed in, no level's window is searched (the finest level's smallest cell exceeds
    a pixel: `Centres.least_step`); at every zoom the level chosen is the one the search
    of the levels' windows chooses."""
    x, y = np.linspace(-10.0, 10.0, 700), np.linspace(-8.0, 8.0, 600)
    store = ForecastStore(curvilinear_store(tmp_path / "rotated.zarr", ROTATED, x, y))
    to_crs = pyproj.Transformer.from_crs("EPSG:4326", crs, always_xy=True)
    west, south, east, north = store.geometry.lonlat_bbox()
    rng = np.random.default_rng(5)
    views = []
    for _ in range(100):
        lon, lat = rng.uniform(west, east), rng.uniform(south, north)
        half = 10.0 ** rng.uniform(-1.5, 1.4)  # 256 px over 0.06° … 50°
        views.append(to_crs.transform_bounds(lon - half, lat - half, lon + half, lat + half))
    searches = []
    window_in = GridGeometry.window_in
    monkeypatch.setattr(GridGeometry, "window_in", lambda self, *a: (
        searches.append(self), window_in(self, *a))[1])

    def choices() -> list[str | None]:
        found = [overview_window(store, "lat", 0, crs, bbox, (256, 256)) for bbox in views]
        return [None if level is None else level.array for level in found]

    chosen, shortcut = choices(), len(searches)
    # Every level searched, as before (a property: centres keep what they computed).
    monkeypatch.setattr(Centres, "least_step", property(lambda _: 0.0))
    searched = choices()
    assert chosen == searched
    assert 0 < searched.count(None) < len(views)  # zoomed in and out both
    assert shortcut < (len(searches) - shortcut) / 2
