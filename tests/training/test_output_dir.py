"""A run's output_dir: claimed for one stage and model, never a folder that holds something else (unless told to
replace it); completion markers written in one step, and an empty or cut marker never trusted."""

import dataclasses
import json
import os

import pytest
from datasets import Dataset

import mint.cli
from mint.training.checkpoints import COMPLETE_MARKER, RUN_MARKER, claim_output_dir, last_complete_checkpoint
from mint.training.trainer import train
from tests.utils.training import LossRecorder, make_audio_dataset, make_mint_folder, recipe


def unrelated_file(folder):
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")


def dataset_folder(folder):
    Dataset.from_dict({"x": [1, 2]}).save_to_disk(str(folder))


def a_file(folder):
    folder.write_text("not a folder")


def stage1_run(folder):
    claim_output_dir(folder, 1, "model")


def run_of_another_model(folder):
    claim_output_dir(folder, 2, "another-model")


def run_with_other_settings(folder):
    claim_output_dir(folder, 2, "model", model_settings={"dropout": 0.0})


def cut_marker(folder):
    folder.mkdir()
    (folder / RUN_MARKER).write_text("")


# (what the output_dir holds, words the message must hold)
REFUSED = [
    (unrelated_file, ["holds 'notes.txt', which no MINT training run wrote", "overwrite: true", "--overwrite"]),
    (dataset_folder, ["'dataset_info.json'", "which no MINT training run wrote"]),
    (a_file, ["exists and is not a folder"]),
    (stage1_run, ["holds a run of stage 1 from", "this recipe trains stage 2", "--overwrite"]),
    (run_of_another_model, ["holds a run of stage 2 from", "another-model", "choose another output_dir"]),
    (run_with_other_settings, ["holds a run with the model settings {'dropout': 0.0}", "this recipe sets {}",
                               "resume with the run's settings", "--overwrite"]),
    (cut_marker, [f"holds '{RUN_MARKER}', which no MINT training run wrote"]),
]


@pytest.mark.parametrize("holds, words", REFUSED)
def test_an_output_dir_holding_something_else_is_refused(tmp_path, holds, words):
    folder = tmp_path / "out"
    holds(folder)
    before = sorted(os.listdir(folder)) if folder.is_dir() else folder.read_text()
    with pytest.raises(ValueError) as error:
        claim_output_dir(folder, 2, "model")
    assert all(word in str(error.value) for word in words), str(error.value)
    assert (sorted(os.listdir(folder)) if folder.is_dir() else folder.read_text()) == before  # untouched


@pytest.mark.parametrize("holds", [unrelated_file, dataset_folder, stage1_run, run_with_other_settings, cut_marker])
def test_overwrite_replaces_what_the_output_dir_held(tmp_path, holds):
    folder = tmp_path / "out"
    holds(folder)
    claim_output_dir(folder, 2, "model", overwrite=True)
    assert os.listdir(folder) == [RUN_MARKER]
    assert json.loads((folder / RUN_MARKER).read_text()) == {"stage": 2, "model": os.path.abspath("model"),
                                                             "model_settings": {}}


def test_a_run_of_the_same_stage_and_model_is_claimed_again(tmp_path):
    folder = tmp_path / "out"
    claim_output_dir(folder, 1, "model")
    (folder / "checkpoint-2").mkdir()
    claim_output_dir(folder, 1, "model")
    assert sorted(os.listdir(folder)) == ["checkpoint-2", RUN_MARKER]
    claim_output_dir(tmp_path / "empty", 1, "model")  # a missing folder is made
    settings = {"stage1_objectives": ["alc", "atg"], "temperature_range": [0.01, 0.5], "dropout": 0.0}
    claim_output_dir(tmp_path / "set", 1, "model", model_settings=settings)
    claim_output_dir(tmp_path / "set", 1, "model", model_settings=dict(reversed(settings.items())))
    legacy = tmp_path / "legacy"  # a marker written before settings were recorded: its settings are not known
    legacy.mkdir()
    (legacy / RUN_MARKER).write_text(json.dumps({"stage": 1, "model": os.path.abspath("model")}))
    claim_output_dir(legacy, 1, "model", model_settings=settings)


def test_a_checkpoint_with_an_empty_or_cut_marker_is_not_complete(tmp_path):
    for step, marker in ((1, '{"global_step": 1}'), (2, ""), (3, '{"global_')):
        (tmp_path / f"checkpoint-{step}").mkdir()
        (tmp_path / f"checkpoint-{step}" / COMPLETE_MARKER).write_text(marker)
    assert last_complete_checkpoint(tmp_path).endswith("checkpoint-1")


@pytest.fixture(scope="module")
def run_inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("output-dir")
    make_audio_dataset(root).save_to_disk(str(root / "data"))
    return make_mint_folder(root / "mint"), str(root / "data")


@pytest.mark.slow
def test_train_refuses_a_folder_of_other_files_and_resumes_its_own_run(run_inputs, tmp_path):
    model, data = run_inputs
    unrelated_file(tmp_path / "out")
    spec = recipe(model, tmp_path / "out", max_steps=2, save_steps=1, datasets=[{"path": data}], resume=True)
    with pytest.raises(ValueError, match="holds 'notes.txt', which no MINT training run wrote"):
        train(spec)
    assert os.listdir(tmp_path / "out") == ["notes.txt"]
    train(dataclasses.replace(spec, overwrite=True))
    assert not (tmp_path / "out" / "notes.txt").exists() and last_complete_checkpoint(tmp_path / "out")
    recorder = LossRecorder()
    train(dataclasses.replace(spec, max_steps=3), callbacks=[recorder])
    assert [log["step"] for log in recorder.logs] == [3]  # its own run, resumed from checkpoint-2


def test_mint_train_overwrite(run_inputs, tmp_path, capsys):
    model, data = run_inputs
    unrelated_file(tmp_path / "out")
    spec = tmp_path / "recipe.json"
    spec.write_text(json.dumps({"stage": 1, "model": model, "output_dir": str(tmp_path / "out"), "batch_size": 2,
                                "max_steps": 1, "warmup_steps": 0, "dataloader_num_workers": 0,
                                "datasets": [{"path": data}]}))
    assert mint.cli.main(["train", str(spec)]) == 1
    assert "error: output_dir" in capsys.readouterr().err and (tmp_path / "out" / "notes.txt").exists()
    assert mint.cli.main(["train", str(spec), "--overwrite"]) == 0
    assert not (tmp_path / "out" / "notes.txt").exists()
