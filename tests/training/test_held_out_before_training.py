"""`train()`'s check of the held-out rows before the first step, on tiny models: every row invalid is refused with
`skip_invalid_examples` too (stage 1 and 2, named as held-out rows); stage 2's multi-label examples pass it."""
import pytest
from datasets import Audio
from transformers import TrainerCallback

from mint.data.examples import to_mint_examples
from mint.training.collator import number_rows
from mint.training.trainer import split_held_out, train
from tests.utils.training import recipe


def _stage1(audio_dataset):
    return audio_dataset.select_columns(["audio", "caption"]).cast_column("audio", Audio(decode=False))


def test_all_held_out_rows_invalid_with_skip_is_refused_before_training(audio_dataset, mint_folder, tmp_path):
    data = _stage1(audio_dataset)
    _, held = split_held_out(number_rows(data), 0.34, 0)
    bad = set(held["mint_row"])
    data = data.map(lambda e, i: {"caption": None if i in bad else e["caption"]}, with_indices=True)
    spec = recipe(mint_folder, tmp_path / "o", stage=1, eval_fraction=0.34, eval_steps=2, max_steps=4,
                  skip_invalid_examples=True)
    steps = []

    class Steps(TrainerCallback):
        def on_step_end(self, args, state, control, **kw):
            steps.append(state.global_step)

    with pytest.raises(ValueError) as raised:
        train(spec, data, callbacks=[Steps()])
    assert not steps, f"trained {steps} steps before: {raised.value}"
    assert f"Every one of the {len(bad)} held-out rows is invalid" in str(raised.value), str(raised.value)


def test_stage2_eval_fraction_multilabel_trains(audio_dataset, mint_folder, tmp_path):
    examples = to_mint_examples(audio_dataset, "OpenMIC", label_column="instruments")
    trainer = train(recipe(mint_folder, tmp_path / "s2", stage=2, eval_fraction=0.34, eval_steps=2, max_steps=2),
                    examples)
    assert any("eval_loss" in log for log in trainer.state.log_history)


def test_stage2_held_out_all_invalid_with_skip_message(audio_dataset, mint_folder, tmp_path):
    examples = to_mint_examples(audio_dataset, "NSynth")
    _, held = split_held_out(number_rows(examples), 0.34, 0)
    bad = set(held["mint_row"])
    examples = examples.map(lambda e, i: {"target": None if i in bad else e["target"]}, with_indices=True)
    spec = recipe(mint_folder, tmp_path / "s2b", stage=2, eval_fraction=0.34, eval_steps=2, max_steps=4,
                  skip_invalid_examples=True)
    with pytest.raises(ValueError) as raised:
        train(spec, examples)
    message = str(raised.value)
    assert "training batch" not in message and "held-out" in message, message
