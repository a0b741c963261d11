"""The point fronts sit on the core, not on each other (issue #17: ``edr/`` no longer imports
``ogc/``; resolution and the shared formats import no front)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_architecture import PACKAGE, imports_of, modules_in

FRONTS = ("fewsmap.app", "fewsmap.ogc", "fewsmap.edr", "starlette")


@pytest.mark.parametrize("module", modules_in("edr"), ids=lambda p: p.stem)
def test_edr_imports_no_ogc_module(module: Path) -> None:
    bad = {n for n in imports_of(module) if n.startswith("fewsmap.ogc")}
    assert not bad, f"{module.relative_to(PACKAGE)} imports {bad}"


@pytest.mark.parametrize("module", modules_in("resolve", "formats", "params.py"),
                         ids=lambda p: p.stem)
def test_the_shared_core_imports_no_front(module: Path) -> None:
    bad = {n for n in imports_of(module) if n.startswith(FRONTS)}
    assert not bad, f"{module.relative_to(PACKAGE)} imports {bad}"
