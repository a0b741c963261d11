"""A configured service for the WMS operations of the SLD profile (DescribeLayer, GetStyles)."""

from __future__ import annotations

import pytest

from fewsmap.app.server import create_app
from fewsmap.settings import Settings
from tests.asgi_client import AppClient
from tests.synthetic import lonlat_store

CONFIG = """
[[styles]]
id = "bands"
title = "Bands of longitude"
breaks = [-10, 0, 5, 20]
colors = ["#ffffff", "#99f3ff", "#0080ff", "#ff00ff"]

[[styles]]
id = "warm"
title = "Warm"
colormap = "magma"
range = [-20, 40]

[[groups]]
id = "coordinates"

[[layers]]
id = "longitude"
store = "grid"
variable = "lon"
group = "coordinates"
styles = ["bands", "warm"]

[[layers]]
id = "latitude"
store = "grid"
variable = "lat"
group = "coordinates"
"""


@pytest.fixture(scope="module")
def configured(tmp_path_factory: pytest.TempPathFactory) -> AppClient:
    """Layers ``longitude`` (styles ``bands``, ``warm``) and ``latitude`` (its default
    style) of one lon/lat grid store, both in the group ``coordinates``."""
    folder = tmp_path_factory.mktemp("configured")
    lonlat_store(folder / "stores" / "grid.zarr")
    config = folder / "fewsmap.toml"
    config.write_text(CONFIG)
    return AppClient(create_app(Settings(stores_dir=folder / "stores", config_file=config)))
