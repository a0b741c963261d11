"""Encode an `EdrAnswer` as CoverageJSON (OGC 21-069r2) or CSV (RFC 4180).

CoverageJSON: one Coverage. A position is a ``PointSeries`` at the cell centre (a ``Grid``
of one cell when several levels are asked, since a PointSeries has a single z); an area or
a cube is a ``Grid`` on the native grid's own axes (CRS84 longitude/latitude, or the
projected x/y with a ProjectedCRS). Ranges have axes (t, z, y, x), z only for layers with
levels. Ensemble members are parameters of their own, grouped per variable by a
ParameterGroup. Missing values and, for an area, cells outside the polygon are null.

CSV: one row per value (an area leaves out the cells outside the polygon; a missing value is
an empty field), columns `CSV_COLUMNS`.

Both come as a sequence of chunks (`csv_chunks`, `covjson_chunks`) of a bounded size, so an
answer of millions of values is never held whole in memory (issue #13: ~136 bytes a CSV
value, 272 MB for the largest answer); joined, the chunks are the whole document.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import secrets
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from fewsmap.crs import native_epsg
from fewsmap.edr.data import EdrAnswer, EdrParameter
from fewsmap.edr.window import Window
from fewsmap.formats import covjson
from fewsmap.formats.covjson import (
    TEMPORAL_REFERENCING,
    Description,
    describe_variable,
    ndarray,
    point_series_domain,
)
from fewsmap.formats.numbers import csv_numbers, json_numbers
from fewsmap.resolve.labels import label_value
from fewsmap.store.cube import ForecastStore
from fewsmap.time.instants import format_time

CSV_COLUMNS = ("parameter", "variable", "member", "reference_time", "valid_time", "z", "x",
               "y", "lon", "lat", "value", "units")
# Cells of one CSV chunk (about 100 bytes a row) and values of one CoverageJSON chunk (about
# 10 bytes each): chunks of a few hundred kB, small against the answer, large enough that
# the per-chunk work is noise.
CSV_CHUNK_CELLS = 4096
JSON_CHUNK_VALUES = 32768
CSV_CACHED_CELLS = 65536


def coverage_json(answer: EdrAnswer,
                  range_values: Callable[[np.ndarray], Any] | None = None) -> dict[str, Any]:
    """The answer as a CoverageJSON Coverage document.

    ``range_values`` turns a parameter's values into the document's ``values`` (default
    `json_numbers`); `covjson_chunks` puts placeholders there to write the values in chunks.
    """
    range_values = range_values or json_numbers
    names, shape = _range_axes(answer)
    coverage: dict[str, Any] = {
        "type": "Coverage",
        "id": f"{answer.layer.id}/{answer.run.label}/{answer.kind}",
        "domain": _domain(answer),
        "parameters": {p.id: covjson_parameter(answer.store, p, _units(answer, p))
                       for p in answer.parameters},
        "ranges": {p.id: ndarray(range_values(answer.values[p.id]), names, shape)
                   for p in answer.parameters},
        "fewsmap:reference_time": answer.run.label,
    }
    coverage.update((f"fewsmap:{name}", value) for name, value in answer.derived)
    groups = _member_groups(answer)
    if groups:
        coverage["parameterGroups"] = groups
    if answer.cell is not None:
        coverage["fewsmap:cell"] = {"row": answer.cell.row, "col": answer.cell.col}
    return coverage


def covjson_chunks(answer: EdrAnswer) -> Iterator[bytes]:
    """The CoverageJSON document (``json.dumps(coverage_json(answer))``) in chunks.

    The document around the ranges is small; each range's values are written
    `JSON_CHUNK_VALUES` at a time where a placeholder stood.
    """
    marker = f"fewsmap-values-{secrets.token_hex(16)}"
    placeholders: dict[str, np.ndarray] = {}

    def placeholder(values: np.ndarray) -> str:
        name = f"{marker}-{len(placeholders)}"
        placeholders[name] = values
        return name

    text = json.dumps(coverage_json(answer, placeholder), allow_nan=False)
    for name, values in placeholders.items():
        before, text = text.split(json.dumps(name), 1)
        yield before.encode()
        flat = values.reshape(-1)
        pieces = (json.dumps(json_numbers(flat[i : i + JSON_CHUNK_VALUES]))[1:-1]
                  for i in range(0, flat.size, JSON_CHUNK_VALUES))
        yield b"["
        for k, piece in enumerate(pieces):
            yield (", " + piece if k else piece).encode()
        yield b"]"
    yield text.encode()


def coverage_csv(answer: EdrAnswer) -> bytes:
    """The answer as CSV, one row per value (columns `CSV_COLUMNS`; RFC 4180 CRLF lines)."""
    return b"".join(csv_chunks(answer))


def csv_chunks(answer: EdrAnswer) -> Iterator[bytes]:
    """`coverage_csv` in chunks of at most `CSV_CHUNK_CELLS` rows (after the header)."""
    window = answer.window
    band_rows = max(1, CSV_CHUNK_CELLS // max(1, window.inside.shape[1]))
    firsts = range(0, window.inside.shape[0], band_rows)
    # The cells' columns are the same in every (parameter, time, level) block: format them
    # once for up to CSV_CACHED_CELLS cells, else again for each block (bounded memory).
    cached = ([_band(window, first, band_rows) for first in firsts]
              if np.count_nonzero(window.inside) <= CSV_CACHED_CELLS else None)
    levels = [""] if answer.levels is None else [_text(label_value(v)) for v in answer.levels]
    yield _csv_fields(CSV_COLUMNS).encode() + b"\r\n"
    for parameter in answer.parameters:
        values = answer.values[parameter.id]
        units = _csv_fields((_units(answer, parameter) or "",))
        member = ("" if parameter.member is None else parameter.member
                  if isinstance(parameter.member, str) else _text(parameter.member))
        for (t, when), (z, level) in itertools.product(enumerate(answer.times),
                                                        enumerate(levels)):
            prefix = _csv_fields((parameter.id, parameter.variable, member, answer.run.label,
                                  format_time(when), level))
            for k, first in enumerate(firsts):
                rows, cols, places = cached[k] if cached else _band(window, first, band_rows)
                if not places:
                    continue
                cells = values[t, z][rows, cols]
                text = csv_numbers(cells)
                yield "".join(f"{prefix},{place},{value},{units}\r\n"
                              for place, value in zip(places, text, strict=True)).encode()


def _band(window: Window, first: int,
          band_rows: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Row and column indices of the inside cells of rows ``first`` to ``first +
    band_rows`` (row by row), and their x, y, lon, lat fields."""
    rows, cols = np.nonzero(window.inside[first : first + band_rows])
    rows += first
    return rows, cols, _places(window, rows, cols)


def _places(window: Window, rows: np.ndarray, cols: np.ndarray) -> list[str]:
    """The x, y, lon, lat fields of these cells."""
    return [",".join(_text(v) for v in cell) for cell in zip(
        window.x[cols], window.y[rows], window.lon[rows, cols], window.lat[rows, cols],
        strict=True)]


def _csv_fields(fields: tuple[str, ...]) -> str:
    """Fields as one CSV line without its end, quoted where CSV needs it."""
    line = io.StringIO()
    csv.writer(line, lineterminator="").writerow(fields)
    return line.getvalue()


def describe(store: ForecastStore, parameter: EdrParameter,
             units: str | None = None) -> Description:
    """Label, observed property, units and vocabulary URI of a parameter; ``units`` those
    of the values answered (`fewsmap.edr.data.parameter_units`), else the stored ones."""
    return describe_variable(store.attributes(parameter.variable), parameter.variable,
                             parameter.member, parameter.statistic, units)


def covjson_parameter(store: ForecastStore, parameter: EdrParameter,
                      units: str | None = None) -> dict[str, Any]:
    """A CoverageJSON Parameter object (a member's says which member it is)."""
    extra = {} if parameter.member is None else {"fewsmap:member": parameter.member}
    return covjson.parameter(describe(store, parameter, units), **extra)


def _units(answer: EdrAnswer, parameter: EdrParameter) -> str | None:
    """The units of a parameter's answered values (None: the stored ones)."""
    return None if answer.units is None else answer.units[parameter.id]


def _member_groups(answer: EdrAnswer) -> list[dict[str, Any]]:
    groups = []
    for variable in dict.fromkeys(p.variable for p in answer.parameters
                                  if p.member is not None and p.statistic is None):
        members = [p.id for p in answer.parameters
                   if p.variable == variable and p.statistic is None]
        observed = describe(answer.store, EdrParameter(variable, variable)).observed
        groups.append(covjson.parameter_group(observed, members))
    return groups


def _point_series(answer: EdrAnswer) -> bool:
    return answer.kind == "position" and (answer.levels is None or answer.levels.size == 1)


def _range_axes(answer: EdrAnswer) -> tuple[list[str], list[int]]:
    nt, nz, ny, nx = next(iter(answer.values.values())).shape
    if _point_series(answer):
        return ["t"], [nt]
    if answer.levels is None:
        return ["t", "y", "x"], [nt, ny, nx]
    return ["t", "z", "y", "x"], [nt, nz, ny, nx]


def _domain(answer: EdrAnswer) -> dict[str, Any]:
    window = answer.window
    times = [format_time(t) for t in answer.times]
    references = [_horizontal(answer), TEMPORAL_REFERENCING]
    levels = None if answer.levels is None else [label_value(v) for v in answer.levels]
    if levels is not None:
        references.append(covjson.vertical_referencing(
            answer.store.attributes(str(answer.level_dim)), str(answer.level_dim)))
    if _point_series(answer):
        return point_series_domain(float(window.x[0]), float(window.y[0]), times,
                                   None if levels is None else levels[0], references)
    axes: dict[str, Any] = {"x": {"values": [float(v) for v in window.x]},
                            "y": {"values": [float(v) for v in window.y]},
                            "t": {"values": times}}
    if levels is not None:
        axes["z"] = {"values": levels}
    return {"type": "Domain", "domainType": "Grid", "axes": axes, "referencing": references}


def _horizontal(answer: EdrAnswer) -> dict[str, Any]:
    wkt = answer.window.projected_wkt
    if wkt is None:  # the order of "coordinates" is the CRS's axis order
        return covjson.geographic_referencing(answer.crs)
    return covjson.projected_referencing(native_epsg(wkt), wkt)


def _text(value: float) -> str:
    """A number as CSV text: whole labels as integers, others as the shortest float."""
    return str(value) if isinstance(value, int) else repr(float(value))
