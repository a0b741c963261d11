"""Retention: remove old runs from a store without disturbing readers of newer ones.

Removing a run is the mirror of replacing one (docs/design/cube.md, "Retention"): the run
leaves the published run list in one atomic publish and its slot is retired; its chunks are
deleted by a later writer once the grace period has passed, so readers holding the previous
metadata finish their reads. The slot itself stays on the run axis (axes only grow) with a
NaT label; it is never reused.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

from fewsmap.errors import ConfigError
from fewsmap.store.backend import Backend
from fewsmap.store.cube import read_root_metadata
from fewsmap.store.layout import ATTRS_KEY
from fewsmap.store.location import Location
from fewsmap.store.writer import (
    RETIRED_GRACE_S,
    publish,
    recover,
    retired_age_s,
    unpublished_changes,
    vacuum_retired,
    writable_backend,
)
from fewsmap.time.instants import parse_stamp


@dataclass(frozen=True)
class RetentionPolicy:
    """Keep the last ``keep_runs`` runs and/or the runs of the last ``keep_days`` days.

    A run goes when either limit says so; the latest run is always kept, so that a feed
    that stopped never empties the service.
    """

    keep_runs: int | None = None
    keep_days: float | None = None

    def __post_init__(self) -> None:
        if self.keep_runs is not None and self.keep_runs < 1:
            raise ConfigError(f"keep_runs must be at least 1, not {self.keep_runs}")
        if self.keep_days is not None and not self.keep_days > 0:
            raise ConfigError(f"keep_days must be more than 0, not {self.keep_days}")

    @property
    def active(self) -> bool:
        """Whether the policy removes anything at all."""
        return self.keep_runs is not None or self.keep_days is not None

    def expired(self, labels: list[str], now: np.datetime64) -> list[str]:
        """Return the run labels (reference times) this policy removes, oldest first."""
        ordered = sorted(labels, key=parse_stamp)
        keep = set(ordered)
        if self.keep_runs is not None:
            keep &= set(ordered[-self.keep_runs:])
        if self.keep_days is not None:
            cutoff = now - np.timedelta64(round(self.keep_days * 86400), "s")
            keep &= {t for t in ordered if parse_stamp(t) >= cutoff}
        keep |= set(ordered[-1:])
        return [t for t in ordered if t not in keep]

    def describe(self) -> str:
        """The policy in words, for messages."""
        parts = [f"keep_runs = {self.keep_runs}" if self.keep_runs is not None else "",
                 f"keep_days = {self.keep_days:g}" if self.keep_days is not None else ""]
        return ", ".join(p for p in parts if p) or "keep everything"


@dataclass(frozen=True)
class PruneResult:
    """What ``prune`` did: runs removed from the run list, slots whose chunks were deleted."""

    removed: list[str]
    vacuumed: list[str]


def prune(location: Location | Backend, policy: RetentionPolicy, *,
          now: np.datetime64 | None = None, grace_s: float = RETIRED_GRACE_S) -> PruneResult:
    """Remove the runs ``policy`` expires from the store at ``location``; vacuum due slots.

    Readers that opened the store before keep reading the removed runs until ``grace_s``
    has passed; later writers (ingest, prune) then delete their chunks.

    Raises
    ------
    ConfigError
        If ``location`` is a URL fewsmap cannot write to (`store_location`).
    """
    store = writable_backend(location)
    now = np.datetime64(datetime.now(UTC).replace(tzinfo=None), "s") if now is None else now
    with store.lock():
        recover(store)
        published = store.version()
        attrs: dict[str, Any] = read_root_metadata(store)["attributes"][ATTRS_KEY]
        gone = set(policy.expired([r["reference_time"] for r in attrs["runs"]], now))
        due = [e for e in attrs.get("retired", []) if retired_age_s(e) >= grace_s]
        if not gone and not due:
            return PruneResult([], [])
        with unpublished_changes(store):
            attrs = vacuum_retired(store, attrs, grace_s)
            stamp = datetime.now(UTC).isoformat(timespec="seconds")
            retired = [*attrs.get("retired", []), *(
                {"slot": r["slot"], "reference_time": r["reference_time"], "retired_at": stamp}
                for r in attrs["runs"] if r["reference_time"] in gone)]
            runs = [r for r in attrs["runs"] if r["reference_time"] not in gone]
            publish(store, {**attrs, "runs": runs, "retired": retired}, published)
    return PruneResult(sorted(gone, key=parse_stamp), [e["reference_time"] for e in due])

