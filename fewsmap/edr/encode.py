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
from fewsmap.edr.query import CRS84_URI, EPSG4326_URI
from fewsmap.edr.window import Window
from fewsmap.ogc.featureinfo import label_value
from fewsmap.store.cube import ForecastStore
from fewsmap.time.instants import format_time

CSV_COLUMNS = ("parameter", "variable", "member", "reference_time", "valid_time", "z", "x",
               "y", "lon", "lat", "value")
NERC_STANDARD_NAMES = "http://vocab.nerc.ac.uk/standard_name/"
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
    `json_values`); `covjson_chunks` puts placeholders there to write the values in chunks.
    """
    range_values = range_values or json_values
    names, shape = _range_axes(answer)
    coverage: dict[str, Any] = {
        "type": "Coverage",
        "id": f"{answer.layer.id}/{answer.run.label}/{answer.kind}",
        "domain": _domain(answer),
        "parameters": {p.id: covjson_parameter(answer.store, p) for p in answer.parameters},
        "ranges": {p.id: {"type": "NdArray", "dataType": "float", "axisNames": names,
                          "shape": shape, "values": range_values(answer.values[p.id])}
                   for p in answer.parameters},
        "fewsmap:reference_time": answer.run.label,
    }
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
        pieces = (json.dumps(json_values(flat[i : i + JSON_CHUNK_VALUES]))[1:-1]
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
                text = np.where(np.isfinite(cells), cells.astype(str), "").tolist()
                yield "".join(f"{prefix},{place},{value}\r\n"
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


def json_values(values: np.ndarray) -> list[float | None]:
    """float32 values as the shortest decimals that read back to them; null for NaN."""
    flat = np.asarray(values, dtype=np.float32).ravel()
    return [float(text) if ok else None
            for text, ok in zip(flat.astype(str).tolist(), np.isfinite(flat).tolist(),
                                strict=True)]


def describe(store: ForecastStore, parameter: EdrParameter) -> dict[str, str]:
    """Label, description, units and observed property (standard name) of a parameter."""
    attrs = store.attributes(parameter.variable)
    name = str(attrs.get("long_name") or parameter.variable)
    label = name if parameter.member is None else f"{name}, member {parameter.member}"
    units = str(attrs.get("units") or "")
    if parameter.statistic is not None:  # an ensemble statistic: its units (% for a probability)
        label, units = f"{name}, ensemble {parameter.member}", parameter.statistic.units(units)
    found = {"label": label, "observed": name, "units": units}
    standard_name = str(attrs.get("standard_name") or "")
    if standard_name and standard_name != "unknown":  # GRIB writes "unknown" when it has none
        found["observed_id"] = NERC_STANDARD_NAMES + standard_name + "/"
    return found


def covjson_parameter(store: ForecastStore, parameter: EdrParameter) -> dict[str, Any]:
    """A CoverageJSON Parameter object."""
    about = describe(store, parameter)
    observed: dict[str, Any] = {"label": {"en": about["observed"]}}
    if "observed_id" in about:
        observed["id"] = about["observed_id"]
    found: dict[str, Any] = {"type": "Parameter", "label": {"en": about["label"]},
                             "observedProperty": observed}
    if about["units"]:
        found["unit"] = {"symbol": about["units"]}
    if parameter.member is not None:
        found["fewsmap:member"] = parameter.member
    return found


def _member_groups(answer: EdrAnswer) -> list[dict[str, Any]]:
    groups = []
    for variable in dict.fromkeys(p.variable for p in answer.parameters
                                  if p.member is not None and p.statistic is None):
        members = [p.id for p in answer.parameters
                   if p.variable == variable and p.statistic is None]
        name = describe(answer.store, EdrParameter(variable, variable))["observed"]
        groups.append({"type": "ParameterGroup", "label": {"en": f"{name}, ensemble members"},
                       "observedProperty": {"label": {"en": name}}, "members": members})
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
    axes: dict[str, Any] = {"x": {"values": [float(v) for v in window.x]},
                            "y": {"values": [float(v) for v in window.y]},
                            "t": {"values": [format_time(t) for t in answer.times]}}
    referencing = [_horizontal(answer),
                   {"coordinates": ["t"], "system": {"type": "TemporalRS",
                                                     "calendar": "Gregorian"}}]
    if answer.levels is not None:
        axes["z"] = {"values": [label_value(v) for v in answer.levels]}
        referencing.append({"coordinates": ["z"], "system": _vertical(answer)})
    return {"type": "Domain", "domainType": "PointSeries" if _point_series(answer) else "Grid",
            "axes": axes, "referencing": referencing}


def _horizontal(answer: EdrAnswer) -> dict[str, Any]:
    wkt = answer.window.projected_wkt
    if wkt is None:
        if answer.crs == EPSG4326_URI:  # the order of "coordinates" is the CRS's axis order
            return {"coordinates": ["y", "x"],
                    "system": {"type": "GeographicCRS", "id": EPSG4326_URI}}
        return {"coordinates": ["x", "y"], "system": {"type": "GeographicCRS", "id": CRS84_URI}}
    code = native_epsg(wkt)
    system: dict[str, Any] = {"type": "ProjectedCRS"}
    if code is not None:
        system["id"] = f"http://www.opengis.net/def/crs/EPSG/0/{code}"
    else:
        system["wkt"] = wkt
    return {"coordinates": ["x", "y"], "system": system}


def _vertical(answer: EdrAnswer) -> dict[str, Any]:
    level = str(answer.level_dim)
    attrs = answer.store.attributes(level)
    direction = "down" if str(attrs.get("positive", "up")).lower() == "down" else "up"
    axis: dict[str, Any] = {"name": {"en": str(attrs.get("long_name") or level)},
                            "direction": direction}
    if attrs.get("units"):
        axis["unit"] = {"symbol": str(attrs["units"])}
    return {"type": "VerticalCRS", "cs": {"csAxes": [axis]}}


def _text(value: float) -> str:
    """A number as CSV text: whole labels as integers, others as the shortest float."""
    return str(value) if isinstance(value, int) else repr(float(value))
