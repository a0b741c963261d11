"""Well-Known Text geometries of EDR ``coords``: POINT, POLYGON and MULTIPOLYGON, 2-D only.

OGC 06-103r4 (Simple Features) §7, read by GEOS (``shapely.from_wkt``): keywords
case-insensitive, rings closed (first point = last). What GEOS reads but a query cannot use is
refused here: another geometry type, EMPTY geometries or parts, Z/M coordinates, coordinates
that are not finite. Coordinates are returned as written; the caller knows their CRS and axis
order. Whether a polygon is valid (rings that do not cross, holes inside their shell) is the
region's concern (`fewsmap.edr.window`).
"""

from __future__ import annotations

import re

import numpy as np
import shapely
from shapely.errors import GEOSException

from fewsmap.errors import InvalidParameterValue

MAX_VERTICES = 10_000
_KEYWORD = re.compile(r"\s*([A-Za-z]+)")
# What each type looks like, said in every refusal.
SYNTAX = {
    "POINT": "a POINT is one coordinate, two numbers separated by a space: POINT(-90 40)",
    "POLYGON": "a POLYGON is rings in parentheses, each closed (its last point equal to its "
               "first), then any holes: POLYGON((-95 35, -85 35, -85 45, -95 35))",
    "MULTIPOLYGON": "a MULTIPOLYGON is polygons in parentheses, each as in a POLYGON: "
                    "MULTIPOLYGON(((0 0, 1 0, 1 1, 0 0)), ((5 5, 6 5, 6 6, 5 5)))",
}


def parse_wkt(text: str, allowed: tuple[str, ...]) -> shapely.Geometry:
    """Parse a WKT geometry of one of the ``allowed`` types (``POINT``, ``POLYGON`` …).

    Returns
    -------
    shapely.Geometry
        A ``Point``, ``Polygon`` or ``MultiPolygon``, 2-D, not empty, every coordinate finite.

    Raises
    ------
    InvalidParameterValue
        Naming what is wrong (the type, GEOS's reading of the syntax, an EMPTY part, Z/M or
        non-finite coordinates, too many vertices) and what the type looks like.
    """
    match = _KEYWORD.match(text)
    kind = match.group(1).upper() if match else ""
    if kind not in allowed:
        raise _error(text, f"must be a WKT {' or '.join(allowed)}; {SYNTAX[allowed[0]]}")
    syntax = SYNTAX[kind]
    # GEOS reads C strings: a NUL would end the text early and hide what follows.
    odd = next((c for c in text if not c.isascii() or c == "\x00"), None)
    if odd is not None:
        raise _error(text, f"has a character WKT does not use: {odd!r}")
    if text.count("(") != text.count(")"):
        raise _error(text, f"has unbalanced parentheses; {syntax}")
    try:
        with np.errstate(all="ignore"):  # 1e999 reads as inf, refused below
            geometry = shapely.from_wkt(text)
    except GEOSException as exc:
        reason = str(exc).split(": ", 1)[-1]  # without GEOS's "ParseException: "
        reason = reason[:1].lower() + reason[1:]
        raise _error(text, f"is not a valid WKT {kind} ({reason}); {syntax}") from exc
    _check_usable(geometry, text, syntax)
    return geometry


def _check_usable(geometry: shapely.Geometry, text: str, syntax: str) -> None:
    """Refuse what GEOS reads but a query cannot use."""
    parts = shapely.get_parts(geometry)
    if geometry.is_empty or shapely.is_empty(parts).any() or (
            geometry.geom_type != "Point"
            and shapely.is_empty(shapely.get_rings(parts)).any()):
        raise _error(text, f"is or has an EMPTY geometry, which selects nothing; {syntax}")
    if shapely.has_z(geometry) or shapely.has_m(geometry):
        raise _error(text, f"has Z/M coordinates (3-D or measured); {syntax}")
    vertices = shapely.get_num_coordinates(geometry)
    if vertices > MAX_VERTICES:
        raise _error(text, f"has {vertices} vertices; at most {MAX_VERTICES} are allowed")
    if not np.isfinite(shapely.get_coordinates(geometry)).all():
        raise _error(text, "has a coordinate that is not finite")


def _error(text: str, reason: str) -> InvalidParameterValue:
    return InvalidParameterValue(f"coords={text[:80]!r} {reason}")
