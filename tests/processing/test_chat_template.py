"""`MintProcessor.apply_chat_template` with transformers' keywords: the saved Jinja template renders the prompt, the
tokenized result equals the plain call, audio items load by value, file or URL, and the chat code of the Qwen2-Audio
model docs runs unchanged; bad calls are refused, table by table."""

import pytest
import soundfile
import torch

from modeling_mint import MintForConditionalGeneration
from processing_mint import DEFAULT_CHAT_TEMPLATE, MintProcessor
from tests.utils import tiny
from tests.utils.audio import clips


CLIP = clips((16000,))[0]
AUDIO = {"type": "audio", "audio": {"array": CLIP, "sampling_rate": 16000}}


def _chat(*texts, system=None, audio=AUDIO):
    messages = [{"role": "system", "content": system}] if system else []
    return messages + [{"role": "user", "content": [audio, *({"type": "text", "text": t} for t in texts)]}]


def _equal(first, second):
    return first.keys() == second.keys() and all(torch.equal(first[k], second[k]) for k in second)


def test_tokenize_false_renders_the_instruction(processor):
    assert processor.apply_chat_template(_chat("what is", "it?", system="Be brief."), tokenize=False) == \
        "Be brief. what is it?"
    assert processor.apply_chat_template(_chat("a"), tokenize=False, add_generation_prompt=True) == "a"
    assert processor.apply_chat_template([_chat("a"), _chat("b c")], tokenize=False) == ["a", "b c"]
    assert processor.apply_chat_template(_chat(), tokenize=False) == ""
    # An earlier answer is part of the rendered text, in its place.
    earlier = _chat("what is it?") + [{"role": "assistant", "content": "a dog"},
                                      {"role": "user", "content": "how loud?"}]
    assert processor.apply_chat_template(earlier, tokenize=False) == "what is it? a dog how loud?"


def test_the_tokenized_chat_equals_the_plain_call(processor, tmp_path):
    path = tmp_path / "clip.wav"
    soundfile.write(path, CLIP, 16000)
    plain = processor(audio=[str(path)], text=["Be brief. what is it?"])
    for audio in ({"type": "audio", "path": str(path)}, {"type": "audio", "url": path.as_uri()},
                  {"type": "audio", "audio_url": path.as_uri()}, {"type": "audio", "path": path.as_uri()}):
        chat = _chat("what is it?", system="Be brief.", audio=audio)
        assert _equal(processor.apply_chat_template(chat), plain)
        assert _equal(processor.apply_chat_template(chat, tokenize=True, add_generation_prompt=True,
                                                    return_dict=True, return_tensors="pt"), plain)
        assert torch.equal(processor.apply_chat_template(chat, return_dict=False), plain["input_ids"])
    # The processor's keywords, given directly or as processor_kwargs; a conversation without text: audio alone.
    windowed = processor(audio=[str(path)], text=["x"], long_audio_policy="window")
    chat = _chat("x", audio={"type": "audio", "path": str(path)})
    assert _equal(processor.apply_chat_template(chat, long_audio_policy="window"), windowed)
    assert _equal(processor.apply_chat_template(chat, processor_kwargs={"long_audio_policy": "window"}), windowed)
    assert _equal(processor.apply_chat_template(_chat()), processor(audio=[AUDIO["audio"]]))


def test_the_template_is_saved_with_the_processor_and_a_custom_one_is_used(processor, tmp_path):
    processor.save_pretrained(tmp_path / "default")
    assert (tmp_path / "default" / "chat_template.jinja").read_text() == DEFAULT_CHAT_TEMPLATE
    assert MintProcessor.from_pretrained(tmp_path / "default").chat_template == DEFAULT_CHAT_TEMPLATE
    # A template of one's own: only the user's words, upper-cased, and a template variable.
    own = ("{%- for m in messages if m['role'] == 'user' -%}{%- for i in m['content'] if i['type'] == 'text' -%}"
           "{{ i['text'] | upper }}{%- endfor -%}{%- endfor -%}{{ suffix }}")
    custom = tiny.processor(chat_template=own)
    custom.save_pretrained(tmp_path / "custom")
    loaded = MintProcessor.from_pretrained(tmp_path / "custom")
    chat = _chat("what is it?", system="ignored")
    assert loaded.apply_chat_template(chat, tokenize=False, suffix=" Answer:") == "WHAT IS IT? Answer:"
    assert processor.apply_chat_template(chat, chat_template=own, tokenize=False) == "WHAT IS IT?"
    assert _equal(loaded.apply_chat_template(chat, suffix="!"),
                  processor(audio=[AUDIO["audio"]], text=["WHAT IS IT?!"]))


def test_the_qwen2_audio_docs_chat_code_runs_unchanged(processor, tmp_path):
    """The inference code of transformers' Qwen2-Audio model page, with a local clip for the URL."""
    path = tmp_path / "glass-breaking.wav"
    soundfile.write(path, CLIP, 16000)
    torch.manual_seed(0)
    model = MintForConditionalGeneration(tiny.mint_config()).eval()
    # Every token ends the answer: the snippet's max_length=256 would take a random LLM many seconds.
    model.language_model.generation_config.eos_token_id = list(range(model.config.text_config.vocab_size))

    conversation = [
        {"role": "user", "content": [
            {"type": "audio", "audio_url": path.as_uri()},
            {"type": "text", "text": "What's that sound?"},
        ]},
    ]
    inputs = processor.apply_chat_template(conversation, add_generation_prompt=True, tokenize=True,
                                           return_dict=True, return_tensors="pt")
    inputs = inputs.to(model.device)
    generate_ids = model.generate(**inputs, max_length=256)
    generate_ids = generate_ids[:, inputs.input_ids.size(1):]
    response = processor.batch_decode(generate_ids, skip_special_tokens=True, clean_up_tokenization_spaces=False)[0]

    assert isinstance(response, str)
    plain = processor(audio=[str(path)], text=["What's that sound?"])
    assert _equal(inputs, plain)


BAD_CALLS = [
    (dict(padding="max_length"), ValueError, ["padding=True or 'longest'", "got padding='max_length'"]),
    (dict(processor_kwargs={"text_target": 3}), TypeError, ["text_target must be a string"]),
    (dict(add_generation_prompt=True, continue_final_message=True), ValueError, ["not compatible"]),
    (dict(conversation=[{"role": "tool", "content": [AUDIO]}]), ValueError,
     ["Conversation 0, message 0", "role system, user or assistant; got tool"]),
    (dict(conversation=[{"content": [AUDIO]}]), ValueError, ["Conversation 0, message 0", "got none (no 'role' key)"]),
    (dict(conversation=[{"role": "user", "content": [AUDIO]}, {"role": None, "content": "x"}]), ValueError,
     ["Conversation 0, message 1", "got None"]),
    (dict(conversation=_chat("x", audio={"type": "audio", "url": "clip.wav"})), ValueError,
     ["Conversation 0, message 0, item 0", "a URL such as 'https://...'"]),
    (dict(conversation=_chat("x", audio={"type": "audio", "url": "file:///no/such/clip.wav"})), OSError,
     ["Conversation 0, message 0, item 0", "could not read the audio at 'file:///no/such/clip.wav'"]),
    (dict(conversation={"role": "user", "content": [AUDIO]}), TypeError, ["got a dict", "wrap it in a list"]),
]


@pytest.mark.parametrize("call, error, words", BAD_CALLS)
def test_bad_chat_calls_are_refused(call, error, words, processor):
    conversation = call.pop("conversation", _chat("what is it?"))
    with pytest.raises(error) as caught:
        processor.apply_chat_template(conversation, **call)
    assert all(word in str(caught.value) for word in words), str(caught.value)
