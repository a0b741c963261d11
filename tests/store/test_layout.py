"""Encodings of the on-disk cube."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from fewsmap.store.layout import (
    format_indices,
    parse_indices,
    series_chunks,
    series_steps,
    series_tile,
)


def test_indices_are_written_as_ranges() -> None:
    assert format_indices(np.array([0, 1, 2, 5, 7, 8])) == "0-2,5,7-8"
    assert format_indices(np.arange(97)) == "0-96"
    assert format_indices(np.array([], dtype=np.int64)) == ""


@given(st.sets(st.integers(0, 5000), max_size=200))
def test_ranges_read_back_to_the_same_indices(indices: set[int]) -> None:
    ordered = np.array(sorted(indices), dtype=np.int64)
    assert parse_indices(format_indices(ordered)).tolist() == ordered.tolist()


def test_a_copys_inner_chunks_are_small_only_for_long_feeds() -> None:
    """8 × 8 cells where a feed's steps fill 16 KiB (64 steps or more), 32 × 32 for short
    feeds, whose smaller inner chunks compressed worse (a 10-step feed's copy 30 % larger)."""
    assert [series_tile(steps) for steps in (8, 16, 56, 64, 80, 128)] == [32, 32, 32, 8, 8, 8]
    assert series_chunks(5, 73)[0] == (1, 8, 8, 80, 1)
    assert series_chunks(4, 10)[0] == (1, 32, 32, 10)


def test_only_long_feeds_leave_room_for_longer_runs_in_a_copy() -> None:
    """From 64 steps a copy holds the steps rounded up to 8 (≤ 11 % padding, room for a
    longer run), below exactly the feed's (padding 10 steps to 16 cost 60 % more values to
    compress), never fewer than 8 (so a one-step first run does not split the next)."""
    assert [series_steps(n) for n in (1, 8, 10, 57, 63, 64, 65, 73, 127, 128, 200)] == \
        [8, 8, 10, 57, 63, 64, 72, 80, 128, 128, 128]
