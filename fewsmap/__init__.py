"""fewsmap: forecast-grid map service publishing Zarr forecast cubes as WMS-T."""

__version__ = "0.1.0"

from typing import Any

from fewsmap.catalog import Catalog
from fewsmap.client import accessor  # noqa: F401  (registers ds.fewsmap and da.fewsmap)
from fewsmap.store.cube import ForecastStore, open_cube

__all__ = ["Catalog", "Client", "ForecastStore", "__version__", "open_cube", "render_map"]


def __getattr__(name: str) -> Any:
    """``fewsmap.render_map`` and ``fewsmap.Client``, imported on first use: drawing pulls in
    datashader and matplotlib, which the command line should not pay for."""
    if name == "render_map":
        from fewsmap.client.maps import render_map

        return render_map
    if name == "Client":
        from fewsmap.client.service import Client

        return Client
    raise AttributeError(f"module 'fewsmap' has no attribute {name!r}")
