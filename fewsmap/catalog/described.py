"""Describe each layer of a service-wide document, leaving out a layer that cannot be.

Capabilities (WMS XML and FEWS JSON, WMTS) and the EDR collections list every layer: one
store whose metadata cannot be read (a grid kind the code does not know yet, a damaged
coordinate array) must not turn the whole document into a 500 for everyone (issue #13). The
layer is left out and the failure logged with its traceback; its own requests still say why.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import TypeVar

from fewsmap.catalog.layers import Layer

log = logging.getLogger(__name__)
Description = TypeVar("Description")


def describe_each(layers: Iterable[Layer], describe: Callable[[Layer], Description],
                  document: str) -> list[tuple[Layer, Description]]:
    """Return ``(layer, describe(layer))`` for every layer that ``describe`` accepts.

    Parameters
    ----------
    layers
        The layers the document lists, in order.
    describe
        Builds one layer's part of the document; any exception leaves the layer out.
    document
        The document's name, for the log.
    """
    described = []
    for layer in layers:
        try:
            described.append((layer, describe(layer)))
        except Exception:  # any failure of one layer, by design (see the module docstring)
            log.exception("%s: layer %r left out, its metadata cannot be read", document,
                          layer.id)
    return described
