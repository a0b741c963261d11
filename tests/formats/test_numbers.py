"""float32 values as JSON numbers and CSV fields: the shortest decimals that read back to the
same float32, missing where there is no value."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from fewsmap.formats.numbers import csv_numbers, json_array, json_number, json_numbers

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


def test_json_numbers_name_the_decimal_of_numpys_float32_text_for_any_bit_pattern() -> None:
    rng = np.random.default_rng(18)
    bits = rng.integers(0, 2**32, 400_000, dtype=np.uint64).astype(np.uint32)
    weather = np.round(rng.normal(280, 30, 100_000), 2)  # values as fields hold them
    values = np.concatenate([bits.view(np.float32), weather.astype(np.float32),
                             np.array([0, -0.0, 1e-45, 3.4028235e38, 1e15, 1e16, 2**24 + 1],
                                      dtype=np.float32)])
    texts = values.astype(str).tolist()
    expected = [float(text) if np.isfinite(float(text)) else None for text in texts]
    assert json_numbers(values) == expected
    # the same JSON text, -0.0 too
    assert [repr(v) for v in json_numbers(values)] == [repr(v) for v in expected]


def test_json_arrays_are_written_with_the_shortest_decimals() -> None:
    """What a client reads: each value's shortest decimal (numpy's float32 text), null where
    there is none, whatever the array's layout."""
    weather = np.round(np.random.default_rng(3).normal(280, 30, 10_000), 2).astype(np.float32)
    values = np.concatenate([weather, np.array([np.nan, np.inf, -0.0], dtype=np.float32)])
    expected = "[" + ",".join([*weather.astype(str).tolist(), "null", "null", "-0.0"]) + "]"
    assert json_array(values).decode() == expected
    assert json_array(values.astype(np.float64)).decode() == expected
    assert json_array(np.repeat(values, 2)[::2]).decode() == expected  # strided
