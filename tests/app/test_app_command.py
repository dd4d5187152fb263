"""`mint app`: the options reach the app and its launch; bad options and models are refused with a clear message."""

import gradio as gr
import pytest

import mint.cli


@pytest.fixture
def launches(monkeypatch):
    """Records each `launch` of a built app instead of serving it."""
    calls = []

    def launch(blocks, **kwargs):
        calls.append((blocks, kwargs))

    monkeypatch.setattr(gr.Blocks, "launch", launch)
    return calls


def test_mint_app_launches_the_app(launches, stage2_folder, stage1_folder):
    assert mint.cli.main(["app", stage2_folder, "--stage1", stage1_folder, "--port", "7861", "--host", "0.0.0.0",
                          "--device", "cpu"]) == 0
    (blocks, options), = launches
    assert options == {"server_name": "0.0.0.0", "server_port": 7861, "share": False}
    tabs = [block.label for block in blocks.blocks.values() if isinstance(block, gr.Tab)]
    assert tabs == ["Captioning and instructions", "Zero-shot classification", "Retrieval"]
    assert {"/caption", "/classify", "/retrieve"} <= {f"/{d.api_name}" for d in blocks.fns.values() if d.api_name}


def test_a_stage1_model_alone_gets_classification_and_retrieval(launches, stage1_folder):
    assert mint.cli.main(["app", stage1_folder, "--share", "no"]) == 0
    (blocks, options), = launches
    assert options == {"server_name": "127.0.0.1", "server_port": 7860, "share": False}
    assert [block.label for block in blocks.blocks.values() if isinstance(block, gr.Tab)] == \
        ["Zero-shot classification", "Retrieval"]


# (arguments, exit status, words on stderr); S1 / S2: the tiny stage-1 / stage-2 folders, MISSING: no such folder.
BAD_COMMANDS = [
    (["app", "MISSING"], 1, "error: Could not load the model"),
    (["app", "S2", "--stage1", "MISSING"], 1, "error: Could not load the stage-1 model"),
    (["app", "S1", "--stage1", "S1"], 1, "is not a stage-2 model with a trained LLM"),
    (["app", "S2", "--stage1", "S2"], 1, "cannot score embeddings"),
    (["app", "S2", "--port", "70000"], 1, "--port must be at most 65535, got 70000"),
    (["app", "S2", "--port", "0"], 2, "expected a positive integer, got '0'"),
    (["app", "S2", "--share", "maybe"], 2, "invalid choice: 'maybe'"),
    (["app", "S2", "--device", "cuda:7"], 1, "--device cuda:7"),
    (["app"], 2, "the following arguments are required: model"),
]


@pytest.mark.parametrize("arguments, status, words", BAD_COMMANDS)
def test_bad_commands_are_refused(arguments, status, words, launches, stage1_folder, stage2_folder, tmp_path, capsys):
    folders = {"S1": stage1_folder, "S2": stage2_folder, "MISSING": str(tmp_path / "missing")}
    arguments = [folders.get(a, a) for a in arguments]
    if status == 2:
        with pytest.raises(SystemExit) as exited:
            mint.cli.main(arguments)
        assert exited.value.code == 2
    else:
        assert mint.cli.main(arguments) == status
    assert words in capsys.readouterr().err and not launches
