"""Held-out rows in stage 1: `alm_pair_accuracy` (ties, batch sizes, rows named by their row),
`CheckedCollator.valid_rows` (what it blames), and the trainer's checks (before the first step; every row invalid)."""

import numpy as np
import pytest
import torch
from datasets import Audio, Dataset
from transformers import TrainingArguments

from mint.data.cache import cache_audio_features
from mint.data.collator import MintDataCollator
from mint.data.examples import to_caption_pairs
from mint.training.alm import alm_pair_accuracy
from mint.training.collator import CheckedCollator, number_rows
from mint.training.trainer import MintTrainer
from modeling_mint import MintForPreTraining
from tests.utils import tiny
from tests.utils.audio import write_wavs


CAPTIONS = ["a dog barks", "a cat meows", "a piano plays", "rain on a roof", "a flute plays"]


@pytest.fixture(scope="module")
def paths(tmp_path_factory):
    return write_wavs(tmp_path_factory.mktemp("held-out-wavs"))


@pytest.fixture(scope="module")
def pairs(paths):
    families = ["dog", "cat", "piano", "rain", "flute"]
    return Dataset.from_dict({"audio": paths, "caption": CAPTIONS, "family": families}).cast_column(
        "audio", Audio(decode=False))


@pytest.fixture(scope="module")
def cache(paths, tmp_path_factory):
    """The feature cache of the five clips (with their captions), written by the tiny stage-1 encoder."""
    folder = tmp_path_factory.mktemp("hostile-cache")
    data = Dataset.from_dict({"audio": paths, "caption": CAPTIONS}).cast_column("audio", Audio())
    torch.manual_seed(0)
    encoder = MintForPreTraining(tiny.mint_config()).eval()
    return cache_audio_features(encoder, tiny.processor(), data, folder / "clean", progress=False)


def poisoned(cache, rows):
    def poison(features, row):
        if row in rows:
            features[0][0] = float("nan")
        return {"audio_encoder_features": features}

    data = cache.with_format(None).map(poison, input_columns=["audio_encoder_features"], with_indices=True)
    return to_caption_pairs(data, audio_column="audio_encoder_features")


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return MintForPreTraining(tiny.mint_config()).eval()


# ---- alm_pair_accuracy ----------------------------------------------------------------------------------------------

def test_ties_count_half_in_the_ranking(pairs, model, processor, monkeypatch):
    monkeypatch.setattr(model, "matching_logits", lambda hidden, *a: torch.zeros(hidden.shape[0], 2))
    result = alm_pair_accuracy(model, pairs, MintDataCollator(processor, stage=1, group_column="family"),
                               batch_size=3)
    assert result["alm_ranking_accuracy"] == 0.5 and result["alm_pairs"] == 10
    # A probability of exactly 0.5 is on neither side; argmax calls it unmatched: the matched half counts wrong.
    assert result["alm_pair_accuracy"] == 0.5


def test_a_numpy_integer_batch_size_is_accepted(pairs, model, processor):
    alm_pair_accuracy(model, pairs, MintDataCollator(processor, stage=1, group_column="family"),
                      batch_size=np.int64(4))


@pytest.mark.parametrize("rows, words", [([0], ["single group"]), ([0, 0], ["single group"])])
def test_one_row_or_one_group_is_refused(pairs, model, processor, rows, words):
    with pytest.raises(ValueError) as raised:
        alm_pair_accuracy(model, pairs.select(rows), MintDataCollator(processor, stage=1, group_column="family"))
    assert all(word in str(raised.value) for word in words), str(raised.value)


def test_a_nan_in_a_cached_row_is_named_by_its_row(cache, model, processor):
    data = poisoned(cache, {1})
    with pytest.raises(Exception) as raised:
        alm_pair_accuracy(model, data, MintDataCollator(processor, stage=1), batch_size=16)
    assert "row 1" in str(raised.value).lower(), str(raised.value)


def test_a_nan_in_a_raw_clip_is_named_by_its_row(pairs, model, processor):
    examples = [dict(pairs[i]) for i in range(len(pairs))]
    examples[2]["audio"] = {"array": np.full(16000, np.nan, dtype=np.float32), "sampling_rate": 16000, "path": None}
    with pytest.raises(Exception) as raised:
        alm_pair_accuracy(model, examples, MintDataCollator(processor, stage=1, group_column="family"))
    assert "row 2" in str(raised.value).lower(), str(raised.value)


# ---- CheckedCollator.valid_rows and MintTrainer.evaluate ------------------------------------------------------------

def test_valid_rows_names_or_skips_a_nan_row(cache, processor):
    data = number_rows(poisoned(cache, {3}))
    collator = CheckedCollator(MintDataCollator(processor, stage=1))
    with pytest.raises(ValueError, match="row 3 of the training dataset"):
        collator.valid_rows(data)
    assert CheckedCollator(MintDataCollator(processor, stage=1), skip_invalid=True).valid_rows(data) == (
        [0, 1, 2, 4], 1)


def test_a_bad_group_value_is_not_blamed_on_the_audio(pairs, processor):
    data = number_rows(pairs.remove_columns("family").add_column("family", ["dog", "cat", None, "rain", "flute"]))
    collator = CheckedCollator(MintDataCollator(processor, stage=1, group_column="family"))
    with pytest.raises(ValueError) as raised:
        collator.valid_rows(data)
    message = str(raised.value)
    assert "row 2" in message and "group id" in message and "column 'audio'" not in message, message


def _trainer(tmp_path, processor, skip_invalid=True):
    torch.manual_seed(0)
    args = TrainingArguments(output_dir=str(tmp_path / "run"), report_to="none", use_cpu=True,
                             per_device_eval_batch_size=3)
    collator = CheckedCollator(MintDataCollator(processor, stage=1), skip_invalid=skip_invalid)
    return MintTrainer(model=MintForPreTraining(tiny.mint_config()), args=args, data_collator=collator)


def test_evaluate_leaves_out_and_counts_invalid_held_out_rows(cache, processor, tmp_path):
    metrics = _trainer(tmp_path, processor).evaluate(eval_dataset=number_rows(poisoned(cache, {1, 4})))
    assert metrics["eval_alm_rows_invalid"] == 2 and metrics["eval_alm_pairs"] == 6
    with pytest.raises(ValueError, match="row 1 of the training dataset"):
        _trainer(tmp_path, processor, skip_invalid=False).evaluate(eval_dataset=number_rows(poisoned(cache, {1})))


def test_evaluate_says_all_held_out_rows_were_invalid(cache, processor, tmp_path):
    with pytest.raises(ValueError) as raised:
        _trainer(tmp_path, processor).evaluate(eval_dataset=number_rows(poisoned(cache, {0, 1, 2, 3, 4})))
    assert "invalid" in str(raised.value), str(raised.value)


def test_odd_batch_sizes_give_the_same_result(pairs, model, processor):
    """Pairs split across forward batches (1, 3, 16 pairs): the (own, other) margins still line up by row."""
    collator = MintDataCollator(processor, stage=1, group_column="family")
    results = [alm_pair_accuracy(model, pairs, collator, batch_size=b) for b in (1, 3, 16)]
    for other in results[1:]:
        assert other["alm_pair_accuracy"] == results[0]["alm_pair_accuracy"]
        assert other["alm_ranking_accuracy"] == results[0]["alm_ranking_accuracy"]
        assert other["alm_loss"] == pytest.approx(results[0]["alm_loss"], rel=1e-4)


def test_an_invalid_held_out_row_is_refused_before_any_step(tmp_path):
    from transformers import TrainerCallback

    from mint.training.trainer import split_held_out, train
    from tests.utils.training import make_audio_dataset, make_mint_folder, recipe

    folder = make_mint_folder(tmp_path / "mint")
    (tmp_path / "audio").mkdir()
    encoder = MintForPreTraining.from_pretrained(folder).eval()
    cached = cache_audio_features(encoder, tiny.processor(), make_audio_dataset(tmp_path / "audio"),
                                  tmp_path / "cache", progress=False)
    examples = poisoned(cached, {1})
    _, held_out = split_held_out(number_rows(examples), 0.5, seed=4)
    assert 1 in held_out["mint_row"]

    class Steps(TrainerCallback):
        done = 0

        def on_step_end(self, args, state, control, **kwargs):
            Steps.done += 1

    spec = recipe(folder, tmp_path / "run", stage=1, seed=4, max_steps=4, eval_fraction=0.5, eval_steps=3)
    with pytest.raises(ValueError, match="row 1"):
        train(spec, examples, callbacks=[Steps()])
    assert Steps.done == 0


@pytest.mark.parametrize("caption", [None, 3, ["a dog barks"], "", "   "])
def test_a_bad_caption_is_named_by_its_column_not_blamed_on_the_audio(pairs, processor, caption):
    data = [dict(example) for example in number_rows(pairs)]  # a list: Arrow would refuse a column of mixed types
    data[2]["caption"] = caption
    collator = CheckedCollator(MintDataCollator(processor, stage=1, group_column="family"))
    with pytest.raises(ValueError) as raised:
        collator.valid_rows(data)
    message = str(raised.value)
    assert "row 2" in message and "column 'caption'" in message and "expected a non-blank string" in message, message
    assert "column 'audio'" not in message, message
    skipping = CheckedCollator(MintDataCollator(processor, stage=1, group_column="family"), skip_invalid=True)
    assert skipping.valid_rows(data) == ([0, 1, 3, 4], 1)
