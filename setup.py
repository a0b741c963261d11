"""fewsmap's build hook: every wheel and sdist carries the viewer's browser libraries.

The libraries (OpenLayers, the Natural Earth outlines) come from npm, pinned by
``fewsmap/app/viewer/package-lock.json``, and ``npm run vendor`` (``fewsmap/app/viewer/vendor.mjs``)
copies the files the page loads into a ``vendor/`` folder stamped with the lock's sha256. A
``vendor/`` of the current lock (``make vendor`` made it, or the sdist carries it) goes in as it
is, so a wheel builds from an sdist without npm or network. Otherwise ``npm ci`` runs in a
temporary folder (the npm registry is its only source) and the source tree is left as it was.

An editable install (``pip install -e .``) serves ``vendor/`` from the source tree, where
``make vendor`` puts it; it does not run npm.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.command.sdist import sdist
from setuptools.errors import ExecError

VIEWER = Path("fewsmap", "app", "viewer")
SOURCE_VIEWER = Path(__file__).resolve().parent / VIEWER
# What `npm ci && npm run vendor` needs (MANIFEST.in puts them in the sdist).
NPM_RECIPE = ("package.json", "package-lock.json", "vendor.mjs")
STAMP = ".package-lock.sha256"  # written by vendor.mjs


def is_current(vendor: Path) -> bool:
    """Tell whether ``vendor`` was made from the source tree's package-lock.json."""
    lock = (SOURCE_VIEWER / "package-lock.json").read_bytes()
    stamp = vendor / STAMP
    return stamp.is_file() and stamp.read_text().strip() == hashlib.sha256(lock).hexdigest()


def npm_vendor(scratch: Path) -> Path:
    """Run ``npm ci`` and ``npm run vendor`` on a copy of the viewer's npm recipe in ``scratch``;
    return the vendor folder made there."""
    npm = shutil.which("npm")
    if npm is None:
        raise ExecError(
            "building fewsmap needs npm (Node.js >= 20): the viewer's browser libraries come "
            "from npm, pinned by fewsmap/app/viewer/package-lock.json (`make vendor` fetches them "
            "into the source tree, after which no npm is needed)")
    for name in NPM_RECIPE:
        shutil.copy2(SOURCE_VIEWER / name, scratch / name)
    for command in (["ci", "--no-audit", "--no-fund", "--prefer-offline"],
                    ["run", "--silent", "vendor"]):
        if subprocess.run([npm, *command], cwd=scratch, check=False).returncode != 0:
            raise ExecError(f"`npm {' '.join(command)}` failed (its output is above) while "
                            "fetching the viewer's browser libraries for fewsmap's build")
    return scratch / "vendor"


def vendor_into(target: Path) -> None:
    """Fill ``target`` with the viewer's vendored files: the source tree's if current, else
    fresh from npm."""
    with tempfile.TemporaryDirectory(prefix="fewsmap-viewer-") as scratch:
        source = SOURCE_VIEWER / "vendor"
        if not is_current(source):
            source = npm_vendor(Path(scratch))
        if target.exists():  # a stale copy from an earlier build
            shutil.rmtree(target)
        # Files, not hard links: an sdist's release tree links to the source tree's files.
        shutil.copytree(source, target, ignore=shutil.ignore_patterns(".installed"))


class BuildPyWithViewer(build_py):
    """build_py that also puts the viewer's vendored files into the wheel."""

    def run(self) -> None:
        """Build the Python package, then add ``fewsmap/app/viewer/vendor/``."""
        super().run()
        if not self.editable_mode:
            vendor_into(Path(self.build_lib) / VIEWER / "vendor")


class SdistWithViewer(sdist):
    """sdist that carries the viewer's vendored files, so its wheel builds without npm."""

    def make_release_tree(self, base_dir: str, files: list[str]) -> None:
        """Lay out the sdist's files, then add ``fewsmap/app/viewer/vendor/``."""
        super().make_release_tree(base_dir, files)
        vendor_into(Path(base_dir) / VIEWER / "vendor")


setup(cmdclass={"build_py": BuildPyWithViewer, "sdist": SdistWithViewer})
