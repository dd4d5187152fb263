"""The demo's ranking_results (the length-normalised accuracy derived from the summed scores of one pass) against
`evaluate_classification(length_normalize=True)`, and `evaluate_classification`'s `return_scores` and checks."""

import numpy as np
import pytest
import soundfile
import torch
from datasets import Audio, ClassLabel, Dataset

import modeling_mint
from mint.demo import run
from mint.evaluation.classification import evaluate_classification
from tests.utils import tiny
from tests.utils.audio import clips, write_wavs


LABELS = ["dog", "cat", "piano"]
PROMPT = "This is a sound of"


@pytest.fixture(scope="module")
def paths(tmp_path_factory):
    return write_wavs(tmp_path_factory.mktemp("ranking-wavs"))


@pytest.fixture(scope="module")
def cl_data(paths):
    """Five clips with a ClassLabel column `label`."""
    return Dataset.from_dict({"audio": paths, "label": [0, 1, 2, 0, 1]}).cast_column("audio", Audio()).cast_column(
        "label", ClassLabel(names=LABELS))


# ---- ranking_results against evaluate_classification(length_normalize=True) ----------------------------------------

def test_ranking_results_on_a_classlabel_column_agrees_with_evaluate_classification(monkeypatch, cl_data, stage2,
                                                                                     processor):
    monkeypatch.setattr(run, "TASKS", {"label": ("label", PROMPT)})
    expected = evaluate_classification(stage2, processor, cl_data, "label", prompt=PROMPT, progress=False,
                                       length_normalize=True)["accuracy"]
    results = run.ranking_results(stage2, processor, cl_data, progress=False)
    assert results["label"]["length_normalised"] == pytest.approx(expected)


def test_accuracy_by_soundfont_of_a_classlabel_column_counts_right_predictions(cl_data):
    data = cl_data.add_column("soundfont", ["font"] * len(cl_data))
    predictions = [LABELS[i] for i in data["label"]]  # every prediction right
    assert run._by_soundfont(data, "label", predictions) == {"font": {"accuracy": 1.0, "clips": len(data)}}


def _near_tie(n_a: int, n_b: int):
    """float32 sums s_a, s_b whose float32 means per token (s / n) are equal while the exact means differ, b's ahead."""
    s_a = np.float32(-0.7 * n_a)
    for _ in range(20000):
        s_a = np.nextafter(s_a, np.float32(0))
        mean = np.float32(s_a) / np.float32(n_a)
        guess = np.float32(float(mean) * n_b)
        for step in range(-4, 5):
            s_b = guess
            for _ in range(abs(step)):
                s_b = np.nextafter(s_b, np.float32(np.inf if step > 0 else -np.inf))
            if (np.float32(s_b) / np.float32(n_b) == mean
                    and float(s_b) / n_b > float(s_a) / n_a):
                return s_a, s_b
    raise AssertionError("no near tie found (test set-up)")


def test_set_up_near_tie_exists():
    s_a, s_b = _near_tie(3, 7)
    assert np.float32(s_a) / np.float32(3) == np.float32(s_b) / np.float32(7)
    assert float(s_b) / 7 > float(s_a) / 3


def test_length_normalised_accuracy_from_summed_scores_equals_length_normalize_at_a_float32_near_tie(
        monkeypatch, paths, stage2, processor):
    short, long = "dog bark", "this is a sound of dog"  # 3 and 7 tokens with the end-of-sequence token
    counts = processor.tokenize_candidates([short, long])["candidate_attention_mask"].sum(-1).tolist()
    assert counts == [3, 7]
    s_a, s_b = _near_tie(*counts)

    def by_length(logits, labels):
        n = (labels != -100).sum(-1)
        return torch.where(n == counts[0], torch.tensor(s_a), torch.tensor(s_b)).float()

    monkeypatch.setattr(modeling_mint, "_sequence_log_likelihood", by_length)
    data = Dataset.from_dict({"audio": paths[:4], "label": [short, long, long, long]}).cast_column("audio", Audio())
    monkeypatch.setattr(run, "TASKS", {"t": ("label", PROMPT)})
    normalised = evaluate_classification(stage2, processor, data, prompt=PROMPT, progress=False,
                                         length_normalize=True)
    results = run.ranking_results(stage2, processor, data, progress=False)
    assert results["t"]["length_normalised"] == normalised["accuracy"]


def test_returned_scores_over_token_counts_are_length_normalize_with_windows_and_skipped_rows(tmp_path, stage2):
    """Windows (0.5 s, 2.5 s, 1.6 s clips at 1 s windows), an unlabelled row and an undecodable file, skipped."""
    processor = tiny.processor(max_audio_seconds=1.0, long_audio_policy="window")
    sounds = [clips((8000,), seed=0)[0], np.concatenate(clips((16000, 16000, 8000), seed=1)),
              np.concatenate(clips((16000, 9600), seed=2)), clips((12000,), seed=3)[0]]
    files = []
    for i, sound in enumerate(sounds):
        files.append(str(tmp_path / f"clip{i}.wav"))
        soundfile.write(files[-1], sound, 16000)
    (tmp_path / "broken.wav").write_bytes(b"not audio at all")
    files.insert(2, str(tmp_path / "broken.wav"))
    labels = ["dog", "cat", "piano", None, "dog bark"]
    data = Dataset.from_dict({"audio": files, "label": labels}).cast_column("audio", Audio())
    candidates = ["dog", "cat", "piano", "dog bark", "this is a sound of dog"]
    common = dict(candidates=candidates, prompt=PROMPT, progress=False, skip_invalid=True, return_scores=True,
                  batch_size=2)
    summed = evaluate_classification(stage2, processor, data, **common)
    normal = evaluate_classification(stage2, processor, data, length_normalize=True, **common)
    tokens = processor.tokenize_candidates(candidates)["candidate_attention_mask"].sum(-1).numpy()
    assert summed["num_clips"] == len(summed["scores"]) == len(summed["predictions"]) == 3
    assert sorted(s["row"] for s in summed["skipped"]) == [2, 3]
    np.testing.assert_allclose(summed["scores"] / tokens, normal["scores"], rtol=1e-5)
    assert [candidates[i] for i in (summed["scores"] / tokens).argmax(1)] == normal["predictions"]


# ---- evaluate_classification's arguments ----------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["length_normalize", "calibrate"])
def test_a_string_for_a_flag_is_refused_as_return_scores_is(name, cl_data, stage2, processor):
    with pytest.raises(ValueError, match=name):
        evaluate_classification(stage2, processor, cl_data, prompt=PROMPT, progress=False, **{name: "no"})


def test_numpy_bool_return_scores_is_accepted(cl_data, stage2, processor):
    result = evaluate_classification(stage2, processor, cl_data, prompt=PROMPT, progress=False,
                                     return_scores=np.bool_(True))
    assert result["scores"].shape == (5, 3)


@pytest.mark.parametrize("batch_size", [0, -1])
def test_a_bad_batch_size_is_refused_naming_it(batch_size, cl_data, stage2, processor):
    with pytest.raises(ValueError, match="batch_size"):
        evaluate_classification(stage2, processor, cl_data, prompt=PROMPT, progress=False, batch_size=batch_size)


def test_an_empty_dataset_is_named_empty(cl_data, stage2, processor):
    with pytest.raises(ValueError) as raised:
        evaluate_classification(stage2, processor, cl_data.select([]), candidates=LABELS, prompt=PROMPT,
                                progress=False)
    assert "empty" in str(raised.value) or "no row" in str(raised.value), str(raised.value)


def test_return_scores_embedding_and_multi_label(cl_data, stage1, stage2, processor):
    """Scores come back float32 (clips, candidates) in the embedding mode and for multi-label data too."""
    result = evaluate_classification(stage1, processor, cl_data, mode="embedding", progress=False, return_scores=True)
    assert result["scores"].dtype == np.float32 and result["scores"].shape == (5, 3)
    assert result["predictions"] == [LABELS[i] for i in result["scores"].argmax(1)]
    multi = Dataset.from_dict({"audio": cl_data.cast_column("audio", Audio(decode=False))["audio"],
                               "tags": [["dog", "piano"], ["cat"], ["piano"], ["dog"], ["cat", "piano"]]}).cast_column(
        "audio", Audio())
    result = evaluate_classification(stage2, processor, multi, "tags", prompt=PROMPT, multi_label=True,
                                     progress=False, return_scores=True)
    assert result["scores"].shape == (5, len(result["candidates"])) and result["scores"].dtype == np.float32


def test_calibrated_returned_scores_over_tokens_are_calibrated_length_normalize(cl_data, stage2, processor):
    candidates = ["dog", "cat", "piano", "dog bark", "this is a sound of dog"]
    common = dict(candidates=candidates, prompt=PROMPT, progress=False, return_scores=True, calibrate=True)
    data = Dataset.from_dict({"audio": cl_data.cast_column("audio", Audio(decode=False))["audio"],
                              "label": ["dog", "cat", "piano", "dog bark", "this is a sound of dog"]}).cast_column(
        "audio", Audio())
    summed = evaluate_classification(stage2, processor, data, **common)
    normal = evaluate_classification(stage2, processor, data, length_normalize=True, **common)
    tokens = processor.tokenize_candidates(candidates)["candidate_attention_mask"].sum(-1).numpy()
    np.testing.assert_allclose(summed["scores"] / tokens, normal["scores"], rtol=1e-4, atol=1e-6)
