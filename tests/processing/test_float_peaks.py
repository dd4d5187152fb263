"""Float audio beyond +6 dBFS is refused with its peak named; float overs below that pass unchanged."""

import numpy as np
import pytest

from audio_io_mint import MAX_ABS_SAMPLE, decode_clips


def _clip(peak):
    clip = np.sin(2 * np.pi * 440 * np.arange(16000) / 16000).astype(np.float32)
    return clip * np.float32(peak)


@pytest.mark.parametrize("peak", [0.5, 1.0, 1.3, MAX_ABS_SAMPLE])
def test_float_overs_up_to_the_limit_pass_unchanged(peak):
    clip = _clip(peak)
    (decoded,) = decode_clips(clip, 16000, sampling_rate=16000)
    np.testing.assert_array_equal(decoded, clip)


@pytest.mark.parametrize("data, words", [
    (_clip(2.5), ["samples up to 2.5", "at most 2", "divide float audio by its peak"]),
    (_clip(1e4), ["samples up to 1e+04", "integer PCM as its integer dtype"]),
    (np.round(_clip(0.3) * 32767), ["samples up to 9.83e+03"]),  # int16 PCM passed as floats
])
def test_mis_scaled_float_audio_is_refused_with_its_peak(data, words):
    with pytest.raises(ValueError) as caught:
        decode_clips(data, 16000, sampling_rate=16000)
    assert all(word in str(caught.value) for word in words), caught.value


def test_the_peak_is_judged_after_the_mix_to_mono():
    stereo = np.stack([_clip(0.1), _clip(3.0)])  # mono peak 1.55
    (decoded,) = decode_clips(stereo, 16000, sampling_rate=16000)
    np.testing.assert_allclose(decoded, stereo.mean(axis=0), rtol=1e-6)
