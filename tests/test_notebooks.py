"""The notebooks run top to bottom (nbclient, a real kernel) against a fresh demo output, and draw their plots."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from helpers import tracked_copy
from nbclient import NotebookClient

pytestmark = pytest.mark.full  # notebooks in a real kernel, a demo made in one: minutes

REPO = Path(__file__).resolve().parents[1]

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
# notebook -> the figures it must draw
FIGURES = {"quickstart": 1, "personas": 4, "train_and_evaluate": 1}


def test_notebooks_are_stored_without_outputs() -> None:
    assert sorted(p.stem for p in NOTEBOOKS.glob("*.ipynb")) == sorted(FIGURES)
    for path in NOTEBOOKS.glob("*.ipynb"):
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None, f"{path.name} has stored outputs"


def _check(nb, name: str) -> None:
    """The executed notebook drew its figures, raised nothing, and labelled every plot."""
    images = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if "image/png" in o.get("data", {})]
    assert len(images) >= FIGURES[name], f"{name}: {len(images)} figures drawn, {FIGURES[name]} expected"
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.get("output_type") == "error"]
    assert not errors
    # every figure is labelled: each plotting cell titles its figure and names its axes
    for cell in nb.cells:
        if cell.cell_type == "code" and "plt.show()" in cell.source:
            assert "set_title" in cell.source or "suptitle" in cell.source, cell.source[:200]
            assert "set_ylabel" in cell.source, cell.source[:200]
            assert "set_xlabel" in cell.source or "set_xticks" in cell.source, cell.source[:200]  # named ticks


# personas runs from a fresh clone below: the path of a user who opens a notebook before any demo exists
@pytest.mark.parametrize("name", sorted(set(FIGURES) - {"personas"}))
def test_notebook_runs(name: str, demo_project: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("BLUEPRINT_DEMO", str(demo_project / "demo-out"))
    monkeypatch.setenv("BLUEPRINT_NOTEBOOK_WORK", str(tmp_path))
    monkeypatch.setenv("BLUEPRINT_NOTEBOOK_MODEL", "tiny")  # the real model's run is the README's experiment
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    notebooks = demo_project / "notebooks"  # a clone's copy: a notebook's run writes nothing into the checkout
    nb = nbformat.read(notebooks / f"{name}.ipynb", as_version=4)
    client = NotebookClient(nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(notebooks)}})
    client.execute()  # raises CellExecutionError, with the cell and its traceback, when a cell fails
    _check(nb, name)


def test_a_notebook_opened_before_any_demo_makes_it_in_its_kernel(demo_project, tmp_path, monkeypatch):
    """The path a new user takes: a clone with no demo-out/ and no BLUEPRINT_DEMO; the notebook's first cell runs
    the demo inside the Jupyter kernel (DuckDB there refuses to change its progress-bar setting), then the rest.

    ``demo_project`` runs first so that the embedding cache of this session is warm: the same texts are not
    embedded twice."""
    clone = tracked_copy(REPO, tmp_path / "clone")
    monkeypatch.delenv("BLUEPRINT_DEMO", raising=False)
    monkeypatch.setenv("BLUEPRINT_NOTEBOOK_WORK", str(tmp_path / "work"))
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    nb = nbformat.read(clone / "notebooks" / "personas.ipynb", as_version=4)
    client = NotebookClient(nb, timeout=900, kernel_name="python3",
                            resources={"metadata": {"path": str(clone / "notebooks")}})
    client.execute()  # CellExecutionError, with the cell and its traceback, if any cell fails
    assert (clone / "demo-out" / "dataset" / "blueprint_manifest.json").is_file()
    assert (clone / "demo-out" / "leaderboard" / "index.html").is_file()
    _check(nb, "personas")
