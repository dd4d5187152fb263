"""Property-based checks of the processor and the model's entry points: any input either gives a clear error that
names the problem, or a result with the invariances MINT promises (one row per clip, batch-independent outputs)."""

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.utils import tiny
from tests.utils.audio import clips as sample_clips


SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
DTYPES = [np.float32, np.float64, np.float16, np.int16, np.int32, np.uint8, np.int8, np.bool_, np.complex64]
# Every refusal names what is wrong with the clip and what was expected.
CLEAR = ("empty", "NaN or infinite", "sampling rate", "shape", "dtype", "bool array", "samples up to", "lasts",
         "without a sampling rate", "expected")


@pytest.fixture(scope="module")
def model():
    return tiny.captioning_model()


@st.composite
def clips(draw):
    dtype = draw(st.sampled_from(DTYPES))
    channels = draw(st.sampled_from([None, 1, 2]))
    length = draw(st.integers(0, 4000))
    rate = draw(st.sampled_from([16000, 8000, 44100, 22050.0, 16000.5, 0, -8000, 10**7]))
    values = draw(st.sampled_from(["noise", "silence", "nan", "inf", "huge"]))
    shape = (length,) if channels is None else (channels, length)
    rng = np.random.default_rng(length)
    data = rng.standard_normal(shape) * 0.1
    if values == "silence":
        data[:] = 0
    elif values == "nan" and length:
        data.flat[length // 2] = np.nan
    elif values == "inf" and length:
        data.flat[0] = np.inf
    elif values == "huge":
        data = data * 1e30
    if np.issubdtype(dtype, np.integer):
        data = np.nan_to_num(data, posinf=0, neginf=0).clip(-1, 1) * (np.iinfo(dtype).max // 2)
    with np.errstate(all="ignore"):
        return data.astype(dtype), rate


@SETTINGS
@given(clip=clips())
def test_any_clip_is_either_refused_clearly_or_gives_finite_features(processor, clip):
    data, rate = clip
    try:
        batch = processor(audio=[data], sampling_rate=rate)
    except (ValueError, TypeError) as error:
        assert any(word in str(error) for word in CLEAR), str(error)
        return
    assert batch["input_values"].shape[0] == 1 and torch.isfinite(batch["input_values"]).all()
    assert np.isfinite(data.astype(np.float64)).all() and data.size > 0 and data.dtype != np.bool_
    assert float(rate) == int(rate) and rate > 0


@SETTINGS
@given(pcm=st.lists(st.integers(-32768, 32767), min_size=800, max_size=1200))
def test_integer_pcm_equals_its_float_scaling(processor, pcm):
    as_int = np.array(pcm, dtype=np.int16)
    as_float = as_int.astype(np.float32) / 32768
    a = processor(audio=[as_int], sampling_rate=16000)["input_values"]
    b = processor(audio=[as_float], sampling_rate=16000)["input_values"]
    torch.testing.assert_close(a, b, rtol=0, atol=1e-6)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(order=st.permutations(range(4)), size=st.integers(1, 4))
def test_scores_and_captions_of_a_clip_do_not_depend_on_its_batch(model, processor, order, size):
    audio = sample_clips()
    chosen = list(order[:size])
    batch = processor(audio=[audio[i] for i in chosen], text=["this is a sound of"] * size, sampling_rate=16000)
    candidates = processor.tokenize_candidates(["dog", "cat meow", "piano"])
    with torch.no_grad():
        scores = model.score_candidates(**candidates, **batch)
        ids = model.generate(**batch, max_new_tokens=4, min_new_tokens=4, suppress_tokens=[0, 1, 2, 3, 43])
    for row, index in enumerate(chosen):
        alone = processor(audio=[audio[index]], text=["this is a sound of"], sampling_rate=16000)
        with torch.no_grad():
            torch.testing.assert_close(scores[row], model.score_candidates(**candidates, **alone)[0], rtol=1e-4,
                                       atol=1e-4)
            expected = model.generate(**alone, max_new_tokens=4, min_new_tokens=4, suppress_tokens=[0, 1, 2, 3, 43])
        assert ids[row].tolist() == expected[0].tolist()


@SETTINGS
@given(drop=st.sampled_from(["input_ids", "qformer_input_ids", "labels", "audio_attention_mask"]),
       rows=st.integers(1, 2))
def test_mismatched_batches_are_refused_by_name(model, processor, drop, rows):
    batch = dict(processor(audio=sample_clips()[:3], text=["this is a sound of"] * 3, text_target=["dog"] * 3,
                           sampling_rate=16000))
    batch[drop] = batch[drop][:rows]
    with pytest.raises(ValueError, match=f"{drop} holds {rows} rows but the audio holds 3 clips"):
        model(**batch)


def test_stage2_entry_points_refuse_bad_inputs_clearly(model, processor):
    batch = dict(processor(audio=sample_clips()[:2], text=["this is a sound of"] * 2, text_target=["dog", "cat"],
                           sampling_rate=16000))
    candidates = processor.tokenize_candidates(["dog", "cat"])
    nan_audio = {**batch, "input_values": batch["input_values"].clone()}
    nan_audio["input_values"][1, 5] = float("nan")
    unlabelled = {k: v for k, v in nan_audio.items() if k != "labels"}
    for call in (lambda: model(**nan_audio), lambda: model.generate(**unlabelled),
                 lambda: model.score_candidates(**candidates, **unlabelled)):
        with pytest.raises(ValueError, match=r"batch item\(s\) \[1\] contains NaN or infinite"):
            call()
    with pytest.raises(ValueError, match="Every label is -100"):
        model(**{**batch, "labels": torch.full_like(batch["labels"], -100)})
    with pytest.raises(ValueError, match=r"Candidate\(s\) \[1\] have no token"):
        model.score_candidates(candidates["candidate_ids"],
                               candidates["candidate_attention_mask"] * torch.tensor([[1], [0]]),
                               **{k: v for k, v in batch.items() if k != "labels"})
    with pytest.raises(ValueError, match=r"expected \(batch, samples\) waveforms"):
        model(**{**batch, "input_values": batch["input_values"][0]})
    with pytest.raises(ValueError, match="audio placeholder tokens"):
        model(**{**batch, "input_ids": batch["input_ids"][:, 2:], "attention_mask": batch["attention_mask"][:, 2:]})
    with pytest.raises(TypeError, match="audios"):
        processor(audios=sample_clips()[:1], sampling_rate=16000)


