"""float32 values as JSON numbers and CSV fields: the shortest decimals that read back to the
same float32, missing where there is no value."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from fewsmap.formats.numbers import csv_numbers, json_number, json_numbers

FLOAT32 = st.floats(width=32, allow_nan=True, allow_infinity=True)


@given(st.lists(FLOAT32, max_size=50))
def test_numbers_read_back_to_the_same_float32(values: list[float]) -> None:
    array = np.array(values, dtype=np.float32)
    finite = np.isfinite(array)
    as_json = json_numbers(array)
    assert as_json == [json_number(v) for v in array]
    assert [v is None for v in as_json] == (~finite).tolist()
    fields = csv_numbers(array)
    assert [f == "" for f in fields] == (~finite).tolist()
    read = np.array([np.nan if v is None else v for v in as_json], dtype=np.float32)
    np.testing.assert_array_equal(read[finite], array[finite])
    np.testing.assert_array_equal(np.array([f for f in fields if f], dtype=np.float32),
                                  array[finite])


def test_the_shortest_decimal() -> None:
    assert json_numbers(np.array([20.48, 0.1, np.nan], dtype=np.float32)) == [20.48, 0.1, None]
    assert csv_numbers(np.array([20.48, np.inf], dtype=np.float32)) == ["20.48", ""]
