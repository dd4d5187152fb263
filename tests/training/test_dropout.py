"""The recipe's `dropout`: it reaches every dropout of the Q-Former and the LLM, acts in training, and is saved."""

import types

import pytest
import torch
from datasets import concatenate_datasets

from configuration_mint import MintConfig
from mint.data.collator import MintDataCollator
from mint.data.examples import to_mint_examples
from mint.training.recipe import MintRecipe
from mint.training.trainer import DROPOUT_ATTRIBUTES, load_model, set_dropout, train
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


def test_dropout_reaches_the_qformer_and_the_llm_acts_in_training_and_is_saved(mint_folder, examples, tmp_path):
    batch = MintDataCollator(tiny.processor(), stage=2)([examples[i] for i in range(4)])
    for probability in (0.0, 0.5):
        model = load_model(recipe(mint_folder, tmp_path, stage=2, dropout=probability))
        assert _dropout_probabilities(model.qformer) == {probability}
        assert _dropout_probabilities(model.language_model) == {probability}
        torch.manual_seed(0)
        first = _training_loss(model, batch)
        torch.manual_seed(1)
        second = _training_loss(model, batch)
        assert (first == second) == (probability == 0.0), (probability, first, second)
    train(recipe(mint_folder, tmp_path, stage=2, max_steps=1, dropout=0.25), examples)
    saved = MintConfig.from_pretrained(tmp_path)
    assert saved.qformer_config.hidden_dropout_prob == saved.qformer_config.attention_probs_dropout_prob == 0.25
    assert saved.text_config.dropout_rate == 0.25


def test_without_dropout_the_folders_settings_hold(mint_folder, tmp_path):
    model = load_model(recipe(mint_folder, tmp_path, stage=2))
    assert _dropout_probabilities(model.qformer) == {0.0}  # the tiny folder's Q-Former is saved without dropout
    assert _dropout_probabilities(model.language_model) == {tiny.t5_config().dropout_rate}


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


def test_an_llm_config_without_dropout_settings_is_refused_by_name():
    config = types.SimpleNamespace(qformer_config=tiny.qformer_config(),
                                   text_config=types.SimpleNamespace(model_type="no-dropout-lm"))
    with pytest.raises(ValueError, match=r"text_config \('no-dropout-lm'\) has none of the dropout settings"):
        set_dropout(config, 0.1)
    assert set(DROPOUT_ATTRIBUTES) >= {"dropout_rate", "hidden_dropout_prob", "attention_dropout"}
