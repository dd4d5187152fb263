"""transformers' own `any-to-any` pipeline on a stage-2 MINT folder: the same chat messages give the same text as MINT's
`audio-to-text`, one conversation or several, with the installed package (no registration call)."""

import logging

import pytest
import torch
from transformers import pipeline
from transformers.pipelines import AnyToAnyPipeline

from modeling_mint import MintForConditionalGeneration
from pipelines_mint import MintAudioToTextPipeline, register_mint_pipelines
from tests.utils import tiny
from tests.utils.audio import clips
from tests.utils.tiny import WORDS


@pytest.fixture(scope="module")
def stage2_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("stage2")
    torch.manual_seed(0)
    tiny.captioning_model().save_pretrained(folder)
    tiny.processor().save_pretrained(folder)
    return str(folder)


def _chat(clip, *texts, system=None):
    messages = [{"role": "system", "content": system}] if system else []
    return messages + [{"role": "user", "content": [{"type": "audio", "audio": {"array": clip, "sampling_rate": 16000}},
                                                    *({"type": "text", "text": t} for t in texts)]}]


class _Records(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def test_any_to_any_answers_a_chat_as_the_model_does(stage2_folder):
    records = _Records()
    logging.getLogger("transformers").addHandler(records)  # transformers' loggers do not propagate
    try:
        any_to_any = pipeline("any-to-any", model=stage2_folder, device="cpu")
    finally:
        logging.getLogger("transformers").removeHandler(records)
    assert type(any_to_any) is AnyToAnyPipeline and type(any_to_any.model) is MintForConditionalGeneration
    assert not [m for m in records.messages if "not supported" in m], records.messages
    chat = _chat(clips((16000,))[0], "this is a sound of")
    processor, model = any_to_any.processor, any_to_any.model
    with torch.no_grad():
        expected = processor.batch_decode(model.generate(**processor.apply_chat_template(chat), **WORDS))[0]
    assert any_to_any(text=chat, generate_kwargs=WORDS, return_full_text=False) == [
        {"input_text": chat, "generated_text": expected.strip()}]


@pytest.mark.slow
def test_any_to_any_writes_what_audio_to_text_writes(stage2_folder):
    any_to_any = pipeline("any-to-any", model=stage2_folder, device="cpu")
    register_mint_pipelines()
    captioner = pipeline("audio-to-text", model=stage2_folder, device="cpu")
    assert isinstance(captioner, MintAudioToTextPipeline)
    audio = clips((16000, 12000, 9000))
    # Prompts in the tiny LLM's vocabulary: any-to-any cuts the decoded prompt off an answer that starts with it.
    chats = [_chat(audio[0], "this is a sound of"), _chat(audio[1], "in this segment", system="identify instruments"),
             _chat(audio[2])]
    expected = [captioner(chat, **WORDS)["generated_text"] for chat in chats]
    assert all(expected)
    results = any_to_any(text=chats, generate_kwargs=WORDS, return_full_text=False)
    assert [r[0]["generated_text"] for r in results] == expected
    full = any_to_any(text=chats[1], generate_kwargs=WORDS)[0]["generated_text"]  # the chat, answered
    assert full[:-1] == chats[1] and full[-1] == {"role": "assistant", "content": expected[1]}
