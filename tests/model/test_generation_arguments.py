"""`MintForConditionalGeneration.generate`: beam and sequence counts below 1 and a call without audio are refused by
name; valid counts give what the LLM gives."""

import pytest
import torch

from modeling_mint import GENERATION_COUNTS
from tests.utils import tiny
from tests.utils.audio import clips


@pytest.fixture(scope="module")
def model_and_batch():
    processor = tiny.processor()
    return tiny.captioning_model(), processor, processor(audio=clips((16000,)), text="a sound of", sampling_rate=16000)


@pytest.mark.parametrize("kwargs, error, words", [
    ({"num_beams": 0}, ValueError, ["num_beams must be a positive integer", "got 0"]),
    ({"num_beams": -2}, ValueError, ["num_beams", "got -2"]),
    ({"num_beams": 1.5}, ValueError, ["num_beams", "got 1.5"]),
    ({"num_beams": True}, ValueError, ["num_beams", "got True"]),
    ({"num_return_sequences": 0}, ValueError, ["num_return_sequences must be a positive integer"]),
    ({"num_beam_groups": 0}, ValueError, ["num_beam_groups must be a positive integer"]),
])
def test_generate_refuses_counts_below_one(model_and_batch, kwargs, error, words):
    model, _, batch = model_and_batch
    with pytest.raises(error) as caught:
        model.generate(**batch, max_new_tokens=2, **kwargs)
    assert all(word in str(caught.value) for word in words), caught.value


def test_generate_refuses_text_without_audio(model_and_batch):
    model, processor, _ = model_and_batch
    with pytest.raises(ValueError, match="MINT needs audio: got text alone"):
        model.generate(**processor(text="a sound of"), max_new_tokens=2)


def test_valid_counts_generate_as_the_llm_does(model_and_batch):
    model, _, batch = model_and_batch
    assert set(GENERATION_COUNTS) == {"num_beams", "num_return_sequences", "num_beam_groups"}
    with torch.no_grad():
        two = model.generate(**batch, max_new_tokens=3, num_beams=2, num_return_sequences=2)
        one = model.generate(**batch, max_new_tokens=3, num_beams=2)
    assert two.shape[0] == 2 and torch.equal(two[0, :one.shape[1]], one[0])
