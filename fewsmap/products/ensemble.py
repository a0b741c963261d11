"""Ensemble statistics and exceedance probabilities over the members of a cube.

A statistic is a value of the ensemble dimension (``mean``, ``median``, ``min``, ``max``,
``std``, ``p<NN>``, ``above:<X>``, ``below:<X>``) that every front accepts where it accepts a
member label. Each equals what numpy computes over the members of the cube, skipping missing
members as numpy's nan-functions do (``np.nanmean``, ``np.nanmedian``, ``np.nanmin``,
``np.nanmax``, ``np.nanstd`` with ``ddof=0``, ``np.nanpercentile`` with its default linear
interpolation), and is NaN where no member has a value. ``above:X`` (``below:X``) is the
percentage of the members *with a value* strictly above (below) X, in the layer's units.

A statistic reads every member of the window, so memory is bounded: a mean, extreme or
probability is accumulated member by member (one window held), the others read the window in
row bands of at most `MAX_HELD_VALUES` member values; a cancelled render stops between member
reads (`fewsmap.cancel.checkpoint`), and the render limiter is told what a statistic costs
(`MemberStatistic.relative_cost`). A window is read here; points and series read every member
of their few cells at once and reduce them with `EnsembleStatistic.reduce`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from fewsmap.cancel import checkpoint
from fewsmap.errors import InvalidDimensionValue
from fewsmap.products.accumulate import StepSum, read_sum
from fewsmap.store import reads
from fewsmap.store.cube import ForecastStore

Kind = Literal["mean", "median", "min", "max", "std", "percentile", "above", "below"]
SUMMARIES: tuple[Kind, ...] = ("mean", "median", "min", "max", "std")
# Listed in capabilities besides the summaries (any p1..p99 is accepted).
LISTED_PERCENTILES = (10, 25, 75, 90)
PROBABILITY_UNITS = "%"
# Member values held at once when a median, percentile or std reads a window: 16 MiB of
# float32 (sorting and numpy's percentile copy them, so about three times that at the peak);
# 51 members of a 256² tile's window at native resolution fit. A larger window is read in
# row bands (each member's band read again per band).
MAX_HELD_VALUES = 1 << 22

_PERCENTILE = re.compile(r"p(\d{1,2})")
_THRESHOLD = re.compile(r"(above|below):(.+)")


@dataclass(frozen=True)
class EnsembleStatistic:
    """A statistic over the members: a summary, a percentile or an exceedance probability.

    ``parameter`` is the percentile (1..99) or the threshold (in the layer's units).
    """

    kind: Kind
    parameter: float | None = None

    @property
    def label(self) -> str:
        """The value as requests and capabilities write it: ``mean``, ``p90``, ``above:20``."""
        if self.kind == "percentile":
            return f"p{self.parameter:g}"
        if self.kind in ("above", "below"):
            # the shortest text that reads back to the threshold: 20, 20.5, 12.345678, 1e+30
            return f"{self.kind}:{repr(float(self.parameter or 0)).removesuffix('.0')}"
        return self.kind

    @property
    def of_block_means(self) -> bool:
        """Whether the statistic of the members' block means is the block mean of the
        statistic (the mean, where the members miss the same cells), so that zoomed-out
        maps may compute it on an overview level."""
        return self.kind == "mean"

    @property
    def is_probability(self) -> bool:
        """Whether the values are percentages of members (0..100), not the layer's units."""
        return self.kind in ("above", "below")

    def units(self, layer_units: str) -> str:
        """The units of the values, given the layer's."""
        return PROBABILITY_UNITS if self.is_probability else layer_units

    def value_range(self, member_range: tuple[float, float] | None,
                    ) -> tuple[float, float] | None:
        """The colour range of the statistic given the members' range (the run's statistics).

        A probability spans 0..100; a standard deviation of values within [lo, hi] is at most
        (hi - lo) / 2; every other statistic lies within the members' range.
        """
        if self.is_probability:
            return 0.0, 100.0
        if member_range is None or self.kind != "std":
            return member_range
        low, high = member_range
        return 0.0, max((high - low) / 2.0, float(np.finfo(np.float32).tiny) * 1e3)

    def reduce(self, values: np.ndarray, axis: int) -> np.ndarray:
        """Reduce ``values`` over the member ``axis``: float32, that axis removed."""
        members = np.moveaxis(np.asarray(values, dtype=np.float32), axis, 0)
        if self.is_probability:  # counts: accumulated member by member, as windows are
            accumulator = Accumulator(self, members.shape[1:])
            for member in members:
                accumulator.add(member)
            return accumulator.result()
        count = (~np.isnan(members)).sum(axis=0)
        out = np.full(members.shape[1:], np.nan, dtype=np.float32)
        held = count > 0
        if (count == members.shape[0]).all():  # no member missing anywhere
            out[...] = self._summary(members, members.shape[0])
        elif self.kind in ("median", "percentile"):
            _order_statistic_by_count(self, members, count, out)
        elif held.all():
            out[...] = self._summary(members, members.shape[0])
        elif held.any():
            # numpy warns on cells without values: give them one, then blank them. (Reducing
            # only the cells with values, members[:, held], changes numpy's summation order.)
            filled = members.copy()
            filled[0, ~held] = 0.0
            out[...] = self._summary(filled, members.shape[0])
            out[~held] = np.nan
        return out

    def _summary(self, members: np.ndarray, count: int) -> np.ndarray:
        """The statistic over axis 0 of members each cell has at least one value of;
        ``count`` members per cell, all with values, where an order statistic is asked."""
        if self.kind == "mean":
            return np.asarray(np.nanmean(members, axis=0))
        if self.kind == "std":
            return np.asarray(np.nanstd(members, axis=0))
        if self.kind == "min":
            return np.asarray(np.nanmin(members, axis=0))
        if self.kind == "max":
            return np.asarray(np.nanmax(members, axis=0))
        # Order statistics of cells without missing members: numpy's vectorised percentile
        # (nanpercentile loops over cells in Python, ~1000x slower on a tile).
        if self.kind == "median":
            return np.asarray(np.median(members[:count], axis=0))
        return np.asarray(np.percentile(members[:count], float(self.parameter or 0), axis=0))


def _order_statistic_by_count(statistic: EnsembleStatistic, members: np.ndarray,
                              count: np.ndarray, out: np.ndarray) -> None:
    """A median or percentile where cells hold different numbers of members: cells are
    grouped by how many members they hold, and each group's values, sorted with the missing
    ones last, are reduced over its first ``n`` members (what nanpercentile reduces). Cells
    holding every member (land where the sea is missing in all) need no sorting."""
    complete = count == members.shape[0]
    if complete.any():
        out[complete] = statistic._summary(members[:, complete], members.shape[0])
    partial = (count > 0) & ~complete
    if not partial.any():
        return
    ordered = np.sort(members[:, partial], axis=0)  # NaN sorts last
    held = count[partial]
    found = np.empty(held.shape, dtype=np.float32)
    for n in np.unique(held).tolist():
        cells = held == n
        found[cells] = statistic._summary(ordered[:n, cells], n)
    out[partial] = found


def parse_statistic(text: str) -> EnsembleStatistic | None:
    """The statistic ``text`` names, or None when it is a member label (a number).

    Raises
    ------
    InvalidDimensionValue
        If ``text`` is neither a number nor a statistic, or its parameter is out of range.
    """
    token = text.strip().lower()
    try:
        float(token)
        return None
    except ValueError:
        pass
    if token in SUMMARIES:
        return EnsembleStatistic(token)
    percentile = _PERCENTILE.fullmatch(token)
    if percentile:
        rank = int(percentile.group(1))
        if not 1 <= rank <= 99:
            raise InvalidDimensionValue(f"ensemble member {text[:40]!r}: a percentile is "
                                        "p1 .. p99")
        return EnsembleStatistic("percentile", float(rank))
    threshold = _THRESHOLD.fullmatch(token)
    if threshold:
        value = _threshold(threshold.group(2), text)
        return EnsembleStatistic(threshold.group(1), value)  # type: ignore[arg-type]
    raise InvalidDimensionValue(
        f"ensemble member {text[:40]!r} is neither a member number nor a statistic; "
        f"statistics: {', '.join(SUMMARIES)}, p1 .. p99, above:<X>, below:<X>")


def _threshold(token: str, text: str) -> float:
    try:
        value = float(token)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or abs(value) > float(np.finfo(np.float32).max):
        raise InvalidDimensionValue(f"ensemble member {text[:40]!r}: the threshold must be a "
                                    "finite number within ±3.4e38 (float32), in the layer's "
                                    "units")
    return value


def listed_statistics(thresholds: Sequence[str] = ()) -> tuple[str, ...]:
    """The statistics capabilities list for an ensemble layer, with its thresholds."""
    percentiles = tuple(f"p{p}" for p in LISTED_PERCENTILES)
    return (*SUMMARIES, *percentiles, *thresholds)


@dataclass(frozen=True)
class MemberStatistic:
    """A statistic over the members at these store indices: what a request selects along
    the member dimension in place of one member's index."""

    statistic: EnsembleStatistic
    members: tuple[int, ...]

    @property
    def relative_cost(self) -> float:
        """The cost of a map of this statistic relative to one member's, for the render
        limiter: each member read costs about a tenth of a single-member tile; holding and
        sorting every member (median, percentiles, std) about three times that
        (benchmarks/results/ensemble.md, 51 members: up to 5.7x and 17.6x)."""
        per_member = 0.1 if self.statistic.kind in Accumulator.KINDS else 0.34
        return 1.0 + per_member * len(self.members)


Selector = int | MemberStatistic


def statistic_of(selectors: Sequence[Selector]) -> EnsembleStatistic | None:
    """The statistic among ``selectors`` (None: they select single labels)."""
    return next((s.statistic for s in selectors if isinstance(s, MemberStatistic)), None)


def selection_cost(selectors: Sequence[Selector]) -> float:
    """The cost of reading a field with these selectors relative to one member's."""
    return math.prod(s.relative_cost for s in selectors if isinstance(s, MemberStatistic))


def label_lists(selectors: Sequence[Selector]) -> list[list[int]]:
    """Store indices to read along each dimension: one, or every member of a statistic."""
    return [list(s.members) if isinstance(s, MemberStatistic) else [s] for s in selectors]


def reduce_selected(values: np.ndarray, selectors: Sequence[Selector],
                    first_axis: int) -> np.ndarray:
    """Reduce values read with `label_lists` over each statistic's members, keeping that
    axis (of length one), so the result has the shape a single label would give.

    ``first_axis`` is the axis of ``values`` holding the first selector's dimension.
    """
    for k, selector in enumerate(selectors):
        if isinstance(selector, MemberStatistic):
            axis = first_axis + k
            values = np.expand_dims(selector.statistic.reduce(values, axis), axis)
    return values


def read_window(store: ForecastStore, variable: str, prefix: Sequence[Selector | StepSum],
                rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Read ``store[variable][(*prefix, rows, cols)]`` where the prefix may hold a statistic
    (and, as its step, an accumulation's steps: each member's sum is read, then reduced).

    Without a statistic this is `fewsmap.store.reads.read_window`. With one, each member's
    window is read in turn: a mean, minimum, maximum or probability is accumulated member by
    member (`Accumulator`: one window held, each member's values used while in the CPU's
    cache); a median, percentile or standard deviation needs every member at once and is
    reduced in row bands of at most `MAX_HELD_VALUES` member values.

    Returns
    -------
    numpy.ndarray
        float32 (rows, cols), NaN where the cube (or every member) has no value.
    """
    rows, cols = np.asarray(rows), np.asarray(cols)
    at = next((k for k, s in enumerate(prefix) if isinstance(s, MemberStatistic)), None)
    chosen = prefix[at] if at is not None else None
    if at is None or not isinstance(chosen, MemberStatistic):
        return _summed_window(store, variable, prefix, rows, cols)

    def member_window(member: int, part: np.ndarray) -> np.ndarray:
        checkpoint()  # 51 member reads: stop between them once the render is given up
        return _summed_window(store, variable, [*prefix[:at], member, *prefix[at + 1:]],
                              part, cols)

    statistic, members = chosen.statistic, chosen.members
    if statistic.kind in Accumulator.KINDS:
        accumulator = Accumulator(statistic, (rows.size, cols.size))
        for member in members:
            accumulator.add(member_window(member, rows))
        return accumulator.result()
    band = max(1, MAX_HELD_VALUES // max(1, len(members) * cols.size))
    out = np.empty((rows.size, cols.size), dtype=np.float32)
    for start in range(0, rows.size, band):
        part = rows[start:start + band]
        stack = np.empty((len(members), part.size, cols.size), dtype=np.float32)
        for n, member in enumerate(members):
            stack[n] = member_window(member, part)
        out[start:start + part.size] = statistic.reduce(stack, 0)
    return out


class Accumulator:
    """A statistic accumulated one member at a time, equal to `EnsembleStatistic.reduce`
    over the stacked members: numpy sums a stack over its first axis member after member in
    float32 (``np.nanmean``: the sum of the members with a value, divided by their count in
    float64), and minima, maxima and counts do not depend on the order."""

    KINDS = ("mean", "min", "max", "above", "below")

    def __init__(self, statistic: EnsembleStatistic, shape: tuple[int, ...]) -> None:
        self.statistic = statistic
        self.count = np.zeros(shape, dtype=np.int64)  # members with a value
        self.hits = np.zeros(shape, dtype=np.int64)  # of those, above/below the threshold
        self.total = np.full(shape, np.nan if statistic.kind in ("min", "max") else 0.0,
                             dtype=np.float32)

    def add(self, values: np.ndarray) -> None:
        """Take in one member's values (float32, NaN where missing)."""
        valid = ~np.isnan(values)
        self.count += valid
        kind = self.statistic.kind
        if kind == "mean":
            np.add(self.total, values, out=self.total, where=valid)
        elif kind == "min":
            np.fmin(self.total, values, out=self.total)
        elif kind == "max":
            np.fmax(self.total, values, out=self.total)
        else:
            threshold = np.float32(self.statistic.parameter)
            self.hits += (values > threshold) if kind == "above" else (values < threshold)

    def result(self) -> np.ndarray:
        """The statistic: float32, NaN where no member had a value."""
        held = self.count > 0
        kind = self.statistic.kind
        if kind in ("min", "max"):
            return self.total
        with np.errstate(invalid="ignore", divide="ignore"):
            share = self.total / self.count if kind == "mean" else 100.0 * self.hits / self.count
        return np.where(held, share, np.nan).astype(np.float32)


def _summed_window(store: ForecastStore, variable: str, prefix: Sequence[Selector | StepSum],
                   rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """One field's window, or the sum of an accumulation's (``prefix[1]`` a `StepSum`)."""
    slot, steps, *labels = prefix
    if not isinstance(steps, StepSum | int | np.integer):
        raise ValueError("the second selector is a step or an accumulation's steps")
    return read_sum(lambda step: reads.read_window(store, variable,
                                                   _indices([slot, step, *labels]), rows, cols),
                    steps if isinstance(steps, StepSum) else int(steps))


def _indices(prefix: Sequence[Selector | StepSum]) -> list[int]:
    """A prefix of store indices only (one statistic at most is read at a time)."""
    found = [int(s) for s in prefix if isinstance(s, int | np.integer)]
    if len(found) != len(prefix):
        raise ValueError("one ensemble statistic per read")
    return found
