"""float32 values as JSON numbers and CSV fields: the shortest decimal that reads back to the
same float32, null (JSON) or an empty field (CSV) where there is no value."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

# Powers of ten a float64 holds exactly (10**22 is the last), and the digit counts tried.
MAX_EXACT_POWER = 22
POWERS_OF_TEN = np.array([float(10**k) for k in range(MAX_EXACT_POWER + 1)])
DIGITS = np.arange(1, 10)[:, None]  # a float32 needs at most 9 significant digits


def json_number(value: object) -> float | None:
    """A float32 value as the shortest decimal that reads back to it; None for NaN/inf."""
    number = np.float32(value)  # type: ignore[arg-type]
    if not np.isfinite(number):
        return None
    return float(str(number))


def json_finite(value: float) -> float | None:
    """A float64 value (a coordinate) as JSON: itself, or None where not finite."""
    return value if math.isfinite(value) else None


def json_numbers(values: np.ndarray) -> list[float | None]:
    """`json_number` of every value, at once, without writing each value's decimal text.

    For each value the shortest of 1..9 significant digits whose nearest float64 reads back
    to the same float32 is found for all values and digit counts together (a decimal of at
    most 9 digits scaled by an exact power of ten is one correctly rounded operation). That
    is the decimal numpy's float32 text names (equal on 13.5 million values, every bit
    pattern among them: tests/formats/test_numbers.py), 3x faster than writing the text of
    each value (730 values: 0.2 ms, 0.6 ms as text). Values beyond 1e±14 are written as text.
    """
    numbers = np.asarray(values, dtype=np.float32).ravel()
    with np.errstate(all="ignore"):  # NaN and inf are answered as null below
        exact = numbers.astype(np.float64)
        finite = np.isfinite(exact)
        nonzero = finite & (exact != 0)
        exponent = np.floor(np.log10(np.abs(np.where(nonzero, exact, 1.0)))).astype(np.int64)
        shift = DIGITS - 1 - exponent  # one row per digit count
        scale = POWERS_OF_TEN[np.minimum(np.abs(shift), MAX_EXACT_POWER)]
        up = shift >= 0
        mantissa = np.rint(np.where(up, exact * scale, exact / scale))
        decimals = np.where(up, mantissa / scale, mantissa * scale)
        reads_back = decimals.astype(np.float32) == numbers
    shortest = reads_back.argmax(axis=0)
    columns = np.arange(numbers.size)
    found = nonzero & (np.abs(exponent) <= MAX_EXACT_POWER - 8) & reads_back[shortest, columns]
    found |= finite & ~nonzero  # zeros are themselves
    chosen: list[float | None] = np.where(found, decimals[shortest, columns], exact).tolist()
    for i in np.flatnonzero(~finite).tolist():
        chosen[i] = None
    for i in np.flatnonzero(finite & ~found).tolist():
        chosen[i] = float(str(numbers[i]))
    return chosen


def json_number_lists(arrays: Sequence[np.ndarray]) -> list[list[float | None]]:
    """`json_numbers` of several arrays, all encoded in one call (a series of 10 runs: one
    call, not ten)."""
    flat = [np.asarray(a, dtype=np.float32).ravel() for a in arrays]
    if not flat:
        return []
    numbers = json_numbers(np.concatenate(flat))
    ends = np.cumsum([a.size for a in flat]).tolist()
    return [numbers[end - a.size:end] for a, end in zip(flat, ends, strict=True)]


def csv_numbers(values: np.ndarray) -> list[str]:
    """float32 values as CSV fields: numpy's shortest decimals (``20.48``, ``1e+08``), the
    same float32 read back; an empty field where there is no value."""
    numbers = np.asarray(values, dtype=np.float32).ravel()
    fields: list[str] = np.where(np.isfinite(numbers), numbers.astype(str), "").tolist()
    return fields
