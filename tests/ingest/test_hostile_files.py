"""Hostile inputs to ``fewsmap ingest``: a one-line reason, exit 2, the store untouched.

Run as users run it (a subprocess), into a store holding a published run; the store's
folder is hashed file by file before and after. Into a new store, nothing is created.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from fewsmap.errors import IngestError
from fewsmap.ingest import ingest
from fewsmap.ingest.limits import IngestLimits
from tests.conftest import ROOT, tree_digest
from tests.forecast_files import forecast_file, run_time
from tests.ingest.hostile import HOSTILE

# Keeps the gzip bomb test fast: it unpacks 256 MiB, not the default 4 GiB, before refusing.
GUNZIP_LIMIT = 256 << 20


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A stores folder with one store holding one published run."""
    folder = tmp_path_factory.mktemp("hostile")
    run = forecast_file(folder / "in", run_time(0), shape=(60, 80))
    ingest(folder / "stores" / "feed.zarr", [run], progress=False)
    return folder / "stores"


def fewsmap_ingest(store: Path, path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fewsmap.cli", "ingest", "--quiet", "--store", str(store),
         str(path)], capture_output=True, text=True, timeout=120, cwd=ROOT,
        env={**os.environ, "FEWSMAP_MAX_GUNZIP_BYTES": str(GUNZIP_LIMIT)})


@pytest.mark.parametrize("kind", HOSTILE)
def test_hostile_input_fails_in_one_line_and_leaves_the_store(
    kind: str, stores: Path, tmp_path: Path
) -> None:
    bad = HOSTILE[kind](tmp_path)
    before = tree_digest(stores)

    result = fewsmap_ingest(stores / "feed.zarr", bad)

    assert result.returncode == 2
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith("fewsmap: error: ")
    assert bad.name in line or "forecast_2026030106.nc" in line  # names the file
    assert tree_digest(stores) == before


@pytest.mark.parametrize("kind", [k for k in HOSTILE if k != "other grid than the store"])
def test_hostile_input_creates_no_store(kind: str, tmp_path: Path) -> None:
    bad = HOSTILE[kind](tmp_path)
    with pytest.raises(IngestError):
        ingest(tmp_path / "new.zarr", [bad], progress=False,
               limits=IngestLimits(max_gunzip_bytes=GUNZIP_LIMIT))
    assert not (tmp_path / "new.zarr").exists()


def test_limits_are_messages_not_crashes(tmp_path: Path) -> None:
    """A run above max_run_cells or a field above max_field_cells is refused by name."""
    run = forecast_file(tmp_path, run_time(0), steps=4, shape=(60, 80))
    with pytest.raises(IngestError, match=r"holds 19,200 values, more than the limit of "
                                          r"10,000 per run \(max_run_cells\)"):
        ingest(tmp_path / "s.zarr", [run], limits=IngestLimits(max_run_cells=10_000))
    with pytest.raises(IngestError, match=r"'longitude' has 80 entries.*max_field_cells"):
        ingest(tmp_path / "s.zarr", [run], limits=IngestLimits(max_field_cells=70))
    with pytest.raises(IngestError, match=r"fields of 4,800 cells.*max_field_cells"):
        ingest(tmp_path / "s.zarr", [run], limits=IngestLimits(max_field_cells=4_000))
    assert not (tmp_path / "s.zarr").exists()

