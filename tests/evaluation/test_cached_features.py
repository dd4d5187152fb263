"""Evaluation from the frozen-feature cache (`audio_column="audio_encoder_features"`): every task scores the cached
features as it scores the audio they came from, and a cached row that is not a clip's features is named or skipped."""

import numpy as np
import pytest
import soundfile
import torch
from datasets import Audio, Dataset

from audio_encoder_mint import ENCODER_FEATURES_KEY
from mint.data.cache import cache_audio_features
from mint.evaluation.captioning import evaluate_captioning
from mint.evaluation.classification import evaluate_classification
from mint.evaluation.few_shot import evaluate_few_shot
from mint.evaluation.reading import ClipReader
from mint.evaluation.retrieval import evaluate_retrieval
from modeling_mint import MintForPreTraining
from tests.utils import tiny
from tests.utils.audio import clips


PROMPT = "This is a sound of"
LABELS = ["dog", "cat", "piano", "dog", "rain"]


@pytest.fixture(scope="module")
def audio(tmp_path_factory):
    """Five clips of different lengths in files, each with a label and a caption of its own."""
    folder = tmp_path_factory.mktemp("clips")
    paths = []
    for i, clip in enumerate(clips((16000, 12000, 9000, 14000, 10000), seed=3)):
        paths.append(str(folder / f"clip{i}.wav"))
        soundfile.write(paths[-1], clip, 16000)
    return Dataset.from_dict({"audio": paths, "label": LABELS,
                              "caption": [f"a {label} number {i}" for i, label in enumerate(LABELS)]}
                             ).cast_column("audio", Audio(decode=False))


@pytest.fixture(scope="module")
def models():
    torch.manual_seed(0)
    stage1 = tiny.amplify_audio(MintForPreTraining(tiny.mint_config())).eval()
    return stage1, tiny.captioning_model()


@pytest.fixture(scope="module")
def cached(audio, models, tmp_path_factory):
    # The stage-2 model's encoder is another draw than the stage-1 model's: each model scores its own cache.
    folder = tmp_path_factory.mktemp("caches")
    return [cache_audio_features(model, tiny.processor(), audio, str(folder / name), batch_size=8, progress=False)
            for model, name in zip(models, ("stage1", "stage2"))]


def _score(task, model, data, column):
    processor, quiet = tiny.processor(), dict(progress=False, audio_column=column)
    if task == "embedding":
        return evaluate_classification(model, processor, data, return_scores=True, mode="embedding", **quiet)
    if task == "ranking":
        return evaluate_classification(model, processor, data, return_scores=True, prompt=PROMPT, **quiet)
    if task == "retrieval":
        return evaluate_retrieval(model, processor, data, rerank_top_k=2, **quiet)
    if task == "few-shot":
        support = data.select([3, 4]).map(lambda row, i: {"label": ["dog", "cat"][i]}, with_indices=True)
        return evaluate_few_shot(model, processor, data.select([0, 1]), support, shots=1, **quiet)
    return evaluate_captioning(model, processor, data, num_beams=1, allow_empty=True, max_new_tokens=4, **quiet)


@pytest.mark.parametrize("task", ["embedding", "ranking", "retrieval", "few-shot", "captioning"])
def test_each_task_scores_the_cached_features_as_the_audio(task, audio, models, cached):
    stage = 1 if task in ("embedding", "retrieval", "few-shot") else 2
    model, features = models[stage - 1], cached[stage - 1]
    assert ENCODER_FEATURES_KEY in features.column_names and "audio" not in features.column_names
    from_audio = _score(task, model, audio, "audio")
    from_cache = _score(task, model, features, ENCODER_FEATURES_KEY)
    if task in ("embedding", "ranking"):
        # Each clip scores the candidates in its own way, so a row read in another order or with another clip's
        # features would show.
        assert len({tuple(np.round(row, 4)) for row in from_audio["scores"]}) == len(LABELS)
        np.testing.assert_allclose(from_cache["scores"], from_audio["scores"], rtol=1e-5, atol=1e-6)
        assert from_cache["predictions"] == from_audio["predictions"]
    elif task == "captioning":
        assert len(set(from_audio["predictions"])) == len(LABELS)
        assert from_cache["predictions"] == from_audio["predictions"]
    elif task == "retrieval":
        for direction in ("text_to_audio", "audio_to_text"):
            assert from_cache[direction] == pytest.approx(from_audio[direction], abs=1e-6)
    else:
        numbers = {k: v for k, v in from_audio.items() if isinstance(v, float)}
        assert numbers and {k: from_cache[k] for k in numbers} == pytest.approx(numbers, abs=1e-6)


def test_few_shot_from_cached_features_refuses_support_clips_it_evaluates(models, cached):
    with pytest.raises(ValueError, match=r"2 clips of the evaluated dataset \(rows \[0, 1\]\) are also support"):
        evaluate_few_shot(models[0], tiny.processor(), cached[0].select([0, 1]), cached[0].select([0, 1]),
                          shots=1, candidates=["dog", "cat"], progress=False, audio_column=ENCODER_FEATURES_KEY)


def _rows(*rows):
    return Dataset.from_dict({ENCODER_FEATURES_KEY: list(rows), "label": ["dog"] * len(rows)})


GOOD = np.ones((3, 32), np.float32).tolist()
# (cached rows, words the error must hold); the bad row is always row 1.
BAD_ROWS = [
    (_rows(GOOD, np.zeros((0, 32)).tolist()), ["Row 1 of the dataset", "no frames"]),
    (_rows(GOOD, [[1.0] * 32, [float("nan")] * 32]), ["Row 1 of the dataset", "32 non-finite values in float32",
                                                      "frame 1, dimension 0"]),
    (_rows(GOOD, [[1.0] * 32, [float("inf")] + [0.0] * 31]), ["Row 1 of the dataset", "1 non-finite value ",
                                                              "the first inf"]),
    (_rows([[1.0] * 32] * 2, [[1.0] * 32, [1.0] * 31]), ["Row 1 of the dataset", "rows differ in length"]),
    (Dataset.from_dict({ENCODER_FEATURES_KEY: [[1.0] * 32, [2.0] * 32], "label": ["dog"] * 2}),
     ["Row 0 of the dataset", "expected a 2-D array of numbers (frames, features)", "1-D", "(32,)"]),
    (Dataset.from_dict({ENCODER_FEATURES_KEY: [[["a"] * 32] * 2] * 2, "label": ["dog"] * 2}),
     ["Row 0 of the dataset", "got text (an array of text of shape (2, 32))", "holds paths or text"]),
]


@pytest.mark.parametrize("data, words", BAD_ROWS)
def test_a_bad_cached_row_is_named_or_skipped(data, words, models):
    stage1 = models[0]
    with pytest.raises(ValueError) as raised:
        evaluate_classification(stage1, tiny.processor(), data, candidates=["dog", "cat"], mode="embedding",
                                progress=False, audio_column=ENCODER_FEATURES_KEY)
    assert all(word in str(raised.value) for word in words), str(raised.value)
    assert "skip_invalid=True" in str(raised.value)
    if "Row 1" in words[0]:  # the good row is still scored, the bad one listed
        result = evaluate_classification(stage1, tiny.processor(), data, candidates=["dog", "cat"],
                                         mode="embedding", progress=False, audio_column=ENCODER_FEATURES_KEY,
                                         skip_invalid=True)
        assert result["num_clips"] == 1 and [s["row"] for s in result["skipped"]] == [1]
        assert words[1] in result["skipped"][0]["reason"]


def test_features_of_another_width_are_named_by_row_or_skipped(models):
    data = _rows(GOOD, [[1.0] * 31] * 3, GOOD)
    kwargs = dict(candidates=["dog", "cat"], mode="embedding", progress=False, audio_column=ENCODER_FEATURES_KEY)
    with pytest.raises(ValueError) as raised:
        evaluate_classification(models[0], tiny.processor(), data, **kwargs)
    assert "Row 1 of the dataset: 31 features per frame, where the model reads 32" in str(raised.value)
    result = evaluate_classification(models[0], tiny.processor(), data, skip_invalid=True, **kwargs)
    assert result["num_clips"] == 2 and [s["row"] for s in result["skipped"]] == [1]


# (values, words the reason must hold; None: accepted)
FEATURE_VALUES = [
    (np.full((2, 32), 1e39), ["non-finite values in float32", "the first inf"]),
    (torch.ones(2, 32, dtype=torch.bfloat16), None),
    (np.ones((2, 32), np.float16), None),
    (np.ones((2, 32), np.int64), None),
    (np.ones((2, 32), bool), ["expected a 2-D array of numbers", "of bool"]),
    (np.ones((3, 0)), ["no features per frame", "(3, 0)"]),
    (np.ones((0, 32)), ["no frames", "(0, 32)"]),
    ("clip.wav", ["got text ('clip.wav')", "holds paths or text"]),
    (np.ones((2, 31)), ["31 features per frame, where the model reads 32"]),
]


@pytest.mark.parametrize("values, words", FEATURE_VALUES)
def test_each_kind_of_cached_row_is_read_or_refused_with_its_reason(values, words):
    from mint.data.collator import as_features, cached_features_problem

    problem = cached_features_problem(values, width=32)
    if words is None:
        assert problem is None
        array = as_features(values, width=32)
        assert array.dtype == np.float32 and array.shape == (2, 32) and (array == 1).all()
    else:
        assert problem is not None and all(word in problem for word in words), problem


def test_a_training_batch_of_rows_of_two_widths_is_refused_naming_them():
    from mint.data.collator import pad_audio_features

    with pytest.raises(ValueError) as raised:
        pad_audio_features([np.ones((3, 32)), np.ones((2, 32)), np.ones((3, 31))])
    assert "batch item(s) [2] have 31 features per frame where item 0 has 32" in str(raised.value)


@pytest.mark.parametrize("policy", ["window", "crop"])
def test_a_long_audio_policy_is_refused_for_cached_features(policy):
    with pytest.raises(ValueError) as raised:
        ClipReader(tiny.processor(), ENCODER_FEATURES_KEY, long_audio_policy=policy)
    assert all(word in str(raised.value) for word in (repr(policy), "cached encoder features", "Leave"))


def _command_result(tmp_path, name, model, dataset, column):
    import json

    import mint.cli

    output = tmp_path / f"{name}.json"
    assert mint.cli.main(["eval", "zero-shot", "--model", str(model), "--dataset", str(dataset), "--audio-column",
                          column, "--output", str(output), "--quiet"]) == 0
    return json.loads(output.read_text())


def test_mint_eval_reads_a_feature_cache_of_the_models_encoder_and_refuses_another(tmp_path, audio, models):
    import mint.cli

    model_dir, processor = tmp_path / "stage1", tiny.processor()
    models[0].save_pretrained(model_dir)
    processor.save_pretrained(model_dir)
    audio.save_to_disk(str(tmp_path / "audio"))
    cache_audio_features(models[0], processor, audio, str(tmp_path / "cache"), progress=False)
    from_audio = _command_result(tmp_path, "audio", model_dir, tmp_path / "audio", "audio")
    from_cache = _command_result(tmp_path, "cache", model_dir, tmp_path / "cache", ENCODER_FEATURES_KEY)
    assert from_cache["predictions"] == from_audio["predictions"]
    assert from_cache["accuracy"] == pytest.approx(from_audio["accuracy"])

    torch.manual_seed(1)
    other = MintForPreTraining(tiny.mint_config()).eval()
    cache_audio_features(other, processor, audio, str(tmp_path / "other-cache"), progress=False)
    with pytest.raises(ValueError) as raised:
        mint.cli.main(["--debug", "eval", "zero-shot", "--model", str(model_dir), "--dataset",
                       str(tmp_path / "other-cache"), "--audio-column", ENCODER_FEATURES_KEY, "--output",
                       str(tmp_path / "other.json"), "--quiet"])
    assert all(word in str(raised.value) for word in ("other-cache", "another audio encoder", "weights differ",
                                                      "mint cache-features"))
    assert not (tmp_path / "other.json").exists()


def test_the_audio_column_help_names_the_feature_caches_column(capsys):
    import mint.cli

    with pytest.raises(SystemExit):
        mint.cli.main(["eval", "zero-shot", "--help"])
    assert f"{ENCODER_FEATURES_KEY} reads a feature cache" in " ".join(capsys.readouterr().out.split())


def test_few_shot_finds_its_support_clips_in_a_cache_of_other_batches_or_precision(audio, models, cached, tmp_path):
    """The same clips cached alone, in float16, are still the evaluated clips: a few-shot result would see them."""
    support = cache_audio_features(models[0], tiny.processor(), audio.select([1, 0]), str(tmp_path / "half"),
                                   batch_size=1, dtype="float16", progress=False)
    kwargs = dict(shots=1, candidates=["dog", "cat"], progress=False, audio_column=ENCODER_FEATURES_KEY)
    with pytest.raises(ValueError, match=r"2 clips of the evaluated dataset \(rows \[0, 1\]\) .*equal cached"):
        evaluate_few_shot(models[0], tiny.processor(), cached[0].select([0, 1]), support, **kwargs)
    # Other clips of the same labels are no overlap.
    other = cached[0].select([3, 1])
    assert evaluate_few_shot(models[0], tiny.processor(), cached[0].select([0, 2]).map(
        lambda row: {"label": "cat"}), other, **kwargs)["num_clips"] == 2


def test_leakage_of_cached_features_needs_an_id_column(cached):
    from mint.evaluation.leakage import leakage_report

    with pytest.raises(ValueError) as raised:
        leakage_report([cached[0]], cached[0], ENCODER_FEATURES_KEY)
    assert all(word in str(raised.value) for word in ("do not identify their clips", "id_column", "--id-column"))
    with_ids = cached[0].add_column("clip", ["a", "b", "c", "d", "e"])
    report = leakage_report([with_ids.select([1, 3])], with_ids, ENCODER_FEATURES_KEY, id_column="clip")
    assert report["num_overlapping"] == 2 and [e["eval_index"] for e in report["examples"]] == [1, 3]


def test_a_cache_without_its_record_or_with_left_out_clips_is_evaluated_with_a_warning(tmp_path, audio, models,
                                                                                         caplog):
    import json
    import logging
    import shutil

    from mint.data.cache import CACHE_RECORD, SKIPPED_CLIPS_FILE, check_feature_cache

    cache_audio_features(models[0], tiny.processor(), audio, str(tmp_path / "cache"), progress=False)
    with caplog.at_level(logging.WARNING):
        check_feature_cache(tmp_path / "cache", models[0], tiny.processor())
    assert not caplog.records
    shutil.copytree(tmp_path / "cache", tmp_path / "damaged")
    (tmp_path / "damaged" / CACHE_RECORD).write_text("{")
    (tmp_path / "damaged" / SKIPPED_CLIPS_FILE).write_text(json.dumps([{"row": 2}]))
    with caplog.at_level(logging.WARNING):
        check_feature_cache(tmp_path / "damaged", models[0], tiny.processor())
    text = " ".join(r.getMessage() for r in caplog.records)
    assert "was not checked against the model's encoder" in text and "unreadable" in text
    assert "1 clips of the dataset were left out" in text


def test_a_cache_of_the_same_weights_but_other_layers_or_settings_is_refused(tmp_path, audio, models):
    """Same encoder weights, another layer read (the same width) or another crop: other features, refused by name."""
    import json

    from mint.data.cache import CACHE_RECORD, FEATURE_SETTINGS, check_feature_cache

    cache_audio_features(models[0], tiny.processor(), audio, str(tmp_path / "cache"), progress=False)
    other_layer = MintForPreTraining(tiny.mint_config(audio_feature_layer=0)).eval()
    other_layer.load_state_dict(models[0].state_dict())
    with pytest.raises(ValueError, match=r"other settings than the model's: audio_feature_layers \[-1\] "
                                         r"\(the model's: \[0\]\)"):
        check_feature_cache(tmp_path / "cache", other_layer, tiny.processor())
    with pytest.raises(ValueError, match=r"max_audio_seconds"):
        check_feature_cache(tmp_path / "cache", models[0], tiny.processor(max_audio_seconds=0.5))
    # A record of an earlier version, without the settings: checked by the weights alone, with a warning.
    record = json.loads((tmp_path / "cache" / CACHE_RECORD).read_text())
    del record[FEATURE_SETTINGS]
    (tmp_path / "cache" / CACHE_RECORD).write_text(json.dumps(record))
    check_feature_cache(tmp_path / "cache", other_layer, tiny.processor())


def test_few_shot_skips_a_cached_row_of_another_width(models, cached):
    rows = [np.asarray(r).tolist() for r in cached[0].with_format("numpy")[ENCODER_FEATURES_KEY]]
    data = Dataset.from_dict({ENCODER_FEATURES_KEY: [rows[0], np.ones((3, 31)).tolist(), rows[1]],
                              "label": ["dog", "cat", "cat"]})
    kwargs = dict(shots=1, candidates=["dog", "cat"], progress=False, audio_column=ENCODER_FEATURES_KEY)
    with pytest.raises(ValueError, match=r"2 clips of the evaluated dataset \(rows \[0, 2\]\)"):
        evaluate_few_shot(models[0], tiny.processor(), data, cached[0].select([0, 1]), **kwargs)
    support = cached[0].select([3, 4]).map(lambda row, i: {"label": ["dog", "cat"][i]}, with_indices=True)
    result = evaluate_few_shot(models[0], tiny.processor(), data, support, skip_invalid=True, **kwargs)
    assert result["num_clips"] == 2 and [s["row"] for s in result["skipped"]] == [1]
