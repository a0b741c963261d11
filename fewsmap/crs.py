"""CRS names in requests: aliases, the layer's offer, and WMS 1.3.0 axis order."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
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


# A candidate EPSG code names the grid's CRS when both put the same points within a
# millimetre. pyproj's confidence alone misleads both ways: LAEA Europe as an ESRI WKT
# (EFAS/LISFLOOD files) or a CF grid mapping, datum unnamed, scores 50 % for EPSG:3035, and
# the same projection 1 m off still scores 25 % (issue #17).
SAME_POSITION_M = 1e-3
TRUSTED_CONFIDENCE = 90
LEAST_CONFIDENCE = 20


@lru_cache(maxsize=64)
def native_epsg(wkt: str) -> int | None:
    """The EPSG code of a grid's CRS, when it has one.

    A code pyproj matches with high confidence is taken as is; a weaker projected match
    only if its projection, ellipsoid and units place points as the grid's CRS does (datum
    names are not compared: ESRI and CF descriptions name them differently or not at all).
    """
    crs = pyproj.CRS.from_wkt(wkt)
    code = crs.to_epsg(min_confidence=TRUSTED_CONFIDENCE)
    if code is not None:
        return int(code)
    if not crs.is_projected:
        return None
    for match in crs.list_authority(auth_name="EPSG", min_confidence=LEAST_CONFIDENCE):
        if _same_projection(crs, pyproj.CRS.from_epsg(match.code)):
            return int(match.code)
    return None


def _same_projection(crs: pyproj.CRS, candidate: pyproj.CRS) -> bool:
    """Tell whether two projected CRSs map lon/lat to the same x/y, to a millimetre, over
    the candidate's area of use (each from its own geographic CRS: no datum shift)."""
    area = candidate.area_of_use
    if not candidate.is_projected or area is None:
        return False
    lon, lat = np.meshgrid(np.linspace(area.west, area.east, 5),
                           np.linspace(area.south, area.north, 5))
    positions = [pyproj.Transformer.from_crs(c.geodetic_crs, c, always_xy=True).transform(
        lon, lat) for c in (crs, candidate)]
    (x, y), (x2, y2) = positions
    return bool(np.isfinite(x).all() and np.allclose(x, x2, rtol=0, atol=SAME_POSITION_M)
                and np.allclose(y, y2, rtol=0, atol=SAME_POSITION_M))


def check_offered(name: str, offered: tuple[str, ...]) -> str:
    """Return the canonical name of ``name`` if the layer offers it.

    Raises
    ------
    InvalidCRS
        Otherwise (WMS 1.1.1 reports call it InvalidSRS: fewsmap/errors.py).
    """
    crs = canonical_crs(name)
    if crs not in {canonical_crs(o) for o in offered}:
        raise InvalidCRS(f"CRS {name[:60]!r} is not offered for this layer; "
                         f"offered: {', '.join(offered)}")
    return crs


@lru_cache(maxsize=64)
def north_first(crs: str) -> bool:
    """Tell whether WMS 1.3.0 bboxes in ``crs`` are given northing first (EPSG:4326 …)."""
    if crs == "OGC:CRS84":
        return False
    axes = pyproj.CRS.from_user_input(crs).axis_info
    return bool(axes) and axes[0].direction.lower() in ("north", "south")
