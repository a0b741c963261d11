"""The catalog the resolution tests read: two runs of a 1° grid."""

from __future__ import annotations

import pytest

from fewsmap.catalog import Catalog
from fewsmap.settings import Settings
from tests.synthetic import NEXT_RUN, T0, lonlat_store


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Catalog:
    """Store ``s``: two runs (T0, `NEXT_RUN`) of ``lon`` and ``lat`` on a 1° grid."""
    stores = tmp_path_factory.mktemp("resolve") / "stores"
    lonlat_store(stores / "s.zarr", T0)
    lonlat_store(stores / "s.zarr", NEXT_RUN, offset=1.0)
    return Catalog(Settings(stores_dir=stores))
