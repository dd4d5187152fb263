"""`write_space` and `mint hub space`: a Space folder whose README front matter is the Spaces configuration, whose
app.py runs the app as it is, and which never replaces a folder it did not write."""

import os

import pytest
from huggingface_hub import SpaceCard

import mint.app
import mint.cli
from mint.app.space import GRADIO_VERSION, write_space


def test_space_folder_files(tmp_path):
    output = str(tmp_path / "space")
    written = write_space("org/mint-demo", output, stage1="org/mint-demo-stage1", requirement="mint-audio==0.1.0")
    assert sorted(os.path.basename(p) for p in written) == sorted(os.listdir(output)) == \
        ["README.md", "app.py", "requirements.txt"]
    card = SpaceCard.load(os.path.join(output, "README.md"))
    assert {key: card.data.get(key) for key in ("title", "sdk", "sdk_version", "python_version", "app_file",
                                                "models")} == {
        "title": "mint-demo", "sdk": "gradio", "sdk_version": "6.31.0", "python_version": "3.11",
        "app_file": "app.py", "models": ["org/mint-demo", "org/mint-demo-stage1"]}
    assert GRADIO_VERSION == "6.31.0"
    with open(os.path.join(output, "requirements.txt")) as f:
        assert f.read().splitlines() == ["mint-audio==0.1.0", "gradio==6.31.0"]


def test_app_py_builds_and_launches_the_app(tmp_path, monkeypatch):
    calls = []

    class Launched:
        def launch(self):
            calls.append("launch")

    def build_app(*args, **kwargs):
        calls.append((args, kwargs))
        return Launched()

    write_space("org/m", str(tmp_path / "a"))
    write_space("org/m", str(tmp_path / "b"), stage1="org/s", title="My: app")
    monkeypatch.setattr(mint.app, "build_app", build_app)
    for name in ("a", "b"):
        with open(tmp_path / name / "app.py") as f:
            exec(compile(f.read(), "app.py", "exec"), {"__name__": "__main__"})
    assert calls == [(("org/m",), {}), "launch", (("org/m",), {"stage1": "org/s"}), "launch"]
    assert SpaceCard.load(tmp_path / "b" / "README.md").data.title == "My: app"
    with open(tmp_path / "a" / "requirements.txt") as f:
        assert f.readline().startswith("mint-audio")


def test_overwrite_replaces_only_a_space_folder(tmp_path):
    output = tmp_path / "space"
    write_space("org/old", str(output))
    with pytest.raises(ValueError, match="already holds a Space .* Pass overwrite=True"):
        write_space("org/new", str(output))
    assert "org/old" in (output / "app.py").read_text()
    write_space("org/new", str(output), overwrite=True)
    assert "org/new" in (output / "app.py").read_text() and sorted(os.listdir(tmp_path)) == ["space"]
    (output / "weights.bin").write_text("x")
    with pytest.raises(ValueError, match=r"holds 'weights.bin', which a Space folder written here does not"):
        write_space("org/new", str(output), overwrite=True)
    assert sorted(os.listdir(output)) == ["README.md", "app.py", "requirements.txt", "weights.bin"]


# (model, extra arguments, what is in the output before, words of the error)
BAD_SPACES = [
    ("LOCAL", [], None, "model must be a Hub repo id 'owner/name', got"),
    ("LOCAL", [], None, "A Space loads its model from the Hub"),
    ("mint-demo", [], None, "must be a Hub repo id"),
    ("org/a/b", [], None, "must be a Hub repo id"),
    ("org/../x", [], None, "must be a Hub repo id"),
    ("org/m", ["--stage1", "stage1 folder"], None, "stage1 must be a Hub repo id"),
    ("org/m", ["--title", " "], None, "title must be one line of text"),
    ("org/m", [], "file", "exists and is not a folder"),
    ("org/m", [], "notes.txt", "holds 'notes.txt', which a Space folder written here does not"),
    ("org/m", ["--overwrite"], "notes.txt", "never replaced, even with --overwrite"),
    ("org/m", [], "app.py", "already holds a Space ('app.py')"),
    ("RELATIVE", [], None, "got 'mint-demo/stage2', which is a local path. A Space loads its model from the Hub"),
    ("org/model.git", [], None, "Repo_id cannot end by '.git'"),
    ("org/x-", [], None, "model must be a Hub repo id 'owner/name', got 'org/x-'. Repo id must use"),
    ("a--b/c", [], None, "Cannot have -- or .. in repo_id"),
    ("org/m", ["--stage1", "org/m"], None, "stage1 is the model itself ('org/m')"),
    ("org/m", ["--requirement", "numpy"], None, "requirement must be one line installing the mint-audio package"),
    ("org/m", ["--requirement", "mint-audio\nnumpy"], None, "requirement must be one line installing"),
    ("org/m", ["--requirement", ""], None, "requirement '' is not a requirement line"),
    ("org/m", ["--requirement", "mint-audio @@ x"], None, "is not a requirement line"),
    ("org/m", ["--title", "a\rb"], None, "title must be one line of text, got 'a\\rb'"),
    ("org/m", ["--title", "a\u2028b"], None, "title must be one line of text"),
]


@pytest.mark.parametrize("model, extra, before, words", BAD_SPACES)
def test_mint_hub_space_refuses(model, extra, before, words, tmp_path, capsys, monkeypatch):
    if model == "RELATIVE":  # the demo's output folder, which reads as a repo id
        os.makedirs(tmp_path / "mint-demo" / "stage2")
        monkeypatch.chdir(tmp_path)
        model = "mint-demo/stage2"
    output = tmp_path / "space"
    if before == "file":
        output.write_text("x")
    elif before:
        output.mkdir()
        (output / before).write_text("mine")
    model = str(tmp_path) if model == "LOCAL" else model
    assert mint.cli.main(["hub", "space", model, "--output", str(output), *extra]) == 1
    assert words in capsys.readouterr().err
    if before and before != "file":
        assert os.listdir(output) == [before] and (output / before).read_text() == "mine"


def test_mint_hub_space_prints_the_files(tmp_path, capsys):
    output = str(tmp_path / "space")
    assert mint.cli.main(["hub", "space", "org/m", "--output", output, "--stage1", "org/s"]) == 0
    assert capsys.readouterr().out.split() == [os.path.join(output, n) for n in ("app.py", "requirements.txt",
                                                                                  "README.md")]
    assert "build_app('org/m', stage1='org/s').launch()" in open(os.path.join(output, "app.py")).read()


@pytest.mark.parametrize("output, words", [("", "output must be the path of the Space folder to write, got ''"),
                                           ("  ", "output must be the path")])
def test_write_space_refuses_an_empty_output(output, words, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match=words):
        write_space("org/m", output)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("title", ['say "hi"', "a: b", "- list", "#hash", "{x}", "[x]", "yes", "null", "100",
                                   "tab\there", "ünï 🔊", "'single'", "&anchor", "*alias", "!tag", "a --- b",
                                   "x" * 300])
def test_odd_titles_stay_the_spaces_title(title, tmp_path):
    write_space("org/m", str(tmp_path / "space"), title=title)
    card = SpaceCard.load(tmp_path / "space" / "README.md")
    assert card.data.title == title and card.data.sdk == "gradio" and card.data.models == ["org/m"]
