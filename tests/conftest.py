"""Shared fixtures: the real sample files shipped with the project."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DEMO_DATA = ROOT / "fewsmap" / "demo" / "data"
TEST_DATA = ROOT / "tests" / "data"

SAMPLES = {
    "naefs": DEMO_DATA / "NAEFSmean_netcdf2022080912.nc",
    "fmat": sorted(DEMO_DATA.glob("FMAT12hr_20220601.*z.grb")),
    "wgust": DEMO_DATA / "wgust_ens.grib",
    "multi_param": TEST_DATA / "multi_param_on_multi_dims.grib",
    "gefs": TEST_DATA / "gefs" / "2019051500",
    "maxt": TEST_DATA / "ds.maxt.bin",
    "arome": TEST_DATA / "AROME_MetCoOp_00_DEF_20160114_subset.nc",
    "t_n48": TEST_DATA / "t_n48.grib",
}


def sample_paths(name: str) -> list[Path]:
    """The input paths of a named sample (one file, a folder, or several files)."""
    value = SAMPLES[name]
    return list(value) if isinstance(value, list) else [value]


@pytest.fixture
def sample() -> object:
    """Look up sample input paths by name."""
    return sample_paths


@pytest.fixture(scope="session")
def demo_stores(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A stores folder holding the demo stores, built once per test session (read-only)."""
    from fewsmap.demo import build_demo

    stores = tmp_path_factory.mktemp("demo") / "stores"
    build_demo(stores, progress=False)
    return stores
