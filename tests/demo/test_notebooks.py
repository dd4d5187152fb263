"""The notebooks run top to bottom (on CPU, with the real offline parts), so they never rot."""

import os
import re
import subprocess
import sys

import nbformat
import pytest
from nbclient import NotebookClient
from tests.utils import ROOT


NOTEBOOKS = sorted(n for n in os.listdir(os.path.join(ROOT, "notebooks"))
                   if n.endswith(".ipynb"))


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """One work folder for all notebooks: the corpus and the assembled model are built once."""
    return str(tmp_path_factory.mktemp("notebooks"))


def test_there_are_three_notebooks():
    assert NOTEBOOKS == ["01_quick_start.ipynb", "02_fine_tuning.ipynb", "03_evaluation.ipynb"]


def paths_cell(name: str) -> str:
    """The notebook's first code cell: where it finds the repository, its work folder and the demo's folder."""
    notebook = nbformat.read(os.path.join(ROOT, "notebooks", name), as_version=4)
    return next(cell.source for cell in notebook.cells if cell.cell_type == "code")


@pytest.mark.parametrize("name", NOTEBOOKS)
@pytest.mark.parametrize("where, root", [(os.path.join(ROOT, "notebooks"), ROOT), (ROOT, ROOT), (None, None)])
def test_notebooks_find_the_demo_from_the_repository_root(name, where, root, tmp_path):
    """Jupyter runs a notebook in notebooks/; the demo writes mint-demo/ in the repository root (outside a
    repository, the working folder stands for it)."""
    where, root = where or str(tmp_path), root or str(tmp_path)
    code = paths_cell(name) + "\nprint(repr((ROOT, WORK, DEMO)))"
    env = {k: v for k, v in os.environ.items() if k not in ("MINT_DEMO_DIR", "MINT_NOTEBOOK_DIR")}
    done = subprocess.run([sys.executable, "-c", code], cwd=where, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == repr((root, os.path.join(root, "mint-notebooks"),
                                                  os.path.join(root, "mint-demo")))


@pytest.mark.slow
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
# LoRA run giving the trained model's logits (fine-tuning); the paper-style tables (evaluation); the warning of a
# notebook that finds no trained demo model.
EXPECTED = {
    "01_quick_start.ipynb": [r"(?m)^'[^']+'\s+-> '", r"'label': '", r"'score': ", r"'id': '",
                             r"WARNING: no trained demo model in .*no-demo .*UNTRAINED assembly"],
    "02_fine_tuning.ipynb": [r"(?m)^True$", r"\(2, \d+\.\d+\)"],
    "03_evaluation.ipynb": [r"MINT \(vocabulary ranking\)", r"MINT \(stage-1 embeddings\)", r"R@10",
                            r"WARNING: no trained demo model in .*no-demo .*UNTRAINED assembly"],
}
