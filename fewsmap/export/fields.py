"""Read one (run, valid time) slice of a layer's variables over a native window, untouched."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from fewsmap.errors import InvalidParameterValue
from fewsmap.export import GEOTIFF_FLOAT32, NETCDF
from fewsmap.export.window import GridWindow, native_window
from fewsmap.products.change import derived_properties, difference
from fewsmap.products.ensemble import MemberStatistic, Selector, read_window
from fewsmap.render.pipeline import MapSpec, field_prefix
from fewsmap.store.cube import ForecastStore, RunInfo
from fewsmap.time.instants import format_time


@dataclass(frozen=True, eq=False)
class FieldSlice:
    """The values of one or more variables at one run and valid time, on a native window.

    ``labels`` names the value along every dimension between ``step`` and the grid
    (ensemble member, level), as stored.
    """

    store: ForecastStore
    variables: tuple[str, ...]
    values: tuple[np.ndarray, ...]  # float32 (rows, cols) per variable, NaN = missing
    window: GridWindow
    run: RunInfo
    valid_time: np.datetime64
    labels: tuple[tuple[str, Any], ...] = ()
    # A change's baseline run and an accumulation's window (`derived_properties`)
    derived: tuple[tuple[str, str], ...] = ()


def read_field_slice(spec: MapSpec, layer_id: str) -> FieldSlice:
    """Read the native cells of a map request's bbox for its run and valid time.

    Raises
    ------
    InvalidParameterValue
        For an aggregate over several times (not raw values) or a bbox without cells.
    """
    if spec.aggregate:
        raise InvalidParameterValue(
            f"an export holds one valid time's values untouched; TIME names "
            f"{len(spec.aggregate)} times of run {spec.run.label} (aggregates are drawn only)")
    store = spec.store
    window = native_window(store, spec.canvas.crs, spec.canvas.bbox, layer_id)
    values = tuple(read_field(spec, v, window.rows, window.cols) for v in spec.variables)
    dims = store.dims(spec.variables[0])[2:-2]
    labels = tuple((dim, index.statistic.label if isinstance(index, MemberStatistic)
                    else store.labels(dim)[index].item())
                   for dim, index in zip(dims, spec.labels, strict=True))
    return FieldSlice(store, spec.variables, values, window, spec.run, spec.valid_time, labels,
                      derived_properties(spec.baseline, spec.window))


def read_field(spec: MapSpec, variable: str, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """One variable's native values at the spec's valid time: a member or statistic,
    summed over an accumulation's window, minus the baseline run's for a change."""
    def read(run: RunInfo, labels: tuple[Selector, ...]) -> np.ndarray:
        prefix = field_prefix(spec, run, labels, spec.valid_time)
        return read_window(spec.store, variable, prefix, rows, cols)

    values = read(spec.run, spec.labels)
    if spec.baseline is None:
        return values
    return difference(values, read(spec.baseline, spec.baseline_labels))


def export_map(specs: list[MapSpec], media_type: str, layer_id: str) -> bytes:
    """Encode a GetMap export: float32 Cloud-Optimized GeoTIFF or CF NetCDF.

    Raises
    ------
    FewsmapError
        InvalidParameterValue for a group, an aggregate or a bbox without cells;
        InvalidFormat for a GeoTIFF of a grid without an affine transform.
    """
    if len(specs) != 1:
        raise InvalidParameterValue(f"{layer_id!r} is a layer group; an export holds one "
                                    "layer's values")
    if specs[0].catchments is not None:
        raise InvalidParameterValue(f"{layer_id!r} fills catchments with their means: it is "
                                    "drawn only; its values are at /api/catchments/"
                                    f"{specs[0].catchments.name}")
    field = read_field_slice(specs[0], layer_id)
    if media_type == GEOTIFF_FLOAT32:
        from fewsmap.export.geotiff import geotiff_bytes  # rasterio loads only when used

        return geotiff_bytes(field)
    if media_type == NETCDF:
        from fewsmap.export.netcdf import field_netcdf

        return field_netcdf(field)
    raise ValueError(f"not an export format: {media_type}")


def export_filename(spec: MapSpec, layer_id: str, suffix: str) -> str:
    """A descriptive download name: ``<layer>_<run>_<valid time><suffix>``."""
    stamp = "_".join(format_time(t).replace(":", "").replace("-", "")
                     for t in (spec.run.reference_time, spec.valid_time))
    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in layer_id)
    return f"{safe}_{stamp}{suffix}"

