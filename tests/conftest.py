"""Shared fixtures: the real sample files shipped with the project."""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from hypothesis import settings

from tests.live_server import live_server
from tests.s3server import S3Server, s3_server

# No per-example deadline: the first example may compile numba kernels (seconds), and the
# suite shares 2 cores; speed is measured in benchmarks/, not by hypothesis.
settings.register_profile("fewsmap", deadline=None)
settings.load_profile("fewsmap")

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
    # Two runs of an NWS GFE NetCDF export (times in attributes, 2-D lat/lon, not CF)
    "cnrfc_qpf": sorted((TEST_DATA / "cnrfc-qpf").glob("qpf.*.nc.gz")),
}


FIGURES: dict[str, list[str]] = {}

# Modules that measure time, memory or throughput, or print figures for the CI log: `make
# test` runs them alone (`pytest -m serial`) after the rest ran in parallel (`pytest -n auto
# --dist loadfile -m "not serial"`), so workers sharing the cores cannot skew them, and their
# figures reach the terminal summary (xdist workers' summaries are not shown).
SERIAL_MODULES = frozenset({
    "tests/fuzz/test_fuzz.py", "tests/fuzz/test_fuzz_http.py", "tests/fuzz/test_schemathesis.py",
    "tests/test_load.py", "tests/test_benchmarks.py", "tests/store/test_crash.py",
    "tests/store/test_object_store.py", "tests/app/test_ingest_while_serving.py",
    "tests/app/test_limits.py", "tests/app/test_warmup.py", "tests/app/test_server.py",
    "tests/app/test_http_errors.py", "tests/app/test_metrics.py",
    "tests/app/test_connections.py", "tests/app/test_streaming.py",
    "tests/app/test_object_serving.py",
})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.relative_to(ROOT).as_posix() in SERIAL_MODULES:
            item.add_marker(pytest.mark.serial)


def record_figure(title: str, line: str) -> None:
    """Keep a reliability figure for the terminal summary, so CI logs show it
    (docs/reliability.md records them)."""
    FIGURES.setdefault(title, []).append(line)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if FIGURES:
        terminalreporter.section("reliability figures")
        for title, lines in FIGURES.items():
            for line in lines:
                terminalreporter.write_line(f"{title}: {line}")


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


@pytest.fixture(scope="module")
def served_stores(demo_stores: Path,
                  tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    """A copy of the demo stores (a test may add a store to it) and the URL of a real
    ``fewsmap serve`` publishing it."""
    stores = tmp_path_factory.mktemp("served") / "stores"
    shutil.copytree(demo_stores, stores)
    with live_server("--stores", str(stores)) as url:
        yield stores, url


def open_source(path: Path) -> xr.Dataset:
    """Open an input file the way a user checks it: cfgrib for GRIB, xarray's default else."""
    if path.suffix in (".grib", ".grb", ".bin"):
        return xr.open_dataset(path, engine="cfgrib", decode_timedelta=True,
                               backend_kwargs={"indexpath": ""})
    return xr.open_dataset(path, decode_timedelta=True)


def assert_values(stored: object, expected: object) -> None:
    """Stored values are float32 and equal the source's float32 values, NaN where it is NaN."""
    stored_values = np.asarray(stored)
    expected_values = np.asarray(expected, dtype="float32")
    assert stored_values.dtype == np.float32
    assert np.isfinite(expected_values).any()
    np.testing.assert_array_equal(stored_values, expected_values)


def seconds(times: object) -> np.ndarray:
    """Times as datetime64[s], the unit ``ForecastStore`` uses."""
    return np.asarray(times).astype("datetime64[s]")


def tree_digest(folder: Path) -> dict[str, str]:
    """Map everything under ``folder`` (relative path) to what it is: a file to the sha256
    of its bytes, a folder to "folder", a symlink to its target (not followed)."""
    def entry(path: Path) -> str:
        if path.is_symlink():
            return f"symlink to {path.readlink()}"
        if path.is_dir():
            return "folder"
        return hashlib.sha256(path.read_bytes()).hexdigest()

    return {str(p.relative_to(folder)): entry(p) for p in sorted(folder.rglob("*"))}


@pytest.fixture(scope="session")
def ingested(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """Ingest a named sample into its own store once per session; return the store's path.

    The stores are shared: tests must not write to them (copy one first).
    """
    from fewsmap.ingest import ingest

    stores: dict[str, Path] = {}

    def store_of(name: str) -> Path:
        if name not in stores:
            path = tmp_path_factory.mktemp(name) / f"{name}.zarr"
            ingest(path, sample_paths(name), progress=False)
            stores[name] = path
        return stores[name]

    return store_of


@pytest.fixture(scope="session")
def point_stores(tmp_path_factory: pytest.TempPathFactory,
                 ingested: Callable[[str], Path]) -> Path:
    """A stores folder with the known-field grid and real samples (shared, read-only)."""
    from tests.synthetic import lonlat_store

    folder = tmp_path_factory.mktemp("points") / "stores"
    lonlat_store(folder / "grid.zarr")
    for name in ("naefs", "fmat", "gefs", "multi_param"):
        (folder / f"{name}.zarr").symlink_to(ingested(name))
    return folder


@pytest.fixture(scope="session")
def s3() -> Iterator[S3Server]:
    """A real S3-compatible server (moto's server mode) for the session's object-store tests."""
    with s3_server() as server:
        yield server


@pytest.fixture
def s3_env(s3: S3Server, monkeypatch: pytest.MonkeyPatch) -> S3Server:
    """The S3 server, with the standard AWS variables set for this test (and its children)."""
    for key, value in s3.env.items():
        monkeypatch.setenv(key, value)
    return s3
