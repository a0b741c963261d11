"""The package as users install it (setup.py's build hook): a wheel built from a fresh checkout,
installed in a fresh venv, serves the viewer; its sdist carries the viewer's browser libraries
and builds a wheel without npm; a build that needs npm and lacks it says so.

The fresh venv sees this environment's packages through a .pth file written after fewsmap is
installed (pip then sees an empty venv), so nothing is downloaded and nothing of this
environment is changed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from pathlib import Path

import httpx
import pytest

from fewsmap.app.viewer import VENDOR_FILES
from tests.live_server import live_server
from tests.viewer.test_routes import page_references

pytestmark = pytest.mark.slow  # builds wheels with npm and starts a server

ROOT = Path(__file__).resolve().parent.parent
VENDORED = "fewsmap/app/viewer/vendor/"


def clean_env(**changes: str) -> dict[str, str]:
    """This process's environment without PYTHONPATH (which points at this checkout)."""
    env = {name: value for name, value in os.environ.items() if name != "PYTHONPATH"}
    return {**env, "PIP_DISABLE_PIP_VERSION_CHECK": "1", **changes}


def run(command: list[str | Path], cwd: Path, env: dict[str, str]) -> str:
    """Run ``command``; return its output, or fail the test with it."""
    done = subprocess.run([str(part) for part in command], cwd=cwd, env=env, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False)
    assert done.returncode == 0, f"{command} exited {done.returncode}:\n{done.stdout}"
    return done.stdout


def pip_wheel(source: Path, out: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Build fewsmap's wheel from ``source`` (a folder or sdist) as ``pip install`` does, with
    this environment's setuptools and nothing from an index."""
    return subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-index",
                           "--no-build-isolation", "--wheel-dir", str(out), str(source)],
                          env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          check=False)


def without_npm(tmp_path: Path) -> dict[str, str]:
    """An environment whose PATH finds no npm (nor anything else)."""
    empty = tmp_path / "empty-path"
    empty.mkdir(exist_ok=True)
    return clean_env(PATH=str(empty))


def vendored(wheel: Path) -> dict[str, bytes]:
    """The viewer's vendored files in ``wheel``, by name."""
    with zipfile.ZipFile(wheel) as archive:
        return {name.removeprefix(VENDORED): archive.read(name)
                for name in archive.namelist() if name.startswith(VENDORED)}


@pytest.fixture(scope="module")
def checkout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of what a fresh clone holds (and new files not yet committed): no vendor/, no
    node_modules, no build output."""
    listed = run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                 ROOT, clean_env())
    copy = tmp_path_factory.mktemp("checkout")
    for name in filter(None, listed.split("\0")):
        if (ROOT / name).is_file():  # a file deleted but not yet committed is still listed
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, copy / name)
    return copy


@pytest.fixture(scope="module")
def wheel(checkout: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel ``pip install .`` builds from the checkout (npm fetches the libraries)."""
    out = tmp_path_factory.mktemp("wheel")
    built = pip_wheel(checkout, out, clean_env())
    assert built.returncode == 0, built.stdout
    return next(out.glob("fewsmap-*.whl"))


def test_the_wheel_carries_the_viewer_libraries(wheel: Path) -> None:
    files = vendored(wheel)
    assert set(VENDOR_FILES) <= set(files)
    assert {"LICENSE-ol.md", "LICENSE-world-atlas"} <= set(files)
    assert all(files.values())
    with zipfile.ZipFile(wheel) as archive:  # the npm recipe stays out of the wheel
        assert not [name for name in archive.namelist()
                    if "node_modules" in name or name.endswith(("package.json", ".mjs"))]


def test_an_installed_wheel_serves_the_viewer(wheel: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", venv], tmp_path, clean_env())
    python = venv / "bin" / "python"
    run([sys.executable, "-m", "pip", "--python", python, "install", "--quiet", "--no-deps",
         "--no-index", wheel], tmp_path, clean_env())
    # Only now the dependencies: this environment's site-packages, after the venv's own.
    site = Path(run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                    tmp_path, clean_env()).strip())
    paths = dict.fromkeys([sysconfig.get_path("purelib"), sysconfig.get_path("platlib")])
    (site / "dependencies.pth").write_text("".join(f"{path}\n" for path in paths))
    env = clean_env(PYTHONPATH="")  # live_server adds it to os.environ: empty is unset
    imported = run([python, "-c", "import fewsmap; print(fewsmap.__file__)"], tmp_path, env)
    assert Path(imported.strip()).is_relative_to(site)  # the wheel's fewsmap, not this checkout

    config = tmp_path / "fewsmap.toml"
    config.write_text("")  # a configuration: no demo stores built
    (tmp_path / "stores").mkdir()
    with live_server("--config", str(config), "--stores", str(tmp_path / "stores"), env=env,
                     program=[str(venv / "bin" / "fewsmap")]) as url:
        page = httpx.get(f"{url}/", timeout=10)
        assert page.status_code == 200, page.text
        assert '<div id="map"' in page.text
        for reference in page_references():
            response = httpx.get(f"{url}{reference}", timeout=10)
            assert response.status_code == 200, reference
            assert response.content, reference


def test_the_sdist_builds_the_same_wheel_without_npm(checkout: Path, wheel: Path,
                                                    tmp_path: Path) -> None:
    script = "from setuptools import build_meta; print(build_meta.build_sdist('dist'))"
    name = run([sys.executable, "-c", script], checkout, clean_env()).splitlines()[-1]
    sdist = checkout / "dist" / name
    with tarfile.open(sdist) as archive:
        members = {member.name.split("/", 1)[1] for member in archive.getmembers()
                   if "/" in member.name}
    # The libraries, and the recipe that rebuilds them from npm.
    assert {f"{VENDORED}ol.js", "fewsmap/app/viewer/package-lock.json",
            "fewsmap/app/viewer/vendor.mjs", "setup.py"} <= members
    built = pip_wheel(sdist, tmp_path, without_npm(tmp_path))
    assert built.returncode == 0, built.stdout
    assert vendored(next(tmp_path.glob("fewsmap-*.whl"))) == vendored(wheel)


def test_a_build_without_npm_or_a_current_vendor_folder_says_what_it_needs(
        checkout: Path, tmp_path: Path) -> None:
    source = tmp_path / "checkout"
    shutil.copytree(checkout, source, ignore=shutil.ignore_patterns("dist", "build"))
    stale = source / "fewsmap" / "app" / "viewer" / "vendor"  # from an older package-lock.json
    stale.mkdir()
    for name in VENDOR_FILES:
        (stale / name).write_text("stale")
    (stale / ".package-lock.sha256").write_text("0" * 64 + "\n")
    built = pip_wheel(source, tmp_path, without_npm(tmp_path))
    assert built.returncode != 0
    assert "needs npm" in built.stdout and "make vendor" in built.stdout, built.stdout
    assert not list(tmp_path.glob("*.whl"))
