"""The layer a name means: a catalog layer (or a per-forecast id), or a derived run change."""

from __future__ import annotations

from fewsmap.catalog import Catalog, Layer
from fewsmap.products.change import CHANGE_SUFFIX, PREVIOUS_RUN, Baseline
from fewsmap.store.cube import RunInfo


def resolve_layer(catalog: Catalog, name: str) -> tuple[Layer, RunInfo | None,
                                                       Baseline | None]:
    """The layer and run a name means (`Catalog.resolve`), also for a derived layer
    ``<layer>:change``, whose baseline is the previous run.

    Raises
    ------
    LayerNotDefined
        For a name that is neither.
    """
    layer, run = catalog.resolve(name)
    derived = name.endswith(CHANGE_SUFFIX) and name not in catalog.layers
    return layer, run, PREVIOUS_RUN if derived else None
