"""Units read the same whatever wrote them: the UDUNITS form of legends and feature info."""

from __future__ import annotations

import pytest

from fewsmap.units import udunits


@pytest.mark.parametrize(("raw", "shown"), [
    ("kg m**-2 s**-1", "kg m-2 s-1"),  # ecCodes / cfgrib
    ("kg m**-2", "kg m-2"),
    ("m**2 s**-2", "m2 s-2"),  # geopotential
    ("m s**-1", "m s-1"),
    ("m^2 s^-1", "m2 s-1"),
    ("m**+2", "m2"),
    ("kg*m-2", "kg m-2"),
    ("kg.m-2.s-1", "kg m-2 s-1"),
    ("(0 - 1)", "1"),  # ecCodes' cloud cover fraction
    ("  K ", "K"),
    ("degC", "degC"),
    ("m/s", "m/s"),
    ("%", "%"),
    ("0.5 m", "0.5 m"),  # a number is not a product
    ("", ""),
])
def test_units_are_written_in_udunits_form(raw: str, shown: str) -> None:
    assert udunits(raw) == shown
