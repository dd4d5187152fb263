"""`plan_recipe`'s arguments and the split a recipe entry or `mint cache-features --split` names, table by table: a
value that cannot be planned, or a split a folder without splits cannot give, is refused rather than ignored; each row
gives the input, the error type and the words of the message."""

import pytest
from datasets import Dataset, DatasetDict

from mint.cli import main
from mint.training.plan import plan_recipe
from mint.training.recipe import MintRecipe
from mint.data.splits import load_split
from mint.training.train_data import build_train_dataset
from tests.utils.training import make_audio_dataset, make_mint_folder


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """A stage-1 folder, the six-clip dataset saved whole (no splits) and as a DatasetDict with train and test."""
    base = tmp_path_factory.mktemp("plan-arguments")
    (base / "audio").mkdir()
    data = make_audio_dataset(base / "audio")
    data.save_to_disk(str(base / "whole"))
    DatasetDict({"train": data.select(range(4)), "test": data.select(range(4, 6))}).save_to_disk(str(base / "split"))
    return {"model": make_mint_folder(base / "stage1"), "whole": str(base / "whole"), "split": str(base / "split"),
            "base": base}


def recipe(folders, split=None, path="whole"):
    entry = {"path": folders[path], "caption_column": "caption", **({"split": split} if split else {})}
    return MintRecipe(stage=1, model=folders["model"], output_dir=str(folders["base"] / "out"), batch_size=2,
                      max_steps=1, warmup_steps=0, datasets=[entry])


BAD_PLAN_ARGUMENTS = [
    (dict(num_processes=0), ["num_processes must be a positive integer, got 0"]),
    (dict(num_processes=-2), ["num_processes must be a positive integer, got -2"]),
    (dict(num_processes=1.5), ["num_processes must be a positive integer, got 1.5"]),
    (dict(num_processes=True), ["num_processes must be a positive integer, got True"]),
    (dict(gradient_accumulation_steps=0), ["gradient_accumulation_steps must be a positive integer, got 0"]),
    (dict(header_samples=0), ["header_samples must be a positive integer, got 0"]),
    (dict(cache_dtype="int8"), ["cache_dtype must be one of ('float16', 'float32')", "got 'int8'"]),
    (dict(cache_dtype="bfloat16"), ["got 'bfloat16'"]),
]


@pytest.mark.parametrize("arguments, words", BAD_PLAN_ARGUMENTS)
def test_plan_refuses_arguments_it_cannot_plan_with(arguments, words, folders):
    with pytest.raises(ValueError) as caught:
        plan_recipe(recipe(folders), **arguments)
    assert all(word in str(caught.value) for word in words), str(caught.value)


def test_the_accumulation_given_is_the_one_planned(folders):
    assert plan_recipe(recipe(folders), gradient_accumulation_steps=2).gradient_accumulation_steps == 2
    assert plan_recipe(recipe(folders), cache_dtype="float32").cache_dtype == "float32"


BAD_SPLITS = [
    ("whole", "test", ValueError, ["split 'test'", "has no splits", "leave split out"]),
    ("whole", "train", ValueError, ["split 'train'", "has no splits"]),
    ("split", "validation", ValueError, ["has no split 'validation'", "['train', 'test']"]),
]


@pytest.mark.parametrize("path, split, error, words", BAD_SPLITS)
@pytest.mark.parametrize("entry", ["plan_recipe", "build_train_dataset"])
def test_a_split_the_folder_cannot_give_is_refused(entry, path, split, error, words, folders):
    call = (lambda r: plan_recipe(r)) if entry == "plan_recipe" else build_train_dataset
    with pytest.raises(error) as caught:
        call(recipe(folders, split, path))
    assert all(word in str(caught.value) for word in [folders[path], *words]), str(caught.value)


@pytest.mark.parametrize("path, split, rows", [("whole", None, 6), ("split", None, 4), ("split", "test", 2)])
def test_a_split_is_read_where_the_folder_has_it_and_a_whole_dataset_without_one(path, split, rows, folders):
    assert len(load_split(folders[path], split)) == rows
    assert plan_recipe(recipe(folders, split, path)).datasets[0].examples == rows


def test_cache_features_refuses_a_split_of_a_dataset_without_splits(folders, capsys):
    output = folders["base"] / "cache"
    status = main(["cache-features", "--model", folders["model"], "--dataset", folders["whole"], "--split", "test",
                   "--output", str(output), "--quiet"])
    assert status == 1 and not output.exists()
    assert "error: --split 'test': the dataset" in capsys.readouterr().err
    assert main(["cache-features", "--merge", "--output", str(output), "--split", "train"]) == 1
    assert "--split apply when computing them" in capsys.readouterr().err


def test_cache_features_reads_the_split_asked_for(folders, capsys):
    output = folders["base"] / "cache-test"
    assert main(["cache-features", "--model", folders["model"], "--dataset", folders["split"], "--split", "test",
                 "--output", str(output), "--quiet"]) == 0
    assert "2 examples cached" in capsys.readouterr().out
    assert isinstance(load_split(str(output), None), Dataset)
