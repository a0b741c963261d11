"""Layers and layer groups: what a client names in ``LAYERS=`` (FEWS gridPlots and groups)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from fewsmap.catalog.styles import Style
from fewsmap.dimensions import TIME_DEFAULTS
from fewsmap.errors import ConfigError, FewsmapError
from fewsmap.products.ensemble import listed_statistics, parse_statistic
from fewsmap.settings import LayerTable

# Per-run layer ids are ``<layer>-<yyyy-MM-ddTHH:mm:ssZ>`` (FEWS); this finds the suffix.
RUN_SUFFIX = re.compile(r"-(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{3})?Z)$")
FEWS_KEYWORDS = ("parameterId", "locationId", "moduleInstanceId", "timeSeriesType",
                 "ensembleId", "ensembleMemberId")


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


def layer_from_config(table: LayerTable, styles: dict[str, Style],
                      auto_styles: tuple[Style, ...]) -> Layer:
    """Build a layer from a ``[[layers]]`` table (`fewsmap.settings.LayerTable`, whose keys
    and types the configuration file's schema checked); without ``styles`` in the table it
    offers ``auto_styles`` (`fewsmap.catalog.styles.offered_styles`).

    Raises
    ------
    ConfigError
        If the id cannot be addressed, a style is unknown, or a threshold or a dimension
        default does not say what it means.
    """
    layer_id = validate_layer_id(table.id)
    unknown = [name for name in table.styles if name not in styles]
    if unknown:
        raise ConfigError(f"layer '{layer_id}': unknown style '{unknown[0]}' "
                          f"(defined: {sorted(styles)})")
    return Layer(
        id=layer_id,
        title=table.title or layer_id,
        store=table.store,
        variable=table.variable or (table.vector[0] if table.vector else ""),
        group=table.group or table.store,
        styles=tuple(styles[name] for name in table.styles) or auto_styles,
        keywords=table.keywords,
        abstract=table.abstract,
        components=table.vector or (),
        defaults=_defaults(layer_id, table.defaults),
        time_tolerance=table.time_tolerance,
        thresholds=_thresholds(layer_id, table.thresholds),
    )


def _thresholds(layer_id: str, entries: list[float | str]) -> tuple[str, ...]:
    """Check ``thresholds``: numbers (exceedance, ``above:X``) or ``"above:X"``/``"below:X"``."""
    found = []
    for entry in entries:
        text = entry if isinstance(entry, str) else \
            f"above:{int(entry) if entry.is_integer() else entry}"
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


def _defaults(layer_id: str, table: dict[str, float | str]) -> dict[str, str | float]:
    """Check a ``[layers.defaults]`` table: time a policy, other dimensions a number;
    any may be "required"."""
    out: dict[str, str | float] = {}
    for name, value in table.items():
        if value == "required" or (name == "time" and value in TIME_DEFAULTS):
            out[name] = str(value)
        elif name != "time" and isinstance(value, float):
            out[name] = value
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
