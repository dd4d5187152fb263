"""A recipe checked against its data before anything trains: the stage's columns, rows and labels, the same in
`train` and `mint plan`; a plan's warnings; the training commands' options refused by the parser."""

import itertools
import json

import pytest
from datasets import Audio, ClassLabel, Dataset, DatasetInfo, Features, Sequence, Value

import mint.cli
from mint.training.recipe import load_recipe
from mint.data.cache import cache_audio_features
from mint.data.examples import to_caption_pairs, to_mint_examples
from mint.training.collator import ROW_COLUMN, SOURCE_COLUMN
from mint.training.plan import plan_recipe
from mint.training.train_data import build_train_dataset, empty_rows
from mint.training.trainer import train
from modeling_mint import MintForPreTraining
from tests.utils import tiny
from tests.utils.training import CAPTIONS, make_audio_dataset, make_mint_folder, recipe


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """A MINT folder and datasets: raw audio, caches of stage-1 and stage-2 examples, an empty one, bad labels."""
    root = tmp_path_factory.mktemp("recipe-checks")
    model = make_mint_folder(root / "mint")
    audio = make_audio_dataset(root)
    audio.save_to_disk(str(root / "audio"))
    encoder = MintForPreTraining.from_pretrained(model).eval()
    cache_audio_features(encoder, tiny.processor(), to_caption_pairs(audio), root / "cache-stage1", progress=False)
    cache_audio_features(encoder, tiny.processor(), to_mint_examples(audio, "NSynth"), root / "cache-stage2",
                         progress=False)
    audio.filter(lambda caption: False, input_columns="caption").save_to_disk(str(root / "empty"))
    audio.cast_column("label", ClassLabel(names=["dog", "cat", "piano", "rain", "flute", "drum"])).map(
        lambda row, i: {"label": -1 if i in (2, 4) else row["label"]}, with_indices=True).save_to_disk(
        str(root / "no-label"))
    audio.map(lambda row, i: {"caption": "  " if i == 3 else row["caption"]}, with_indices=True).save_to_disk(
        str(root / "blank-caption"))
    (root / "not-audio.wav").write_text("not a sound")
    audio.cast_column("audio", Audio(decode=False)).map(
        lambda row, i: {"audio": {"bytes": None, "path": str(root / "not-audio.wav")} if i == 4 else row["audio"]},
        with_indices=True).save_to_disk(str(root / "bad-clip"))
    return {"model": model, **{name: str(root / name) for name in ("audio", "cache-stage1", "cache-stage2", "empty",
                                                                   "no-label", "blank-caption", "bad-clip")}}


# (stage, dataset, entry settings, words every message must hold)
MISMATCHES = [
    (2, "cache-stage1", {}, ["cache-stage1 (train)", "stage 2 needs a 'template'", "no 'prompt' and 'target'"]),
    (2, "cache-stage1", {"template": "NSynth"}, ["cache-stage1 (train)", "no label column 'label'",
                                                 "stage-2 recipe", "audio_encoder_features", "feature cache"]),
    (2, "cache-stage1", {"template": "NSynth", "streaming": True}, ["cache-stage1 (train)", "no label column"]),
    (1, "cache-stage2", {}, ["cache-stage2 (train)", "no caption column 'caption'", "stage-1 recipe", "'prompt'"]),
    (2, "audio", {}, ["audio (train)", "stage 2 needs a 'template'"]),
    (2, "audio", {"template": "NSynth", "label_column": "genre"}, ["no label column 'genre'", "'instruments'"]),
    (1, "audio", {"caption_column": "captions"}, ["no caption column 'captions'", "caption_column"]),
    (1, "audio", {"audio_column": "sound"}, ["no audio column 'sound'", "audio_column"]),
    (1, "audio", {"audio_column": "caption"}, ["audio (train)", "The audio column 'caption' holds text ('a dog barks'",
                                               "audio_column"]),
    (2, "audio", {"template": "NSynth", "audio_column": "label"}, ["The audio column 'label' holds numbers (0,"]),
    (1, "audio", {"caption_column": "label"}, ["audio (train): the caption column 'label' holds ClassLabel",
                                               "not text", "caption_column"]),
    (1, "empty", {}, ["empty (train) has no rows"]),
    (1, "empty", {"streaming": True}, ["empty (train) has no rows"]),
    (2, "no-label", {"template": "NSynth"}, ["no-label (train): 2 of 6 rows have an empty 'label'", "[2, 4]"]),
    (1, "blank-caption", {}, ["blank-caption (train): 1 of 6 rows have an empty 'caption'", "[3]"]),
]


def mismatched(folders, stage, name, settings, tmp_path):
    steps = {"max_steps": 2} if settings.get("streaming") else {}
    return recipe(folders["model"], tmp_path / "out", stage=stage, datasets=[{"path": folders[name], **settings}],
                  **steps)


@pytest.mark.parametrize("stage, name, settings, words", MISMATCHES)
def test_a_recipe_that_does_not_fit_its_data_is_refused_before_training(folders, tmp_path, stage, name, settings,
                                                                        words):
    wrong = mismatched(folders, stage, name, settings, tmp_path)
    with pytest.raises(ValueError) as error:
        build_train_dataset(wrong)  # what `train` builds before it starts
    assert all(word in str(error.value) for word in words), str(error.value)
    assert "dataset 1 (" in str(error.value)
    with pytest.raises(ValueError) as planned:
        plan_recipe(wrong)  # `mint plan` runs the same check
    assert all(word in str(planned.value) for word in words), str(planned.value)


def test_train_refuses_before_writing_anything(folders, tmp_path):
    wrong = mismatched(folders, 2, "cache-stage1", {"template": "NSynth"}, tmp_path)
    with pytest.raises(ValueError, match="no label column 'label'"):
        train(wrong)
    assert not (tmp_path / "out").exists()


def test_every_mismatched_dataset_is_named_at_once(folders, tmp_path):
    both = recipe(folders["model"], tmp_path, stage=2, datasets=[
        {"path": folders["cache-stage1"], "template": "NSynth"}, {"path": folders["audio"], "template": "NSynth"},
        {"path": folders["empty"], "template": "WavCaps"}])
    with pytest.raises(ValueError) as error:
        build_train_dataset(both)
    message = str(error.value)
    assert "dataset 1 (" in message and "dataset 3 (" in message and "dataset 2 (" not in message


def test_a_cache_made_from_labelled_clips_trains_stage_2_through_its_template(folders, tmp_path):
    """A corpus cached once (its captions kept) feeds stage 2 from a recipe, as it does through the library."""
    examples = build_train_dataset(recipe(folders["model"], tmp_path, stage=2, datasets=[
        {"path": folders["cache-stage1"], "template": "WavCaps"}]))
    assert examples[0]["prompt"] == "Generate audio caption:" and examples[0]["target"] == "a dog barks"
    assert examples[0]["audio_encoder_features"].ndim == 2


def test_each_dataset_of_a_mixture_is_numbered_by_its_own_rows(folders, tmp_path):
    mixture = build_train_dataset(recipe(folders["model"], tmp_path, stage=1, datasets=[
        {"path": folders["cache-stage1"]}, {"path": folders["cache-stage1"], "weight": 2.0}]))
    rows = list(zip(mixture[SOURCE_COLUMN], mixture[ROW_COLUMN]))
    assert sorted(set(rows)) == [(source, row) for source in (0, 1) for row in range(6)]


LABELS = ["dog", "cat", "piano", "rain", "flute", "drum"]


@pytest.mark.parametrize("stage, entry, texts", [(1, {}, CAPTIONS), (2, {"template": "WavCaps"}, CAPTIONS),
                                                 (2, {"template": "NSynth"}, LABELS),
                                                 (1, {"path": "cache-stage1"}, CAPTIONS),
                                                 (2, {"path": "cache-stage2"}, LABELS)])
def test_each_dataset_of_a_streamed_mixture_is_numbered_by_its_own_rows(folders, tmp_path, stage, entry, texts):
    name = entry.pop("path", "audio")
    datasets = [{"path": folders[name], "streaming": True, **entry}, {"path": folders[name], "weight": 2.0, **entry}]
    stream = build_train_dataset(recipe(folders["model"], tmp_path, stage=stage, datasets=datasets, max_steps=2))
    seen = set()
    for example in itertools.islice(stream, 36):
        source, row = int(example[SOURCE_COLUMN]), int(example[ROW_COLUMN])
        text = example["caption"] if stage == 1 else example["target"]
        assert text == texts[row], (source, row, text)  # the number is the row the example was made from
        seen.add((source, row))
    assert seen == {(source, row) for source in (0, 1) for row in range(6)}


def test_a_bad_clip_of_a_streamed_mixture_is_named_by_its_dataset_and_row(folders, tmp_path):
    datasets = [{"path": folders["audio"], "streaming": True}, {"path": folders["bad-clip"]}]
    with pytest.raises(ValueError) as refused:
        train(recipe(folders["model"], tmp_path / "out", datasets=datasets, max_steps=12))
    message = str(refused.value)
    assert f"row 4 of {folders['bad-clip']!r}" in message and "not-audio.wav" in message, message


@pytest.mark.parametrize("values, expected", [
    ({"label": ["dog", "", " ", None]}, [1, 2, 3]),
    ({"label": [0, -1, 2, None]}, [1, 3]),
    ({"label": [[0], [], [1, -1], None]}, [1, 2, 3]),
    ({"label": [["a"], [], ["b"], ["c"]]}, [1]),
    ({"label": [["a", " "], ["b", None], ["c"], None]}, [0, 1, 3]),
])
def test_empty_rows_finds_every_kind_of_missing_label(values, expected):
    assert empty_rows(Dataset.from_dict(values), "label") == expected


def test_empty_rows_finds_class_indices_without_a_name():
    names = ClassLabel(names=["dog", "cat"])
    single = Dataset.from_dict({"label": [0, 1, -1]}).cast_column("label", names)
    # Arrow holds what a writer put there: an index beyond the names is read back as it is.
    beyond = Dataset.from_dict({"label": [1, 2, 0]}, features=Features({"label": Value("int64")}))
    beyond = Dataset(beyond.data, info=DatasetInfo(features=Features({"label": names})))
    lists = Dataset.from_dict({"label": [[0], [1, 5], [-1]]}, features=Features({"label": Sequence(Value("int64"))}))
    lists = Dataset(lists.data, info=DatasetInfo(features=Features({"label": Sequence(names)})))
    assert empty_rows(single, "label") == [2]
    assert empty_rows(beyond, "label") == [1]
    assert empty_rows(lists, "label") == [1, 2]


def test_plan_warns_when_the_warm_up_is_longer_than_the_run(folders, tmp_path):
    plan = plan_recipe(recipe(folders["model"], tmp_path, datasets=[{"path": folders["audio"]}], max_steps=15,
                              warmup_steps=2000))
    assert plan.warnings == ["2,000 warm-up steps for a 15-step run: the learning rate never reaches the recipe's "
                             "learning_rate; set warmup_steps below the run's steps (e.g. warmup_steps=1)."]
    assert "warning: 2,000 warm-up steps for a 15-step run" in plan.report()
    assert plan.to_dict()["warnings"] == plan.warnings
    assert plan_recipe(recipe(folders["model"], tmp_path, datasets=[{"path": folders["audio"]}], max_steps=15,
                              warmup_steps=3)).warnings == []


def test_mint_plan_prints_the_warning(folders, tmp_path, capsys):
    path = tmp_path / "recipe.json"
    path.write_text(json.dumps({"stage": 1, "model": folders["model"], "batch_size": 2, "max_steps": 3,
                                "datasets": [{"path": folders["audio"]}]}))
    assert mint.cli.main(["plan", str(path)]) == 0
    assert "warning: 2,000 warm-up steps for a 3-step run" in capsys.readouterr().out


# (command line, words the parser's message must hold)
BAD_OPTIONS = [
    (["train", "r.json", "--max-train-minutes", "0"], ["--max-train-minutes", "expected a number > 0"]),
    (["train", "r.json", "--max-train-minutes", "-1"], ["--max-train-minutes", "expected a number > 0"]),
    (["train", "r.json", "--max-train-minutes", "inf"], ["--max-train-minutes", "expected a finite number"]),
    (["train", "r.json", "--max-train-minutes", "soon"], ["--max-train-minutes", "expected a number"]),
    (["plan", "r.json", "--processes", "0"], ["--processes", "expected a positive integer, got '0'"]),
    (["plan", "r.json", "--processes", "-2"], ["--processes", "expected a positive integer"]),
    (["plan", "r.json", "--processes", "1.5"], ["--processes", "expected an integer"]),
    (["plan", "r.json", "--accumulation", "0"], ["--accumulation", "expected a positive integer"]),
    (["plan", "r.json", "--cache-dtype", "int8"], ["--cache-dtype", "invalid choice"]),
    (["recipe", "stage3"], ["invalid choice: 'stage3'"]),
    (["demo", "--seed", "-1"], ["--seed", "expected an integer >= 0"]),
    (["demo", "--stage1-epochs", "0"], ["--stage1-epochs", "expected a number > 0"]),
    (["demo", "--stage2-epochs", "nan"], ["--stage2-epochs", "expected a finite number"]),
    (["demo", "--bridge-learning-rate=-1e-4"], ["--bridge-learning-rate", "expected a number >= 0"]),
    (["demo", "--stage2-dropout", "1"], ["--stage2-dropout", "expected a number in [0, 1), got '1'"]),
    (["demo", "--stage2-dropout=-0.1"], ["--stage2-dropout", "expected a number in [0, 1)"]),
    (["demo", "--stage2-dropout", "nan"], ["--stage2-dropout", "expected a finite number"]),
    (["demo", "--stage2-dropout", "some"], ["--stage2-dropout", "expected a number"]),
    (["demo", "--stage1-dropout", "1.5"], ["--stage1-dropout", "expected a number in [0, 1)"]),
    (["corpus", "--seed", "x"], ["--seed", "expected an integer"]),
    (["convert-whisper", "--output", "o", "--max-source-positions", "0"], ["--max-source-positions",
                                                                           "expected a positive integer"]),
]


@pytest.mark.parametrize("argv, words", BAD_OPTIONS)
def test_training_and_demo_options_are_refused_by_the_parser(argv, words, capsys):
    with pytest.raises(SystemExit) as exit_:
        mint.cli.main(argv)
    error = capsys.readouterr().err
    assert exit_.value.code == 2 and all(word in error for word in words), error


@pytest.mark.parametrize("content, words", [
    ("not json", ["is not a JSON file", "line 1 column 1"]),
    (b"\xff\xfe\x00garbage", ["is not a JSON file"]),
    (None, ["is a folder", "JSON recipe file"]),
    ("[1, 2]", ["must hold a JSON object"]),
])
def test_a_recipe_file_that_is_not_a_json_object_is_refused_by_name(tmp_path, content, words):
    path = tmp_path / "recipe.json"
    if content is None:
        path.mkdir()
    elif isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    with pytest.raises(ValueError) as error:
        load_recipe(path)
    assert str(path) in str(error.value) and all(word in str(error.value) for word in words), str(error.value)
