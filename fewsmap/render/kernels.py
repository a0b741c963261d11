"""Compiled per-pixel loops of the render path: one pass over the image where numpy needs
several, without the GIL so that concurrent renders use every core.

On a 1920 × 1200 map, painting cells with numpy fancy indexing took about 8 ms and mapping
values to palette indices seven whole-array passes, about 6.5 ms (benchmarks/results/
suite.md). Each function here gives exactly the numpy result it replaces (tests compare).
Compiling them takes about 1.3 s; numba caches the machine code on disk (``__pycache__``,
or its user-wide cache where the package is read-only), so later starts load it.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(nogil=True, cache=True)
def paint(values: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """``values[rows[i], cols[j]]`` for every pixel (i, j); NaN where the row or column index
    is negative (outside the grid). ``values`` is C-contiguous float32 (H, W)."""
    out = np.empty((rows.size, cols.size), dtype=np.float32)
    for i in range(rows.size):
        row = rows[i]
        for j in range(cols.size):
            col = cols[j]
            out[i, j] = values[row, col] if row >= 0 and col >= 0 else np.float32(np.nan)
    return out


@numba.njit(nogil=True, cache=True)
def quantise_even(values: np.ndarray, low: np.float32, factor: np.float32,
                  top: np.float32) -> np.ndarray:
    """Indices 1 + clip((v - low) * factor, 0, top) in float32 arithmetic, 0 where v is not
    finite. ``values`` is 1-D float32."""
    out = np.empty(values.size, dtype=np.uint8)
    zero, one = np.float32(0.0), np.float32(1.0)
    for k in range(values.size):
        v = values[k]
        if np.isfinite(v):
            scaled = (v - low) * factor  # may overflow to ±inf, which clamps
            out[k] = np.uint8(min(max(scaled, zero), top) + one)
        else:
            out[k] = 0
    return out


@numba.njit(nogil=True, cache=True)
def quantise_breaks(values: np.ndarray, lower: np.ndarray) -> np.ndarray:
    """The number of ``lower`` values (ascending float64) at or below each value: the index
    of its class; 0 where the value is not finite. ``values`` is 1-D float32."""
    out = np.empty(values.size, dtype=np.uint8)
    for k in range(values.size):
        v = np.float64(values[k])
        if not np.isfinite(v):
            out[k] = 0
            continue
        first, last = 0, lower.size  # binary search for the first lower value above v
        while first < last:
            middle = (first + last) // 2
            if lower[middle] <= v:
                first = middle + 1
            else:
                last = middle
        out[k] = first
    return out


@numba.njit(nogil=True, cache=True)
def cell_means(values: np.ndarray, xs: np.ndarray, ys: np.ndarray, width: int,
               height: int) -> np.ndarray:
    """The mean of the non-NaN cells covering each pixel, as datashader's rectilinear
    quadmesh computes it: cell (j, i) covers pixel columns ``xs[i]`` up to ``xs[i + 1]``
    (excluded; the one pixel ``xs[i]`` where they are equal, unless that is ``width``), rows
    likewise from ``ys``. ``values`` (ny, nx) float32 with rows along ascending y; ``xs``,
    ``ys`` the int64 pixel positions of the cells' breaks (nx + 1, ny + 1), clipped to the
    canvas. Returns float32 (height, width), row 0 at the bottom, NaN where no cell is."""
    total = np.zeros((height, width), dtype=np.float64)
    count = np.zeros((height, width), dtype=np.int32)
    nx = xs.size - 1
    first, stop = np.empty(nx, dtype=np.int64), np.empty(nx, dtype=np.int64)
    for i in range(nx):
        first[i], stop[i] = min(xs[i], xs[i + 1]), max(xs[i], xs[i + 1])
        if first[i] == stop[i] and stop[i] != width:
            stop[i] += 1
    # Row by row (datashader goes column by column: the same sums in another order).
    for j in range(ys.size - 1):
        y0, y1 = min(ys[j], ys[j + 1]), max(ys[j], ys[j + 1])
        if y0 == y1 and y1 != height:
            y1 += 1
        for i in range(nx):
            v = values[j, i]
            if np.isnan(v):
                continue
            for yi in range(y0, y1):
                for xi in range(first[i], stop[i]):
                    total[yi, xi] += v
                    count[yi, xi] += 1
    out = np.empty((height, width), dtype=np.float32)
    for yi in range(height):
        for xi in range(width):
            out[yi, xi] = total[yi, xi] / count[yi, xi] if count[yi, xi] else np.nan
    return out


# --- Cells placed by 2-D centres (projected grids in another CRS, curvilinear grids) ------

# A point this far beyond half a cell (in cells) still belongs to the outer cell: rounding.
EDGE_SLACK = 1e-6
# Jumps of the search in a cell's frame before the nearest centre decides (`_locate`).
FRAME_STEPS = 8


@numba.njit(nogil=True, cache=True)
def _distance(x: np.ndarray, y: np.ndarray, row: int, col: int, px: float,
              py: float) -> float:
    """Squared distance from (px, py) to the centre of cell (row, col); inf where the
    centre has no position."""
    dx, dy = x[row, col] - px, y[row, col] - py
    d = dx * dx + dy * dy
    return d if d == d else np.inf


@numba.njit(nogil=True, cache=True)
def _descend(x: np.ndarray, y: np.ndarray, px: float, py: float, row: int,
             col: int) -> tuple[int, int, float]:
    """Walk from cell (row, col) to the neighbour (of 8) nearest the point while one is
    nearer: the nearest centre, as the grid is smooth; with its squared distance."""
    ny, nx = x.shape
    best = _distance(x, y, row, col, px, py)
    while True:
        to_row, to_col = row, col
        for r in range(max(row - 1, 0), min(row + 2, ny)):
            for c in range(max(col - 1, 0), min(col + 2, nx)):
                d = _distance(x, y, r, c, px, py)
                if d < best:
                    best, to_row, to_col = d, r, c
        if to_row == row and to_col == col:
            return row, col, best
        row, col = to_row, to_col


@numba.njit(nogil=True, cache=True)
def _coarse_nearest(x: np.ndarray, y: np.ndarray, px: float, py: float) -> tuple[int, int]:
    """The nearest of about 64 × 64 evenly picked centres: where a search starts afresh."""
    ny, nx = x.shape
    stride = max(1, max(ny, nx) // 64)
    best, at_row, at_col = np.inf, 0, 0
    for r in range(0, ny, stride):
        for c in range(0, nx, stride):
            d = _distance(x, y, r, c, px, py)
            if d < best:
                best, at_row, at_col = d, r, c
    return at_row, at_col


@numba.njit(nogil=True, cache=True)
def _missing(x: np.ndarray, row: int, col: int) -> bool:
    """Whether there is no cell at (row, col): beyond the window, or without a position."""
    ny, nx = x.shape
    return row < 0 or col < 0 or row >= ny or col >= nx or x[row, col] != x[row, col]


@numba.njit(nogil=True, cache=True)
def _step(x: np.ndarray, y: np.ndarray, row: int, col: int, d_row: int,
          d_col: int) -> tuple[float, float]:
    """The vector from cell (row, col) to its next cell along one grid axis (from the
    previous one at the far edge, or where the next has no position); NaN if neither is."""
    if not _missing(x, row + d_row, col + d_col):
        return x[row + d_row, col + d_col] - x[row, col], y[row + d_row, col + d_col] - y[row, col]
    if not _missing(x, row - d_row, col - d_col):
        return x[row, col] - x[row - d_row, col - d_col], y[row, col] - y[row - d_row, col - d_col]
    return np.nan, np.nan


@numba.njit(nogil=True, cache=True)
def _frame(x: np.ndarray, y: np.ndarray, row: int,
           col: int) -> tuple[float, float, float, float]:
    """The grid linearised at cell (row, col), inverted: the 2 × 2 matrix taking an offset
    from its centre to (columns, rows); NaN where the cell lacks two neighbours."""
    ax, ay = _step(x, y, row, col, 0, 1)
    bx, by = _step(x, y, row, col, 1, 0)
    det = ax * by - bx * ay
    if det != det or det == 0.0:
        return np.nan, np.nan, np.nan, np.nan
    return by / det, -bx / det, -ay / det, ax / det


@numba.njit(nogil=True, cache=True)
def _offset(x: np.ndarray, y: np.ndarray, row: int, col: int, px: float,
            py: float) -> tuple[float, float]:
    """The point's offset from the centre of cell (row, col) in (columns, rows) of the
    cell's frame; NaN where it has none."""
    a, b, c, d = _frame(x, y, row, col)
    dx, dy = px - x[row, col], py - y[row, col]
    return a * dx + b * dy, c * dx + d * dy


@numba.njit(nogil=True, cache=True)
def _beyond(x: np.ndarray, y: np.ndarray, row: int, col: int, px: float, py: float) -> bool:
    """Whether the point, nearest to cell (row, col), lies more than half a cell beyond it
    on a side where no cell follows (the window's edge, or cells without a position)."""
    across, along = _offset(x, y, row, col, px, py)
    if across != across:  # a cell without two neighbours: no extent known
        return True
    half = 0.5 + EDGE_SLACK
    return ((across < -half and _missing(x, row, col - 1))
            or (across > half and _missing(x, row, col + 1))
            or (along < -half and _missing(x, row - 1, col))
            or (along > half and _missing(x, row + 1, col)))


@numba.njit(nogil=True, cache=True)
def _locate(x: np.ndarray, y: np.ndarray, px: float, py: float, row: int,
            col: int) -> tuple[int, int, bool]:
    """The cell holding the point, searched from cell (row, col): the cell reached and
    whether it holds the point (not when the point lies more than half a cell beyond the
    cells: the window's edge, or cells without a position).

    A cell holds the points within half a step of its centre along both grid axes, the
    grid linearised at the cell (a parallelogram spanned by the steps to its neighbours, as
    datashader's quads are spanned by the midpoints between centres). From a cell that does
    not hold the point the search jumps by the rounded offset (a Newton step in index
    space: one or two on a smooth grid). Where it cannot settle (between the frames of two
    cells, or among cells without a position) the nearest centre decides (`_descend`).
    """
    ny, nx = x.shape
    half = 0.5 + EDGE_SLACK
    for _ in range(FRAME_STEPS):
        across, along = _offset(x, y, row, col, px, py)
        if across != across:
            break
        if abs(across) <= half and abs(along) <= half:
            return row, col, True
        to_row = min(max(row + int(np.floor(along + 0.5)), 0), ny - 1)
        to_col = min(max(col + int(np.floor(across + 0.5)), 0), nx - 1)
        if to_row == row and to_col == col:
            return row, col, False  # beyond the window's edge
        if _missing(x, to_row, to_col):
            break
        row, col = to_row, to_col
    row, col, best = _descend(x, y, px, py, row, col)
    return row, col, best < np.inf and not _beyond(x, y, row, col, px, py)


@numba.njit(nogil=True, cache=True)
def _reach(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float, float]:
    """The extent of the positioned centres grown by the longest step between neighbours:
    no pixel centre beyond it lies in a cell."""
    ny, nx = x.shape
    x0, x1, y0, y1, step = np.inf, -np.inf, np.inf, -np.inf, 0.0
    for r in range(ny):
        for c in range(nx):
            if x[r, c] != x[r, c] or y[r, c] != y[r, c]:
                continue
            x0, x1 = min(x0, x[r, c]), max(x1, x[r, c])
            y0, y1 = min(y0, y[r, c]), max(y1, y[r, c])
            for r2, c2 in ((r, c + 1), (r + 1, c)):
                if r2 < ny and c2 < nx:
                    d = max(abs(x[r2, c2] - x[r, c]), abs(y[r2, c2] - y[r, c]))
                    if d == d:
                        step = max(step, d)
    return x0 - step, x1 + step, y0 - step, y1 + step


@numba.njit(nogil=True, cache=True)
def nearest_cells(x: np.ndarray, y: np.ndarray, west: float, north: float,
                  pixel_x: float, pixel_y: float, wanted: np.ndarray) -> np.ndarray:
    """The cell holding each wanted pixel's centre (`_locate`), as flat index ``row * nx
    + col`` into ``x``; -1 where none does or the pixel is not wanted.

    ``x``, ``y``: (ny, nx) float64 cell centres in the canvas CRS, NaN where a cell has no
    position; ``wanted``: bool (height, width); pixel (i, j) is centred at (west + (j + ½)
    · pixel_x, north − (i + ½) · pixel_y). Each pixel's search starts at the cell of the
    pixel before it in the row (the first of a row at the row above's first), so zoomed in
    it is mostly a test of that cell, in its frame kept from that pixel; the first pixel
    starts at the nearest of a coarse sample of centres.
    """
    height, width = wanted.shape
    out = np.full((height, width), -1, dtype=np.int64)
    nx = x.shape[1]
    half = 0.5 + EDGE_SLACK
    x0, x1, y0, y1 = _reach(x, y)
    row = col = start_row = start_col = -1
    for i in range(height):
        py = north - (i + 0.5) * pixel_y
        if py < y0 or py > y1:
            continue
        if start_row >= 0:
            row, col = start_row, start_col
        first = True
        # The centre and frame of the last cell found to hold a pixel.
        cx = cy = a = b = c = d = np.nan
        for j in range(width):
            px = west + (j + 0.5) * pixel_x
            if px < x0 or px > x1 or not wanted[i, j]:
                continue
            dx, dy = px - cx, py - cy
            if not (abs(a * dx + b * dy) <= half and abs(c * dx + d * dy) <= half):
                if row < 0:
                    row, col = _coarse_nearest(x, y, px, py)
                row, col, holds = _locate(x, y, px, py, row, col)
                if not holds:
                    continue
                a, b, c, d = _frame(x, y, row, col)
                cx, cy = x[row, col], y[row, col]
            if first:
                start_row, start_col, first = row, col, False
            out[i, j] = row * nx + col
    return out


@numba.njit(nogil=True, cache=True)
def draw_placed_cells(values: np.ndarray, x: np.ndarray, y: np.ndarray, west: float,
                      north: float, pixel_x: float, pixel_y: float, width: int,
                      height: int) -> np.ndarray:
    """Draw cells placed by 2-D centres: each pixel shows the mean of the non-NaN cells
    whose centres fall in it (NaN where all are NaN); a pixel holding no centre shows the
    cell that holds its own centre (`nearest_cells`), NaN where none does.

    Zoomed out (on an overview level of about a pixel per cell) most pixels hold a few
    centres and only the gaps between them are searched; zoomed in almost none holds one.
    ``values`` (ny, nx) float32, ``x``/``y`` their centres as for `nearest_cells`.
    Returns float32 (height, width), row 0 at the top.
    """
    ny, nx = values.shape
    total = np.zeros((height, width), dtype=np.float64)
    count = np.zeros((height, width), dtype=np.int32)
    empty = np.ones((height, width), dtype=np.bool_)
    for r in range(ny):
        for c in range(nx):
            fx, fy = (x[r, c] - west) / pixel_x, (north - y[r, c]) / pixel_y
            if not (0.0 <= fx < width and 0.0 <= fy < height):  # also False for NaN
                continue
            i, j = int(fy), int(fx)
            empty[i, j] = False
            v = values[r, c]
            if v == v:
                total[i, j] += v
                count[i, j] += 1
    cells = nearest_cells(x, y, west, north, pixel_x, pixel_y, empty)
    out = np.empty((height, width), dtype=np.float32)
    for i in range(height):
        for j in range(width):
            k = cells[i, j]
            if count[i, j]:
                out[i, j] = total[i, j] / count[i, j]
            elif k >= 0:
                out[i, j] = values[k // nx, k % nx]
            else:
                out[i, j] = np.nan
    return out


def warm_up() -> None:
    """Compile the kernels for the types renders call them with."""
    field = np.zeros((2, 2), dtype=np.float32)
    index = np.zeros(2, dtype=np.int64)
    paint(field, index, index)
    quantise_even(field.ravel(), np.float32(0.0), np.float32(1.0), np.float32(254.999))
    quantise_breaks(field.ravel(), np.zeros(2, dtype=np.float64))
    cell_means(field, index, index, 2, 2)
    centres = np.array([[0.0, 1.0], [0.0, 1.0]])
    draw_placed_cells(field, centres, centres.T.copy(), 0.0, 1.0, 0.5, 0.5, 2, 2)
