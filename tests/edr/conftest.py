"""Stores for the EDR tests: the demo stores, a grid with pressure levels, Lambert and
curvilinear grids with known fields (shared, read-only)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from fewsmap.catalog import Catalog
from fewsmap.settings import Settings
from tests.synthetic import lambert_store
from tests.test_points import curvilinear_store


@pytest.fixture(scope="session")
def edr_stores(tmp_path_factory: pytest.TempPathFactory, demo_stores: Path,
               ingested: Callable[[str], Path]) -> Path:
    """naefs-mean, marfc-fmat, ecmwf-ens-gust; ``levels`` (ECMWF t/u/z on 4 pressure levels,
    longitudes 0..355); ``lambert`` and ``curvilinear`` (value = the cell's lon or lat)."""
    folder = tmp_path_factory.mktemp("edr") / "stores"
    folder.mkdir()
    for store in demo_stores.iterdir():
        (folder / store.name).symlink_to(store)
    (folder / "levels.zarr").symlink_to(ingested("multi_param"))
    lambert_store(folder / "lambert.zarr")
    curvilinear_store(folder / "curvilinear.zarr")
    return folder


@pytest.fixture(scope="session")
def catalog(edr_stores: Path) -> Catalog:
    return Catalog(Settings(stores_dir=edr_stores))
