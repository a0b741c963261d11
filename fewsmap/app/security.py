"""Optional bearer-token protection of layers and layer groups (the FEWS secured variant).

Configured in the TOML file; without a ``[security]`` table every layer is public::

    [[security.tokens]]
    name = "operations"            # shown in logs, never the token itself
    token_env = "FEWSMAP_TOKEN_OPS"  # or token = "…" in the file
    groups = ["precipitation"]     # every layer of these groups (and their subgroups)
    layers = ["naefs-mean.QTF"]

A token protects data, not names: the *parts* of the layers it names (directly, or through a
group or a parent group), each part a (store, variable) pair (`Layer.parts`). One rule,
`reads`, then decides for every name a client can use what data it reads:

- a layer reads its parts; a layer built from others (a vector pair ``<u>-<v>``, any
  derived layer to come) lists every variable it reads in ``Layer.variables``, so it reads
  the parts of each;
- a per-run id ``<layer>-<T0>`` reads what its layer reads;
- a group reads what every layer it draws reads (GetMap of a group draws all its layers).

A name is shown and served only to a request whose token grants every protected part it
reads; for everyone else it is hidden (capabilities XML and JSON, WMTS, TileJSON, EDR,
``/health``, the ``/zarr`` stores) and naming it answers 401 with ``WWW-Authenticate:
Bearer``, as GeoServer does. So a token for ``u`` alone does not unlock the vector
``u-v``, and protecting the vector layer protects ``u`` and ``v`` wherever they appear.

A group with protected members is requestable only with a token granting all of them: a
group whose drawing would differ by token is never drawn in part. For other clients it stays
a heading (a Layer without Name in WMS XML, ``groupName`` in FEWS JSON) of the layers they
may see. A store holding any part the request may not read is hidden from ``/zarr`` and
``/health``.

Every route asks the catalog through ``visible_catalog(request)`` (fewsmap/app/state.py),
which returns the view of the requesting client, so routes added later are covered without
knowing about tokens.
"""

from __future__ import annotations

import contextvars
import hmac
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fewsmap.app.links import carrying_api_key, public_base
from fewsmap.catalog import Catalog, Layer
from fewsmap.catalog.catalog import CatalogState
from fewsmap.catalog.layers import RUN_SUFFIX, LayerGroup
from fewsmap.errors import ConfigError, LayerNotDefined, Unauthorized
from fewsmap.settings import ConfigFile, TokenTable
from fewsmap.store.cube import ForecastStore, RunInfo

# The token a request presented, or None; set per request by `TokenMiddleware`.
_request_token: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "fewsmap_request_token", default=None)
API_KEY_PARAMETER = "api_key"


@dataclass(frozen=True)
class AccessToken:
    """One configured token and what it unlocks."""

    name: str
    secret: str
    groups: frozenset[str]
    layers: frozenset[str]


@dataclass(frozen=True)
class Security:
    """The configured tokens; `view` shows a catalog as the current request may see it."""

    tokens: tuple[AccessToken, ...]
    # What each set of granted tokens sees of the latest catalog snapshot, built once.
    _views: dict[tuple[int, ...], Visible] = field(default_factory=dict, compare=False,
                                                   repr=False)

    @classmethod
    def from_config(cls, config: ConfigFile) -> Security | None:
        """Read ``[[security.tokens]]``; None when nothing is protected.

        Raises
        ------
        ConfigError
            If a token's secret is missing or too short.
        """
        tokens = []
        for index, table in enumerate(config.security.tokens):
            with config.located("security", "tokens", table.name or index):
                tokens.append(_token(table, index + 1))
        return cls(tuple(tokens)) if tokens else None

    def view(self, catalog: Catalog) -> Catalog:
        """The catalog as the current request may see it."""
        return self.view_as(catalog, _request_token.get())

    def view_as(self, catalog: Catalog, presented: str | None) -> Catalog:
        """The catalog as a request presenting ``presented`` (None: no token) may see it."""
        granted = self.granted(presented)
        error = None if presented is None else "insufficient_scope" if granted else \
            "invalid_token"
        return CatalogView(catalog, self.visible(catalog._state, granted), error)

    def visible(self, state: CatalogState, granted: list[AccessToken]) -> Visible:
        """What ``granted`` unlocks of ``state`` (kept until the catalog changes)."""
        if any(v.source is not state for v in list(self._views.values())):
            self._views.clear()  # a new snapshot: what older ones showed is stale
        key = tuple(n for n, t in enumerate(self.tokens) if t in granted)
        visible = self._views.get(key)
        if visible is None:
            visible = self._views[key] = Visible.of(state, self.tokens, granted)
        return visible

    def granted(self, presented: str | None) -> list[AccessToken]:
        """The configured tokens equal to ``presented`` (compared in constant time)."""
        if presented is None:
            return []
        return [t for t in self.tokens
                if hmac.compare_digest(t.secret.encode(), presented.encode())]


def _token(table: TokenTable, number: int) -> AccessToken:
    """The token of a ``[[security.tokens]]`` table, its secret read now (``token_env``)."""
    secret = table.token or os.environ.get(table.token_env or "", "")
    if len(secret) < 8:
        raise ConfigError("token (or the variable token_env names) must hold at least 8 "
                          "characters")
    return AccessToken(table.name or f"token {number}", secret, frozenset(table.groups),
                       frozenset(table.layers))


Part = tuple[str, str]  # (store, variable): the data a layer reads


@dataclass(frozen=True)
class Visible:
    """What a set of granted tokens unlocks of one catalog snapshot (``source``)."""

    source: CatalogState
    locked: frozenset[Part]  # protected parts the tokens do not grant
    state: CatalogState  # the snapshot without what reads locked parts

    @classmethod
    def of(cls, source: CatalogState, tokens: Iterable[AccessToken],
           granted: Iterable[AccessToken]) -> Visible:
        """Filter ``source`` by the rule of this module (`reads`)."""
        locked = _guarded(source, tokens) - _guarded(source, granted)
        layers = {k: v for k, v in source.layers.items() if v.parts.isdisjoint(locked)}
        # A group draws its layers: requestable when none of them is hidden (`reads`).
        partial = {v.group for k, v in source.layers.items() if k not in layers}
        groups = {k: g for k, g in source.groups.items() if k not in partial}
        closed = {store for store, _ in locked}
        stores = {k: s for k, s in source.stores.items() if k not in closed}
        return cls(source, locked, CatalogState(stores, layers, groups, source.generation))


class CatalogView(Catalog):
    """A catalog without the names that read data the request holds no token for.

    A snapshot of one request's catalog: it shares the stores with the full catalog and is
    never refreshed. Naming a hidden layer or group answers 401, not "not defined".
    """

    def __init__(self, full: Catalog, visible: Visible, error: str | None) -> None:
        # A view opens nothing: it copies the full catalog's attributes, then filters.
        self.__dict__.update(full.__dict__)
        self._full = full
        self._error = error  # what a refusal says about the presented token
        self._locked = visible.locked
        self._state = visible.state

    def resolve(self, name: str) -> tuple[Layer, RunInfo | None]:
        """Resolve ``name`` among the visible layers; 401 for a hidden one.

        Raises
        ------
        Unauthorized
            If the layer or group exists but this request may not see it.
        LayerNotDefined
            If there is no such layer at all.
        """
        try:
            return super().resolve(name)
        except LayerNotDefined:
            if not self._hides(name):
                raise
            raise self._refusal(name) from None

    def layer(self, layer_id: str) -> Layer:
        """Return a visible layer; 401 for a hidden one (see `resolve`)."""
        if layer_id not in self.layers and self._hides(layer_id):
            raise self._refusal(layer_id)
        return super().layer(layer_id)

    def store(self, layer: Layer) -> ForecastStore:
        """The store a visible layer reads (even if the store itself is hidden)."""
        return self._full.stores[layer.store]

    def heading(self, group_id: str) -> LayerGroup:
        """A group as a heading of the visible layers, even where it is not requestable."""
        return self._full.groups[group_id]

    def refresh(self, force: bool = False) -> bool:
        """A view is one request's snapshot: the full catalog refreshes."""
        return False

    def _hides(self, name: str) -> bool:
        """Whether ``name`` (layer, per-run id or group) reads data this view may not read."""
        return not reads(self._full._state, name).isdisjoint(self._locked)

    def _refusal(self, name: str) -> Unauthorized:
        reason = "the token presented does not grant it" if self._error else (
            "send a token as 'Authorization: Bearer <token>' or api_key=<token>")
        return Unauthorized(f"{name[:80]!r} is protected: {reason}", self._error)


def reads(state: CatalogState, name: str) -> frozenset[Part]:
    """The data a request naming ``name`` reads: the rule every protection follows.

    A layer (derived ones included) reads its parts, a per-run id its layer's, a group those
    of every layer it draws (a layer id wins over a group of the same name, as in GetMap);
    an unknown name reads nothing.
    """
    layer = state.layers.get(name)
    if layer is None and name in state.groups:
        members = [m.parts for m in state.layers.values() if m.group == name]
        return frozenset().union(*members)
    match = RUN_SUFFIX.search(name)
    if layer is None and match:
        layer = state.layers.get(name[: match.start()])
    return layer.parts if layer is not None else frozenset()


def _guarded(state: CatalogState, tokens: Iterable[AccessToken]) -> frozenset[Part]:
    """The parts of the layers the tokens name, directly or through a group or a parent."""
    tokens = list(tokens)
    names = {layer for t in tokens for layer in t.layers}
    groups = {group for t in tokens for group in t.groups}
    covered = {g for g in {layer.group for layer in state.layers.values()}
               if not groups.isdisjoint(_ancestors(state, g))}
    return frozenset(part for layer in state.layers.values()
                     if layer.id in names or layer.group in covered for part in layer.parts)


def _ancestors(state: CatalogState, group: str) -> set[str]:
    """The group and every parent above it (cycles in the configuration are cut)."""
    seen: set[str] = set()
    current: str | None = group
    while current is not None and current not in seen:
        seen.add(current)
        parent = state.groups.get(current)
        current = parent.parent if parent is not None else None
    return seen


class TokenMiddleware:
    """Take the request's token from ``Authorization: Bearer`` or ``api_key`` for the view,
    and keep what a token unlocked out of shared caches.

    An answer to a valid token may show protected layers (a tile, capabilities or EDR
    collections listing them, a store's files), so it is ``private``: a proxy or CDN never
    stores it. Anonymous answers show only public layers and keep their ``public``. Every
    answer varies with ``Authorization`` (the same URL shows more with a token), so a cache
    never hands an anonymous answer to a token holder.
    """

    def __init__(self, app: ASGIApp, security: Security) -> None:
        self.app = app
        self.security = security

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        token = request_token(scope)
        unlocked = bool(self.security.granted(token))
        if token is not None and unlocked and token == query_token(scope):
            # The links of the answer carry the key the request came with.
            send = carrying_api_key(send, public_base(Request(scope)), token)

        async def send_cacheable_as_allowed(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.add_vary_header("Authorization")
                if unlocked:
                    headers["Cache-Control"] = private(headers.get("cache-control"))
            await send(message)

        reset = _request_token.set(token)
        try:
            await self.app(scope, receive, send_cacheable_as_allowed)
        finally:
            _request_token.reset(reset)


def private(cache_control: str | None) -> str:
    """``cache_control`` for one client's cache only: ``public`` becomes ``private``."""
    directives = [d.strip() for d in (cache_control or "").split(",")]
    kept = [d for d in directives if d and d.lower() not in ("public", "private")]
    return ", ".join(["private", *kept])


def request_token(scope: Scope) -> str | None:
    """The bearer token of a request (header first), or None."""
    headers: list[tuple[bytes, bytes]] = scope.get("headers", [])
    for name, value in headers:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
    return query_token(scope)


def query_token(scope: Scope) -> str | None:
    """The token a request carries as ``api_key`` in its address, or None."""
    query: bytes = scope.get("query_string", b"")
    for key, text in parse_qsl(query.decode("latin-1")):
        if key.lower() == API_KEY_PARAMETER and text:
            return text
    return None
