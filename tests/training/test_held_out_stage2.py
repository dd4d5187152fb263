"""Stage 2's held-out split: its loss logged, early stopping, the model of the lowest held-out loss kept."""

import dataclasses
import os
import shutil

import pytest
import torch
from datasets import concatenate_datasets
from safetensors.torch import load_file

from mint.data.examples import to_mint_examples
from mint.training.lora import LORA_BARE_PARAMETERS_NAME
from mint.training.recipe import MintRecipe
from mint.training.trainer import train
from modeling_mint import MintForConditionalGeneration
from tests.utils import tiny
from tests.utils.training import CrashAt, recipe


@pytest.fixture(scope="module")
def examples(audio_dataset):
    """Twelve stage-2 examples: a label and a caption for each of the six clips."""
    return concatenate_datasets([to_mint_examples(audio_dataset, "NSynth"),
                                 to_mint_examples(audio_dataset, "WavCaps", caption_column="caption")])


def _stop_by_hand(losses: list[float], patience: int) -> tuple[int, int | None]:
    """The evaluation of the lowest loss (the first, on ties) and the one at which `patience` evaluations in a row
    without a lower loss stop the run (None if none does), 0-based: what `EarlyStoppingCallback` decides."""
    best, waited = 0, 0
    for index, loss in enumerate(losses[1:], 1):
        if loss < losses[best]:
            best, waited = index, 0
        else:
            waited += 1
            if waited == patience:
                return best, index
    return best, None


@pytest.mark.slow
def test_stage2_stops_early_and_keeps_the_model_of_the_lowest_held_out_loss(mint_folder, examples, tmp_path):
    # A learning rate high enough that the held-out loss rises after its low point: keeping the best model matters.
    spec = recipe(mint_folder, tmp_path, stage=2, max_steps=16, learning_rate=0.05, eval_fraction=0.25, eval_steps=1,
                  early_stopping_patience=2, resume=True)
    trainer = train(spec, examples)
    losses = [log["eval_loss"] for log in trainer.state.log_history if "eval_loss" in log]
    best, stopped = _stop_by_hand(losses, patience=2)
    assert stopped is not None and best < stopped, losses  # the run is one the test can fail on
    assert trainer.state.global_step == stopped + 1 < 16
    assert trainer.state.best_model_checkpoint.endswith(f"checkpoint-{best + 1}")
    saved = load_file(tmp_path / "model.safetensors")
    best_weights = load_file(tmp_path / f"checkpoint-{best + 1}" / "model.safetensors")
    last_weights = load_file(tmp_path / f"checkpoint-{stopped + 1}" / "model.safetensors")
    assert all(torch.equal(saved[name], best_weights[name]) for name in best_weights)
    assert not all(torch.equal(saved[name], last_weights[name]) for name in last_weights)
    # The same command again: the stopped run is complete, nothing trains and the best model stays; so it does
    # without early_stopping_patience (it loaded the last checkpoint), and in a folder moved elsewhere.
    weights = (tmp_path / "model.safetensors").read_bytes()
    again = train(spec, examples)
    assert again.already_complete and again.state.global_step == stopped + 1
    assert (tmp_path / "model.safetensors").read_bytes() == weights
    assert train(dataclasses.replace(spec, early_stopping_patience=None), examples).already_complete
    assert (tmp_path / "model.safetensors").read_bytes() == weights
    moved = tmp_path.parent / f"{tmp_path.name}-moved"
    shutil.move(tmp_path, moved)
    assert train(dataclasses.replace(spec, output_dir=str(moved)), examples).already_complete
    assert (moved / "model.safetensors").read_bytes() == weights
    shutil.rmtree(moved / f"checkpoint-{best + 1}")
    with pytest.raises(ValueError, match=f"checkpoint 'checkpoint-{best + 1}' .* no longer there"):
        train(dataclasses.replace(spec, output_dir=str(moved)), examples)


@pytest.mark.slow
def test_a_resumed_run_stops_where_the_uninterrupted_one_stops(mint_folder, examples, tmp_path):
    spec = recipe(mint_folder, tmp_path / "whole", stage=2, max_steps=16, learning_rate=0.05, eval_fraction=0.25,
                  eval_steps=1, early_stopping_patience=3, resume=True)
    whole = train(spec, examples)
    crashed = dataclasses.replace(spec, output_dir=str(tmp_path / "crashed"))
    crash_step = whole.state.global_step - 1  # after the held-out loss stopped falling, before the stop
    with pytest.raises(KeyboardInterrupt):
        train(crashed, examples, callbacks=[CrashAt(crash_step)])
    resumed = train(crashed, examples)
    assert resumed.state.global_step == whole.state.global_step
    assert resumed.state.best_model_checkpoint.endswith(whole.state.best_model_checkpoint.split("/")[-1])
    assert (tmp_path / "crashed" / "model.safetensors").read_bytes() == \
        (tmp_path / "whole" / "model.safetensors").read_bytes()


def test_stage2_logs_the_held_out_loss_without_early_stopping(mint_folder, examples, tmp_path):
    trainer = train(recipe(mint_folder, tmp_path, stage=2, max_steps=2, eval_fraction=0.25, eval_steps=1), examples)
    losses = [log["eval_loss"] for log in trainer.state.log_history if "eval_loss" in log]
    assert len(losses) == 2 and all(loss > 0 for loss in losses)
    assert trainer.state.global_step == 2 and trainer.state.best_model_checkpoint is None


@pytest.mark.parametrize("fields, words", [
    ({"stage": 2, "early_stopping_patience": 2}, ["early_stopping_patience needs eval_fraction"]),
    ({"stage": 2, "eval_steps": 3}, ["eval_steps needs eval_fraction"]),
    ({"stage": 1, "eval_fraction": 0.2, "early_stopping_patience": 2}, ["early_stopping_patience is for stage 2"]),
    ({"stage": 2, "eval_fraction": 0.2, "early_stopping_patience": 0}, ["early_stopping_patience", "at least 1"]),
    ({"stage": 2, "eval_fraction": 0.2, "early_stopping_patience": "two"}, ["early_stopping_patience"]),
    ({"stage": 2, "eval_fraction": 1.5}, ["eval_fraction", "[0, 1)"]),
    ({"stage": 2, "eval_fraction": 0.2, "early_stopping_patience": 2, "save_total_limit": 1},
     ["save_total_limit 1 keeps fewer", "2 or more"]),
    ({"stage": 2, "eval_fraction": 0.2, "training_args": {"prediction_loss_only": False}},
     ["prediction_loss_only", "eval_fraction and early_stopping_patience set themselves"]),
    ({"stage": 2, "eval_fraction": 0.2, "early_stopping_patience": 2, "training_args": {"save_strategy": "no"}},
     ["save_strategy", "a checkpoint at each evaluation"]),
    ({"stage": 2, "training_args": {"load_best_model_at_end": True}}, ["load_best_model_at_end"]),
    ({"stage": 2, "training_args": {"metric_for_best_model": "loss"}}, ["metric_for_best_model"]),
])
def test_bad_held_out_options_are_refused(fields, words):
    with pytest.raises(ValueError) as error:
        MintRecipe(model="m", **fields)
    assert all(word in str(error.value) for word in words), str(error.value)


@pytest.mark.slow
def test_a_lora_run_resumes_and_keeps_its_best_model_with_the_queries_it_trained(mint_folder, examples, tmp_path):
    """peft's checkpoints leave out the bare `query_tokens`: a resumed LoRA run restarted them from their initial
    values, and the kept best model paired the best step's adapters with the last step's queries."""
    torch.manual_seed(0)  # the stage-1 folder has no LLM: a stage-2 folder that stores one is the frozen base
    MintForConditionalGeneration.from_pretrained(mint_folder).save_pretrained(tmp_path / "base")
    tiny.processor().save_pretrained(tmp_path / "base")
    lora = {"targets": ["language_model"], "r": 4}
    spec = recipe(str(tmp_path / "base"), tmp_path / "whole", stage=2, max_steps=6, learning_rate=0.05, lora=lora,
                  save_steps=1, resume=True)
    train(spec, examples)
    crashed = dataclasses.replace(spec, output_dir=str(tmp_path / "crashed"))
    with pytest.raises(KeyboardInterrupt):
        train(crashed, examples, callbacks=[CrashAt(3)])
    train(crashed, examples)
    whole, resumed = (MintForConditionalGeneration.from_pretrained(tmp_path / run) for run in ("whole", "crashed"))
    assert torch.equal(resumed.query_tokens, whole.query_tokens)
    initial = MintForConditionalGeneration.from_pretrained(tmp_path / "base").query_tokens
    assert not torch.equal(whole.query_tokens, initial)

    stopping = dataclasses.replace(spec, output_dir=str(tmp_path / "best"), max_steps=16, eval_fraction=0.25,
                                   eval_steps=1, early_stopping_patience=2)
    trainer = train(stopping, examples)
    best = trainer.state.best_model_checkpoint
    kept = MintForConditionalGeneration.from_pretrained(tmp_path / "best").query_tokens
    assert torch.equal(kept, load_file(os.path.join(best, LORA_BARE_PARAMETERS_NAME))["query_tokens"])


def test_a_held_out_share_below_two_rows_is_raised_to_two_with_a_warning(caplog):
    from datasets import Dataset

    from mint.training.trainer import split_held_out

    rows = Dataset.from_dict({"x": list(range(12))})
    with caplog.at_level("WARNING", logger="mint.training.trainer"):
        kept, held = split_held_out(rows, 1e-9, seed=0)
    assert (len(kept), len(held)) == (10, 2) and "2 rows are held out" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="mint.training.trainer"):
        kept, held = split_held_out(rows, 0.25, seed=0)
    assert (len(kept), len(held)) == (9, 3) and caplog.text == ""
    assert sorted(list(kept["x"]) + list(held["x"])) == list(range(12))
