"""pyproject.toml declares what fewsmap imports, and imports what it declares (issue #17).

A package fewsmap imports but does not declare arrives only while another package still
depends on it (numba through datashader, affine through rasterio): one release of theirs
and a fresh install breaks. A package declared but never imported is weight every install
carries. Packages loaded by name rather than by ``import`` (xarray's I/O engines, a C
library's wheel) are the explicit exceptions below, each with its reason.
"""

from __future__ import annotations

import ast
import importlib.metadata
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.conftest import ROOT

PACKAGE = ROOT / "fewsmap"

# Declared, never imported by fewsmap: who loads each one, and why it must be installed.
LOADED_BY_NAME = {
    "netcdf4": "xarray's engine='netcdf4' (ingest/sources.py, export/netcdf.py)",
    "eccodeslib": "the ecCodes C library's wheel, which the eccodes binding loads",
    "fsspec": "zarr and xarray open store URLs (s3://, http://.../zarr/<store>) with fsspec",
    "httptools": "the HTTP parser of uvicorn's protocol that app/connections.py guards",
}


def top_level_imports(path: Path) -> set[str]:
    """Return the top-level module names one module imports (absolute imports only)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name.partition(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.partition(".")[0])
    return names


def third_party_modules() -> dict[str, list[str]]:
    """Map each non-stdlib module fewsmap imports to the fewsmap modules importing it."""
    users: dict[str, list[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        for name in top_level_imports(path) - set(sys.stdlib_module_names) - {"fewsmap"}:
            users.setdefault(name, []).append(str(path.relative_to(ROOT)))
    return users


def imported_distributions() -> dict[str, list[str]]:
    """Map each distribution fewsmap imports (canonical name) to the modules importing it."""
    owners = importlib.metadata.packages_distributions()
    found: dict[str, list[str]] = {}
    for module, users in third_party_modules().items():
        assert module in owners, f"no installed distribution provides {module!r} ({users})"
        for distribution in owners[module]:
            found.setdefault(canonicalize_name(distribution), []).extend(users)
    return found


def declared() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return {canonicalize_name(Requirement(r).name) for r in project["dependencies"]}


def test_every_imported_distribution_is_declared() -> None:
    undeclared = {name: users for name, users in imported_distributions().items()
                  if name not in declared()}
    assert undeclared == {}, f"imported but not in pyproject [project] dependencies: {undeclared}"


def test_every_declared_dependency_is_imported_or_has_a_reason() -> None:
    unused = declared() - imported_distributions().keys() - LOADED_BY_NAME.keys()
    assert unused == set(), f"declared but never imported, with no reason given: {unused}"


def test_every_exception_is_declared_and_still_not_imported() -> None:
    stale = {name for name in LOADED_BY_NAME
             if name not in declared() or name in imported_distributions()}
    assert stale == set(), f"drop from LOADED_BY_NAME (undeclared, or imported now): {stale}"


def test_the_check_sees_imports_everywhere() -> None:
    found = imported_distributions()
    assert {"numpy", "xarray", "starlette", "cfgrib"} <= found.keys()
    # Imports inside functions count: cfgrib is imported only where a GRIB file is read.
    assert any(user.endswith("ingest/sources.py") for user in found["cfgrib"])
