"""The fuzzed service: the demo stores, a synthetic grid and bait outside the stores folder.

Beside the stores folder lies ``outside/`` with a secret in a plain file and in a
``zarr.json``; the stores folder links to it (``outside.zarr``, a symlinked "store") and the
synthetic store holds a symlink into it. No answer may ever contain the secret.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import pytest

from fewsmap.catalog import Catalog
from fewsmap.settings import Settings
from fewsmap.time.instants import format_time
from tests.fuzz.checks import Figures
from tests.fuzz.strategies import FUZZ_TOKEN, Names
from tests.synthetic import lonlat_store

FIGURES: dict[str, Figures] = {}


def budget() -> int:
    """Requests to send in process (``FEWSMAP_FUZZ_REQUESTS``, default 5,000); a twentieth
    of that again over real HTTP."""
    return int(os.environ.get("FEWSMAP_FUZZ_REQUESTS", "5000"))


def figures(title: str) -> Figures:
    """The counters of one batch, printed in the terminal summary."""
    return FIGURES.setdefault(title, Figures())


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print the fuzzing figures (docs/reliability.md records them)."""
    if FIGURES:
        terminalreporter.section("fuzzing figures")
        for title, counts in FIGURES.items():
            terminalreporter.write_line(counts.summary(title))


@pytest.fixture(scope="session")
def secret() -> bytes:
    return secrets.token_hex(16).encode()


@pytest.fixture(scope="session")
def fuzz_stores(tmp_path_factory: pytest.TempPathFactory, demo_stores: Path,
                secret: bytes) -> Path:
    root = tmp_path_factory.mktemp("fuzz")
    outside = root / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_bytes(secret)
    (outside / "zarr.json").write_bytes(b'{"zarr_format": 3, "secret": "' + secret + b'"}')
    stores = root / "stores"
    stores.mkdir()
    for store in demo_stores.iterdir():
        (stores / store.name).symlink_to(store)
    grid = lonlat_store(stores / "grid.zarr")
    (grid / "leak").symlink_to(outside)
    (grid / "lon" / "secret.txt").symlink_to(outside / "secret.txt")
    (stores / "outside.zarr").symlink_to(outside)
    return stores


@pytest.fixture(scope="session")
def fuzz_settings(fuzz_stores: Path) -> Settings:
    """Zero configuration, but for a token protecting a layer and a group."""
    config = fuzz_stores.parent / "fewsmap.toml"
    config.write_text(f'[[security.tokens]]\ntoken = "{FUZZ_TOKEN}"\nlayers = ["grid.lat"]\n'
                      'groups = ["marfc-fmat"]\n')
    return Settings(stores_dir=fuzz_stores, config_file=config)


@pytest.fixture(scope="session")
def fuzz_names(fuzz_settings: Settings, fuzz_stores: Path) -> Names:
    catalog = Catalog(fuzz_settings)
    runs, times = [], set()
    for layer in catalog.layers.values():
        for run in catalog.runs(layer)[-2:]:
            runs.append(f"{layer.id}-{run.label}")
            times.add(run.label)
            steps = run.valid_times
            times.update(format_time(t) for t in (steps[0], steps[len(steps) // 2], steps[-1]))
    keys = [str(p.relative_to(fuzz_stores / "grid.zarr"))
            for p in sorted((fuzz_stores / "grid.zarr").rglob("*")) if p.is_file()][:40]
    v2_keys = [".zmetadata", ".zgroup", ".zattrs", *(
        k.replace("/c/", "/", 1).replace("zarr.json", ".zarray") for k in keys)]
    return Names(layers=tuple(catalog.layers), groups=tuple(catalog.groups),
                 stores=tuple(catalog.stores), runs=tuple(runs), times=tuple(sorted(times)),
                 store_keys=(*keys, *v2_keys),
                 secret_path=str(fuzz_stores.parent / "outside" / "secret.txt"))

