"""Vector layers: pairs of variables that are the two components of one vector field."""

from __future__ import annotations

import re

from fewsmap.store.cube import ForecastStore

# CF standard names of (x-ish, y-ish) component pairs.
STANDARD_PAIRS = (
    ("eastward_wind", "northward_wind"),
    ("x_wind", "y_wind"),
    ("eastward_sea_water_velocity", "northward_sea_water_velocity"),
    ("sea_water_x_velocity", "sea_water_y_velocity"),
)
# Variable names of the same field: u/v, u10/v10, x_wind_10m/y_wind_10m …
NAME_PAIR = re.compile(r"^(?P<pre>.*?)(?P<c>u|x)(?P<post>(_wind)?\d*(_?\d+m)?)$")


def vector_pairs(store: ForecastStore) -> list[tuple[str, str]]:
    """Find (u, v) variable pairs on the same dimensions, by standard name or by name."""
    variables = store.variables
    pairs: list[tuple[str, str]] = []
    for u in variables:
        v = _partner(store, u, variables)
        if v is not None and store.dims(u) == store.dims(v):
            pairs.append((u, v))
    return pairs


def _partner(store: ForecastStore, u: str, variables: list[str]) -> str | None:
    standard_name = str(store.attributes(u).get("standard_name", ""))
    for x_name, y_name in STANDARD_PAIRS:
        if standard_name == x_name:
            matches = [v for v in variables
                       if store.attributes(v).get("standard_name") == y_name
                       and _same_shape_name(u, v)]
            if matches:
                return matches[0]
    match = NAME_PAIR.match(u)
    if match:
        other = "v" if match.group("c") == "u" else "y"
        candidate = f"{match.group('pre')}{other}{match.group('post')}"
        if candidate in variables and candidate != u:
            return candidate
    return None


def _same_shape_name(u: str, v: str) -> bool:
    """x_wind_10m pairs with y_wind_10m, not with y_wind_100m."""
    return re.sub(r"[uxvy]", "", u, count=1) == re.sub(r"[uxvy]", "", v, count=1)
