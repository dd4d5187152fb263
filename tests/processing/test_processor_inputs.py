"""The processor's bad inputs, table by table: candidate labels, sample dtypes, chat messages; each row gives the
input, the error type and the words of the message."""

import logging

import numpy as np
import pytest
import torch

from modeling_mint import MintForConditionalGeneration
from processing_mint import check_candidate_labels
from tests.utils import tiny
from tests.utils.audio import clips


BAD_CANDIDATES = [
    (["dog", "", "cat"], ValueError, ["positions 1 ('')", "empty or whitespace only", "stray comma"]),
    (["   ", "dog", "\n"], ValueError, ["0 ('   ')", "2 ('\\n')"]),
    (["dog", "cat", "dog", "cat"], ValueError, ["repeated", "'dog' at positions [0, 2]", "'cat' at positions [1, 3]"]),
    (["dog", "dog "], ValueError, ["'dog' at positions [0, 1]"]),
    ([], ValueError, ["is empty", "at least one"]),
    (["dog", b"cat"], TypeError, ["positions 1 (b'cat')", "not strings"]),
    ("dog", TypeError, ["must be a list of label names", "str"]),
    (None, TypeError, ["must be a list of label names", "NoneType"]),
    ([str(i) if i != 11 else "" for i in range(30)], ValueError, ["positions 11 ('')"]),
    (["dog", "\u200b", "cat\u200b"], ValueError, ["positions 1 ('\\u200b')", "only invisible characters"]),
]


@pytest.mark.parametrize("candidates, error, words", BAD_CANDIDATES)
@pytest.mark.parametrize("entry", ["check_candidate_labels", "tokenize_candidates"])
def test_candidate_labels_are_refused_with_their_positions(entry, candidates, error, words, processor):
    call = processor.tokenize_candidates if entry == "tokenize_candidates" else check_candidate_labels
    with pytest.raises(error) as caught:
        call(candidates)
    assert all(word in str(caught.value) for word in words), str(caught.value)
    assert ("candidates" if entry == "tokenize_candidates" else "candidate_labels") in str(caught.value)


def test_valid_candidates_are_kept_as_given(processor):
    assert check_candidate_labels(("dog", "Dog", "a cat")) == ["dog", "Dog", "a cat"]
    tokens = processor.tokenize_candidates(["dog", "cat"])
    assert tokens["candidate_ids"].shape[0] == 2


@pytest.mark.parametrize("chunk, words", [(0, "got 0"), (-1, "got -1"), (1.5, "got 1.5"), (True, "got True")])
def test_score_candidates_refuses_a_chunk_size_below_one(chunk, words, processor):
    torch.manual_seed(0)
    model = MintForConditionalGeneration(tiny.mint_config()).eval()
    batch = processor(audio=clips((16000,)), text=["This is a sound of"], sampling_rate=16000)
    with pytest.raises(ValueError) as caught:
        model.score_candidates(**processor.tokenize_candidates(["dog", "cat"]), **batch, candidate_chunk_size=chunk)
    assert "candidate_chunk_size must be a positive number" in str(caught.value) and words in str(caught.value)


def test_half_precision_tensors_are_upcast(processor):
    wave = torch.from_numpy(clips((16000,))[0])
    for dtype in (torch.bfloat16, torch.float16):
        half = wave.to(dtype)
        got = processor(audio=half, sampling_rate=16000)["input_values"]
        assert torch.equal(got, processor(audio=half.float(), sampling_rate=16000)["input_values"]), dtype


@pytest.mark.parametrize("bits", [16, 24, 32])
def test_int64_samples_are_scaled_by_the_pcm_width_their_values_use(bits, processor, caplog):
    samples = (torch.from_numpy(clips((16000,))[0]) * (2 ** (bits - 1) - 1)).round().to(torch.int64)
    with caplog.at_level(logging.WARNING):
        got = processor(audio=samples, sampling_rate=16000)["input_values"]
    assert f"fit {bits}-bit PCM, so it is scaled by {2 ** (bits - 1)}" in caplog.text
    expected = processor(audio=samples.double() / 2 ** (bits - 1), sampling_rate=16000)["input_values"]
    assert torch.allclose(got, expected, atol=1e-6)
    if bits == 16:  # the same features as the int16 clip it holds
        assert torch.equal(got, processor(audio=samples.to(torch.int16).numpy(), sampling_rate=16000)["input_values"])


BAD_SAMPLES = [
    (torch.tensor([2 ** 40, -5] * 400, dtype=torch.int64), ValueError, ["audio clip 0", "int64 samples from -5 to "
                                                                        "1099511627776", "beyond 32-bit PCM"]),
    (torch.full((800,), -(2 ** 31) - 1, dtype=torch.int64), ValueError, ["beyond 32-bit PCM"]),
    (np.full(800, 3, dtype=np.uint64), TypeError, ["audio clip 0 has dtype uint64", "integer PCM"]),
    (torch.zeros(800, dtype=torch.bool), TypeError, ["bool"]),
    (torch.zeros(800, dtype=torch.complex64), TypeError, ["complex64"]),
]


BAD_RATES = [
    (float("nan"), ["sampling rate nan", "whole number of Hz"]),
    (float("inf"), ["sampling rate inf", "whole number of Hz"]),
    (np.float32("nan"), ["nan", "whole number of Hz"]),
    (True, ["sampling rate True"]),
    (16000.5, ["sampling rate 16000.5"]),
    ("16k", ["sampling rate '16k'"]),
    (0, ["sampling rate 0 Hz", "expected 1000 to"]),
]


@pytest.mark.parametrize("rate, words", BAD_RATES)
def test_a_rate_that_is_not_a_whole_number_of_hz_is_refused(rate, words, processor):
    with pytest.raises(ValueError) as caught:
        processor(audio=np.zeros(1600, dtype=np.float32), sampling_rate=rate)
    assert all(word in str(caught.value) for word in ["audio clip 0", *words]), str(caught.value)


@pytest.mark.parametrize("samples, error, words", BAD_SAMPLES)
def test_samples_of_a_dtype_without_a_scale_are_refused(samples, error, words, processor):
    with pytest.raises(error) as caught:
        processor(audio=samples, sampling_rate=16000)
    assert all(word in str(caught.value) for word in words), str(caught.value)


AUDIO = {"type": "audio", "audio": {"array": clips((16000,))[0], "sampling_rate": 16000}}
BAD_CHATS = [
    ({"role": "user", "content": [AUDIO]}, TypeError, ["got a dict", "wrap it in a list"]),
    ([[{"role": "user", "content": [AUDIO]}], {"role": "user", "content": [AUDIO]}], TypeError,
     ["Conversation 1 is a dict", "list of messages"]),
    ([{"role": "user", "content": [AUDIO, {"text": "describe it"}]}], ValueError,
     ["Conversation 0, message 0, item 1 has no 'type'", "'audio' and 'text'"]),
    ([{"role": "user", "content": [AUDIO, {"type": "image", "image": "x.png"}]}], ValueError,
     ["Conversation 0, message 0, item 1 has type 'image'"]),
    ([{"role": "system", "content": "be brief"}, {"role": "user", "content": [{"type": "txt", "text": "hi"}, AUDIO]}],
     ValueError, ["Conversation 0, message 1, item 0 has type 'txt'"]),
    ([{"role": "user", "content": [{"type": "audio"}]}], ValueError,
     ["Conversation 0, message 0, item 0", "needs its clip under 'audio'"]),
    ([{"role": "user", "content": [AUDIO, {"type": "text", "content": "hi"}]}], ValueError,
     ["Conversation 0, message 0, item 1", "needs its string under 'text'"]),
    ([{"role": "user", "content": [AUDIO, {"type": "text", "text": 3}]}], ValueError, ["item 1", "string"]),
    ([{"role": "user", "content": {"type": "audio"}}], ValueError,
     ["Conversation 0, message 0", "each message needs a 'content' list"]),
    ([{"role": "user", "content": [AUDIO]}, "hello"], ValueError, ["Conversation 0, message 1", "'content' list"]),
    ([{"role": "user", "content": [AUDIO, AUDIO]}], ValueError, ["Conversation 0 holds 2 audio items"]),
    ([{"role": "user", "content": "no audio"}], ValueError, ["Conversation 0 holds 0 audio items"]),
    ([], TypeError, ["non-empty list of messages"]),
    ("a.wav", TypeError, ["non-empty list of messages"]),
]


@pytest.mark.parametrize("conversation, error, words", BAD_CHATS)
def test_chat_messages_are_refused_with_the_item_position(conversation, error, words, processor):
    with pytest.raises(error) as caught:
        processor.apply_chat_template(conversation)
    assert all(word in str(caught.value) for word in words), str(caught.value)


def test_a_valid_chat_keeps_its_instruction(processor):
    chat = [{"role": "system", "content": "be brief"},
            {"role": "user", "content": [AUDIO, {"type": "text", "text": "what is it?"}]}]
    direct = processor(audio=[AUDIO["audio"]], text=["be brief what is it?"])
    from_chat = processor.apply_chat_template(chat)
    assert from_chat.keys() == direct.keys() and all(torch.equal(from_chat[k], direct[k]) for k in direct)
