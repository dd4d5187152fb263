"""The notebooks run top to bottom (on CPU, with the real offline parts), so they never rot."""

import os
import re

import nbformat
import pytest
from nbclient import NotebookClient
from tests.utils import ROOT


pytestmark = pytest.mark.slow


NOTEBOOKS = sorted(n for n in os.listdir(os.path.join(ROOT, "notebooks"))
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
    monkeypatch.setenv("PYTHONPATH", ROOT)
    path = os.path.join(ROOT, "notebooks", name)
    notebook = nbformat.read(path, as_version=4)
    NotebookClient(notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": workdir}}).execute()
    errors = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs
              if o.output_type == "error"]
    assert not errors
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert any(o.output_type == "display_data" and "image/png" in o.get("data", {}) for o in outputs) or \
        name == "02_fine_tuning.ipynb"  # the quick start and evaluation notebooks draw figures
    text = "\n".join(_text(o) for o in outputs)
    for expected in EXPECTED[name]:
        assert re.search(expected, text), (name, expected)


def _text(output) -> str:
    if output.output_type == "stream":
        return output.get("text", "")
    data = output.get("data", {})
    return "".join(data.get("text/plain", "")) + "".join(data.get("text/markdown", ""))


# What each notebook must print: a caption per clip, scored labels and retrieval hits (quick start); the reloaded
# LoRA run giving the trained model's logits (fine-tuning); the paper-style tables (evaluation).
EXPECTED = {
    "01_quick_start.ipynb": [r"(?m)^'[^']+'\s+-> '", r"'label': '", r"'score': ", r"'id': '"],
    "02_fine_tuning.ipynb": [r"(?m)^True$", r"\(2, \d+\.\d+\)"],
    "03_evaluation.ipynb": [r"MINT \(vocabulary ranking\)", r"MINT \(stage-1 embeddings\)", r"R@10"],
}
