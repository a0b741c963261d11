"""Layers and layer groups: what a client names in ``LAYERS=`` (FEWS gridPlots and groups)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from fewsmap.catalog.styles import Style
from fewsmap.dimensions import TIME_DEFAULTS
from fewsmap.errors import ConfigError, FewsmapError
from fewsmap.products.ensemble import listed_statistics, parse_statistic
from fewsmap.time.grammar import parse_duration

# Per-run layer ids are ``<layer>-<yyyy-MM-ddTHH:mm:ssZ>`` (FEWS); this finds the suffix.
RUN_SUFFIX = re.compile(r"-(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{3})?Z)$")
FEWS_KEYWORDS = ("parameterId", "locationId", "moduleInstanceId", "timeSeriesType",
                 "ensembleId", "ensembleMemberId")
TIME_SERIES_TYPES = ("EXTERNAL_HISTORICAL", "EXTERNAL_FORECASTING", "SIMULATED_HISTORICAL",
                     "SIMULATED_FORECASTING")


@dataclass(frozen=True)
class LayerGroup:
    """A node of the layer tree (a FEWS gridPlotGroup)."""

    id: str
    title: str
    parent: str | None = None


@dataclass(frozen=True)
class Layer:
    """One published variable of one store, with its styles and FEWS keywords."""

    id: str
    title: str
    store: str
    variable: str
    group: str
    styles: tuple[Style, ...]
    keywords: dict[str, str] = field(default_factory=dict)
    abstract: str = ""
    # (u, v) for a vector layer: maps show the speed, TIFFs both components (FEWS u/v).
    components: tuple[str, ...] = ()
    # Per-dimension defaults ("time", "elevation", "ensemble_member"): a value or "required".
    defaults: dict[str, str | float] = field(default_factory=dict)
    # Serve the nearest valid time within this tolerance instead of refusing (None: exact).
    time_tolerance: np.timedelta64 | None = None
    # Warning levels listed as exceedance probabilities: "above:20", "below:-5" (in the
    # layer's units); any other threshold is accepted too.
    thresholds: tuple[str, ...] = ()
    # A catchment layer <set>:<layer>: the catchment set whose polygons maps fill with their
    # means (fewsmap.render.catchments); empty for a grid layer.
    catchments: str = ""

    @property
    def variables(self) -> tuple[str, ...]:
        """The store variables this layer reads."""
        return self.components or (self.variable,)

    @cached_property
    def parts(self) -> frozenset[tuple[str, str]]:
        """The data this layer reads, as (store, variable) pairs: what access control guards
        (a layer derived from others, such as a vector pair, reads its parts' data)."""
        return frozenset((self.store, variable) for variable in self.variables)

    @property
    def is_vector(self) -> bool:
        """Whether the layer is a two-component vector field."""
        return len(self.components) == 2

    @property
    def default_style(self) -> Style:
        """The style used when a request names none."""
        return self.styles[0]

    @property
    def statistics(self) -> tuple[str, ...]:
        """The ensemble statistics listed with the members (none for a vector layer, whose
        statistics are not offered: the mean of u and v is not the mean speed)."""
        return () if self.is_vector else listed_statistics(self.thresholds)

    def style(self, name: str) -> Style | None:
        """Return the style called ``name``, or None."""
        return next((s for s in self.styles if s.name == name), None)


def layer_from_config(entry: dict[str, Any], styles: dict[str, Style],
                      auto_style: Style) -> Layer:
    """Build a layer from a ``[[layers]]`` table.

    Raises
    ------
    ConfigError
        If required keys are missing, a style is unknown, or a keyword is invalid.
    """
    known = {"id", "title", "store", "variable", "vector", "group", "styles", "keywords",
             "abstract", "defaults", "time_tolerance", "thresholds"}
    missing = {"id", "store"} - set(entry)
    if "variable" not in entry and "vector" not in entry:
        missing.add("variable")
    vector = tuple(str(v) for v in entry.get("vector", ()))
    if vector and len(vector) != 2:
        raise ConfigError(f"layer {entry.get('id')!r}: vector must name two variables (u, v)")
    unknown = set(entry) - known
    if missing or unknown:
        raise ConfigError(f"[[layers]] {entry.get('id', '?')}: missing {sorted(missing)}, "
                          f"unknown {sorted(unknown)}")
    layer_id = validate_layer_id(str(entry["id"]))
    chosen = []
    for name in entry.get("styles", []):
        if name not in styles:
            raise ConfigError(f"layer '{layer_id}': unknown style '{name}' "
                              f"(defined: {sorted(styles)})")
        chosen.append(styles[name])
    keywords = {str(k): str(v) for k, v in entry.get("keywords", {}).items()}
    series_type = keywords.get("timeSeriesType")
    if series_type is not None and series_type not in TIME_SERIES_TYPES:
        raise ConfigError(f"layer '{layer_id}': timeSeriesType must be one of {TIME_SERIES_TYPES}")
    return Layer(
        id=layer_id,
        title=str(entry.get("title", layer_id)),
        store=str(entry["store"]),
        variable=str(entry.get("variable") or vector[0]),
        group=str(entry.get("group", entry["store"])),
        styles=tuple(chosen) or (auto_style,),
        keywords=keywords,
        abstract=str(entry.get("abstract", "")),
        components=vector,
        defaults=_defaults(layer_id, entry.get("defaults", {})),
        time_tolerance=_tolerance(layer_id, entry.get("time_tolerance")),
        thresholds=_thresholds(layer_id, entry.get("thresholds", [])),
    )


def _tolerance(layer_id: str, text: object) -> np.timedelta64 | None:
    if text is None:
        return None
    try:
        return parse_duration(str(text), "time_tolerance", allow_zero=True)
    except FewsmapError as exc:
        raise ConfigError(f"layer {layer_id!r}: {exc}") from exc


def _thresholds(layer_id: str, entries: object) -> tuple[str, ...]:
    """Check ``thresholds``: numbers (exceedance, ``above:X``) or ``"above:X"``/``"below:X"``."""
    if not isinstance(entries, list):
        raise ConfigError(f"layer {layer_id!r}: thresholds must be a list")
    found = []
    for entry in entries:
        text = f"above:{entry}" if isinstance(entry, int | float) and not isinstance(
            entry, bool) else str(entry)
        try:
            statistic = parse_statistic(text)
        except FewsmapError as exc:
            statistic = None
            problem = str(exc)
        else:
            problem = ""
        if statistic is None or not statistic.is_probability:
            raise ConfigError(f"layer {layer_id!r}: threshold {entry!r} must be a number or "
                              "'above:<X>'/'below:<X>'" + (f": {problem}" if problem else ""))
        found.append(statistic.label)
    return tuple(dict.fromkeys(found))


def _defaults(layer_id: str, table: dict[str, Any]) -> dict[str, str | float]:
    """Check a ``[layers.defaults]`` table: time a policy, other dimensions a number;
    any may be "required"."""
    out: dict[str, str | float] = {}
    for name, value in table.items():
        if value == "required" or (name == "time" and value in TIME_DEFAULTS):
            out[name] = str(value)
        elif name != "time" and isinstance(value, int | float) and not isinstance(value, bool):
            out[name] = float(value)
        else:
            allowed = ('"now", "first", "last" or "required"' if name == "time"
                       else 'a number or "required"')
            raise ConfigError(f"layer {layer_id!r}: defaults.{name} must be {allowed}")
    return out


def validate_layer_id(layer_id: str) -> str:
    """Refuse ids a client could not address unambiguously.

    Raises
    ------
    ConfigError
        If the id is empty, not printable, a path, or ends like a per-run suffix.
    """
    if not _is_name(layer_id, 200):
        raise ConfigError(f"layer id {layer_id!r} must be 1–200 printable characters, without "
                          "/ or \\ (ids are path segments of tile and EDR URLs)")
    if RUN_SUFFIX.search(layer_id):
        raise ConfigError(f"layer id {layer_id!r} must not end like a run suffix -<T0>Z")
    return layer_id


def validate_store_name(name: str) -> str:
    """Refuse store names that are not one plain path segment (``/zarr/<store>/…``).

    Raises
    ------
    ConfigError
        If the name is empty, hidden, not printable or a path.
    """
    if not _is_name(name, 100) or name.startswith("."):
        raise ConfigError(f"store name {name!r} must be 1–100 printable characters, without "
                          "/ or \\ and not starting with a dot")
    return name


def _is_name(text: str, max_chars: int) -> bool:
    # isprintable() refuses control characters, separators other than the space,
    # surrogates and unassigned code points (U+FFFE …), which XML and URLs cannot carry.
    return (0 < len(text) <= max_chars and text.isprintable() and "/" not in text
            and "\\" not in text and text not in (".", ".."))
