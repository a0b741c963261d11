"""Overviews: a multiscale pyramid of every field, written at ingest, read for zoomed-out views.

A grid larger than a chunk (`SPATIAL_CHUNK` cells on a side) gets levels 1, 2, … whose cells
are blocks of 2^k × 2^k full-resolution cells, down to the first level that fits a web tile
(`TILE_CELLS` on a side): a 4000 × 3000 grid gets 2000 × 1500, 1000 × 750, 500 × 375 and
250 × 188. A level cell holds the NaN-aware mean of the full-resolution cells of its block
(NaN only where all of them are), and sits at the mean of their centres, so a partial block
at the grid's edge is placed over the cells it averages. Each level is computed from the
full-resolution field (sums and counts halved level by level), not as a mean of means.

Layout (docs/design/cube.md, "Overviews"), plain Zarr v3 in the store's own chunking::

    overviews/                group: attributes "multiscales" (zarr-conventions/multiscales)
      1/                      group: level 1, xarray opens it (``group="overviews/1"``)
        latitude, longitude   1-D level axes (or y, x; 2-D on y, x for curvilinear grids)
        <variable>            (run, step, [members], [levels], y/2, x/2) float32, 512² chunks
      2/ …

A run's level chunks go into its own (unpublished) run slot with its full-resolution chunks
and are published with it by the one root ``zarr.json``; the run record says how many levels
it has (``overview_levels``), so a run written by older code (none) is read at full
resolution. Retention deletes a slot's chunks in every array, levels included.

Every kind of grid gets levels: regular lon/lat and projected grids level 1-D axes (block
means of the centres), curvilinear grids 2-D latitude/longitude (block means of the
centres as unit vectors on the sphere). Categorical variables (CF ``flag_values``/
``flag_meanings``: a mean would invent classes) get the mode of each block instead (their
level arrays say ``resampling_method: mode``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numba
import numpy as np
import zarr

from fewsmap.store.cube import ForecastStore, array_of, dimension_names
from fewsmap.store.geometry import Bbox, CentresWindow, GridGeometry
from fewsmap.store.layout import SPATIAL_CHUNK, coordinate_codec, data_chunks, data_codec
from fewsmap.store.state_cache import PerStoreState

OVERVIEWS = "overviews"
# Levels are added until the grid's larger side fits a 256-pixel web tile: every zoomed-out
# tile then reads at most one level's window of about a tile's cells.
TILE_CELLS = 256
RESAMPLING = "average"
# Run-record key: how many levels the run's fields were written with.
RUN_LEVELS = "overview_levels"
# zarr-conventions/multiscales v1 (looked up 2026-12: README and schema of that repository).
MULTISCALES_CONVENTION = {
    "uuid": "d35379db-88df-4056-af3a-620245f8e347",
    "name": "multiscales",
    "schema_url": "https://raw.githubusercontent.com/zarr-conventions/multiscales/refs/tags/"
                  "v1/schema.json",
    "spec_url": "https://github.com/zarr-conventions/multiscales/blob/v1/README.md",
    "description": "Multiscale layout of zarr datasets",
}
# A level is used when its cells are no larger than one output pixel, up to rounding.
PIXEL_SLACK = 1e-6
# Attributes of a full-resolution variable kept on its level arrays (others name arrays
# that a level group does not hold: valid_time, crs).
KEPT_ATTRS = ("units", "long_name", "standard_name", "source_units", "flag_values",
              "flag_meanings")
MODE = "mode"  # the resampling of categorical variables' levels


def level_count(shape: Sequence[int]) -> int:
    """How many overview levels a grid of ``shape`` (rows, columns) gets: none up to a chunk
    on a side, else halvings until the larger side fits a tile."""
    side = max(int(n) for n in shape)
    if side <= SPATIAL_CHUNK:
        return 0
    return math.ceil(math.log2(side / TILE_CELLS))


def level_shape(shape: Sequence[int], level: int) -> tuple[int, int]:
    """(rows, columns) of ``level`` of a grid of ``shape``."""
    factor = 2 ** level
    return math.ceil(shape[0] / factor), math.ceil(shape[1] / factor)


def level_path(level: int, name: str) -> str:
    """The path of array ``name`` in overview ``level`` (``overviews/2/t2m``)."""
    return f"{OVERVIEWS}/{level}/{name}"


def is_categorical(attrs: dict[str, Any]) -> bool:
    """Whether a variable holds classes (CF flags), which a mean must not blend."""
    return "flag_values" in attrs or "flag_meanings" in attrs


# --- Writing -------------------------------------------------------------------------------

def ensure_levels(group: zarr.Group, variable: str) -> int:
    """Create the overview arrays of ``variable`` (and the levels' group, axes and
    multiscales attributes if the store has none yet); return the number of levels (0: the
    variable gets none).

    The arrays are created at the full-resolution array's current shape, with no chunks:
    they are invisible to readers until the writer publishes them (`fewsmap.store.writer`).
    """
    base = array_of(group, variable)
    dims = dimension_names(base)
    coordinates = _grid_coordinates(group, dims[-2:])
    levels = level_count(base.shape[-2:])
    if coordinates is None or not levels:
        return 0
    if OVERVIEWS not in group:
        _create_levels(group, levels, coordinates)
    attrs = {k: v for k, v in base.attrs.items() if k in KEPT_ATTRS}
    if is_categorical(dict(base.attrs)):
        attrs["resampling_method"] = MODE
    for level in range(1, levels + 1):
        path = level_path(level, variable)
        if path in group:
            continue
        shape = (*base.shape[:-2], *level_shape(base.shape[-2:], level))
        group.create_array(path, shape=shape, chunks=data_chunks(shape, 2), dtype="float32",
                           fill_value=np.nan, dimension_names=list(dims), attributes=attrs,
                           compressors=data_codec())
    return levels


def _grid_coordinates(group: zarr.Group, spatial_dims: tuple[str, ...]
                      ) -> dict[str, zarr.Array[Any]] | None:
    """The arrays placing the grid's cells: its 1-D axes, or the 2-D latitude and
    longitude of a curvilinear grid; None when the store has neither."""
    axes = {d: group.get(d) for d in spatial_dims}
    if all(isinstance(a, zarr.Array) and a.ndim == 1 for a in axes.values()):
        return {d: a for d, a in axes.items() if isinstance(a, zarr.Array)}
    centres = {n: group.get(n) for n in ("latitude", "longitude")}
    if all(isinstance(a, zarr.Array) and dimension_names(a) == spatial_dims
           for a in centres.values()):
        return {n: a for n, a in centres.items() if isinstance(a, zarr.Array)}
    return None


def _create_levels(group: zarr.Group, levels: int,
                   coordinates: dict[str, zarr.Array[Any]]) -> None:
    """Create the levels' groups with their coordinates and the multiscales attributes."""
    overviews = group.create_group(OVERVIEWS, attributes=multiscales_attributes(levels))
    values = {name: np.asarray(array[...], dtype="float64")
              for name, array in coordinates.items()}
    for level in range(1, levels + 1):
        level_group = overviews.create_group(str(level))
        coarse = {name: block_centres(v, level) for name, v in values.items()} if all(
            v.ndim == 1 for v in values.values()) else block_lonlat(
                values["longitude"], values["latitude"], level)
        for name, level_values in coarse.items():
            array = level_group.create_array(
                name, shape=level_values.shape, chunks=data_chunks(level_values.shape, 2)
                if level_values.ndim == 2 else level_values.shape, dtype="float64",
                fill_value=np.nan, dimension_names=list(dimension_names(coordinates[name])),
                attributes={k: v for k, v in coordinates[name].attrs.items()
                            if k in ("units", "standard_name", "long_name", "axis")},
                compressors=coordinate_codec())
            array[...] = level_values


def block_lonlat(lon: np.ndarray, lat: np.ndarray, level: int) -> dict[str, np.ndarray]:
    """The centres of ``level``'s cells of a curvilinear grid: the mean of each block's
    centres on the sphere (unit vectors, so blocks across the antimeridian stay whole)."""
    lam, phi = np.radians(lon), np.radians(lat)
    vectors = [np.cos(phi) * np.cos(lam), np.cos(phi) * np.sin(lam), np.sin(phi)]
    x, y, z = (block_means(v, level, np.float64)[-1] for v in vectors)
    return {"longitude": np.degrees(np.arctan2(y, x)),
            "latitude": np.degrees(np.arctan2(z, np.hypot(x, y)))}


def multiscales_attributes(levels: int) -> dict[str, Any]:
    """The ``overviews`` group's attributes: the zarr-conventions ``multiscales`` layout.

    Each level's ``transform`` maps its (row, column) index to full-resolution index:
    ``i0 = scale · i + translation`` (the block's first cell plus half a block less half a
    cell). The full resolution is the root group's arrays, outside this group: the
    convention's paths cannot lead to a parent, so ``fewsmap:full_resolution`` says where.
    """
    layout = []
    for level in range(1, levels + 1):
        factor = float(2 ** level)
        layout.append({"asset": str(level),
                       "transform": {"scale": [factor, factor],
                                     "translation": [(factor - 1) / 2, (factor - 1) / 2]},
                       "resampling_method": RESAMPLING})
    return {"zarr_conventions": [MULTISCALES_CONVENTION],
            "multiscales": {"layout": layout, "resampling_method": RESAMPLING},
            "fewsmap:full_resolution": "/",
            "description": "NaN-aware block means of the root group's forecast variables "
                           "(block modes of those with CF flags: resampling_method 'mode' "
                           "on their arrays)"}


def block_centres(axis: np.ndarray, level: int) -> np.ndarray:
    """The centres of ``level``'s cells along a 1-D axis: the mean of each block's centres."""
    factor = 2 ** level
    values = np.asarray(axis, dtype="float64")
    padded = np.full(math.ceil(values.size / factor) * factor, np.nan)
    padded[:values.size] = values
    return np.asarray(np.nanmean(padded.reshape(-1, factor), axis=1))


def block_means(field: np.ndarray, levels: int,
                dtype: type[np.floating[Any]] = np.float32) -> list[np.ndarray]:
    """NaN-aware block means of a 2-D field at levels 1…``levels`` (in ``dtype``).

    Sums and counts are halved level by level, so each level is the mean of its block's
    full-resolution values (not a mean of means where blocks hold NaN). One compiled pass
    over the field: numpy's strided block sums took 1.2 s for a 4000 × 3000 field.
    """
    total, count = _field_sums(np.ascontiguousarray(field, dtype=dtype))
    out = [_means(total, count, dtype)]
    for _ in range(levels - 1):
        total, count = _halved_sums(total, count)
        out.append(_means(total, count, dtype))
    return out


def _means(total: np.ndarray, count: np.ndarray, dtype: type[np.floating[Any]]) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / count, np.nan).astype(dtype)


@numba.njit(nogil=True, cache=True)
def _field_sums(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sums (float64) and counts of the non-NaN values of each 2 × 2 block of a float32
    (or float64) field; an odd last row or column is its own, half-empty block."""
    ny, nx = values.shape
    total = np.zeros(((ny + 1) // 2, (nx + 1) // 2), dtype=np.float64)
    count = np.zeros(total.shape, dtype=np.int32)
    for i in range(ny):
        row, sums, counts = values[i], total[i >> 1], count[i >> 1]
        for j in range(nx):
            v = row[j]
            present = v == v  # not NaN; without a branch the loop runs ~20 % faster
            sums[j >> 1] += v if present else 0.0
            counts[j >> 1] += 1 if present else 0
    return total, count


@numba.njit(nogil=True, cache=True)
def _halved_sums(total: np.ndarray, count: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sums and counts of 2 × 2 blocks of sums and counts (`_field_sums`, one level up)."""
    ny, nx = total.shape
    sums = np.zeros(((ny + 1) // 2, (nx + 1) // 2), dtype=np.float64)
    counts = np.zeros(sums.shape, dtype=np.int32)
    for i in range(ny):
        for j in range(nx):
            sums[i // 2, j // 2] += total[i, j]
            counts[i // 2, j // 2] += count[i, j]
    return sums, counts


def level_fields(values: np.ndarray, levels: int, categorical: bool = False
                 ) -> list[np.ndarray]:
    """The overview levels 1…``levels`` of the fields ``values`` (…, y, x), each shaped as
    ``values`` with the level's grid: block means, or block modes of ``categorical``
    fields."""
    if not levels:
        return []
    fields = values.reshape(-1, *values.shape[-2:])
    means = [(block_modes if categorical else block_means)(field, levels) for field in fields]
    out = []
    for level in range(levels):
        stacked = np.stack([m[level] for m in means])
        out.append(stacked.reshape(*values.shape[:-2], *stacked.shape[-2:]))
    return out


def block_modes(field: np.ndarray, levels: int) -> list[np.ndarray]:
    """The most frequent value of each block of a 2-D field's non-NaN cells at levels
    1…``levels`` (float32; NaN where a block has none; the smallest of equally frequent
    values), each from the full-resolution cells: a mode of modes can miss a block's mode."""
    values = np.ascontiguousarray(field, dtype=np.float32)
    return [_block_modes(values, 2 ** level) for level in range(1, levels + 1)]


@numba.njit(nogil=True, cache=True)
def _block_modes(values: np.ndarray, factor: int) -> np.ndarray:
    """`block_modes` of one level: blocks of ``factor`` × ``factor`` cells."""
    ny, nx = values.shape
    out = np.full(((ny + factor - 1) // factor, (nx + factor - 1) // factor), np.nan,
                  dtype=np.float32)
    held = np.empty(factor * factor, dtype=np.float32)
    for bi in range(out.shape[0]):
        for bj in range(out.shape[1]):
            n = 0
            for i in range(bi * factor, min((bi + 1) * factor, ny)):
                for j in range(bj * factor, min((bj + 1) * factor, nx)):
                    if values[i, j] == values[i, j]:  # not NaN
                        held[n] = values[i, j]
                        n += 1
            if n == 0:
                continue
            block = np.sort(held[:n])
            best, most, run = block[0], 1, 1
            for k in range(1, n):
                run = run + 1 if block[k] == block[k - 1] else 1
                if run > most:  # strictly: the smallest of equally frequent values stays
                    best, most = block[k], run
            out[bi, bj] = best
    return out


# --- Reading -------------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class Level:
    """One overview level of a store: its number and the geometry of its cells."""

    number: int
    geometry: GridGeometry


@dataclass(frozen=True, eq=False)
class Pyramid:
    """The overview levels of one published store state, and who may read them."""

    levels: tuple[Level, ...]  # level 1 first
    variables: frozenset[str]  # variables with arrays at every level
    run_levels: dict[int, int]  # run slot → levels written with the run

    def levels_for(self, variable: str, slot: int) -> tuple[Level, ...]:
        """The levels holding ``variable`` for the run in ``slot`` (none for runs written
        without overviews)."""
        if variable not in self.variables:
            return ()
        return self.levels[:self.run_levels.get(slot, 0)]


PYRAMIDS = 64  # store states whose pyramid is kept


def _read_pyramid(store: ForecastStore) -> Pyramid:
    run_levels = {run.slot: int(run.record.get(RUN_LEVELS, 0)) for run in store.runs}
    consolidated = store.group.metadata.consolidated_metadata
    paths = set(consolidated.flattened_metadata) if consolidated is not None else set()
    count = sum(1 for p in paths if p.startswith(f"{OVERVIEWS}/") and p.count("/") == 1)
    if not count:
        return Pyramid((), frozenset(), run_levels)
    base = store.geometry
    y_dim, x_dim = store.spatial_dims
    levels = tuple(Level(k, GridGeometry(
        store.name, base.dims, base.crs_wkt, lon=store.coordinate(level_path(k, "longitude")),
        lat=store.coordinate(level_path(k, "latitude"))) if store.curvilinear else GridGeometry(
        store.name, base.dims, base.crs_wkt, x=store.coordinate(level_path(k, x_dim)),
        y=store.coordinate(level_path(k, y_dim)))) for k in range(1, count + 1))
    variables = frozenset(v for v in store.variables
                          if all(level_path(k, v) in paths for k in range(1, count + 1)))
    return Pyramid(levels, variables, run_levels)


pyramid_of: PerStoreState[ForecastStore, Pyramid] = PerStoreState(_read_pyramid, PYRAMIDS)
"""The overview levels of a store's published state (built once per state)."""


@dataclass(frozen=True, eq=False)
class LevelWindow:
    """The array to read for a view and the window of its cells near the view's bbox."""

    array: str
    window: CentresWindow
    geometry: GridGeometry  # the level's grid


def overview_window(store: ForecastStore, variable: str, slot: int, crs: str, bbox: Bbox,
                    size_px: tuple[int, int]) -> LevelWindow | None:
    """The coarsest overview level of ``variable`` in run ``slot`` whose cells, over the
    view, are no larger than about one output pixel, with its window; None when the view
    needs full resolution (zoomed in, or no level is written).

    The rule: a level fits when its cells cover at most one pixel in area (the geometric
    mean of their width and height in pixels is at most 1) and at most two pixels along
    either axis. A cell's width and height are the mean spacing of the window's centres in
    the view's CRS (for 2-D centres, the median distance to the next centre along each grid
    axis). Area, not each axis: Web Mercator stretches rows by 1/cos(latitude), so over
    Europe a level's cells are up to 3 times taller than wide in pixels, and the strictest
    axis would keep full resolution where a level of a quarter of the cells draws the same.
    """
    levels = pyramid_of(store).levels_for(variable, slot)
    if not levels:
        return None
    width, height = size_px
    pixel = ((bbox[2] - bbox[0]) / width, (bbox[3] - bbox[1]) / height)
    # Zoomed in: the finest level's smallest cells exceed a pixel, so no level fits (its
    # windows' cells are no smaller); the window searches of 2-D centres are skipped.
    if levels[0].geometry.centres_in(crs).least_step / max(pixel) > 1 + PIXEL_SLACK:
        return None
    number = len(levels)
    while number >= 1:
        window = levels[number - 1].geometry.window_in(crs, bbox)
        if window is None:  # fewer than 2 × 2 of its cells near the view: zoomed in
            return None
        across, along = _cell_pixels(window, pixel)
        excess = max(math.sqrt(across * along), max(across, along) / 2)
        if excess <= 1 + PIXEL_SLACK:
            return LevelWindow(level_path(number, variable), window,
                               levels[number - 1].geometry)
        # Each finer level halves the cells: jump to the one that should fit, then check.
        number -= max(1, math.ceil(math.log2(excess) - PIXEL_SLACK))
    return None


def _cell_pixels(window: CentresWindow, pixel: tuple[float, float]) -> tuple[float, float]:
    """The size of a window's cells in output pixels along x and y (separable centres), or
    along the grid's columns and rows against the smaller pixel side (2-D centres)."""
    if window.x.ndim == 1:
        across, along = (abs(float(axis[-1] - axis[0])) / (axis.size - 1) / side
                         for axis, side in ((window.x, pixel[0]), (window.y, pixel[1])))
        return across, along
    # A sample of about 32 × 32 cells gives the median: the whole window of a zoomed-out
    # tile (100 000 cells or more) cost 5-10 ms a tile, 64 × 64 about 0.5 ms per level.
    every = max(1, max(window.x.shape) // 32)
    x, y = (np.asarray(v, dtype=np.float64) for v in (window.x, window.y))
    across, along = (float(_median_step(x, y, every, axis)) for axis in (1, 0))
    return across / min(pixel), along / min(pixel)


@numba.njit(nogil=True, cache=True)
def _median_step(x: np.ndarray, y: np.ndarray, every: int, axis: int) -> float:
    """The median distance between neighbouring 2-D centres (``x``, ``y`` float64) along
    ``axis`` (1: columns, 0: rows), on a sample of every ``every``-th row and column and
    divided by ``every``; NaN distances left out, inf where none is finite (``nanmedian``
    of the sampled steps, without its dozen array passes)."""
    rows, cols = x.shape
    d_row, d_col = (every, 0) if axis == 0 else (0, every)
    found = np.empty(((rows + every - 1) // every) * ((cols + every - 1) // every))
    k = 0
    for i in range(0, rows - d_row, every):
        for j in range(0, cols - d_col, every):
            step = np.hypot(x[i + d_row, j + d_col] - x[i, j], y[i + d_row, j + d_col] - y[i, j])
            if np.isfinite(step):
                found[k] = step / every
                k += 1
    return np.median(found[:k]) if k else np.inf
