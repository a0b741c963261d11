"""Units as people read them: the UDUNITS form of the units strings files carry.

GRIB decoders (ecCodes, cfgrib) write exponents Fortran-style (``kg m**-2 s**-1``) and some
files use ``^``, ``*`` or ``.``; CF and UDUNITS-2 write ``kg m-2 s-1``. Legends, feature
info and styles show the UDUNITS form, so one quantity always reads the same.
"""

from __future__ import annotations

import re

# "m**-2", "m^2": a unit symbol, the exponent marker, a signed whole exponent.
EXPONENT = re.compile(r"(?<=[A-Za-z%])\s*(?:\*\*|\^)\s*([+-]?\d+)")
# "kg*m-2", "kg.m-2": a product written with a marker between two units.
PRODUCT = re.compile(r"(?<=[A-Za-z0-9%])\s*[*.·]\s*(?=[A-Za-z%])")
# ecCodes' units of a fraction (cloud cover): "(0 - 1)".
FRACTION = re.compile(r"\(\s*0\s*-\s*1\s*\)")


def udunits(units: str) -> str:
    """Write ``units`` in UDUNITS form: ``kg m**-2 s**-1`` → ``kg m-2 s-1``.

    Only the spelling changes: exponents lose their ``**``/``^`` marker (and a ``+`` sign),
    products their ``*``/``.`` marker, and ecCodes' ``(0 - 1)`` of a
    fraction is ``1``. Anything else (``degC``, ``m/s``, ``%``) is kept as written.

    Parameters
    ----------
    units
        A units attribute as a file carries it.

    Returns
    -------
    str
        The same units in UDUNITS form; empty for empty units.
    """
    text = FRACTION.sub("1", units.strip())
    text = EXPONENT.sub(lambda match: match.group(1).lstrip("+"), text)
    return PRODUCT.sub(" ", text)
