"""The hash lock the Makefile installs from agrees with pyproject.toml and constraints.txt.

``make`` installs only what requirements/lock.txt lists, each file checked against its
sha256; a dependency added to pyproject.toml or re-pinned in constraints.txt without
``make lock`` would be missing or differ on a fresh machine. These tests say so first.
"""

from __future__ import annotations

import re
import tomllib

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.conftest import ROOT

REQUIREMENTS = ROOT / "requirements"
PIN = re.compile(r"^([A-Za-z0-9_.\-]+)==([^\s;\\]+)", re.MULTILINE)


def pins(text: str) -> dict[str, str]:
    return {canonicalize_name(name): version for name, version in PIN.findall(text)}


def locked() -> dict[str, str]:
    return pins((REQUIREMENTS / "lock.txt").read_text())


def test_every_dependency_is_locked() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = [*project["dependencies"], *project["optional-dependencies"]["dev"],
              *(line for line in (REQUIREMENTS / "build.txt").read_text().splitlines()
                if line and not line.startswith("#"))]
    lock = locked()
    missing = [str(r) for r in map(Requirement, wanted) if canonicalize_name(r.name) not in lock]
    assert missing == [], f"not in requirements/lock.txt (run `make lock`): {missing}"
    wrong = [f"{r.name}=={lock[canonicalize_name(r.name)]}" for r in map(Requirement, wanted)
             if not r.specifier.contains(lock[canonicalize_name(r.name)], prereleases=True)]
    assert wrong == [], f"locked versions outside pyproject's ranges: {wrong}"


def test_locked_versions_are_the_pinned_ones() -> None:
    lock, constraints = locked(), pins((REQUIREMENTS / "constraints.txt").read_text())
    differ = {name: (constraints[name], version) for name, version in lock.items()
              if name in constraints and constraints[name] != version}
    assert differ == {}, f"constraints.txt vs lock.txt (run `make lock`): {differ}"


def test_every_locked_package_has_a_hash() -> None:
    entries = re.split(r"\n(?=[A-Za-z])", (REQUIREMENTS / "lock.txt").read_text())
    unhashed = [e.split()[0] for e in entries if PIN.match(e) and "--hash=sha256:" not in e]
    assert unhashed == []
    assert len(locked()) > 100  # the whole tree, not just the direct dependencies
