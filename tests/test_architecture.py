"""The dependency direction of DESIGN.md §1, checked on the imports of every module."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "fewsmap"
CORE = ("store", "catalog", "ingest", "render", "export", "products", "resolve", "formats",
        "params.py", "units.py", "dimensions.py", "time", "crs.py", "points.py", "settings.py",
        "errors.py")
WEB = ("starlette", "uvicorn", "fewsmap.app", "fewsmap.ogc", "fewsmap.edr")
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


# The whole layer order, bottom first: a part imports only its own and lower layers (the
# package root only for its version). Parts of one layer may import each other, except the
# pairs below, which stand side by side: the protocols, and the service and its client.
LAYERS = (
    ("errors", "cancel", "crs", "params", "units", "time", "time.grammar", "time.instants"),
    ("store",),
    ("settings", "products", "formats", "dimensions", "points", "time.axis", "ingest", "demo"),
    ("catalog",),
    ("render", "export"),
    ("resolve",),  # a request's layer, run, times, members and style: what to read and draw
    ("ogc", "edr"),
    ("app", "client"),
    ("cli",),
)
SIDE_BY_SIDE = {("ogc", "edr"), ("edr", "ogc"), ("app", "client"), ("client", "app")}
# Parts that skip the layers between them: the Python client resolves and draws through the
# core (resolve, render), never through a protocol's parser.
APART = {("client", "ogc"), ("client", "edr")}
RANK = {part: rank for rank, layer in enumerate(LAYERS) for part in layer}


def part_of(module: str) -> str:
    """The layer part of a module name: ``fewsmap.store.cube`` → ``store``, ``time.axis``."""
    parts = [p for p in module.split(".")[1:] if p != "__init__"]
    return ".".join(parts[:2]) if parts[0] == "time" else parts[0]


def all_modules() -> list[Path]:
    """Every module but the package root, which re-exports the public API."""
    return [p for p in sorted(PACKAGE.rglob("*.py"))
            if "node_modules" not in p.parts and p != PACKAGE / "__init__.py"]


@pytest.mark.parametrize("module", all_modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_each_part_imports_only_its_own_and_lower_layers(module: Path) -> None:
    name = ".".join(("fewsmap", *module.relative_to(PACKAGE).with_suffix("").parts))
    own = part_of(name)
    assert own in RANK, f"{own} has no place in LAYERS"
    bad = set()
    for imported in imports_of(module):
        if not imported.startswith("fewsmap.") or (other := part_of(imported)) == own:
            continue
        if RANK.get(other, len(LAYERS)) > RANK[own] or (own, other) in SIDE_BY_SIDE | APART:
            bad.add(imported)
    assert not bad, f"{name} ({own}) imports {sorted(bad)} from above or beside it"


# What reads the cube: a protocol module parses and encodes; resolve/ and products/ read.
READS = ("fewsmap.store.reads", "fewsmap.store.direct", "fewsmap.store.series")
READERS = {"read_cell", "read_components", "point_values", "read_means", "set_means",
           "read_block", "read_window", "catchment_means", "automatic_range", "layer_range"}


def names_imported(path: Path) -> set[str]:
    """The names a module imports from fewsmap modules (``from fewsmap.x import name``)."""
    return {alias.name for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("fewsmap")
            for alias in node.names}


@pytest.mark.parametrize("module", modules_in("ogc"), ids=lambda p: p.stem)
def test_the_protocol_layer_reads_nothing_itself(module: Path) -> None:
    bad = {n for n in imports_of(module) if n.startswith(READS)}
    bad |= names_imported(module) & READERS
    assert not bad, f"{module.relative_to(PACKAGE)} imports {bad}"


def test_handlers_get_shared_state_only_from_the_lifespan() -> None:
    # One way (fewsmap/app/state.py): no handler reads app.state or closes over a catalog
    # getter; only create_app sets app.state.service for serve.py's process set-up.
    allowed = {PACKAGE / "app" / name for name in ("server.py", "serve.py", "state.py")}
    app_state = re.compile(r"(?<![\w.])app\.state\b|request\.app\.state\b")
    readers = [p.relative_to(PACKAGE) for p in modules_in("app")
               if p not in allowed and app_state.search(p.read_text())]
    factories = [p.relative_to(PACKAGE) for p in modules_in("app")
                 if re.search(r"def \w+_routes\((?!vendor|\))", p.read_text())]
    assert not readers and not factories, (readers, factories)
