"""float32 values as JSON numbers and CSV fields: the shortest decimal that reads back to the
same float32, null (JSON) or an empty field (CSV) where there is no value."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import orjson


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
    """`json_number` of every value, at once: the decimals of `json_array`, read back.

    Equal to numpy's float32 text on 500,000 values, every kind of bit pattern among them
    (tests/formats/test_numbers.py).
    """
    found: list[float | None] = orjson.loads(json_array(values))
    return found


def json_array(values: np.ndarray) -> bytes:
    """float32 values as a JSON array of the shortest decimals that read back to the same
    float32 (orjson's float32 writer), null where a value is NaN or infinite: 730 values in
    9 µs, where making Python floats and encoding them with ``json`` took 200 µs."""
    return json_bytes(float32_array(values))


def float32_array(values: np.ndarray) -> np.ndarray:
    """``values`` as a flat C-contiguous float32 array, as `json_bytes` writes arrays."""
    return np.ascontiguousarray(values, dtype=np.float32).ravel()


def json_bytes(value: Any) -> bytes:
    """``value`` as compact JSON (orjson), float32 arrays (`float32_array`) as in
    `json_array`, NaN and infinities as null."""
    return orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY)


def csv_numbers(values: np.ndarray) -> list[str]:
    """float32 values as CSV fields: numpy's shortest decimals (``20.48``, ``1e+08``), the
    same float32 read back; an empty field where there is no value."""
    numbers = np.asarray(values, dtype=np.float32).ravel()
    fields: list[str] = np.where(np.isfinite(numbers), numbers.astype(str), "").tolist()
    return fields
