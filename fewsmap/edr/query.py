"""EDR query parameters → a typed `EdrQuery` (OGC API - EDR 1.1 §8.2).

The only place that reads the raw query of a data query: ``coords`` (WKT), ``bbox``,
``datetime``, ``z``, ``parameter-name``, ``crs`` and ``f``, and the vendor parameters the
rest of the service takes: ``baseline`` (a run change), ``accumulate`` (sums over a window)
and ``useDisplayUnits`` (values in the units the maps show, default true). Positions and
regions leave here in CRS84 (longitude, latitude), whatever ``crs`` the client used.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely

from fewsmap.edr.window import Region
from fewsmap.errors import InvalidFormat, InvalidParameterValue
from fewsmap.formats.covjson import CRS84_URI, EPSG4326_URI
from fewsmap.formats.media import COVJSON, CSV
from fewsmap.formats.wkt import parse_wkt
from fewsmap.params import Params, finite_number
from fewsmap.products.accumulate import parse_window
from fewsmap.products.change import Baseline, parse_baseline
from fewsmap.time.grammar import TimeInterval, TimeSelection, parse_instant_span

QUERY_TYPES = ("position", "area", "cube")
OUTPUT_FORMATS = ("CoverageJSON", "CSV")
FORMATS = {"coveragejson": COVJSON, "covjson": COVJSON, COVJSON: COVJSON,
           "application/vnd.cov+json": COVJSON, "csv": CSV, CSV: CSV}
# Offered CRSs by the names clients use; EPSG:4326 coordinates are latitude first.
CRS_NAMES = {"crs84": CRS84_URI, "ogc:crs84": CRS84_URI, "crs:84": CRS84_URI,
             CRS84_URI.lower(): CRS84_URI, "epsg:4326": EPSG4326_URI,
             EPSG4326_URI.lower(): EPSG4326_URI}
MAX_LIST_ITEMS = 1_000
OPEN = ("", "..")
EARLIEST = np.datetime64("0001-01-01T00:00:00", "s")
LATEST = np.datetime64("9999-12-31T23:59:59", "s")


@dataclass(frozen=True)
class LevelSelection:
    """A ``z`` value: listed levels, or every level in [low, high]."""

    values: tuple[float, ...] = ()
    low: float | None = None
    high: float | None = None

    def select(self, labels: np.ndarray) -> np.ndarray:
        """Indices into ``labels`` of the selected levels (a listed level must exist).

        Raises
        ------
        InvalidParameterValue
            If a listed level is not one of ``labels``.
        """
        levels = labels.astype("float64")
        if self.low is not None and self.high is not None:
            return np.flatnonzero((levels >= self.low) & (levels <= self.high))
        found = []
        for value in self.values:
            match = np.flatnonzero(np.isclose(levels, value, rtol=0, atol=1e-6))
            if not match.size:
                raise InvalidParameterValue(
                    f"z={value:g} is not a level of this collection; levels: "
                    f"{', '.join(f'{v:g}' for v in sorted(levels))}")
            found.append(int(match[0]))
        return np.array(sorted(set(found)), dtype=np.int64)


@dataclass(frozen=True, eq=False)
class EdrQuery:
    """A checked data query. ``region`` is None for position; ``point`` is (lon, lat).

    ``times`` None: every valid time of the run; ``levels`` None: every level;
    ``parameters`` empty: every parameter of the collection.
    """

    kind: str
    point: tuple[float, float] | None
    region: Region | None
    times: TimeSelection | None
    levels: LevelSelection | None
    parameters: tuple[str, ...]
    crs: str
    format: str
    baseline: Baseline | None = None  # the change from this run (`fewsmap.products.change`)
    accumulate: np.timedelta64 | None = None  # sums over this window ending at each time
    display_units: bool = True  # FEWS useDisplayUnits (`fewsmap.resolve.units`)


def parse_query(kind: str, params: Params) -> EdrQuery:
    """Check the parameters of a position, area or cube query.

    Raises
    ------
    FewsmapError
        MissingParameterValue, InvalidParameterValue, InvalidDimensionValue (datetime),
        InvalidFormat.
    """
    crs = parse_crs(params.get("crs"))
    point, region = None, None
    if kind == "position":
        geometry = parse_wkt(params.require("coords"), ("POINT",))
        point = _lonlat(geometry.x, geometry.y, crs, "coords")
    elif kind == "area":
        area = parse_wkt(params.require("coords"), ("POLYGON", "MULTIPOLYGON"))
        region = Region.polygon(_area_lonlat(area, crs))
    else:
        region = parse_bbox(params.require("bbox"), crs)
    return EdrQuery(
        kind=kind,
        point=point,
        region=region,
        times=parse_datetime(params.get("datetime") or ""),
        levels=parse_levels(params.get("z") or ""),
        parameters=_names(params.get("parameter-name") or ""),
        crs=crs,
        format=parse_format(params.get("f")),
        baseline=parse_baseline(params.get("baseline")),
        accumulate=parse_window(params.get("accumulate")),
        display_units=params.flag("useDisplayUnits", default=True),
    )


def parse_format(text: str | None) -> str:
    """The media type of ``f`` (default CoverageJSON).

    Raises
    ------
    InvalidFormat
        If the format is not offered.
    """
    name = (text or "CoverageJSON").strip()
    media_type = FORMATS.get(name.lower())
    if media_type is None:
        raise InvalidFormat(f"f={name[:60]!r} is not offered; offered: "
                            f"{', '.join(OUTPUT_FORMATS)}")
    return media_type


def parse_crs(text: str | None) -> str:
    """The URI of an offered CRS (default CRS84).

    Raises
    ------
    InvalidParameterValue
        If the CRS is not offered.
    """
    name = (text or CRS84_URI).strip()
    uri = CRS_NAMES.get(name.lower())
    if uri is None:
        raise InvalidParameterValue(f"crs={name[:80]!r} is not offered; offered: CRS84 "
                                    f"({CRS84_URI}), EPSG:4326 ({EPSG4326_URI})")
    return uri


def parse_bbox(text: str, crs: str) -> Region:
    """A ``bbox`` of four numbers in ``crs`` order (EPSG:4326: south, west, north, east).

    Raises
    ------
    InvalidParameterValue
        For another count, a non-number, or latitudes out of order or range.
    """
    parts = [p.strip() for p in text.split(",")]
    if len(parts) != 4:
        hint = " (give levels with z)" if len(parts) == 6 else ""
        raise InvalidParameterValue(f"bbox={text[:80]!r} must be four numbers{hint}: "
                                    "minx,miny,maxx,maxy in the crs's axis order")
    numbers = [_number(p, "bbox") for p in parts]
    if crs == EPSG4326_URI:
        south, west, north, east = numbers
    else:
        west, south, east, north = numbers
    for lat in (south, north):
        _check_latitude(lat, "bbox")
    if north < south:
        raise InvalidParameterValue(f"bbox={text[:80]!r} has its north edge below its south "
                                    "edge")
    if abs(east - west) > 360:
        raise InvalidParameterValue(f"bbox={text[:80]!r} is wider than 360°")
    return Region.box(west, south, east, north)


def parse_datetime(text: str) -> TimeSelection | None:
    """``datetime``: an instant, ``start/end`` with ``..`` for an open end, or a list.

    A reduced-precision instant means its whole unit (``2022-08-10`` is that day).

    Raises
    ------
    InvalidParameterValue, InvalidDimensionValue
        Naming the bad item.
    """
    if not text.strip():
        return None
    parts = [p.strip() for p in text.split(",")]
    if len(parts) > MAX_LIST_ITEMS:
        raise InvalidParameterValue(f"datetime has {len(parts)} items; at most "
                                    f"{MAX_LIST_ITEMS} are allowed")
    return TimeSelection(tuple(_time_item(part) for part in parts))


def _time_item(text: str) -> TimeInterval:
    if "/" not in text:
        return parse_instant_span(text, "datetime")
    ends = text.split("/")
    if len(ends) != 2 or (ends[0] in OPEN and ends[1] in OPEN):
        raise InvalidParameterValue(f"datetime={text[:80]!r} must be an instant or start/end "
                                    "(one end may be '..')")
    start = EARLIEST if ends[0] in OPEN else parse_instant_span(ends[0], "datetime").start
    end = LATEST if ends[1] in OPEN else parse_instant_span(ends[1], "datetime").end
    if end < start:
        raise InvalidParameterValue(f"datetime={text[:80]!r} ends before it starts")
    return TimeInterval(start, end)


def parse_levels(text: str) -> LevelSelection | None:
    """``z``: a level, a list, ``low/high`` (inclusive), or ``Rn/first/step`` (EDR 1.1).

    Raises
    ------
    InvalidParameterValue
        Naming the bad value.
    """
    text = text.strip()
    if not text:
        return None
    if text[:1] in ("R", "r"):
        parts = text[1:].split("/")
        if len(parts) != 3 or not parts[0].strip().isdigit():
            raise InvalidParameterValue(f"z={text[:80]!r}: a repeating interval is "
                                        "Rn/first/step, e.g. R3/300/200")
        count = int(parts[0])
        if not 0 < count <= MAX_LIST_ITEMS:
            raise InvalidParameterValue(f"z={text[:80]!r}: n must be 1..{MAX_LIST_ITEMS}")
        first, step = _number(parts[1], "z"), _number(parts[2], "z")
        return LevelSelection(tuple(first + i * step for i in range(count)))
    if "/" in text:
        parts = text.split("/")
        if len(parts) != 2:
            raise InvalidParameterValue(f"z={text[:80]!r}: a range is low/high")
        low, high = (_number(p, "z") for p in parts)
        return LevelSelection(low=min(low, high), high=max(low, high))
    parts = text.split(",")
    if len(parts) > MAX_LIST_ITEMS:
        raise InvalidParameterValue(f"z has {len(parts)} items; at most {MAX_LIST_ITEMS}")
    return LevelSelection(tuple(_number(p, "z") for p in parts))


def _names(text: str) -> tuple[str, ...]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    if len(names) > MAX_LIST_ITEMS:
        raise InvalidParameterValue(f"parameter-name has {len(names)} items; at most "
                                    f"{MAX_LIST_ITEMS}")
    return tuple(dict.fromkeys(names))


def _lonlat(first: float, second: float, crs: str, name: str) -> tuple[float, float]:
    lon, lat = (second, first) if crs == EPSG4326_URI else (first, second)
    _check_latitude(lat, name)
    return lon, lat


def _area_lonlat(area: shapely.Geometry, crs: str) -> shapely.Geometry:
    lonlat = shapely.transform(area, _swap_axes) if crs == EPSG4326_URI else area
    _west, south, _east, north = lonlat.bounds
    for lat in (south, north):
        _check_latitude(float(lat), "coords")
    return lonlat


def _swap_axes(xy: np.ndarray) -> np.ndarray:
    return xy[:, ::-1]


def _check_latitude(lat: float, name: str) -> None:
    if not -90.0 <= lat <= 90.0:
        raise InvalidParameterValue(f"{name}: latitude {lat:g} is outside -90..90 (CRS84 is "
                                    "longitude first; EPSG:4326 latitude first)")


def _number(text: str, name: str) -> float:
    return finite_number(text.strip(), name, InvalidParameterValue)
