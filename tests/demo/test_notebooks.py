"""The notebooks: one shared set-up (`mint.demo.tutorial`), committed with the outputs of a run on the demo's trained
model, and those outputs are what the current code prints.

How committed and fresh outputs are compared (`test_committed_outputs_are_what_the_code_prints`): the notebook is
executed again and compared code cell by code cell.
* Always: the same code, and each cell gives the same kinds of output in the same order (printed text, a result, a
  figure). Standard error (logging, warnings, progress bars) is not compared: it depends on library versions.
* With the demo's trained model (`MINT_DEMO_DIR` names a finished demo, as the committed run did): the text of every
  output too. Words must be equal and every number within `ABS_TOLERANCE + REL_TOLERANCE * |committed|`: other thread
  counts and BLAS builds change the last digits of float sums, and a training loss carries that through six steps.
  Figures are compared by presence only.
* Without it (CI has no trained demo), the notebooks run on the untrained stand-in, whose words and numbers mean
  nothing: the kinds of output are compared, and each notebook must print what `EXPECTED` describes.
"""

import os
import re

import nbformat
import pytest
from nbclient import NotebookClient

from mint.demo.tutorial import finished_demo, tutorial_folders
from tests.utils import ROOT


NOTEBOOKS = sorted(n for n in os.listdir(os.path.join(ROOT, "notebooks")) if n.endswith(".ipynb"))
SETUP = ("from mint.demo.tutorial import prepare_tutorial\n\nmodels = prepare_tutorial()  # the demo's trained models, "
         "or the untrained assembly (with a warning)")
ABS_TOLERANCE, REL_TOLERANCE = 1e-3, 1e-2
NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:e[-+]?\d+)?")


def read_notebook(name: str):
    return nbformat.read(os.path.join(ROOT, "notebooks", name), as_version=4)


def code_cells(notebook) -> list:
    return [cell for cell in notebook.cells if cell.cell_type == "code"]


def outputs(cell) -> list[tuple[str, str]]:
    """A code cell's outputs as `(kind, text)`: `"text"` (stdout, consecutive chunks joined), `"result"` or `"display"`
    (their plain or Markdown text) and `"figure"` (a PNG, text empty). Standard error is left out."""
    found: list[tuple[str, str]] = []
    for output in cell.outputs:
        if output.output_type == "stream":
            if output.name == "stdout":
                if found and found[-1][0] == "text":
                    found[-1] = ("text", found[-1][1] + output.text)
                else:
                    found.append(("text", output.text))
        elif output.output_type == "error":
            found.append(("error", "\n".join(output.traceback)))
        elif "image/png" in output.get("data", {}):
            found.append(("figure", ""))
        else:
            data = output.get("data", {})
            kind = "result" if output.output_type == "execute_result" else "display"
            found.append((kind, "".join(data.get("text/markdown", "")) or "".join(data.get("text/plain", ""))))
    return found


def assert_close_text(fresh: str, committed: str, where: str) -> None:
    """Equal words, numbers within the tolerance (see the module's docstring)."""
    assert NUMBER.sub("#", fresh).split() == NUMBER.sub("#", committed).split(), (where, fresh, committed)
    for new, old in zip(NUMBER.findall(fresh), NUMBER.findall(committed)):
        assert abs(float(new) - float(old)) <= ABS_TOLERANCE + REL_TOLERANCE * abs(float(old)), (where, new, old)


def test_there_are_three_notebooks():
    assert NOTEBOOKS == ["01_quick_start.ipynb", "02_fine_tuning.ipynb", "03_evaluation.ipynb"]


@pytest.mark.parametrize("where, root", [(os.path.join(ROOT, "notebooks"), ROOT), (ROOT, ROOT), (None, None)])
def test_notebooks_find_the_demo_from_the_repository_root(where, root, tmp_path, monkeypatch):
    """Jupyter runs a notebook in notebooks/; the demo writes mint-demo/ in the repository root (outside a
    repository, the working folder stands for it)."""
    where, root = where or str(tmp_path), root or str(tmp_path)
    monkeypatch.delenv("MINT_DEMO_DIR", raising=False)
    monkeypatch.delenv("MINT_NOTEBOOK_DIR", raising=False)
    monkeypatch.chdir(where)
    assert tutorial_folders() == (root, os.path.join(root, "mint-notebooks"), os.path.join(root, "mint-demo"))
    monkeypatch.setenv("MINT_DEMO_DIR", "elsewhere")
    assert tutorial_folders(where)[2] == "elsewhere"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebooks_share_one_setup(name):
    """Each notebook starts with the same set-up cell and builds nothing itself."""
    cells = code_cells(read_notebook(name))
    assert cells[0].source == SETUP
    for cell in cells[1:]:
        assert not re.search(r"assemble_mint|build_corpus|convert_whisper|os\.getcwd|MINT_DEMO_DIR", cell.source), \
            cell.source


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebooks_are_committed_with_the_outputs_of_a_run_on_the_trained_demo(name):
    notebook = read_notebook(name)
    cells = code_cells(notebook)
    assert [cell.execution_count for cell in cells] == list(range(1, len(cells) + 1))  # run top to bottom, once
    setup = outputs(cells[0])
    assert setup[0] == ("text", "Trained demo model: stage1/ and stage2/ of the demo folder (MINT_DEMO_DIR or "
                                "mint-demo/).\n")
    every = [output for cell in cells for output in outputs(cell)]
    assert all(kind != "error" for kind, _ in every)
    assert not re.search(r"/(tmp|work|root|home)/", "\n".join(text for _, text in every))  # nothing of the machine
    assert any(kind == "figure" for kind, _ in every) or name == "02_fine_tuning.ipynb"


# What each notebook must print on any model, trained or not: a row of captions per clip and the untrained column
# next to them, the scored labels and retrieval hits (quick start); the reloaded LoRA run giving the trained model's
# logits and the logged losses (fine-tuning); the paper-style tables (evaluation).
EXPECTED = {
    "01_quick_start.ipynb": [r"reference\s+MINT \((trained demo|UNTRAINED: no demo)\)", r"untrained assembly\s+0 ",
                             r"vocabulary ranking: \[\('", r"stage-1 embeddings: \[\('", r"(?m)^-?\d\.\d{3}  \d+: "],
    "02_fine_tuning.ipynb": [r"(?m)^True$", r"\(2, \d+\.\d+\)"],
    "03_evaluation.ipynb": [r"MINT \(vocabulary ranking\)", r"MINT \(stage-1 embeddings\)", r"R@10"],
}
WARNING = r"WARNING: no trained demo model in .*no-demo .*UNTRAINED assembly"


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """One work folder for all notebooks: without a trained demo, the corpus and the assembly are built once."""
    return str(tmp_path_factory.mktemp("notebooks"))


@pytest.mark.slow
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_committed_outputs_are_what_the_code_prints(name, workdir, monkeypatch):
    trained = finished_demo(os.environ.get("MINT_DEMO_DIR", os.path.join(ROOT, "mint-demo")))
    if not trained:
        monkeypatch.setenv("MINT_DEMO_DIR", os.path.join(workdir, "no-demo"))  # the same path as on a fresh machine
    monkeypatch.setenv("MINT_NOTEBOOK_DIR", workdir)
    monkeypatch.setenv("PYTHONPATH", ROOT)
    committed = read_notebook(name)
    fresh = read_notebook(name)
    NotebookClient(fresh, timeout=900, kernel_name="python3",
                   resources={"metadata": {"path": os.path.join(ROOT, "notebooks")}}).execute()
    assert [cell.source for cell in code_cells(fresh)] == [cell.source for cell in code_cells(committed)]
    for index, (new, old) in enumerate(zip(code_cells(fresh), code_cells(committed))):
        new_outputs, old_outputs = outputs(new), outputs(old)
        assert [kind for kind, _ in new_outputs] == [kind for kind, _ in old_outputs], (index, new_outputs)
        if trained:
            for (_, new_text), (_, old_text) in zip(new_outputs, old_outputs):
                assert_close_text(new_text, old_text, f"{name}, code cell {index}")
    text = "\n".join(text for cell in code_cells(fresh) for _, text in outputs(cell))
    for expected in EXPECTED[name] + ([] if trained else [WARNING]):
        assert re.search(expected, text), (name, expected)


# A demo folder the notebooks take as finished only with all four parts; each row leaves one out (or breaks it).
DEMO_PARTS = [("stage1", "model.safetensors"), ("stage2", "model.safetensors"), ("assembled", "model.safetensors"),
              ("corpus", "dataset_dict.json")]


@pytest.mark.parametrize("left_out", [None, *range(len(DEMO_PARTS)), "folder"])
def test_only_a_finished_demo_is_used(left_out, tmp_path):
    for index, (folder, name) in enumerate(DEMO_PARTS):
        (tmp_path / folder).mkdir()
        if index != left_out:
            (tmp_path / folder / name).mkdir() if left_out == "folder" and index == 0 else \
                (tmp_path / folder / name).write_text("x")
    assert finished_demo(str(tmp_path)) is (left_out is None)
