"""Raw query parameters → case-insensitive lookup; the only place that sees the query dict
(every front: WMS, WMTS, tiles, EDR, the JSON API)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

from fewsmap.errors import (
    FewsmapError,
    InvalidDimensionValue,
    InvalidParameterValue,
    MissingParameterValue,
)

MAX_VALUE_LENGTH = 10_000
# Parameters that carry a document: SLD_BODY (fewsmap/ogc/sld.py reads at most 64 KiB).
MAX_DOCUMENT_LENGTH = {"sld_body": 65_536}


def finite_number(text: str, name: str,
                  error: type[FewsmapError] = InvalidDimensionValue) -> float:
    """Parse a parameter as a finite number (a dimension value unless ``error`` says else).

    Raises
    ------
    FewsmapError
        ``error`` (InvalidDimensionValue by default), naming the parameter and the value.
    """
    try:
        value = float(text)
    except ValueError as exc:
        raise error(f"{name}={text[:40]!r} is not a number") from exc
    if not math.isfinite(value):
        raise error(f"{name}={text[:40]!r} is not a finite number")
    return value


class Params:
    """Query parameters with case-insensitive names (OGC 06-042 §6.8.1); first value wins."""

    def __init__(self, items: Iterable[tuple[str, str]], strict: bool = True) -> None:
        self._values: dict[str, str] = {}
        for name, value in items:
            limit = MAX_DOCUMENT_LENGTH.get(name.lower(), MAX_VALUE_LENGTH)
            if len(value) > limit:
                if strict:
                    raise InvalidParameterValue(
                        f"parameter {name[:40]!r} is longer than {limit} characters")
                continue
            self._values.setdefault(name.lower(), value)

    @classmethod
    def for_errors(cls, items: Iterable[tuple[str, str]]) -> Params:
        """Parameters for shaping an error answer: never raises, drops what it cannot use."""
        return cls(items, strict=False)

    @classmethod
    def of(cls, mapping: Mapping[str, str]) -> Params:
        """Build from a plain mapping (tests, notebooks)."""
        return cls(mapping.items())

    def prefixed(self, prefix: str) -> dict[str, str]:
        """Parameters whose (lower-cased) name starts with ``prefix``, prefix removed."""
        prefix = prefix.lower()
        return {name[len(prefix):]: value for name, value in self._values.items()
                if name.startswith(prefix) and len(name) > len(prefix)}

    def items(self) -> list[tuple[str, str]]:
        """Every (lower-cased name, value) pair, first value of each name."""
        return list(self._values.items())

    def get(self, name: str, default: str | None = None) -> str | None:
        """Return the value of ``name`` (any case), or ``default``."""
        return self._values.get(name.lower(), default)

    def require(self, name: str) -> str:
        """Return the non-empty value of ``name``.

        Raises
        ------
        MissingParameterValue
            If the parameter is absent or empty.
        """
        value = self.get(name)
        if not value:
            raise MissingParameterValue(f"parameter {name.upper()} is required")
        return value

    def flag(self, name: str, default: bool = False) -> bool:
        """Return a boolean parameter (``true``/``false``, any case).

        Raises
        ------
        InvalidParameterValue
            If the value is not a boolean.
        """
        value = self.get(name)
        if value is None or value == "":
            return default
        if value.lower() in ("true", "1", "yes"):
            return True
        if value.lower() in ("false", "0", "no"):
            return False
        raise InvalidParameterValue(f"parameter {name} must be true or false, not {value[:40]!r}")

    def pixels(self, name: str, maximum: int) -> int | None:
        """Return a size in whole pixels, 1..``maximum``, or None when absent.

        Raises
        ------
        InvalidParameterValue
            If the value is not a whole number in range.
        """
        text = self.get(name)
        if not text:
            return None
        try:
            value = int(text)
        except ValueError as exc:
            raise InvalidParameterValue(
                f"{name.upper()}={text[:20]!r} must be a whole number of pixels") from exc
        if not 0 < value <= maximum:
            raise InvalidParameterValue(f"{name.upper()}={value} must be 1..{maximum} pixels")
        return value
