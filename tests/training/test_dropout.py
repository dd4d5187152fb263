"""The recipe's `dropout`: it reaches every dropout of the parts that train, acts in training, is saved, and a run
resumes only with the dropout it was trained with."""

import dataclasses
import types

import pytest
import torch
from datasets import concatenate_datasets

from configuration_mint import MintConfig
from mint.data.collator import MintDataCollator
from mint.data.examples import to_caption_pairs, to_mint_examples
from mint.training.recipe import MintRecipe
from mint.training.trainer import DROPOUT_ATTRIBUTES, load_model, set_dropout, train
from modeling_mint import MintForPreTraining
from tests.utils import tiny
from tests.utils.training import recipe


@pytest.fixture(scope="module")
def examples(audio_dataset):
    return concatenate_datasets([to_mint_examples(audio_dataset, "NSynth"),
                                 to_mint_examples(audio_dataset, "WavCaps", caption_column="caption")])


def _dropout_probabilities(module: torch.nn.Module) -> set[float]:
    """The probabilities of every dropout in `module`: its `nn.Dropout` layers and the attention's own."""
    found = {layer.p for layer in module.modules() if isinstance(layer, torch.nn.Dropout)}
    found |= {layer.attention_dropout for layer in module.modules()
              if isinstance(getattr(layer, "attention_dropout", None), float)}
    return found


def _training_loss(model, batch) -> float:
    model.train()
    with torch.no_grad():
        return model(**batch).loss.item()


@pytest.fixture(scope="module")
def trained_llm_folder(tmp_path_factory):
    """A tiny stage-1 folder whose stage 2 trains its LLM (`freeze_language_model=False`, as the demo's T5)."""
    folder = tmp_path_factory.mktemp("trained-llm")
    torch.manual_seed(0)
    MintForPreTraining(tiny.mint_config(freeze_language_model=False)).save_pretrained(folder)
    tiny.processor().save_pretrained(folder)
    return str(folder)


def test_dropout_reaches_the_qformer_and_a_trained_llm_acts_in_training_and_is_saved(trained_llm_folder, examples,
                                                                                   tmp_path):
    batch = MintDataCollator(tiny.processor(), stage=2)([examples[i] for i in range(4)])
    for probability in (0.0, 0.5):
        model = load_model(recipe(trained_llm_folder, tmp_path, stage=2, dropout=probability))
        assert _dropout_probabilities(model.qformer) == {probability}
        assert _dropout_probabilities(model.language_model) == {probability}
        torch.manual_seed(0)
        first = _training_loss(model, batch)
        assert model.language_model.training  # a trained LLM runs its dropout in train mode
        torch.manual_seed(1)
        second = _training_loss(model, batch)
        assert (first == second) == (probability == 0.0), (probability, first, second)
    train(recipe(trained_llm_folder, tmp_path, stage=2, max_steps=1, dropout=0.25), examples)
    saved = MintConfig.from_pretrained(tmp_path)
    assert saved.qformer_config.hidden_dropout_prob == saved.qformer_config.attention_probs_dropout_prob == 0.25
    assert saved.text_config.dropout_rate == 0.25


def test_a_frozen_llm_and_stage_1_leave_the_llms_dropout_as_it_is(mint_folder, audio_dataset, examples, tmp_path):
    # A frozen LLM runs in eval mode, and stage 1 has no LLM: the LLM's config keeps T5's own dropout.
    t5_dropout = tiny.t5_config().dropout_rate
    model = load_model(recipe(mint_folder, tmp_path / "frozen", stage=2, dropout=0.3))
    assert _dropout_probabilities(model.qformer) == {0.3}
    assert _dropout_probabilities(model.language_model) == {t5_dropout}
    train(recipe(mint_folder, tmp_path / "stage1", stage=1, max_steps=1, dropout=0.3),
          to_caption_pairs(audio_dataset))
    saved = MintConfig.from_pretrained(tmp_path / "stage1")
    assert saved.qformer_config.hidden_dropout_prob == 0.3 and saved.text_config.dropout_rate == t5_dropout


def test_without_dropout_the_folders_settings_hold(mint_folder, tmp_path):
    model = load_model(recipe(mint_folder, tmp_path, stage=2))
    assert _dropout_probabilities(model.qformer) == {0.0}  # the tiny folder's Q-Former is saved without dropout
    assert _dropout_probabilities(model.language_model) == {tiny.t5_config().dropout_rate}


def test_a_run_resumes_only_with_the_dropout_it_was_trained_with(trained_llm_folder, examples, tmp_path):
    spec = recipe(trained_llm_folder, tmp_path, stage=2, max_steps=2, save_steps=1, dropout=0.1, resume=True)
    train(spec, examples)
    weights = (tmp_path / "model.safetensors").read_bytes()
    for other in (0.5, None):
        with pytest.raises(ValueError, match=r"holds a run with the model settings \{'dropout': 0.1\}"):
            train(dataclasses.replace(spec, dropout=other), examples)
    assert (tmp_path / "model.safetensors").read_bytes() == weights
    assert MintConfig.from_pretrained(tmp_path).text_config.dropout_rate == 0.1
    assert train(spec, examples).already_complete


@pytest.mark.parametrize("value, words", [
    (-0.1, ["dropout", "[0, 1)", "-0.1"]),
    (1.0, ["dropout", "[0, 1)", "1.0"]),
    ("half", ["dropout", "a number", "'half'"]),
    (True, ["dropout", "a number", "True"]),
    (float("nan"), ["dropout", "finite"]),
    ([0.1], ["dropout", "a number"]),
])
def test_bad_dropout_values_are_refused(value, words):
    with pytest.raises(ValueError) as error:
        MintRecipe(model="m", dropout=value)
    assert all(word in str(error.value) for word in words), str(error.value)


def test_a_trained_llm_without_dropout_settings_is_refused_by_name():
    config = types.SimpleNamespace(qformer_config=tiny.qformer_config(), freeze_language_model=False,
                                   text_config=types.SimpleNamespace(model_type="no-dropout-lm"))
    with pytest.raises(ValueError, match=r"text_config \('no-dropout-lm'\) has none of the dropout settings"):
        set_dropout(config, 0.1, stage=2)
    set_dropout(config, 0.1, stage=1)  # stage 1 has no LLM
    assert config.qformer_config.hidden_dropout_prob == 0.1
    assert set(DROPOUT_ATTRIBUTES) >= {"dropout_rate", "hidden_dropout_prob", "attention_dropout"}
