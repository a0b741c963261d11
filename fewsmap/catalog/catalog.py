"""The catalog: stores, layers and groups, refreshed when runs are published.

Zero-config: every variable of every store under the stores folder becomes a layer with a
style chosen from its CF attributes. A TOML file may define styles, groups and layers
(and map store names to folders elsewhere). A running service calls ``refresh()``, which
costs one ``stat`` per store and re-opens only stores whose published state changed.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path

from obstore.exceptions import BaseError as ObjectStoreError

from fewsmap.catalog.layers import (
    RUN_SUFFIX,
    Layer,
    LayerGroup,
    layer_from_config,
    validate_layer_id,
    validate_store_name,
)
from fewsmap.catalog.quantities import QUANTITIES, normalise_units, scheme_for
from fewsmap.catalog.sld import style_from_sld_file
from fewsmap.catalog.styles import (
    Style,
    alternative_styles,
    bind_units,
    library_style,
    offered_styles,
    style_from_config,
)
from fewsmap.catalog.vectors import vector_pairs
from fewsmap.dimensions import single_level
from fewsmap.errors import ConfigError, FewsmapError, LayerNotDefined
from fewsmap.products.catchments import (
    CatchmentSet,
    catchments_from_config,
    catchments_in_folder,
)
from fewsmap.products.change import CHANGE_SUFFIX
from fewsmap.settings import ConfigFile, Settings
from fewsmap.store.backend import list_stores
from fewsmap.store.cube import (
    ForecastStore,
    RunInfo,
    StoreVersion,
)
from fewsmap.time.instants import parse_stamp

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CatalogState:
    """One consistent snapshot: requests read it while a refresh builds the next."""

    stores: dict[str, ForecastStore]
    layers: dict[str, Layer]
    groups: dict[str, LayerGroup]
    generation: int = 0  # counts the snapshots: a new one whenever a run or store lands


class Catalog:
    """Layers, groups and stores of a service; notices new runs without a restart."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        config = self._config = settings.config
        # The file's title, unless a later source (FEWSMAP_TITLE, `load_settings`) set one.
        self.title = settings.title if "title" in settings.model_fields_set else \
            config.service.title
        self._styles = configured_styles(config)
        self._store_paths = config.store_paths()
        # Catchment sets: configured, or found beside the stores (zero-config, the demo).
        self.catchments: dict[str, CatchmentSet] = {
            **catchments_in_folder(settings.stores_dir), **catchments_from_config(config)}
        self._auto_layers = not config.layers if config.catalog.auto_layers is None else \
            config.catalog.auto_layers
        self._lock = threading.Lock()
        self._checked_at = 0.0
        # When (time.monotonic) the stores were last read and the snapshot last built.
        self.read_at = self.built_at = 0.0
        self._unreadable: dict[Path | str, StoreVersion | None] = {}
        self._listed: dict[str, Path | str] = {}
        self._polled: dict[str, float] = {}  # object-store locations: when last checked
        self._state = CatalogState({}, {}, {})
        self.refresh(force=True)

    @property
    def stores(self) -> dict[str, ForecastStore]:
        """Open stores by name."""
        return self._state.stores

    @property
    def layers(self) -> dict[str, Layer]:
        """Layers by id, in display order."""
        return self._state.layers

    @property
    def groups(self) -> dict[str, LayerGroup]:
        """Layer groups by id."""
        return self._state.groups

    @property
    def cache_key(self) -> tuple[int, tuple[str, ...]]:
        """What a document built from this catalog depends on: the snapshot and the layers
        visible in it (a token's view shows fewer)."""
        return self._state.generation, tuple(self._state.layers)

    def layer(self, layer_id: str) -> Layer:
        """Return the layer ``layer_id``.

        Raises
        ------
        LayerNotDefined
            If there is no such layer.
        """
        layer = self.layers.get(layer_id)
        if layer is None:
            raise LayerNotDefined(f"layer {layer_id!r} is not defined")
        return layer

    def resolve(self, name: str) -> tuple[Layer, RunInfo | None]:
        """Resolve a layer id, or a per-run id ``<layer>-<yyyy-MM-ddTHH:mm:ssZ>``, also as a
        derived ``<layer>:change`` (told apart by `fewsmap.resolve.layers.resolve_layer`).

        Raises
        ------
        LayerNotDefined
            If neither the layer nor that run of it exists.
        """
        if name in self.layers:
            return self.layers[name], None
        if name.endswith(CHANGE_SUFFIX) and name not in self.groups:
            # the derived layer of a run change (fewsmap.products.change): the layer's runs
            return self.resolve(name.removesuffix(CHANGE_SUFFIX))
        match = RUN_SUFFIX.search(name)
        if match and name[: match.start()] in self.layers:
            layer = self.layers[name[: match.start()]]
            t0 = parse_stamp(match.group(1).replace(".000Z", "Z"))
            for run in self.runs(layer):
                if run.reference_time == t0:
                    return layer, run
            raise LayerNotDefined(f"layer {layer.id!r} has no run {match.group(1)}")
        raise LayerNotDefined(f"layer {name!r} is not defined")

    def heading(self, group_id: str) -> LayerGroup:
        """The group ``group_id`` as a heading of the layer tree (a client whose token does
        not grant all its layers sees it so, without requesting it: `fewsmap.app.security`)."""
        return self.groups[group_id]

    def store(self, layer: Layer) -> ForecastStore:
        """The store a layer reads."""
        return self.stores[layer.store]

    def runs(self, layer: Layer) -> tuple[RunInfo, ...]:
        """Published runs holding data of the layer, oldest first, each with only the valid
        times where its variables hold data (a lagged ensemble's run fills a few steps)."""
        return self.store(layer).runs_holding(layer.variables)

    @property
    def refresh_due(self) -> bool:
        """Whether ``reload_interval_s`` has passed since the last check (cheap, no I/O)."""
        return time.monotonic() - self._checked_at >= self.settings.reload_interval_s

    def refresh(self, force: bool = False) -> bool:
        """Pick up newly published runs and new stores; return whether anything changed.

        Checks at most once per ``reload_interval_s`` unless ``force`` is set.
        """
        now = time.monotonic()
        if not force and not self.refresh_due:
            return False
        with self._lock:
            self._checked_at = now
            stores = self._open_stores(self._state.stores)
            self.read_at = now
            if not force and stores == self._state.stores:
                return False
            layers, groups = self._build_layers(stores)
            self._state = CatalogState(stores, layers, groups, self._state.generation + 1)
            self.built_at = now
            return True

    def _store_locations(self) -> dict[str, Path | str]:
        root = self.settings.stores_dir
        if self._due(root):
            try:
                self._listed = list_stores(root)
            except OSError as exc:  # object storage unreachable: keep the last listing
                log.warning("stores folder %s cannot be listed: %s", root, exc)
        return {**self._listed, **self._store_paths}

    def _due(self, location: Path | str) -> bool:
        """Whether ``location`` is due a check: local ones at every refresh, object-store
        ones every ``object_reload_interval_s`` (each check is a request to the storage)."""
        if isinstance(location, Path):
            return True
        now = time.monotonic()
        if now - self._polled.get(location, -math.inf) < self.settings.object_reload_interval_s:
            return False
        self._polled[location] = now
        return True

    def _open_stores(self, current: dict[str, ForecastStore]) -> dict[str, ForecastStore]:
        """Re-open stores whose published state changed; keep the others as they are.

        A store that cannot be read keeps serving its last readable state; the failure is
        logged once per published version, not at every refresh.
        """
        stores: dict[str, ForecastStore] = {}
        for name, path in self._store_locations().items():
            old = current.get(name)
            if old is not None and old.location != str(path):
                old = None
            if old is not None and not self._due(path):
                stores[name] = old
                continue
            try:
                version = StoreVersion.of(path)
                if old is not None and version == old.version:
                    stores[name] = old
                elif self._unreadable.get(path) != version:
                    validate_store_name(name)  # a bad name is logged once, like a bad store
                    stores[name] = ForecastStore(path)
                elif old is not None:
                    stores[name] = old
            except (OSError, FewsmapError, ValueError, KeyError, ObjectStoreError) as exc:
                self._unreadable[path] = _version_or_none(path)
                log.warning("store %s at %s cannot be opened: %s", name, path, exc)
                if old is not None:
                    stores[name] = old
        return stores

    def _build_layers(
        self, stores: dict[str, ForecastStore]
    ) -> tuple[dict[str, Layer], dict[str, LayerGroup]]:
        groups = {g.id: LayerGroup(g.id, g.title or g.id, g.parent) for g in self._config.groups}
        layers: dict[str, Layer] = {}
        covered: set[tuple[str, str]] = set()
        for entry in self._config.layers:
            store = stores.get(entry.store)
            needed = list(entry.vector or (str(entry.variable),))
            variable = needed[0]
            if store is None or not set(needed) <= set(store.variables):
                log.info("layer %s waits for store %s variables %s", entry.id, entry.store,
                         needed)
                continue
            attrs = store.attributes(variable)
            automatic = offered_styles(variable, attrs)
            offered = {**{s.name: s for s in automatic}, **self._styles}
            with self._config.located("layers", entry.id):
                layer = layer_from_config(entry, offered, automatic)
            layer = replace(layer, styles=tuple(  # configured styles convert to their units
                bind_units(s, str(attrs.get("units", "")), variable, attrs)
                for s in layer.styles))
            layers[layer.id] = layer
            covered.add((layer.store, layer.variable))
            groups.setdefault(layer.group, LayerGroup(layer.group, layer.group))
        if self._auto_layers:
            for name, store in stores.items():
                groups.setdefault(name, LayerGroup(name, _store_title(store)))
                for variable in store.variables:
                    if (name, variable) not in covered:
                        layer = _auto_layer(name, store, variable)
                        layers.setdefault(layer.id, layer)
                for pair in vector_pairs(store):
                    layer = _auto_vector_layer(name, store, pair)
                    layers.setdefault(layer.id, layer)
        layers.update(self._catchment_layers(layers, groups))
        return layers, groups

    def _catchment_layers(self, layers: dict[str, Layer],
                          groups: dict[str, LayerGroup]) -> dict[str, Layer]:
        """``<set>:<layer>`` for each layer a catchment set names (``layers = [...]`` in its
        table), in a group of the set's name: maps fill each catchment with its mean."""
        found = {}
        for catchments in self.catchments.values():
            for layer_id in catchments.layers:
                layer = layers.get(layer_id)
                if layer is None:
                    continue
                groups.setdefault(catchments.name, LayerGroup(catchments.name,
                                                              catchments.title))
                derived = replace(layer, id=f"{catchments.name}:{layer.id}",
                                  title=f"{layer.title}, mean per catchment of "
                                        f"{catchments.title}",
                                  group=catchments.name, catchments=catchments.name)
                found[derived.id] = derived
        return found


def configured_styles(config: ConfigFile) -> dict[str, Style]:
    """The ``[[styles]]`` of the configuration by name (SLD files read now).

    Raises
    ------
    ConfigError
        If a style cannot be drawn, naming the file and the style.
    """
    styles = {}
    for table in config.styles:
        with config.located("styles", table.id):
            styles[table.id] = style_from_sld_file(table, config.folder) if table.sld \
                else style_from_config(table)
    return styles


def _version_or_none(path: Path | str) -> StoreVersion | None:
    try:
        return StoreVersion.of(path)
    except (OSError, ObjectStoreError):
        return None


def _auto_layer(name: str, store: ForecastStore, variable: str) -> Layer:
    attrs = store.attributes(variable)
    styles = offered_styles(variable, attrs)
    units = styles[0].units  # the unit maps, legends and values are shown in
    level = single_level(store, variable)
    title = str(attrs.get("long_name") or variable) + (f" at {level}" if level else "") + (
        f" [{units}]" if units else "")
    keywords = {
        "parameterId": variable,
        "locationId": name,
        "moduleInstanceId": "fewsmap",
        "timeSeriesType": "EXTERNAL_FORECASTING",
    }
    return Layer(
        id=validate_layer_id(f"{name}.{variable}"),
        title=title,
        store=name,
        variable=variable,
        group=name,
        styles=styles,
        keywords=keywords,
    )


def _auto_vector_layer(name: str, store: ForecastStore, pair: tuple[str, str]) -> Layer:
    u, v = pair
    speed = _speed_style(u, store.attributes(u))
    units = speed.units
    layer = _auto_layer(name, store, u)
    return Layer(
        id=validate_layer_id(f"{name}.{u}-{v}"),
        title=f"Vector ({u}, {v})" + (f" [{units}]" if units else ""),
        store=name,
        variable=u,
        group=name,
        styles=alternative_styles(speed),
        keywords={**layer.keywords, "parameterId": f"{u},{v}"},
        components=pair,
    )


def _speed_style(u: str, attrs: dict[str, object]) -> Style:
    """The style of a vector's speed: the wind library's for wind components (in km/h),
    else a continuous ramp in the components' units."""
    units = normalise_units(str(attrs.get("units", "")))
    words = f"{u} {attrs.get('standard_name', '')} {attrs.get('long_name', '')}".lower()
    wind = next(q for q in QUANTITIES if q.name == "wind")
    if "wind" in words and wind.accepts(units):
        return replace(library_style(scheme_for(wind, units)), name="speed")
    return Style("speed", f"Speed [{units}]" if units else "Speed", colormap="YlGnBu",
                 units=units)


def _store_title(store: ForecastStore) -> str:
    """The store's own title, unless it is a placeholder (FEWS exports say "Data")."""
    title = dict(store.group.attrs).get("title")
    return str(title) if title and title != "Data" else store.name


__all__ = ["Catalog", "CatalogState", "ConfigError"]
