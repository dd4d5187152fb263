"""Keyword arguments a stage-2 forward does not take are refused by name, never dropped (a misspelt mask would
otherwise train without it)."""

import pytest
import torch

from modeling_mint import MintForConditionalGeneration
from tests.utils import tiny
from tests.utils.audio import clips


@pytest.fixture(scope="module")
def batch_and_model():
    model = MintForConditionalGeneration(tiny.mint_config()).eval()
    batch = tiny.processor()(audio=clips()[:2], text=["Generate audio caption:"] * 2, sampling_rate=16000)
    return model, {**batch, "labels": torch.tensor([[5, 6, 1], [5, 6, 1]])}


@pytest.mark.parametrize("extra, words", [
    ({"audio_attention_maks": None}, ["audio_attention_maks", "unexpected keyword"]),
    ({"qformer_ids": None}, ["qformer_ids", "audio_attention_mask"]),
    ({"attention_masks": None, "labelz": None}, ["attention_masks", "labelz"]),
])
def test_unknown_keywords_are_refused_by_name(batch_and_model, extra, words):
    model, batch = batch_and_model
    with pytest.raises(TypeError) as error:
        model(**batch, **extra)
    assert all(word in str(error.value) for word in words)


def test_keywords_the_language_model_takes_still_pass(batch_and_model):
    model, batch = batch_and_model
    plain = model(**batch).loss
    assert torch.equal(model(**batch, return_dict=True, use_cache=False).loss, plain)
