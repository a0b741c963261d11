"""The fast path of the regrid against datashader's quadmesh, the regridder of record.

When every source cell spans at least 0.7 output pixels, fewsmap paints the cell holding
each pixel centre with a compiled lookup instead of calling datashader. The tests draw both
on random canvases (offsets, zooms, a missing block) of noise, where any shift shows. The
stated tolerance: for evenly spaced axes from one pixel per cell, none (the same float32 in
every pixel); between 0.7 and 1 pixel per cell, and for unevenly spaced axes (a lon/lat
grid's rows in EPSG:3857, which datashader draws by the floors of cell edges rather than by
pixel centres), a shift of at most one pixel.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import replace

import datashader as dsh
import numpy as np
import pyproj
import pytest
import xarray as xr

from fewsmap.render.regrid import (
    NEAREST_MIN_PIXELS_PER_CELL,
    Canvas,
    SourceWindow,
    _draw_placed_cells,
    _pixels_per_cell,
    regrid,
)
from fewsmap.store.geometry import lonlat_to, transformer
from tests.grid_kinds import KIND_AXES

NY, NX = 60, 80
X = np.linspace(0.0, 7.9, NX)  # 0.1° cells
Y = np.linspace(50.0, 55.9, NY)


def quadmesh(window: SourceWindow, canvas: Canvas, reduction: str = "mean") -> np.ndarray:
    """datashader's quadmesh of the window on the canvas, row 0 at the top."""
    minx, miny, maxx, maxy = canvas.bbox
    cvs = dsh.Canvas(plot_width=canvas.width, plot_height=canvas.height,
                     x_range=(minx, maxx), y_range=(miny, maxy))
    source = xr.DataArray(window.values, dims=("y", "x"), name="v",
                          coords={"y": window.y, "x": window.x})
    out = cvs.quadmesh(source, x="x", y="y", agg=getattr(dsh, reduction)("v"))
    return np.asarray(out.values[::-1], dtype=np.float32)


def noise_window(seed: int) -> SourceWindow:
    """Noise on 0.1° cells, with a missing block: any shift of a cell shows."""
    values = np.random.default_rng(seed).normal(size=(NY, NX)).astype(np.float32)
    values[10:20, 30:40] = np.nan
    return SourceWindow(values, X, Y)


def canvases(pixels_per_cell: float, seed: int, count: int = 5,
             inside: bool = False) -> list[Canvas]:
    """Random canvases at ``pixels_per_cell`` along both axes, over the grid's edges or
    (``inside``) within it."""
    rng, cell = np.random.default_rng(seed), 0.1
    width, height = int(40 * pixels_per_cell), int(25 * pixels_per_cell)
    out = []
    for _ in range(count):
        left, bottom = ((rng.uniform(0.5, 2.0), rng.uniform(50.5, 51.5)) if inside else
                        (rng.uniform(-0.5, 4.0), rng.uniform(49.5, 53.0)))
        out.append(Canvas("EPSG:4326", (left, bottom, left + width * cell / pixels_per_cell,
                                        bottom + height * cell / pixels_per_cell),
                          width, height))
    return out


@pytest.mark.parametrize("pixels_per_cell", [1.01, 1.3, 2.0, 3.7, 12.0])
def test_from_one_pixel_per_cell_painting_equals_datashader(pixels_per_cell: float) -> None:
    window = noise_window(int(pixels_per_cell * 100))
    for canvas in canvases(pixels_per_cell, 7):
        assert _pixels_per_cell(window, canvas) >= NEAREST_MIN_PIXELS_PER_CELL  # fast path
        np.testing.assert_array_equal(regrid(window, canvas), quadmesh(window, canvas))


def neighbourhood(field: np.ndarray, reduce: str) -> np.ndarray:
    """Each pixel's ``reduce`` (nanmin or nanmax) over itself and its 8 neighbours."""
    padded = np.pad(field, 1, constant_values=np.nan)
    h, w = field.shape
    stack = [padded[1 + dy:1 + dy + h, 1 + dx:1 + dx + w]
             for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN neighbourhoods stay NaN
        return np.asarray(getattr(np, reduce)(stack, axis=0))


@pytest.mark.parametrize("pixels_per_cell", [0.72, 0.8, 0.9, 0.99])
def test_below_one_pixel_per_cell_painting_is_datashader_shifted_by_at_most_a_pixel(
        pixels_per_cell: float) -> None:
    """Here datashader averages the 1-4 cells whose upper edges fall in a pixel, and the
    fast path shows the cell holding the pixel centre, whose upper edge lies in that pixel
    or the next: every value shown is one datashader draws in the pixel or a neighbour.
    (At the grid's outer edge datashader leaves out partly covered cells: not compared.)"""
    window = noise_window(int(pixels_per_cell * 100))
    for canvas in canvases(pixels_per_cell, 11, inside=True):
        assert_shifted_by_at_most_a_pixel(window, canvas)


@pytest.mark.parametrize("pixels_per_cell", [0.8, 0.95, 1.05, 1.5, 3.0, 8.0])
def test_in_web_mercator_painting_is_datashader_shifted_by_at_most_a_pixel(
        pixels_per_cell: float) -> None:
    """A lon/lat grid in EPSG:3857 has unevenly spaced rows, which datashader draws with
    its rectilinear quadmesh: each cell covers the pixels from the floor of its lower edge
    to the floor of its upper one, where painting samples pixel centres. The two agree in
    22-94 % of the pixels of noise (measured) and never by more than a pixel's shift."""
    earth = 6378137.0
    rng = np.random.default_rng(int(pixels_per_cell * 10))
    x = np.radians(X) * earth
    y = earth * np.log(np.tan(np.pi / 4 + np.radians(Y) / 2))
    window = SourceWindow(noise_window(3).values, x, y)
    cell_x, cell_y = x[1] - x[0], float(np.min(np.diff(y)))
    width, height = int(30 * pixels_per_cell), int(20 * pixels_per_cell)
    for _ in range(5):
        left = x[5] + rng.uniform(0, 20) * cell_x
        bottom = y[25] + rng.uniform(0, 10) * cell_y
        canvas = Canvas("EPSG:3857", (left, bottom, left + width * cell_x / pixels_per_cell,
                                      bottom + height * cell_y / pixels_per_cell),
                        width, height)
        assert_shifted_by_at_most_a_pixel(window, canvas)


def assert_shifted_by_at_most_a_pixel(window: SourceWindow, canvas: Canvas) -> None:
    """Each painted value is one datashader draws in that pixel or a neighbour."""
    assert _pixels_per_cell(window, canvas) >= NEAREST_MIN_PIXELS_PER_CELL  # fast path
    # The canvas' outer pixels are left out: the neighbour holding their cell may lie
    # beyond the canvas.
    inner = (slice(1, -1), slice(1, -1))
    fast = regrid(window, canvas)[inner]
    low = neighbourhood(quadmesh(window, canvas, "min"), "nanmin")[inner]
    high = neighbourhood(quadmesh(window, canvas, "max"), "nanmax")[inner]
    shown = np.isfinite(fast)
    assert np.all(low[shown] <= fast[shown]) and np.all(fast[shown] <= high[shown])
    assert np.all(np.isfinite(low[shown]))


@pytest.mark.parametrize("seed", range(6))
def test_zoomed_out_on_uneven_axes_the_compiled_mean_equals_datashader(seed: int) -> None:
    """Below 0.7 pixels per cell on axes that are not evenly spaced (Mercator rows, or
    any irregular axis), fewsmap averages the cells itself with datashader's rectilinear
    rule (the same breaks, pixels covered and missing values): equal up to the float64
    summation order."""
    rng = np.random.default_rng(seed)
    ny, nx = (int(n) for n in rng.integers(20, 400, 2))
    x = np.sort(rng.uniform(-10.0, 10.0, nx)) if seed % 2 else np.linspace(-10.0, 10.0, nx)
    y = np.sinh(np.linspace(-2.0, 2.0, ny)) * 3  # unevenly spaced, as Mercator rows
    values = rng.normal(size=(ny, nx)).astype(np.float32)
    values[rng.random((ny, nx)) < 0.2] = np.nan
    window = SourceWindow(values, x, y)
    compared = 0
    while compared < 5:
        west, south = rng.uniform(-12.0, -1.0, 2)
        canvas = Canvas("EPSG:4326", (west, south, *rng.uniform(1.0, 12.0, 2)),
                        int(rng.integers(3, 200)), int(rng.integers(3, 200)))
        if _pixels_per_cell(window, canvas) >= NEAREST_MIN_PIXELS_PER_CELL:
            continue  # painted: the tests above
        drawn = regrid(window, canvas)
        np.testing.assert_allclose(drawn, quadmesh(window, canvas), rtol=1e-6, atol=1e-6)
        compared += 1


# --- Cells placed by 2-D centres: projected grids in Web Mercator, curvilinear grids ---

def mercator_window(kind: str, seed: int) -> tuple[SourceWindow, SourceWindow, float]:
    """A grid kind of tests/grid_kinds.py drawn in EPSG:3857: a window of noise (with a
    missing block), a window of each cell's longitude, and the median cell size (m)."""
    crs, x, y = KIND_AXES[kind]
    xx, yy = np.meshgrid(x, y)
    lon, lat = pyproj.Transformer.from_crs(crs, "EPSG:4326", always_xy=True).transform(xx, yy)
    mx, my = lonlat_to("EPSG:3857", lon, lat)
    noise = np.random.default_rng(seed).normal(size=mx.shape).astype(np.float32)
    noise[10:18, 20:30] = np.nan
    cell = float(np.median(np.hypot(np.diff(mx, axis=1), np.diff(my, axis=1))))
    return (SourceWindow(noise, mx, my), SourceWindow(lon.astype(np.float32), mx, my), cell)


def quadmesh_2d(window: SourceWindow, canvas: Canvas, reduction: str) -> np.ndarray:
    """datashader's curvilinear quadmesh of a 2-D window, row 0 at the top."""
    minx, miny, maxx, maxy = canvas.bbox
    cvs = dsh.Canvas(plot_width=canvas.width, plot_height=canvas.height,
                     x_range=(minx, maxx), y_range=(miny, maxy))
    dims = ("y", "x")
    source = xr.DataArray(window.values, dims=dims, name="v",
                          coords={"y": (dims, window.y), "x": (dims, window.x)})
    out = cvs.quadmesh(source, x="x", y="y", agg=getattr(dsh, reduction)("v"))
    return np.asarray(out.values[::-1], dtype=np.float32)


def canvases_over(window: SourceWindow, cell: float, pixels_per_cell: float, seed: int,
                  count: int = 4) -> list[Canvas]:
    """Random 96 × 64 canvases at ``pixels_per_cell`` centred anywhere on the grid's
    extent, so that many cross its edges."""
    rng = np.random.default_rng(seed)
    width, height = 96, 64
    pixel = cell / pixels_per_cell
    out = []
    for _ in range(count):
        cx = rng.uniform(np.nanmin(window.x), np.nanmax(window.x))
        cy = rng.uniform(np.nanmin(window.y), np.nanmax(window.y))
        out.append(Canvas("EPSG:3857", (cx - width * pixel / 2, cy - height * pixel / 2,
                                        cx + width * pixel / 2, cy + height * pixel / 2),
                          width, height))
    return out


def agreement_with_quadmesh(window: SourceWindow, cell: float, pixels_per_cell: float,
                            draw: Callable[[SourceWindow, Canvas], np.ndarray] = regrid
                            ) -> tuple[int, int]:
    """Over random canvases: how many pixels with data ``draw`` gave were compared with
    datashader's curvilinear quadmesh, and how many show a value it draws in that pixel or
    a neighbour (between the min and max of its quads there). Asserts that no pixel has
    data or none unless datashader's image changes between the two within a pixel of it."""
    compared = agreeing = 0
    for canvas in canvases_over(window, cell, pixels_per_cell, 3):
        ours = draw(window, canvas)
        low = neighbourhood(quadmesh_2d(window, canvas, "min"), "nanmin")
        high = neighbourhood(quadmesh_2d(window, canvas, "max"), "nanmax")
        theirs = quadmesh_2d(window, canvas, "mean")
        edge = neighbourhood(np.isfinite(theirs).astype(np.float32), "nanmin") != \
            neighbourhood(np.isfinite(theirs).astype(np.float32), "nanmax")
        edge[[0, -1], :] = edge[:, [0, -1]] = True  # their neighbour may be off the canvas
        assert not np.any((np.isfinite(ours) != np.isfinite(theirs)) & ~edge)
        shown = np.isfinite(ours) & ~edge
        compared += int(shown.sum())
        agreeing += int(np.sum((low[shown] - 1e-6 <= ours[shown])
                               & (ours[shown] <= high[shown] + 1e-6)))
    return compared, agreeing


PLACED_KINDS = ("lambert", "polar_stereographic", "rotated_pole")


@pytest.mark.parametrize("kind", PLACED_KINDS)
@pytest.mark.parametrize("pixels_per_cell", [0.3, 0.6, 1.0, 2.5, 9.0])
def test_placed_cells_are_datashaders_quadmesh_within_a_pixel(
        kind: str, pixels_per_cell: float) -> None:
    """The stated tolerance of placing 2-D centres (`_draw_placed_cells`: windows with
    centres without a position, folded grids) against datashader's curvilinear quadmesh,
    on noise where any shift shows, over the grid's edges and a block of missing cells: at
    least 99 % of the pixels where either draws a value show one datashader draws in that
    pixel or a neighbour (between the min and max of its quads there), and no pixel has
    data or none unless datashader's image changes between the two within a pixel of it
    (the grid's edges, the missing block). Zoomed out each pixel is the mean of the
    centres in it, zoomed in the cell holding its centre; datashader truncates quad
    corners to whole pixels, hence the pixel. (Other 2-D windows are inverted:
    tests/render/test_warp.py.)"""
    window, _, cell = mercator_window(kind, int(pixels_per_cell * 10))
    compared, agreeing = agreement_with_quadmesh(window, cell, pixels_per_cell,
                                                 _draw_placed_cells)
    assert compared > 400  # the grid covers 15 × 15 pixels at 0.3 pixel per cell
    assert agreeing >= 0.99 * compared, agreeing / compared


@pytest.mark.parametrize("kind", PLACED_KINDS)
def test_placed_classes_show_one_cells_class_never_a_mean(kind: str) -> None:
    """Zoomed out a pixel holds several centres: classes are not averaged into values no
    cell holds, each pixel shows the class of the cell under its centre."""
    noise, _, cell = mercator_window(kind, 3)
    classes = (np.arange(noise.values.size).reshape(noise.values.shape) % 3).astype(np.float32)
    window = SourceWindow(classes, noise.x, noise.y, categorical=True)
    for canvas in canvases_over(window, cell, 0.3, 7, count=3):
        drawn = _draw_placed_cells(window, canvas)
        shown = drawn[np.isfinite(drawn)]
        assert shown.size and set(np.unique(shown)) <= {0.0, 1.0, 2.0}
        averaged = _draw_placed_cells(replace(window, categorical=False), canvas)
        assert not set(np.unique(averaged[np.isfinite(averaged)])) <= {0.0, 1.0, 2.0}


@pytest.mark.parametrize(("kind", "pixels_per_cell"), [
    *((kind, ppc) for kind in PLACED_KINDS for ppc in (0.5, 3.0)), ("antimeridian", 3.0)])
def test_placed_cells_show_the_cell_under_each_pixel(kind: str, pixels_per_cell: float
                                                     ) -> None:
    """Drawing each cell's longitude, every pixel with data shows a longitude within a
    cell of its own (on both sides of the antimeridian for the Bering Sea grid, where
    datashader draws quads across the world; zoomed in only: a mean of longitudes across
    it is no longitude), and pixels more than a cell outside the grid are transparent."""
    _, lon, cell = mercator_window(kind, 0) if kind != "antimeridian" else \
        antimeridian_window()
    for canvas in canvases_over(lon, cell, pixels_per_cell, 5, count=6):
        drawn = regrid(lon, canvas)
        minx, miny, maxx, maxy = canvas.bbox
        px = minx + (np.arange(canvas.width) + 0.5) * (maxx - minx) / canvas.width
        py = maxy - (np.arange(canvas.height) + 0.5) * (maxy - miny) / canvas.height
        pixel_lon, pixel_lat = transformer("EPSG:3857", "EPSG:4326").transform(
            *np.meshgrid(px, py))
        shown = np.isfinite(drawn)
        turn = (drawn - pixel_lon + 180.0) % 360.0 - 180.0
        spacing = cell / 6371000.0 * 180 / np.pi / np.cos(np.radians(pixel_lat))
        assert np.all(np.abs(turn[shown]) <= 1.5 * spacing[shown])
        far = distance_to_grid(lon, px, py) > 1.5 * cell
        assert not np.any(shown & far)


def antimeridian_window() -> tuple[SourceWindow, SourceWindow, float]:
    """A curvilinear grid over the Bering Sea in EPSG:3857, its longitudes from about 169°
    E to 169° W: its centres jump from one side of the Mercator world to the other."""
    x = np.arange(-500_000.0, 500_000.0, 50_000.0)
    y = np.arange(-3_500_000.0, -2_500_000.0, 50_000.0)
    stere = pyproj.CRS.from_proj4("+proj=stere +lat_0=90 +lat_ts=60 +lon_0=180 +R=6371200")
    xx, yy = np.meshgrid(x, y)
    lon, lat = pyproj.Transformer.from_crs(stere, "EPSG:4326", always_xy=True).transform(xx, yy)
    assert lon.max() > 179 and lon.min() < -179  # it crosses the antimeridian
    mx, my = lonlat_to("EPSG:3857", lon, lat)
    window = SourceWindow(lon.astype(np.float32), mx, my)
    return window, window, float(np.median(np.hypot(np.diff(mx, axis=0), np.diff(my, axis=0))))


def distance_to_grid(window: SourceWindow, px: np.ndarray, py: np.ndarray) -> np.ndarray:
    """Each pixel centre's distance to the nearest cell centre in Web Mercator, whose x
    wraps around the world."""
    from scipy.spatial import cKDTree

    world = 2 * 20037508.342789244
    centres = np.concatenate([np.column_stack([window.x.ravel() + turn, window.y.ravel()])
                              for turn in (-world, 0.0, world)])
    xx, yy = np.meshgrid(px, py)
    distance, _ = cKDTree(centres[np.isfinite(centres).all(axis=1)]).query(
        np.column_stack([xx.ravel(), yy.ravel()]))
    return np.asarray(distance).reshape(xx.shape)


def test_a_canvas_off_the_grid_is_transparent() -> None:
    window, _, cell = mercator_window("lambert", 1)
    west = float(np.nanmax(window.x)) + 10 * cell
    canvas = Canvas("EPSG:3857", (west, 9e6, west + 64 * cell, 9e6 + 64 * cell), 64, 64)
    assert np.isnan(regrid(window, canvas)).all()


def test_cells_without_a_position_are_not_drawn() -> None:
    """Centres outside the canvas CRS's area of use are NaN: the window is placed (not
    inverted), the cells they place are left out, the others drawn as placing all would."""
    window, _, cell = mercator_window("rotated_pole", 2)
    x, y = window.x.copy(), window.y.copy()
    x[:, :20], y[:, :20] = np.nan, np.nan
    placed = SourceWindow(window.values, x, y)
    canvas = canvases_over(window, cell, 2.0, 9, count=1)[0]
    canvas = Canvas("EPSG:3857", (float(np.nanmin(window.x)), float(np.nanmin(window.y)),
                                  float(np.nanmax(window.x)), float(np.nanmax(window.y))),
                    160, 128)
    drawn = regrid(placed, canvas)
    full = _draw_placed_cells(window, canvas)
    assert np.isfinite(drawn).sum() < 0.8 * np.isfinite(full).sum()
    same = np.isfinite(drawn)
    np.testing.assert_array_equal(drawn[same], full[same])
