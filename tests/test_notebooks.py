"""The notebooks run top to bottom on the demo data, and are stored without outputs.

They read the stores folder from ``FEWSMAP_STORES_DIR`` and reach the service that publishes
it at ``FEWSMAP_URL``: here a real ``fewsmap serve`` over a copy of the demo stores (a
notebook may add a store to it).
"""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))


def test_there_are_notebooks() -> None:
    assert [p.name for p in NOTEBOOKS][:3] == [
        "01-explore-runs.ipynb", "02-compare-runs.ipynb", "03-ensemble-members.ipynb"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_stored_without_outputs(path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_on_the_demo_stores(path: Path, served_stores: tuple[Path, str],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    notebook = nbformat.read(path, as_version=4)
    stores, url = served_stores
    monkeypatch.setenv("FEWSMAP_STORES_DIR", str(stores))
    monkeypatch.setenv("FEWSMAP_URL", url)
    client = NotebookClient(notebook, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    client.execute(env=dict(os.environ))
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert images, "the notebook plots a field"
