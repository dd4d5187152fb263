"""The notebooks run top to bottom (on CPU, with the real offline parts), so they never rot."""

import os

import nbformat
import pytest
from nbclient import NotebookClient


NOTEBOOKS = sorted(n for n in os.listdir(os.path.join(os.path.dirname(__file__), "..", "notebooks"))
                   if n.endswith(".ipynb"))


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """One work folder for all notebooks: the corpus and the assembled model are built once."""
    return str(tmp_path_factory.mktemp("notebooks"))


def test_there_are_three_notebooks():
    assert NOTEBOOKS == ["01_quick_start.ipynb", "02_fine_tuning.ipynb", "03_evaluation.ipynb"]


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs_top_to_bottom(name, workdir, monkeypatch):
    monkeypatch.setenv("MINT_NOTEBOOK_DIR", workdir)
    monkeypatch.setenv("MINT_DEMO_DIR", os.path.join(workdir, "no-demo"))  # the same path as on a fresh machine
    monkeypatch.setenv("PYTHONPATH", os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    path = os.path.join(os.path.dirname(__file__), "..", "notebooks", name)
    notebook = nbformat.read(path, as_version=4)
    NotebookClient(notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": workdir}}).execute()
    errors = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs
              if o.output_type == "error"]
    assert not errors
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert any(o.output_type == "display_data" and "image/png" in o.get("data", {}) for o in outputs) or \
        name == "02_fine_tuning.ipynb"  # the quick start and evaluation notebooks draw figures
