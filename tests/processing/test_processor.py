"""MintProcessor: input forms, resampling, mono, length policy, save/load, and clear errors on bad input."""

import io
import logging
import warnings

import numpy as np
import pytest
import soundfile
import torch

from tests.utils import tiny
from processing_mint import MintProcessor, collected_crop_notices


@pytest.fixture(scope="module")
def processor():
    return tiny.processor(max_audio_seconds=2.0)


def tone(seconds=1.0, rate=16000, freq=440.0):
    t = np.arange(int(seconds * rate)) / rate
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def test_every_input_form_gives_the_same_features(processor, tmp_path):
    wave = tone(1.0)
    path = tmp_path / "tone.wav"
    soundfile.write(path, wave, 16000, subtype="FLOAT")
    buffer = io.BytesIO()
    soundfile.write(buffer, wave, 16000, format="WAV", subtype="FLOAT")
    forms = [
        dict(audio=str(path)),
        dict(audio=path),
        dict(audio=wave, sampling_rate=16000),
        dict(audio=torch.from_numpy(wave), sampling_rate=16000),
        dict(audio={"array": wave, "sampling_rate": 16000}),
        dict(audio={"bytes": buffer.getvalue(), "path": "tone.wav"}),
        dict(audio={"bytes": None, "path": str(path)}),
        dict(audio=[wave], sampling_rate=16000),
    ]
    reference = processor(**forms[2])["input_values"]
    assert reference.shape == (1, 16000)
    for form in forms:
        assert torch.allclose(processor(**form)["input_values"], reference, atol=1e-6), form


def test_stereo_is_mixed_to_mono_and_audio_is_resampled(processor):
    wave = tone(1.0, rate=8000)
    stereo = np.stack([wave, wave])
    mono = processor(audio=wave, sampling_rate=8000)
    assert mono["input_values"].shape == (1, 16000)
    for layout in (stereo, stereo.T):
        assert torch.allclose(processor(audio=layout, sampling_rate=8000)["input_values"], mono["input_values"],
                              atol=1e-6)


def test_padding_to_the_longest_clip_with_an_attention_mask(processor):
    batch = processor(audio=[tone(1.0), tone(0.5)], sampling_rate=16000)
    assert batch["input_values"].shape == (2, 16000)
    assert batch["audio_attention_mask"].sum(-1).tolist() == [16000, 8000]
    assert torch.all(batch["input_values"][1, 8000:] == 0)


def test_text_goes_to_both_tokenizers_and_targets_to_labels(processor):
    batch = processor(text=["generate audio caption :", "this is a sound of"], text_target=["a dog bark", "cat"])
    assert batch["qformer_input_ids"][0, 0].item() == processor.qformer_tokenizer.cls_token_id
    assert processor.qformer_tokenizer.convert_ids_to_tokens(processor.qformer_tokenizer.bos_token_id) == "[DEC]"
    assert processor.tokenizer.decode(batch["input_ids"][1], skip_special_tokens=True) == "this is a sound of"
    assert batch["labels"].tolist() == [[tiny.LLM_WORDS.index(w) for w in ("a", "dog", "bark", "</s>")],
                                        [tiny.LLM_WORDS.index("cat"), 1, -100, -100]]
    stage1 = processor(text=["a dog"], return_llm_inputs=False)
    assert set(stage1) == {"qformer_input_ids", "qformer_attention_mask"}


def test_long_texts_are_truncated_with_a_warning(caplog):
    logging.Logger.warning_once.cache_clear()
    processor = tiny.processor(max_text_length=5)
    with caplog.at_level(logging.WARNING):
        batch = processor(text=["a dog barks and a cat meows loudly in the rain"])
        processor(text=["a dog barks and a cat meows loudly in the rain"])
    assert [r.getMessage() for r in caplog.records if "truncated" in r.getMessage()] == [
        "Some texts are longer than max_text_length=5 Q-Former tokens and are truncated."]  # once, not per batch
    assert batch["qformer_input_ids"].shape[1] == 5


def test_long_clips_are_cropped_with_a_warning_or_windowed(processor, caplog):
    long_clip, short_clip = tone(5.0), tone(1.0)
    with caplog.at_level(logging.WARNING):
        cropped = processor(audio=[long_clip, short_clip], sampling_rate=16000)
    assert [r.getMessage() for r in caplog.records if "cropped" in r.getMessage()] == [
        "audio clip 0 lasts 5.0 s; cropped to its first 2.0 s (use long_audio_policy='window' to keep it all)."]
    with collected_crop_notices() as notices:  # callers that report crops themselves collect the notices instead
        processor(audio=[long_clip, short_clip], sampling_rate=16000)
    assert len(notices) == 1 and len([r for r in caplog.records if "cropped" in r.getMessage()]) == 1
    assert cropped["input_values"].shape == (2, 32000)
    windows = processor(audio=[long_clip, short_clip], text=["a", "b"], sampling_rate=16000,
                        long_audio_policy="window")
    # 5 s in windows of 2 s: 0-2, 2-4, and the last 2 s (a 1 s tail is fine, it is longer than 25 ms).
    assert windows["clip_index"].tolist() == [0, 0, 0, 1]
    assert windows["audio_attention_mask"].sum(-1).tolist() == [32000, 32000, 16000, 16000]
    assert windows["qformer_input_ids"].shape[0] == 4


def test_save_and_load_round_trip(processor, tmp_path):
    processor.save_pretrained(tmp_path)
    loaded = MintProcessor.from_pretrained(tmp_path)
    assert loaded.max_audio_seconds == 2.0 and loaded.long_audio_policy == "crop"
    assert loaded.qformer_tokenizer.bos_token == "[DEC]"
    a = processor(audio=tone(), text=["a dog"], text_target=["dog"], sampling_rate=16000)
    b = loaded(audio=tone(), text=["a dog"], text_target=["dog"], sampling_rate=16000)
    assert set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a)


def test_batch_decode_skips_special_tokens(processor):
    ids = torch.tensor([[0, tiny.LLM_WORDS.index("dog"), 1, 0]])
    assert processor.batch_decode(ids) == ["dog"]


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        (dict(audio=np.zeros(0, dtype=np.float32), sampling_rate=16000), ValueError, "is empty"),
        (dict(audio=np.array([0.0, np.nan] * 400, dtype=np.float32), sampling_rate=16000), ValueError, "NaN or inf"),
        (dict(audio=np.array([0.0, np.inf] * 400, dtype=np.float32), sampling_rate=16000), ValueError, "NaN or inf"),
        (dict(audio=np.zeros((2, 2, 800), dtype=np.float32), sampling_rate=16000), ValueError, r"shape \(2, 2, 800\)"),
        (dict(audio=np.zeros(1600, dtype=np.float32)), ValueError, "without a sampling rate"),
        (dict(audio="/no/such/file.wav"), ValueError, "does not exist"),
        (dict(audio=np.zeros(100, dtype=np.float32), sampling_rate=16000), ValueError, "at least 25 ms"),
        (dict(audio=42), TypeError, "expected a file path"),
        (dict(audio=[]), ValueError, "empty list of audio"),
        (dict(audio=[np.zeros(1600, dtype=np.float32)] * 2, text=["a", "b", "c"], sampling_rate=16000), ValueError,
         "2 audio clips but 3 text"),
        (dict(audio={"array": np.zeros(1600)}), ValueError, "needs its 'sampling_rate'"),
        (dict(text=[1, 2]), TypeError, "list of strings"),
        (dict(), ValueError, "at least one of"),
    ],
)
def test_bad_input_raises_a_clear_error(processor, kwargs, error, message):
    with pytest.raises(error, match=message):
        processor(**kwargs)


def test_a_file_that_is_not_audio_is_rejected(processor, tmp_path):
    bogus = tmp_path / "notes.wav"
    bogus.write_text("this is not audio")
    with pytest.raises(ValueError, match="Could not decode audio clip 0 as audio.*notes.wav"):
        processor(audio=bogus)
    with pytest.raises(ValueError, match="Could not decode"):
        processor(audio={"bytes": b"garbage", "path": "x.wav"})


def test_unknown_length_policy_is_rejected(processor):
    with pytest.raises(ValueError, match="long_audio_policy"):
        processor(audio=tone(), sampling_rate=16000, long_audio_policy="squeeze")


def test_no_warning_for_clips_inside_the_range(processor, caplog):
    with warnings.catch_warnings(), caplog.at_level(logging.WARNING):
        warnings.simplefilter("error")
        processor(audio=[tone(1.0), tone(2.0)], sampling_rate=16000)
    assert not caplog.records
