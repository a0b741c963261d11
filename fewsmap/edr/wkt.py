"""Well-Known Text geometries of EDR ``coords``: POINT, POLYGON and MULTIPOLYGON, 2-D only.

OGC 06-103r4 (Simple Features) §7: ``POINT(x y)``, ``POLYGON((x y, …), (hole …))``,
``MULTIPOLYGON(((…)), ((…)))``; keywords case-insensitive, rings closed (first point = last).
Coordinates are returned as written; the caller knows their CRS and axis order.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Union

import numpy as np

from fewsmap.errors import InvalidParameterValue

MAX_VERTICES = 10_000
_KEYWORD = re.compile(r"\s*([A-Za-z]+)\s*(.*?)\s*", re.DOTALL)
_TOKEN = re.compile(r"[(),]|[^\s(),]+")
# A nested list of coordinates (tuples of number texts) as parsed from parentheses.
Nested = list[Union[tuple[str, ...], "Nested"]]


@dataclass(frozen=True)
class Point:
    """A point as written: first and second coordinate."""

    x: float
    y: float


@dataclass(frozen=True, eq=False)
class Polygons:
    """The polygons of a POLYGON (one) or MULTIPOLYGON, each its rings: shell, then holes.

    Every ring is an (n, 2) array, closed. Validity (rings that do not cross, holes inside
    their shell) and overlapping parts are the region's concern (`fewsmap.edr.window`).
    """

    kind: str
    parts: tuple[tuple[np.ndarray, ...], ...]

    @property
    def rings(self) -> tuple[np.ndarray, ...]:
        """Every ring of every polygon, in order."""
        return tuple(ring for part in self.parts for ring in part)

    def bounds(self) -> tuple[float, float, float, float]:
        """(min x, min y, max x, max y) over every vertex."""
        xy = np.concatenate(self.rings)
        return (float(xy[:, 0].min()), float(xy[:, 1].min()), float(xy[:, 0].max()),
                float(xy[:, 1].max()))


def parse_wkt(text: str, allowed: tuple[str, ...]) -> Point | Polygons:
    """Parse a WKT geometry of one of the ``allowed`` types (``POINT``, ``POLYGON`` …).

    Raises
    ------
    InvalidParameterValue
        Naming what is wrong: the type, the syntax, a coordinate, an open ring.
    """
    match = _KEYWORD.fullmatch(text)
    kind = match.group(1).upper() if match else ""
    if kind not in allowed:
        raise _error(text, f"must be a WKT {' or '.join(allowed)}, e.g. {_EXAMPLES[allowed[0]]}")
    body = _nest(match.group(2) if match else "", text)
    if kind == "POINT":
        if len(body) != 1 or not isinstance(body[0], tuple):
            raise _error(text, "a POINT has exactly one coordinate: POINT(x y)")
        x, y = _coordinate(body[0], text)
        return Point(x, y)
    polygons = [body] if kind == "POLYGON" else [_list(p, text) for p in body]
    parts = tuple(tuple(_ring(ring, text) for ring in polygon) for polygon in polygons)
    if sum(len(ring) for part in parts for ring in part) > MAX_VERTICES:
        raise _error(text, f"has more than {MAX_VERTICES} vertices")
    return Polygons(kind, parts)


_EXAMPLES = {"POINT": "POINT(-90 40)", "POLYGON": "POLYGON((-95 35, -85 35, -85 45, -95 35))",
             "MULTIPOLYGON": "MULTIPOLYGON(((0 0, 1 0, 1 1, 0 0)))"}


def _nest(body: str, text: str) -> Nested:
    """Parse ``( … )`` into nested lists whose leaves are coordinates (tuples of numbers)."""
    tokens = _TOKEN.findall(body)
    if not tokens or tokens[0] != "(":
        raise _error(text, "has no parenthesised coordinates (EMPTY geometries and Z/M "
                     "coordinates are not supported)")
    try:
        nested, end = _group(tokens, 0)
    except IndexError as exc:
        raise _error(text, "has unbalanced parentheses") from exc
    if end != len(tokens):
        raise _error(text, f"has text after the geometry: {' '.join(tokens[end:])[:40]!r}")
    return nested


def _group(tokens: list[str], i: int) -> tuple[Nested, int]:
    """Parse the group opening at ``tokens[i]``; return it and the index after its ``)``."""
    items: Nested = []
    i += 1
    while True:
        if tokens[i] == "(":
            group, i = _group(tokens, i)
            items.append(group)
        else:
            start = i
            while tokens[i] not in ("(", ")", ","):
                i += 1
            items.append(tuple(tokens[start:i]))
        if tokens[i] == ")":
            return items, i + 1
        if tokens[i] != ",":
            raise IndexError(i)
        i += 1


def _list(item: tuple[str, ...] | Nested, text: str) -> Nested:
    if isinstance(item, tuple):
        raise _error(text, "lacks a level of parentheses: POLYGON((x y, …)), "
                     "MULTIPOLYGON(((x y, …)))")
    return item


def _ring(item: tuple[str, ...] | Nested, text: str) -> np.ndarray:
    points = [_coordinate(c, text) if isinstance(c, tuple) else None for c in _list(item, text)]
    if any(p is None for p in points):
        raise _error(text, "has too many levels of parentheses for its type")
    if len(points) > MAX_VERTICES:
        raise _error(text, f"has more than {MAX_VERTICES} vertices")
    if len(points) < 4 or points[0] != points[-1]:
        raise _error(text, "has a ring that is not closed: a ring needs at least four points, "
                     "the last equal to the first")
    return np.array(points, dtype="float64")


def _coordinate(parts: tuple[str, ...], text: str) -> tuple[float, float]:
    if len(parts) != 2:
        raise _error(text, f"has a coordinate {' '.join(parts)[:40]!r}; a coordinate is two "
                     "numbers separated by a space")
    try:
        x, y = float(parts[0]), float(parts[1])
    except ValueError as exc:
        raise _error(text, f"has a coordinate {' '.join(parts)[:40]!r} that is not two "
                     "numbers") from exc
    if not (math.isfinite(x) and math.isfinite(y)):
        raise _error(text, f"has a coordinate {' '.join(parts)[:40]!r} that is not finite")
    return x, y


def _error(text: str, reason: str) -> InvalidParameterValue:
    return InvalidParameterValue(f"coords={text[:80]!r} {reason}")
