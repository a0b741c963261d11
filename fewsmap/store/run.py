"""The typed value that crosses from ingest to the store: one normalised forecast run."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyproj
import xarray as xr

from fewsmap.store.layout import STEP_DIM
from fewsmap.time.instants import format_time

# Variable attributes of accumulated fields (fewsmap.products.accumulate): the start steps
# of a GRIB accumulation's messages; what the stored values are ("per step") and what the
# source's were, which the run record repeats under ``accumulation``.
START_STEPS_ATTR = "fewsmap:grib_start_steps"
ACCUMULATION_ATTR = "fewsmap:accumulation"
ORIGINAL_ATTR = "fewsmap:accumulation_original"


@dataclass(frozen=True)
class SourceFile:
    """An input file a run was built from, identified by content."""

    path: str
    sha256: str
    size_bytes: int

    @classmethod
    def describe(cls, path: Path) -> SourceFile:
        """Hash ``path`` so a map can be traced back to exactly this input."""
        digest = hashlib.sha256()
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        return cls(str(path.resolve()), digest.hexdigest(), path.stat().st_size)


@dataclass(frozen=True, eq=False)
class Grid:
    """The horizontal grid: two spatial dimensions (y first), their coordinates and CRS.

    ``coords`` holds 1-D axes (regular lon/lat or projected x/y) and, for curvilinear
    grids, 2-D ``latitude``/``longitude``. ``crs_attrs`` is a CF grid mapping with
    ``crs_wkt``.
    """

    dims: tuple[str, str]
    coords: dict[str, xr.DataArray]
    crs_attrs: dict[str, Any]

    @property
    def crs(self) -> pyproj.CRS:
        """The grid's coordinate reference system."""
        return pyproj.CRS.from_wkt(self.crs_attrs["crs_wkt"])

    def mismatch(self, other: Grid) -> str | None:
        """Describe how ``other`` differs from this grid, or return None if it is the same."""
        if other.dims != self.dims:
            return f"dimensions {other.dims} instead of {self.dims}"
        for name, coord in self.coords.items():
            theirs = other.coords.get(name)
            if theirs is None:
                return f"no coordinate '{name}'"
            if theirs.shape != coord.shape:
                return f"coordinate '{name}' has shape {theirs.shape} instead of {coord.shape}"
            if not np.allclose(theirs.values, coord.values, rtol=0, atol=1e-6, equal_nan=True):
                return f"coordinate '{name}' has other values"
        if not other.crs.equals(self.crs, ignore_axis_order=True):
            return f"CRS '{other.crs.name}' instead of '{self.crs.name}'"
        return None


@dataclass(frozen=True, eq=False)
class RunData:
    """One forecast run, normalised for the cube.

    ``fields`` maps each variable to lazy pieces (one per source hypercube or member file),
    each with dimensions ``(step, [realization], [levels...], *grid.dims)`` and a coordinate
    on every non-spatial dimension; level dimensions carry ``axis="Z"``. The writer places
    each piece by its labels, so pieces never have to be merged in memory.
    """

    reference_time: np.datetime64
    fields: dict[str, tuple[xr.DataArray, ...]]
    grid: Grid
    sources: tuple[SourceFile, ...]
    reference_time_from: str
    attrs: dict[str, Any] = field(default_factory=dict)
    # Values that mean "no value" in the source, per variable (a GRIB without a bitmap
    # marks cells outside a forecast area with a number): written as NaN.
    missing_values: dict[str, float] = field(default_factory=dict)

    @property
    def variables(self) -> list[str]:
        """Names of the forecast variables, sorted."""
        return sorted(self.fields)

    @property
    def accumulations(self) -> dict[str, dict[str, str]]:
        """Per variable turned into per-step amounts at ingest: what is stored, and what the
        source held (for the run record)."""
        found = {}
        for name, pieces in self.fields.items():
            attrs = pieces[0].attrs
            if ACCUMULATION_ATTR in attrs:
                found[name] = {"stored": str(attrs[ACCUMULATION_ATTR]),
                               "original": str(attrs.get(ORIGINAL_ATTR, ""))}
        return found

    @property
    def steps(self) -> np.ndarray:
        """All lead times of the run (any variable), as sorted timedelta64[s]."""
        return self.labels(STEP_DIM).astype("timedelta64[s]")

    def dims(self, variable: str) -> tuple[str, ...]:
        """Dimension names of a variable's pieces."""
        return tuple(str(d) for d in self.fields[variable][0].dims)

    def label_dims(self) -> list[str]:
        """Non-spatial dimensions besides ``step`` (members and levels), in first-seen order."""
        seen: dict[str, None] = {}
        for name in self.variables:
            seen.update(dict.fromkeys(self.dims(name)[1:-2]))
        return list(seen)

    def labels(self, dim: str) -> np.ndarray:
        """Sorted union of the labels along ``dim`` over all pieces."""
        values = [np.asarray(p[dim].values) for ps in self.fields.values() for p in ps
                  if dim in p.dims]
        return np.unique(np.concatenate(values))

    def coord_attrs(self, dim: str) -> dict[str, Any]:
        """Attributes of the coordinate along ``dim`` (from the first piece that has it)."""
        for pieces in self.fields.values():
            for piece in pieces:
                if dim in piece.coords:
                    return dict(piece[dim].attrs)
        return {}

    @property
    def label(self) -> str:
        """The run's reference time as FEWS writes it: ``yyyy-MM-ddTHH:mm:ssZ``."""
        return format_time(self.reference_time)
