"""`apply_chat_template` and `__call__`: the padding keyword of the Qwen2-Audio / Voxtral snippets, unknown keywords
refused whatever `tokenize`, and local files under `url` / `audio_url`."""

import pytest
import soundfile
import torch

from tests.utils import tiny
from tests.utils.audio import clips


def _chat(item, text="a dog"):
    return [{"role": "user", "content": [item, {"type": "text", "text": text}]}]


@pytest.fixture(scope="module")
def wav(tmp_path_factory):
    path = tmp_path_factory.mktemp("audio") / "a.wav"
    soundfile.write(path, clips((16000,))[0], 16000)
    return str(path)


@pytest.mark.parametrize("key", ["url", "audio_url"])
@pytest.mark.parametrize("padding", [True, "longest", None])
def test_a_local_file_under_a_url_key_and_padding_give_the_plain_call(wav, key, padding):
    processor = tiny.processor()
    expected = processor(audio=wav, text="a dog")
    kwargs = {} if padding is None else {"padding": padding}
    got = processor.apply_chat_template(_chat({"type": "audio", key: wav}), **kwargs)
    assert got.keys() == expected.keys() and all(torch.equal(got[k], expected[k]) for k in got)
    plain = processor(audio=wav, text="a dog", **kwargs)
    assert all(torch.equal(plain[k], expected[k]) for k in plain)


@pytest.mark.parametrize("item, kwargs, error, words", [
    ({"type": "audio", "path": "WAV"}, {"bogus": 1, "tokenize": False}, TypeError, ["unexpected keyword", "bogus"]),
    ({"type": "audio", "path": "WAV"}, {"bogus": 1}, TypeError, ["unexpected keyword", "bogus"]),
    ({"type": "audio", "path": "WAV"}, {"padding": "max_length"}, ValueError, ["padding=True", "'max_length'"]),
    ({"type": "audio", "path": "WAV"}, {"padding": False, "tokenize": False}, None, []),
    ({"type": "audio", "url": "/no/such/file.wav"}, {}, ValueError, ["existing local file", "/no/such/file.wav"]),
    ({"type": "audio", "audio_url": 3}, {}, ValueError, ["a URL such as", "got 3"]),
])
def test_apply_chat_template_refuses_bad_keywords_and_missing_files(wav, item, kwargs, error, words):
    item = {key: wav if value == "WAV" else value for key, value in item.items()}
    processor = tiny.processor()
    if error is None:  # tokenize=False renders only: padding is __call__'s keyword, checked by name
        assert processor.apply_chat_template(_chat(item), **kwargs) == "a dog"
        return
    with pytest.raises(error) as caught:
        processor.apply_chat_template(_chat(item), **kwargs)
    assert all(word in str(caught.value) for word in words), caught.value


@pytest.mark.parametrize("padding", [False, "max_length", "do_not_pad"])
def test_the_plain_call_refuses_other_padding(padding):
    with pytest.raises(ValueError, match="pads each batch to its longest clip and text"):
        tiny.processor()(text="a dog", padding=padding)
