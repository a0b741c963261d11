"""Real third-party clients against the real ``fewsmap serve``: one server for the package."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from fewsmap import open_cube
from tests.live_server import live_server

ISO_SECONDS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
# The data layers of the demo stores (tests/conftest.py `demo_stores`) and their groups.
DATA_LAYERS = ("ecmwf-ens-gust.fg10_6", "marfc-fmat.t", "naefs-mean.QPF", "naefs-mean.QTF")
GROUPS = ("ecmwf-ens-gust", "marfc-fmat", "naefs-mean")
# naefs-mean: 0.5° cell centres -125..-65 east, 24..54 north, so its cell edges are these.
NAEFS_EDGES = (-125.25, 23.75, -64.75, 54.25)


@pytest.fixture(scope="package")
def base_url(demo_stores: Path) -> Iterator[str]:
    """Base URL of one ``fewsmap serve --stores <demo stores>`` shared by the client tests."""
    with live_server("--stores", str(demo_stores)) as url:
        yield url


def latest_valid_times(stores: Path, store: str) -> list[str]:
    """The valid times of a store's latest run, formatted as the capabilities write them."""
    with open_cube(stores / f"{store}.zarr") as cube:
        times = cube["valid_time"].isel(forecast_reference_time=-1).values
    return [f"{t}Z" for t in np.asarray(times).astype("datetime64[s]")]


def run_times(stores: Path, store: str) -> list[str]:
    """The forecast reference times of every run of a store, oldest first."""
    with open_cube(stores / f"{store}.zarr") as cube:
        times = cube["forecast_reference_time"].values
    return [f"{t}Z" for t in np.asarray(times).astype("datetime64[s]")]
