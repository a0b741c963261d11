"""Encodings of the on-disk cube."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from fewsmap.store.layout import format_indices, parse_indices


def test_indices_are_written_as_ranges() -> None:
    assert format_indices(np.array([0, 1, 2, 5, 7, 8])) == "0-2,5,7-8"
    assert format_indices(np.arange(97)) == "0-96"
    assert format_indices(np.array([], dtype=np.int64)) == ""


@given(st.sets(st.integers(0, 5000), max_size=200))
def test_ranges_read_back_to_the_same_indices(indices: set[int]) -> None:
    ordered = np.array(sorted(indices), dtype=np.int64)
    assert parse_indices(format_indices(ordered)).tolist() == ordered.tolist()
