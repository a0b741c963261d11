"""Values derived once per published store state (a grid's geometry, its overview levels).

A store state is its location and version: a publish makes a new one. Only the newest state
of each store is kept (a reader still holding an older store object keeps what it derived
itself), and at most ``most`` stores, least recently used first out.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, Protocol, TypeVar

_Value = TypeVar("_Value")
_Store = TypeVar("_Store", bound="StoreState")


class StoreState(Protocol):
    """What identifies a published store state."""

    @property
    def location(self) -> Hashable: ...

    @property
    def version(self) -> Hashable: ...


class PerStoreState(Generic[_Store, _Value]):
    """``build(store)``, kept for the newest state of each of at most ``most`` stores."""

    def __init__(self, build: Callable[[_Store], _Value], most: int) -> None:
        self._build = build
        self._most = most
        self._values: OrderedDict[tuple[Hashable, Hashable], _Value] = OrderedDict()
        self._lock = threading.Lock()

    def __call__(self, store: _Store) -> _Value:
        key = (store.location, store.version)
        with self._lock:
            found = self._values.get(key)
            if found is not None:
                self._values.move_to_end(key)
                return found
        found = self._build(store)  # outside the lock: building reads the store
        with self._lock:
            for older in [k for k in self._values if k[0] == store.location]:
                del self._values[older]
            self._values[key] = found
            while len(self._values) > self._most:
                self._values.popitem(last=False)
        return found
