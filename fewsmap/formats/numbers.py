"""float32 values as JSON numbers and CSV fields: the shortest decimal that reads back to the
same float32, null (JSON) or an empty field (CSV) where there is no value."""

from __future__ import annotations

import math

import numpy as np


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
    """`json_number` of every value, at once: numpy writes a float32 array's shortest
    decimals in one call (a series of 730 values took 5 ms one by one)."""
    numbers = np.asarray(values, dtype=np.float32).ravel()
    return [float(text) if finite else None for text, finite in zip(
        numbers.astype(str).tolist(), np.isfinite(numbers).tolist(), strict=True)]


def csv_numbers(values: np.ndarray) -> list[str]:
    """float32 values as CSV fields: numpy's shortest decimals (``20.48``, ``1e+08``), the
    same float32 read back; an empty field where there is no value."""
    numbers = np.asarray(values, dtype=np.float32).ravel()
    fields: list[str] = np.where(np.isfinite(numbers), numbers.astype(str), "").tolist()
    return fields
