"""Retention: old runs leave the published list at once and the disk after the grace period."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fewsmap import ForecastStore, open_cube
from fewsmap.catalog import Catalog
from fewsmap.errors import ConfigError
from fewsmap.ingest import ingest
from fewsmap.settings import load_settings
from fewsmap.store.retention import RetentionPolicy, prune
from tests.conftest import ROOT, tree_digest
from tests.forecast_files import expected_value, forecast_file, run_time

LABELS = [str(run_time(i)) + "Z" for i in range(4)]  # six-hourly from 2026-03-01T00Z


def at(text: str) -> np.datetime64:
    return np.datetime64(text, "s")


@pytest.mark.parametrize(("policy", "now", "expired"), [
    (RetentionPolicy(keep_runs=2), "2026-03-01T18:00", LABELS[:2]),
    (RetentionPolicy(keep_runs=9), "2026-03-01T18:00", []),
    (RetentionPolicy(keep_days=0.5), "2026-03-01T23:00", LABELS[:2]),  # cut-off at 11:00
    (RetentionPolicy(keep_days=7), "2026-03-02T01:00", []),
    # Either limit removes a run: the last 3, and of those only the ones from the last 0.5 d.
    (RetentionPolicy(keep_runs=3, keep_days=0.5), "2026-03-01T23:00", LABELS[:2]),
    (RetentionPolicy(keep_runs=1, keep_days=7), "2026-03-02T01:00", LABELS[:3]),
    # A feed that stopped long ago keeps its latest run: the service never goes empty.
    (RetentionPolicy(keep_days=1), "2027-01-01T00:00", LABELS[:3]),
])
def test_policy_removes_beyond_either_limit_but_never_the_latest(
    policy: RetentionPolicy, now: str, expired: list[str]
) -> None:
    assert policy.expired(list(reversed(LABELS)), at(now)) == expired


@pytest.mark.parametrize(("entry", "message"), [
    ("keep_runs = 0", "keep_runs = 0: Input should be greater than or equal to 1"),
    ("keep_runs = 2.5", "keep_runs = 2.5: Input should be a valid integer"),
    ("keep_runs = 'ten'", "keep_runs = 'ten': Input should be a valid integer"),
    ("keep_days = -1", "keep_days = -1: Input should be greater than 0"),
    ("keep_days = 'soon'", "keep_days: must be a number, not 'soon'"),
    ("keep_run = 3", "keep_run: unknown key; did you mean 'keep_runs'?"),
])
def test_bad_policy_is_a_config_error_naming_file_and_key(tmp_path: Path, entry: str,
                                                           message: str) -> None:
    config = tmp_path / "fewsmap.toml"
    config.write_text(f"[stores.feed]\n{entry}\n")
    with pytest.raises(ConfigError) as raised:
        load_settings(config, environ={})
    assert str(raised.value) == f"{config}: stores.feed.{message}"


def test_a_policy_is_read_from_the_store_table(tmp_path: Path) -> None:
    config = tmp_path / "fewsmap.toml"
    config.write_text('[stores]\narchive = "/data/a.zarr"\n[stores.feed]\nkeep_runs = 3\n'
                      "keep_days = 1.5\n")
    settings = load_settings(config, environ={})
    assert settings.config.retention("feed") == RetentionPolicy(3, 1.5)
    assert settings.config.retention("archive") == RetentionPolicy()
    assert not settings.config.retention("elsewhere").active


@pytest.fixture
def store(tmp_path: Path) -> Path:
    """A store with four six-hourly runs."""
    inputs = [forecast_file(tmp_path / "in", run_time(i), shape=(60, 80)) for i in range(4)]
    ingest(tmp_path / "stores" / "feed.zarr", inputs, progress=False)
    return tmp_path / "stores" / "feed.zarr"


def chunk_digests(store: Path, slot: int) -> dict[str, str]:
    """The chunk files of one run slot and their checksums (empty once vacuumed)."""
    folder = store / "tp" / "c" / str(slot)
    return tree_digest(folder) if folder.exists() else {}


def test_pruned_runs_stay_readable_until_the_grace_period_then_leave_the_disk(
    store: Path
) -> None:
    reader = ForecastStore(store)  # opened before the prune, as a serving process is
    old = reader.run(LABELS[0])
    chunks = [chunk_digests(store, slot) for slot in range(4)]
    assert all(chunks)

    result = prune(store, RetentionPolicy(keep_runs=2))

    assert result.removed == LABELS[:2] and result.vacuumed == []
    assert [r.label for r in ForecastStore(store).runs] == LABELS[2:]
    assert open_cube(store).sizes["forecast_reference_time"] == 2
    # Within the grace period the old reader still reads the removed run's values.
    values = reader.read_slice("tp", old, old.valid_times[-1])
    assert np.floor(values).min() == expected_value(run_time(0), len(old.valid_times) - 1)

    again = prune(store, RetentionPolicy(keep_runs=2), grace_s=0)  # the grace has passed

    assert again.removed == [] and again.vacuumed == LABELS[:2]
    # The removed runs' chunks are gone; the kept runs' are byte for byte what they were.
    assert [chunk_digests(store, slot) for slot in range(4)] == [{}, {}, *chunks[2:]]
    fs = ForecastStore(store)
    assert fs.attrs["retired"] == []
    assert np.isnat(fs.coordinate("forecast_reference_time").astype("datetime64[s]")[:2]).all()
    assert [r.label for r in fs.runs] == LABELS[2:]


def test_prune_with_nothing_to_do_changes_nothing(store: Path) -> None:
    before = tree_digest(store.parent)
    assert prune(store, RetentionPolicy(keep_runs=4, keep_days=365)).removed == []
    assert tree_digest(store.parent) == before


def test_a_pruned_run_can_be_ingested_again(store: Path, tmp_path: Path) -> None:
    prune(store, RetentionPolicy(keep_runs=1))
    first = sorted((tmp_path / "in").glob("*.nc"))[0]

    [result] = ingest(store, [first], progress=False)

    assert result.status == "written"
    fs = ForecastStore(store)
    assert [r.label for r in fs.runs] == [LABELS[0], LABELS[3]]
    run = fs.run(LABELS[0])
    assert run.slot == 4  # a new slot: the old one is only retired
    for index, valid_time in enumerate(run.valid_times):
        assert np.floor(fs.read_slice("tp", run, valid_time)).min() == \
            expected_value(run_time(0), index)


def fewsmap(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "fewsmap.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=120, cwd=ROOT,
                          env={**os.environ, "FEWSMAP_CONFIG_FILE": ""})


def test_prune_command_and_retention_after_ingest(store: Path, tmp_path: Path) -> None:
    result = fewsmap("prune", "--stores", store.parent, "--store", "feed", "--keep-runs", "3")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"{store}: run {LABELS[0]} removed (keep_runs = 3); its chunks are deleted after "
        "the grace period"]

    config = tmp_path / "fewsmap.toml"
    config.write_text("[stores.feed]\nkeep_runs = 2\n")
    newer = forecast_file(tmp_path / "in", run_time(4), shape=(60, 80))
    result = fewsmap("ingest", "--quiet", "--config", config, "--store", store, newer)
    assert result.returncode == 0, result.stderr
    assert f"run {run_time(4)}Z written" in result.stdout
    assert f"run {LABELS[1]} removed (keep_runs = 2)" in result.stdout
    assert f"run {LABELS[2]} removed (keep_runs = 2)" in result.stdout
    assert [r.label for r in ForecastStore(store).runs] == [LABELS[3], f"{run_time(4)}Z"]

    # The policy comes from the configuration when no flag is given.
    result = fewsmap("prune", "--config", config, "--store", store)
    assert result.returncode == 0
    assert result.stdout.strip() == f"{store}: no run to remove (keep_runs = 2)"


@pytest.mark.parametrize(("args", "message"), [
    (["--keep-runs", "0"], "keep_runs must be at least 1, not 0"),
    ([], "no retention policy for store 'feed'"),
])
def test_prune_command_refuses_in_one_line(store: Path, args: list[str], message: str) -> None:
    before = tree_digest(store.parent)
    result = fewsmap("prune", "--store", store, *args)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [f"fewsmap: error: {message}" + (
        "" if args else ": pass --keep-runs/--keep-days or set [stores.feed]")]
    assert tree_digest(store.parent) == before


def test_store_table_sets_a_path_and_a_policy(store: Path, tmp_path: Path) -> None:
    config = tmp_path / "fewsmap.toml"
    config.write_text(f'[stores.archive]\npath = "{store}"\nkeep_days = 30\n')
    catalog = Catalog(load_settings(config_file=config, stores_dir=tmp_path / "empty"))
    assert list(catalog.stores) == ["archive"]
    assert "archive.tp" in catalog.layers
