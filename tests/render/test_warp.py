"""Pixels finding their cells by inverse projection (fewsmap/render/warp.py).

The approximate transformer against the exact one (every pixel centre transformed), and the
drawing against datashader's curvilinear quadmesh of the same cells placed on the canvas.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from fewsmap.render import kernels
from fewsmap.render import warp as warp_module
from fewsmap.render.regrid import Canvas, SourceWindow, _inverted_cells, read_window, regrid
from fewsmap.render.warp import NativeAxes, warp
from fewsmap.store.cube import ForecastStore
from fewsmap.store.geometry import lonlat_to, transformer
from tests.grid_kinds import KIND_AXES, lambert, rotated_pole, rotated_pole_axes
from tests.render.test_regrid import agreement_with_quadmesh, canvases_over, mercator_window

KINDS = tuple(KIND_AXES)  # lambert, polar stereographic, rotated pole (with 1-D axes here)


def native_window(kind: str, seed: int) -> tuple[SourceWindow, float]:
    """A window of noise (with a missing block) of a grid kind, its cells' centres in Web
    Mercator and its own 1-D axes; and its median cell size in Web Mercator (m)."""
    crs, x, y = KIND_AXES[kind]
    xx, yy = np.meshgrid(x, y)
    lon, lat = transformer(crs.to_wkt(), "EPSG:4326").transform(xx, yy)
    mx, my = lonlat_to("EPSG:3857", lon, lat)
    noise = np.random.default_rng(seed).normal(size=mx.shape).astype(np.float32)
    noise[10:18, 20:30] = np.nan
    cell = float(np.median(np.hypot(np.diff(mx, axis=1), np.diff(my, axis=1))))
    return SourceWindow(noise, mx, my, NativeAxes(crs.to_wkt(), x, y)), cell


def exact_positions(window: SourceWindow, canvas: Canvas) -> tuple[np.ndarray, np.ndarray]:
    """Every pixel centre transformed exactly: its fractional (row, column) in the window."""
    assert window.native is not None
    return warp_module._positions(
        window.native, canvas.crs, canvas.bbox, canvas.width, canvas.height,
        np.arange(canvas.height, dtype=float), np.arange(canvas.width, dtype=float))


def exact(window: SourceWindow, canvas: Canvas) -> np.ndarray:
    """Every pixel centre transformed exactly, and the cell nearest it."""
    rows, cols = exact_positions(window, canvas)
    ny, nx = window.values.shape
    inside = (rows >= -0.5) & (rows < ny - 0.5) & (cols >= -0.5) & (cols < nx - 0.5)
    out = np.full(rows.shape, np.nan, dtype=np.float32)
    out[inside] = window.values[np.floor(rows[inside] + 0.5).astype(int),
                                np.floor(cols[inside] + 0.5).astype(int)]
    return out


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("pixels_per_cell", [0.3, 1.0, 4.0, 20.0])
def test_each_pixel_shows_a_cell_within_the_stated_error_of_its_exact_position(
        kind: str, pixels_per_cell: float) -> None:
    """Drawing each cell's own index, every pixel shows the cell nearest a point within
    `MAX_ERROR_PX` of its centre's exact position (checked at the lattice's midpoints only,
    as GDAL does; measured over these canvases: at most 0.115 pixel anywhere), on canvases
    across the grid's edges; a pixel whose exact position is inside the grid by more than
    that shows a cell."""
    window, cell = native_window(kind, 1)
    assert pixels_within_error(window, cell, pixels_per_cell, regrid, exact_positions) > 500


def pixels_within_error(window: SourceWindow, cell: float, pixels_per_cell: float,
                        draw: Callable[[SourceWindow, Canvas], np.ndarray],
                        exact: Callable[[SourceWindow, Canvas], tuple[np.ndarray, np.ndarray]]
                        ) -> int:
    """Draw each cell's own index over canvases across the window's edges and assert that
    every pixel shows the cell nearest a point within `MAX_ERROR_PX` of its ``exact``
    position, and that a pixel inside the grid by more than that shows a cell; the number
    of pixels checked."""
    ny, nx = window.values.shape
    index = np.arange(ny * nx, dtype=np.float32).reshape(ny, nx)  # exact in float32
    cells = SourceWindow(index, window.x, window.y, window.native)
    error = warp_module.MAX_ERROR_PX / pixels_per_cell  # in cells
    checked = 0
    for canvas in canvases_over(window, cell, pixels_per_cell, 7):
        drawn = draw(cells, canvas)
        rows, cols = exact(cells, canvas)
        shown = np.isfinite(drawn)
        row, col = np.divmod(drawn[shown].astype(np.int64), nx)
        assert np.all(np.abs(row - rows[shown]) <= 0.5 + error)
        assert np.all(np.abs(col - cols[shown]) <= 0.5 + error)
        inside = (rows > error - 0.5) & (rows < ny - 0.5 - error) & \
            (cols > error - 0.5) & (cols < nx - 0.5 - error)
        assert shown[inside].all()
        checked += int(shown.sum())
    return checked


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("pixels_per_cell", [0.3, 0.6, 1.0, 2.5, 9.0])
def test_warped_cells_are_datashaders_quadmesh_within_a_pixel(
        kind: str, pixels_per_cell: float) -> None:
    """The stated tolerance against datashader's curvilinear quadmesh of the same cells,
    as for placed cells (tests/render/test_regrid.py) but 98.5 % where those have 99 %:
    98.5 % of the pixels show a value datashader draws in that pixel or a neighbour; data
    or none as datashader's image, except within a pixel of where that changes. The cell
    nearest a pixel's centre can lie beyond the quads datashader truncates to that pixel
    and its neighbours at 0.6-1 pixel per cell: with every pixel centre transformed
    exactly 98.6-99.2 % agree, so the lattice costs no agreement. Zoomed out a pixel shows
    one cell of the about a pixel each that the overview level gives, not a mean."""
    window, cell = native_window(kind, int(pixels_per_cell * 10))
    compared, agreeing = agreement_with_quadmesh(window, cell, pixels_per_cell)
    assert compared > 400
    assert agreeing >= 0.985 * compared, agreeing / compared


def test_the_lattice_is_refined_where_the_projection_bends() -> None:
    """A world-wide Web Mercator canvas over a polar stereographic grid bends too much for
    a 16-pixel lattice: it is refined, and the drawing equals the exact transform's."""
    window, _ = native_window("polar_stereographic", 2)
    canvas = Canvas("EPSG:3857", (-2e7, -2e7, 2e7, 2e7), 256, 256)
    drawn = regrid(window, canvas)
    assert np.isfinite(drawn).sum() > 20
    np.testing.assert_array_equal(drawn, exact(window, canvas))


def test_longitudes_are_taken_to_the_windows_turn_of_the_world() -> None:
    """A lon/lat grid across the antimeridian (170° to 190°) drawn in EPSG:3035 and in a
    polar CRS finds its cells on both sides of 180°."""
    lon, lat = np.arange(170.0, 190.5, 0.5), np.arange(40.0, 60.5, 0.5)
    values = np.broadcast_to(lon.astype(np.float32), (lat.size, lon.size)).copy()
    window = SourceWindow(values, lon, lat, NativeAxes("EPSG:4326", lon, lat, wraps=True))
    north = "+proj=stere +lat_0=90 +lon_0=180 +R=6371200"
    cx, cy = transformer("EPSG:4326", north).transform(180.0, 50.0)
    canvas = Canvas(north, (cx - 6e5, cy - 6e5, cx + 6e5, cy + 6e5), 128, 128)
    drawn = regrid(window, canvas)
    assert np.isfinite(drawn).all()
    assert drawn.min() < 180 < drawn.max()


def test_a_tiny_canvas_draws() -> None:
    window, cell = native_window("lambert", 3)
    middle = (float(np.nanmedian(window.x)), float(np.nanmedian(window.y)))
    canvas = Canvas("EPSG:3857", (middle[0], middle[1], middle[0] + cell, middle[1] + cell),
                    1, 1)
    assert warp(window.values, window.native, canvas.crs, canvas.bbox, 1, 1).shape == (1, 1)


def test_projected_stores_are_warped_and_curvilinear_ones_placed(tmp_path: Path) -> None:
    """Reading a window in Web Mercator gives a projected grid's own axes (1-D: inverse
    projection), a rotated pole's too where the store has its rotated axes (a CF file), and
    none for a curvilinear grid (2-D centres only, as a rotated-pole GRIB: cells are
    placed)."""
    for build, has_axes in ((lambert, True), (rotated_pole_axes, True),
                            (rotated_pole, False)):
        store = ForecastStore(build(tmp_path / build.__name__))
        bbox = store.geometry.lonlat_bbox()
        x0, y0 = lonlat_to("EPSG:3857", np.array([bbox[0]]), np.array([bbox[1]]))
        x1, y1 = lonlat_to("EPSG:3857", np.array([bbox[2]]), np.array([bbox[3]]))
        canvas = Canvas("EPSG:3857", (float(x0[0]), float(y0[0]), float(x1[0]), float(y1[0])),
                        128, 128)
        window = read_window(store, store.variables[0], (0, 0), canvas)
        assert window is not None and (window.native is not None) == has_axes
        assert np.isfinite(regrid(window, canvas)).any()


# --- Grids known only by 2-D centres (curvilinear): the centres inverted ----------------

def inverted(window: SourceWindow, canvas: Canvas) -> np.ndarray:
    """A 2-D window drawn by inverting its centres (`_inverted_cells`), never placed."""
    drawn = _inverted_cells(window, canvas)
    assert drawn is not None
    return drawn


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("pixels_per_cell", [0.3, 1.0, 4.0, 20.0])
def test_each_pixel_shows_a_curvilinear_cell_within_the_stated_error_of_its_position(
        kind: str, pixels_per_cell: float) -> None:
    """As for projections: drawing each cell's own index from its 2-D centres only, every
    pixel shows the cell nearest a point within `MAX_ERROR_PX` of its centre's exact
    position in the grid (where the centres, bilinear between each four, reach it:
    `kernels.invert_centres` at every pixel), on canvases across the grid's edges; a pixel
    whose position is inside the grid by more than that shows a cell."""
    window, _, cell = mercator_window(kind, 1)
    assert pixels_within_error(window, cell, pixels_per_cell, inverted, inverted_positions) \
        > 500


def inverted_positions(window: SourceWindow, canvas: Canvas) -> tuple[np.ndarray, np.ndarray]:
    """Every pixel centre's exact position in a grid of 2-D centres."""
    minx, miny, maxx, maxy = canvas.bbox
    at_x = minx + (np.arange(canvas.width) + 0.5) * (maxx - minx) / canvas.width
    at_y = maxy - (np.arange(canvas.height) + 0.5) * (maxy - miny) / canvas.height
    rows, cols = kernels.invert_centres(window.x, window.y, at_x, at_y)
    assert np.isfinite(rows).all() and np.isfinite(cols).all()
    return rows, cols


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("pixels_per_cell", [0.3, 0.6, 1.0, 2.5, 9.0])
def test_inverted_curvilinear_cells_are_datashaders_quadmesh_within_a_pixel(
        kind: str, pixels_per_cell: float) -> None:
    """The stated tolerance of inverted 2-D centres against datashader's curvilinear
    quadmesh, as for warped projections: 98.5 % of the pixels show a value datashader
    draws in that pixel or a neighbour; data or none as datashader's image, except within
    a pixel of where that changes. Zoomed out a pixel shows one cell, not a mean."""
    window, _, cell = mercator_window(kind, int(pixels_per_cell * 10))
    compared, agreeing = agreement_with_quadmesh(window, cell, pixels_per_cell, inverted)
    assert compared > 400
    assert agreeing >= 0.985 * compared, agreeing / compared


def test_a_folded_grid_or_centres_without_a_position_are_placed() -> None:
    """The rule for placing instead of inverting: a window with a centre without a
    position (outside the canvas CRS's area of use), or whose centres fold over (no
    position to find), is placed; an untouched one is inverted."""
    window, _, cell = mercator_window("lambert", 4)
    canvas = canvases_over(window, cell, 2.0, 11, count=1)[0]
    assert _inverted_cells(window, canvas) is not None
    x = window.x.copy()
    x[0, 0] = np.nan
    assert _inverted_cells(SourceWindow(window.values, x, window.y), canvas) is None
    folded = window.x.copy()  # the eastern half laid back over the western half
    half = folded.shape[1] // 2
    folded[:, half:] = folded[:, half - (folded.shape[1] - half):half][:, ::-1]
    folded_window = SourceWindow(window.values, folded, window.y)
    assert _inverted_cells(folded_window, canvas) is None
    assert np.isfinite(regrid(folded_window, canvas)).any()


def test_a_grid_smaller_than_a_pixel_is_placed_and_shows() -> None:
    """A curvilinear window whose centres span less than 2 pixels (a one-cell grid zoomed
    out, its cell halved into 2 × 2) is placed, not inverted: the pixel holding its
    centres shows them, where the cell nearest each pixel centre would be none."""
    window, _, cell = mercator_window("lambert", 5)
    tiny = SourceWindow(window.values[:2, :2], window.x[:2, :2], window.y[:2, :2])
    x0, y0 = float(tiny.x.mean()), float(tiny.y.mean())
    canvas = Canvas("EPSG:3857", (x0 - 32 * cell, y0 - 32 * cell, x0 + 32 * cell,
                                  y0 + 32 * cell), 16, 16)
    assert _inverted_cells(tiny, canvas) is None
    assert 1 <= np.isfinite(regrid(tiny, canvas)).sum() <= 4  # the pixels its centres are in
