"""The dependency direction of DESIGN.md §1, checked on the imports of every module."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "fewsmap"
CORE = ("store", "catalog", "ingest", "render", "export", "products", "dimensions.py",
        "time", "crs.py", "points.py", "settings.py", "errors.py")
WEB = ("starlette", "uvicorn", "fewsmap.app", "fewsmap.ogc")
DRAWING = ("datashader", "matplotlib")


def imports_of(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def modules_in(*parts: str) -> list[Path]:
    """The modules of packages and single-file modules named in ``parts``."""
    found = []
    for part in parts:
        path = PACKAGE / part
        found += [path] if path.suffix == ".py" else sorted(path.rglob("*.py"))
    assert all(p.is_file() for p in found), f"missing module in {parts}"
    return found


@pytest.mark.parametrize("module", modules_in(*CORE), ids=lambda p: p.stem)
def test_the_core_never_imports_the_web_layer(module: Path) -> None:
    bad = {n for n in imports_of(module) if n.startswith(WEB)}
    assert not bad, f"{module.relative_to(PACKAGE)} imports {bad}"


@pytest.mark.parametrize("module", modules_in("ogc", "app"), ids=lambda p: p.stem)
def test_the_protocol_layer_never_draws(module: Path) -> None:
    bad = {n for n in imports_of(module) if n.startswith(DRAWING)}
    assert not bad, f"{module.relative_to(PACKAGE)} imports {bad}"


def test_the_check_sees_modules() -> None:
    assert len(modules_in(*CORE)) >= 20 and modules_in("ogc", "app")
