"""fewsmap: forecast-grid map service publishing Zarr forecast cubes as WMS-T."""

__version__ = "0.1.0"

from fewsmap.catalog import Catalog
from fewsmap.store.cube import ForecastStore, open_cube

__all__ = ["Catalog", "ForecastStore", "__version__", "open_cube"]
