"""Training under faults: non-finite inputs, losses, gradients and weights stop a run (or are skipped) loudly."""

import dataclasses
import json
import subprocess
import sys

import numpy as np
import pytest
import soundfile
import torch
from datasets import Audio, Dataset, load_from_disk
from transformers import TrainerCallback

from mint.data.cache import cache_audio_features
from mint.data.collator import MintDataCollator
from mint.data.examples import to_caption_pairs, to_mint_examples
from mint.training.collator import ROW_COLUMN, CheckedBatch, CheckedCollator, number_rows
from mint.training.trainer import MintTrainer, split_held_out, train, training_arguments
from modeling_mint import MintForConditionalGeneration, MintForPreTraining
from tests.utils import tiny
from tests.utils.audio import clips
from tests.utils.training import LossRecorder, recipe


CAPTIONS = ["a dog barks", "a cat meows", "rain on a roof", "a flute plays"]


@pytest.fixture(scope="module")
def poisoned_cache(audio_dataset, mint_folder, tmp_path_factory):
    """The feature cache of the six clips (captions and labels kept), with one NaN in row 1: a corrupt shard."""
    folder = tmp_path_factory.mktemp("cache")
    encoder = MintForPreTraining.from_pretrained(mint_folder).eval()
    cached = cache_audio_features(encoder, tiny.processor(), audio_dataset, folder / "clean", progress=False)

    def poison(features, row):
        if row == 1:
            features[3][5] = float("nan")
        return {"audio_encoder_features": features}

    cached.with_format(None).map(poison, input_columns=["audio_encoder_features"], with_indices=True).save_to_disk(
        str(folder / "poisoned"))
    return str(folder / "poisoned")


def examples_for(stage, cache):
    data = load_from_disk(cache)
    if stage == 1:
        return to_caption_pairs(data, audio_column="audio_encoder_features")
    return to_mint_examples(data, "NSynth", audio_column="audio_encoder_features")


@pytest.mark.parametrize("stage, objectives", [(2, None), (1, ["alc", "alm", "atg"]), (1, ["alc", "atg"])])
def test_a_nan_in_a_cached_feature_stops_training_naming_the_row(poisoned_cache, mint_folder, tmp_path, stage,
                                                                 objectives):
    # Before: every trainable weight became NaN and the run saved them (or, with ALM, crashed in negative mining).
    with pytest.raises(ValueError, match=r"Invalid training example: row 1 of the train_dataset given to train\(\), "
                                         r"column 'audio_encoder_features': 1 non-finite value in float32 \(the first "
                                         r"nan at frame 3, dimension 5\).*set skip_invalid_examples"):
        train(recipe(mint_folder, tmp_path, stage=stage, stage1_objectives=objectives),
              examples_for(stage, poisoned_cache))
    assert not (tmp_path / "model.safetensors").exists()


def test_invalid_examples_are_skipped_and_counted_when_the_recipe_asks(poisoned_cache, mint_folder, tmp_path, caplog):
    recorder = LossRecorder()
    # Six examples, batches of two, three steps: row 1 is drawn exactly once.
    trainer = train(recipe(mint_folder, tmp_path, max_steps=3, skip_invalid_examples=True),
                    examples_for(1, poisoned_cache), callbacks=[recorder])
    assert trainer.skipped_examples == 1
    assert [log.get("skipped_examples", 0) for log in recorder.logs][-1] == 1
    assert "Skipping invalid training example: row 1 of the train_dataset given to train()" in caplog.text
    trained = MintForPreTraining.from_pretrained(tmp_path)
    assert all(torch.isfinite(p).all() for p in trained.parameters())


def test_an_invalid_held_out_row_is_named_and_never_counted_as_a_skipped_training_example(poisoned_cache, mint_folder,
                                                                                         tmp_path, caplog):
    examples = examples_for(2, poisoned_cache)
    _, held_out = split_held_out(number_rows(examples), 0.34, seed=4)
    assert 1 in held_out[ROW_COLUMN]  # the poisoned row is one of the two held-out rows
    spec = recipe(mint_folder, tmp_path, stage=2, seed=4, max_steps=2, eval_fraction=0.34, eval_steps=1)
    with pytest.raises(ValueError, match=r"Invalid training example: row 1 of the train_dataset given to train\(\)"):
        train(spec, examples)
    trainer = train(dataclasses.replace(spec, skip_invalid_examples=True, overwrite=True), examples)
    losses = [log["eval_loss"] for log in trainer.state.log_history if "eval_loss" in log]
    assert len(losses) == 2 and all(np.isfinite(losses))
    assert trainer.skipped_examples == 0  # the four training rows are valid
    # Left out once by the check before the first step, then at each of the two evaluations.
    assert caplog.text.count("Skipping invalid training example: row 1 of the train_dataset given to train()") == 3


def test_an_invalid_held_out_row_of_stage_1_is_named_or_left_out_of_alm_and_counted(poisoned_cache, mint_folder,
                                                                                   tmp_path, caplog):
    examples = examples_for(1, poisoned_cache)
    _, held_out = split_held_out(number_rows(examples), 0.5, seed=4)
    assert sorted(held_out[ROW_COLUMN]) == [0, 1, 2]
    spec = recipe(mint_folder, tmp_path, stage=1, seed=4, max_steps=2, eval_fraction=0.5, eval_steps=1)
    # Before: "batch item(s) [0, 1] contain NaN", positions in a batch of pairs, not the row.
    with pytest.raises(ValueError, match=r"Invalid training example: row 1 of the train_dataset given to train\(\)"):
        train(spec, examples)
    trainer = train(dataclasses.replace(spec, skip_invalid_examples=True, overwrite=True), examples)
    evaluations = [log for log in trainer.state.log_history if "eval_alm_pair_accuracy" in log]
    assert len(evaluations) == 2
    assert all(log["eval_alm_rows_invalid"] == 1 and log["eval_alm_pairs"] == 4 for log in evaluations), evaluations
    assert trainer.skipped_examples == 0
    assert "Skipping invalid training example: row 1 of the train_dataset given to train()" in caplog.text


def test_the_recipe_names_the_dataset_and_the_command_fails(poisoned_cache, mint_folder, tmp_path):
    """The original report: `mint train` on a corrupt cache exited 0 with NaN weights saved."""
    spec = recipe(mint_folder, tmp_path / "out", datasets=[{"path": poisoned_cache}])
    path = tmp_path / "recipe.json"
    path.write_text(json.dumps(dataclasses.asdict(spec)))
    run = subprocess.run([sys.executable, "-m", "mint", "train", str(path)], capture_output=True, text=True)
    assert run.returncode != 0
    assert f"row 1 of {poisoned_cache!r}, column 'audio_encoder_features'" in run.stderr
    assert not (tmp_path / "out" / "model.safetensors").exists()


def test_audio_the_processor_refuses_is_named_by_row_and_file(audio_dataset, mint_folder, tmp_path):
    rows = [{"array": c, "sampling_rate": 16000} for c in clips((8000, 8000, 8000, 8000))]
    rows[2]["array"] = rows[2]["array"].copy()
    rows[2]["array"][100] = np.inf
    pairs = Dataset.from_dict({"audio": rows, "caption": CAPTIONS})
    with pytest.raises(ValueError, match=r"row 2 of the train_dataset given to train\(\), column 'audio': contains "
                                         "NaN or infinite samples"):
        train(recipe(mint_folder, tmp_path / "a"), pairs)
    short = tmp_path / "short.wav"
    soundfile.write(short, clips((304,))[0], 16000)  # 19 ms
    files = [a["path"] for a in audio_dataset.cast_column("audio", Audio(decode=False))["audio"][:3]]
    paths = Dataset.from_dict({"audio": files + [str(short)], "caption": CAPTIONS})
    with pytest.raises(ValueError, match=rf"row 3 of the train_dataset given to train\(\) \(file {str(short)!r}\), "
                                         r"column 'audio': lasts 19.0 ms"):
        train(recipe(mint_folder, tmp_path / "b"), paths)


class Poison(TrainerCallback):
    """At `step`, makes the loss (`target="loss"`) or the gradient of the queries (`"gradient"`) NaN, and keeps a copy
    of the weights as they are before that step."""

    def __init__(self, step, target):
        self.step, self.target, self.before = step, target, None

    def on_step_begin(self, args, state, control, model=None, **kwargs):
        if state.global_step + 1 == self.step:
            self.before = {n: p.detach().clone() for n, p in model.named_parameters()}
            self.model = model
            if self.target == "loss":
                model.qformer.register_forward_hook(lambda module, args, output: output.__class__(
                    last_hidden_state=output.last_hidden_state * float("nan")))
            else:
                model.query_tokens.register_hook(lambda grad: torch.full_like(grad, float("nan")))


@pytest.mark.parametrize("target, message", [
    ("loss", r"The training loss is nan at step 2, on the batch of row \d of the train_dataset given to train\(\) "
             r"\(file '.*clip\d.wav'\); row \d of .*no weight was updated"),
    ("gradient", r"The gradients of \['query_tokens'\] hold NaN or infinite values at step 2, on the batch of row \d"),
])
def test_a_non_finite_loss_or_gradient_stops_before_the_optimizer_step(audio_dataset, mint_folder, tmp_path,
                                                                      target, message):
    poison = Poison(2, target)
    with pytest.raises(FloatingPointError, match=message):
        train(recipe(mint_folder, tmp_path, stage=2, save_steps=1), to_mint_examples(audio_dataset, "NSynth"),
              callbacks=[poison])
    # The step that met the NaN changed nothing; only step 1's checkpoint exists.
    after = dict(poison.model.named_parameters())
    assert all(torch.equal(after[name], value) for name, value in poison.before.items())
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("checkpoint")) == ["checkpoint-1"]
    assert not (tmp_path / "model.safetensors").exists()


def test_weights_with_a_nan_are_never_saved(mint_folder, tmp_path):
    model = MintForConditionalGeneration.from_pretrained(mint_folder)
    trainer = MintTrainer(model=model, args=training_arguments(recipe(mint_folder, tmp_path, stage=2)),
                          data_collator=MintDataCollator(tiny.processor()))
    with torch.no_grad():
        model.language_projection.weight[0, 0] = float("inf")
    with pytest.raises(FloatingPointError, match=r"Not saving .*the weights \['language_projection.weight'\] hold "
                                                 "NaN or infinite values"):
        trainer.save_model(str(tmp_path / "saved"))
    assert not (tmp_path / "saved").exists()


def test_windows_of_a_long_clip_train_as_examples_of_its_text():
    windowed = tiny.processor(max_audio_seconds=0.5, long_audio_policy="window")
    pairs = number_rows(Dataset.from_dict({"audio": [{"array": c, "sampling_rate": 16000}
                                                     for c in clips((16000, 6000))],
                                           "caption": ["a dog barks", "a cat meows"]}))
    collator = CheckedCollator(MintDataCollator(windowed, stage=1), ["'clips'"])
    batch = collator([pairs[0], pairs[1]])
    assert isinstance(batch, CheckedBatch)
    inputs = batch.model_inputs
    assert "clip_index" not in inputs and inputs["input_values"].shape[0] == 3  # two windows of 0.5 s, one of 0.375 s
    assert windowed.qformer_tokenizer.batch_decode(inputs["qformer_input_ids"], skip_special_tokens=True) == [
        "a dog barks", "a dog barks", "a cat meows"]
    assert batch.examples == ["row 0 of 'clips'", "row 1 of 'clips'"] and batch.skipped == 0
    # The record of the examples stays beside the model's inputs, never among them.
    assert set(inputs) == set(MintDataCollator(windowed, stage=1)([pairs[0], pairs[1]])) - {"clip_index"}
