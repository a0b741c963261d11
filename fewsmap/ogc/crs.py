"""CRS names in requests: aliases, the layer's offer, and WMS 1.3.0 axis order."""

from __future__ import annotations

from functools import lru_cache

import pyproj

from fewsmap.errors import InvalidCRS

# Names clients use for Web Mercator and for lon/lat WGS 84.
ALIASES = {
    "EPSG:900913": "EPSG:3857", "EPSG:3785": "EPSG:3857", "EPSG:102100": "EPSG:3857",
    "EPSG:102113": "EPSG:3857", "CRS:84": "OGC:CRS84", "OGC:CRS84": "OGC:CRS84",
}
BASE_CRS = ("EPSG:3857", "EPSG:4326", "CRS:84")


def canonical_crs(name: str) -> str:
    """Upper-case a CRS name and resolve aliases (``CRS:84`` → ``OGC:CRS84``)."""
    upper = name.strip().upper()
    return ALIASES.get(upper, upper)


def offered_crs(native_wkt: str) -> tuple[str, ...]:
    """CRSs a layer is offered in: Web Mercator, WGS 84 and the grid's own EPSG code."""
    code = native_epsg(native_wkt)
    return BASE_CRS + ((f"EPSG:{code}",) if code and f"EPSG:{code}" not in BASE_CRS else ())


@lru_cache(maxsize=64)
def native_epsg(wkt: str) -> int | None:
    """The EPSG code of a grid's CRS, when it has one."""
    code = pyproj.CRS.from_wkt(wkt).to_epsg(min_confidence=90)
    return int(code) if code is not None else None


def check_offered(name: str, offered: tuple[str, ...], code: str) -> str:
    """Return the canonical name of ``name`` if the layer offers it.

    Raises
    ------
    InvalidCRS
        With ``code`` (``InvalidCRS``, or ``InvalidSRS`` for WMS 1.1.1) otherwise.
    """
    crs = canonical_crs(name)
    if crs not in {canonical_crs(o) for o in offered}:
        error = InvalidCRS(f"CRS {name[:60]!r} is not offered for this layer; "
                           f"offered: {', '.join(offered)}")
        error.ogc_code = code
        raise error
    return crs


@lru_cache(maxsize=64)
def north_first(crs: str) -> bool:
    """Tell whether WMS 1.3.0 bboxes in ``crs`` are given northing first (EPSG:4326 …)."""
    if crs == "OGC:CRS84":
        return False
    axes = pyproj.CRS.from_user_input(crs).axis_info
    return bool(axes) and axes[0].direction.lower() in ("north", "south")
