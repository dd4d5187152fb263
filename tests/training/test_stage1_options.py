"""Stage-1 recipe options (section 2.2): groups carried by the collator, ALM's schedule and held-out pair accuracy,
per-part learning rates for the cross-attention, the temperature and feature augmentation; bad values refused."""

import hashlib

import pytest
import torch

from mint.data.collator import MintDataCollator, group_id
from mint.data.examples import to_caption_pairs
from mint.training.alm import alm_pair_accuracy, alm_phase_at, held_out_pairs
from mint.training.recipe import MintRecipe, config_overrides
from mint.training.trainer import train
from modeling_mint import MintForPreTraining
from tests.utils import tiny
from tests.utils.audio import clips
from tests.utils.training import LossRecorder, recipe


GROUPS = ["dog", "dog", "piano", "rain", "piano", "drum"]


@pytest.fixture(scope="module")
def grouped_pairs(audio_dataset):
    return to_caption_pairs(audio_dataset).add_column("family", GROUPS)


# ---- recipe ---------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("fields, error, words", [
    ({"stage": 2, "group_column": "label"}, ValueError, ["['group_column']", "stage-1 options"]),
    ({"stage": 2, "alm_batch_size": 4}, ValueError, ["alm_batch_size", "stage 2"]),
    ({"alm_start": 0.5, "alm_hard_start": 0.2}, ValueError, ["alm_start", "alm_hard_start", "0.5 and 0.2"]),
    ({"alm_start": 1.5}, ValueError, ["0 <= alm_start <= alm_hard_start <= 1"]),
    ({"alm_batch_size": 0}, ValueError, ["alm_batch_size", "at least 1"]),
    ({"eval_fraction": 1.0}, ValueError, ["eval_fraction", "[0, 1)"]),
    ({"eval_steps": 5}, ValueError, ["eval_steps needs eval_fraction"]),
    ({"group_column": " "}, ValueError, ["group_column", "empty"]),
    ({"temperature_init": 0}, ValueError, ["temperature_init must be positive"]),
    ({"temperature_range": [0.5, 0.1]}, ValueError, ["temperature_range", "0 < min <= max"]),
    ({"temperature_range": [0.01, 0.1], "temperature_init": 0.2}, ValueError, ["0.2 lies outside"]),
    ({"feature_augmentation": {"mask": 0.1}}, ValueError, ["unknown keys ['mask']", "time_mask"]),
    ({"feature_augmentation": {"crop": 0.0}}, ValueError, ["out of range", "crop (0, 1]"]),
    ({"stage": 2, "feature_augmentation": {"noise": -1}}, ValueError, ["out of range", "noise"]),
    ({"learn_temperature": "no"}, ValueError, ["learn_temperature", "true or false"]),
    ({"training_args": {"eval_strategy": "steps"}}, ValueError, ["eval_strategy", "sets itself"]),
])
def test_bad_stage1_options_are_refused(fields, error, words):
    with pytest.raises(error) as raised:
        MintRecipe(**fields)
    assert all(word in str(raised.value) for word in words), str(raised.value)


def test_recipe_fields_become_config_fields():
    recipe_ = MintRecipe(alm_batch_size=8, temperature_range=[0.01, 0.2], learn_temperature=False,
                         feature_augmentation={"noise": 0.05}, stage1_objectives=["alc", "alm"])
    assert config_overrides(recipe_) == {"stage1_objectives": ["alc", "alm"], "alm_batch_size": 8,
                                         "temperature_range": [0.01, 0.2], "learn_temperature": False,
                                         "audio_feature_augmentation": {"noise": 0.05}}
    assert config_overrides(MintRecipe()) == {}
    # Stage 2 may augment the cached features too (its examples are fewer per label than stage 1's pairs).
    assert config_overrides(MintRecipe(stage=2, feature_augmentation={"time_mask": 0.2})) == {
        "audio_feature_augmentation": {"time_mask": 0.2}}


# ---- groups in the collator -----------------------------------------------------------------------------------------

def test_group_ids_are_integers_or_stable_string_hashes(processor):
    expected = int.from_bytes(hashlib.blake2b(b"piano", digest_size=8).digest(), "little", signed=True)
    assert group_id("piano") == expected and group_id(7) == 7 and group_id(torch.tensor(3).numpy()) == 3
    collator = MintDataCollator(processor, stage=1, group_column="family")
    audio = clips()[:3]
    batch = collator([{"audio": {"array": a, "sampling_rate": 16000}, "caption": c, "family": f}
                      for a, c, f in zip(audio, ["a dog barks", "a cat", "a piano"], ["dog", 5, "dog"])])
    assert batch["group_ids"].tolist() == [group_id("dog"), 5, group_id("dog")]
    assert batch["group_ids"].dtype == torch.long


@pytest.mark.parametrize("value, error, words", [
    (1.5, ValueError, ["integer or a string", "float"]),
    (None, ValueError, ["integer or a string", "NoneType"]),
    (True, ValueError, ["integer or a string", "bool"]),
    (2**70, ValueError, ["outside int64"]),
])
def test_bad_group_ids_are_refused(value, error, words):
    with pytest.raises(error) as raised:
        group_id(value)
    assert all(word in str(raised.value) for word in words)


def test_collator_refuses_a_missing_group_column_and_stage_2(processor):
    collator = MintDataCollator(processor, stage=1, group_column="family")
    with pytest.raises(ValueError, match=r"Examples \[0\] of this batch have no group column 'family'"):
        collator([{"audio": {"array": clips()[0], "sampling_rate": 16000}, "caption": "a dog"}])
    with pytest.raises(ValueError, match="group_column applies to stage 1"):
        MintDataCollator(processor, stage=2, group_column="family")


# ---- ALM's schedule and held-out accuracy ---------------------------------------------------------------------------

@pytest.mark.parametrize("progress, start, hard, phase", [
    (0.0, 0.0, None, "hard"), (0.1, 0.2, 0.5, "off"), (0.2, 0.2, 0.5, "random"), (0.49, 0.2, 0.5, "random"),
    (0.5, 0.2, 0.5, "hard"), (0.3, 0.3, None, "hard"), (0.9, 0.0, 1.0, "random"),
])
def test_alm_phase_at(progress, start, hard, phase):
    assert alm_phase_at(progress, start, hard) == phase


def test_held_out_pairs_are_balanced_and_from_other_groups():
    pairs, left_out = held_out_pairs([0, 0, 1, 2], seed=3)
    assert left_out == 0 and [label for *_, label in pairs] == [1, 0] * 4
    assert [(a, t) for a, t, label in pairs if label] == [(0, 0), (1, 1), (2, 2), (3, 3)]
    allowed = {0: {2, 3}, 1: {2, 3}, 2: {0, 1, 3}, 3: {0, 1, 2}}
    assert all(t in allowed[a] for a, t, label in pairs if not label)
    assert held_out_pairs([0, 0, 1, 2], seed=3) == (pairs, 0)  # the same pairs at every evaluation
    assert held_out_pairs(["x", "x"]) == ([], 2)


def test_alm_pair_accuracy_equals_the_count_by_hand(grouped_pairs, processor):
    torch.manual_seed(0)
    model = MintForPreTraining(tiny.mint_config()).train()
    collator = MintDataCollator(processor, stage=1, group_column="family")
    result = alm_pair_accuracy(model, grouped_pairs, collator, seed=1, batch_size=5)
    assert model.training  # put back as it was
    model.eval()
    pairs, _ = held_out_pairs(GROUPS, seed=1)
    correct, scores = 0, []
    for audio_row, text_row, label in pairs:
        batch = processor(audio=[grouped_pairs[audio_row]["audio"]], text=[grouped_pairs[text_row]["caption"]],
                          sampling_rate=16000, return_llm_inputs=False)
        score = model.get_matching_scores(batch["qformer_input_ids"], batch["qformer_attention_mask"],
                                          input_values=batch["input_values"],
                                          audio_attention_mask=batch["audio_attention_mask"])
        correct += int((score.item() > 0.5) == bool(label))
        scores.append(score.item())
    ranked = sum(own > other for own, other in zip(scores[0::2], scores[1::2]))
    assert result["alm_pairs"] == 12 and result["alm_rows_left_out"] == 0
    assert result["alm_pair_accuracy"] == pytest.approx(correct / 12)
    assert result["alm_ranking_accuracy"] == pytest.approx(ranked / 6)
    # Not the pair accuracy by another name: with the match logit's bias shifted, every pair is called unmatched
    # (pair accuracy 0.5) while the ranking stays where it was.
    with torch.no_grad():
        model.alm_head.bias[1] -= 100.0
    shifted = alm_pair_accuracy(model, grouped_pairs, collator, seed=1, batch_size=5)
    assert shifted["alm_pair_accuracy"] == 0.5 and shifted["alm_ranking_accuracy"] == result["alm_ranking_accuracy"]


def test_alm_ranking_compares_float32_margins_of_half_precision_logits(grouped_pairs, processor, monkeypatch):
    # Each row's own caption scores (-0.0117, 100) and the other group's (0, 100): in bfloat16 both margins round to
    # 100, a tie; in float32 the own caption is ahead for every row.
    model = MintForPreTraining(tiny.mint_config())
    logits = torch.tensor([[-0.01171875, 100.0], [0.0, 100.0]] * 6, dtype=torch.bfloat16)
    assert logits[0, 1] - logits[0, 0] == logits[1, 1] - logits[1, 0]
    monkeypatch.setattr(model, "matching_logits", lambda *args: logits)
    collator = MintDataCollator(processor, stage=1, group_column="family")
    result = alm_pair_accuracy(model, grouped_pairs, collator, batch_size=12)
    assert result["alm_ranking_accuracy"] == 1.0 and result["alm_pair_accuracy"] == 0.5


@pytest.mark.parametrize("batch_size", [0, -1, 1.5, True, "4", None])
def test_alm_pair_accuracy_refuses_a_bad_batch_size(grouped_pairs, processor, batch_size):
    collator = MintDataCollator(processor, stage=1, group_column="family")
    with pytest.raises(ValueError, match=r"batch_size must be a positive integer \(pairs per forward pass\), got"):
        alm_pair_accuracy(MintForPreTraining(tiny.mint_config()), grouped_pairs, collator, batch_size=batch_size)


@pytest.mark.parametrize("groups, words", [
    (["x"] * 6, ["single group", "at least two groups"]),
])
def test_alm_pair_accuracy_refuses_a_set_without_negatives(grouped_pairs, processor, groups, words):
    data = grouped_pairs.remove_columns("family").add_column("family", groups)
    model = MintForPreTraining(tiny.mint_config())
    with pytest.raises(ValueError) as raised:
        alm_pair_accuracy(model, data, MintDataCollator(processor, stage=1, group_column="family"))
    assert all(word in str(raised.value) for word in words)
    with pytest.raises(ValueError, match="held-out ALM set is empty"):
        alm_pair_accuracy(model, data.select([]), MintDataCollator(processor, stage=1))


class PhaseRecorder(LossRecorder):
    def __init__(self):
        super().__init__()
        self.phases = []

    def on_step_begin(self, args, state, control, model=None, **kwargs):
        self.phases.append(model.alm_phase)


@pytest.mark.slow
def test_schedule_groups_and_held_out_accuracy_in_a_run(grouped_pairs, mint_folder, tmp_path):
    recorder = PhaseRecorder()
    trainer = train(recipe(mint_folder, tmp_path, max_steps=4, group_column="family", alm_start=0.25,
                           alm_hard_start=0.5, eval_fraction=0.34, eval_steps=2), grouped_pairs, callbacks=[recorder])
    assert recorder.phases == ["off", "random", "hard", "hard"]
    logged = [log for log in recorder.logs]
    assert "loss_alm" not in logged[0] and all("loss_alm" in log for log in logged[1:])
    evaluations = [log for log in trainer.state.log_history if "eval_alm_pair_accuracy" in log]
    assert [log["step"] for log in evaluations] == [2, 4]
    assert all(log["eval_alm_pairs"] == 4 and 0 <= log["eval_alm_pair_accuracy"] <= 1 for log in evaluations)
    assert len(trainer.train_dataset) == 4 and len(trainer.eval_dataset) == 2


@pytest.mark.parametrize("fields, words", [
    ({"group_column": "family"}, ["group_column 'family' is not a column", "columns are"]),
    ({"eval_fraction": 0.5, "stage1_objectives": ["alc", "atg"]}, ["does not train ALM", "'alm'"]),
    ({"eval_fraction": 0.99}, ["leaves no row to train on"]),
    ({"learning_rates": {"crossattention": 0.0}}, ["not parts of the model", "cross_attention"]),
    ({"stage1_objectives": ["alm"]}, ["model settings", "'alm' needs 'alc'"]),
])
def test_a_run_refuses_options_its_data_or_model_cannot_take(audio_dataset, mint_folder, tmp_path, fields, words):
    with pytest.raises(ValueError) as raised:
        train(recipe(mint_folder, tmp_path, **fields), to_caption_pairs(audio_dataset))
    assert all(word in str(raised.value) for word in words), str(raised.value)


# ---- optimisation levers --------------------------------------------------------------------------------------------

def _cross_attention(model):
    return {n: p.detach().clone() for n, p in model.named_parameters() if ".crossattention." in n}


def _bert_layers(model):
    return {n: p.detach().clone() for n, p in model.qformer.named_parameters() if ".crossattention." not in n}


@pytest.mark.slow
def test_cross_attention_has_its_own_learning_rate(grouped_pairs, mint_folder, tmp_path):
    start = MintForPreTraining.from_pretrained(mint_folder)
    frozen_cross = train(recipe(mint_folder, tmp_path / "a", max_steps=2, learning_rates={"cross_attention": 0.0}),
                         grouped_pairs).model
    assert all(torch.equal(p, _cross_attention(start)[n]) for n, p in _cross_attention(frozen_cross).items())
    assert any(not torch.equal(p, _bert_layers(start)[n]) for n, p in _bert_layers(frozen_cross).items())
    frozen_bert = train(recipe(mint_folder, tmp_path / "b", max_steps=2,
                               learning_rates={"qformer": 0.0, "cross_attention": 1e-3}), grouped_pairs).model
    assert all(torch.equal(p, _bert_layers(start)[n]) for n, p in _bert_layers(frozen_bert).items())
    assert any(not torch.equal(p, _cross_attention(start)[n]) for n, p in _cross_attention(frozen_bert).items())


@pytest.mark.slow
def test_temperature_options_and_augmentation_reach_the_model(grouped_pairs, mint_folder, tmp_path):
    trainer = train(recipe(mint_folder, tmp_path, max_steps=2, temperature_init=0.05, learn_temperature=False,
                           temperature_range=[0.01, 0.2], feature_augmentation={"time_mask": 0.2, "noise": 0.1}),
                    grouped_pairs)
    model = trainer.model
    assert model.temp.item() == pytest.approx(0.05) and model.temperature().item() == pytest.approx(0.05)
    assert model.config.temperature_range == [0.01, 0.2] and not model.config.learn_temperature
    assert model.config.audio_feature_augmentation == {"time_mask": 0.2, "noise": 0.1}
