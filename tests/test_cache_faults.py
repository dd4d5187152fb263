"""The frozen-feature cache refuses what it cannot store faithfully, naming the row and the file."""

import numpy as np
import pytest
import soundfile
import torch
from datasets import Audio, Dataset

import tiny
from data_mint import cache_audio_features
from modeling_mint import MintForPreTraining
from test_pretraining import clips


@pytest.fixture
def dataset(tmp_path):
    paths = []
    for index, clip in enumerate(clips((16000, 300, 12000))):  # row 1 lasts 19 ms, under the encoder's 25 ms
        paths.append(str(tmp_path / f"clip {index}.wav"))
        soundfile.write(paths[-1], clip, 16000)
    return Dataset.from_dict({"audio": paths, "caption": ["a", "b", "c"]}).cast_column("audio", Audio(decode=False))


def test_a_clip_too_short_for_the_encoder_is_named_by_row_and_file(dataset, tmp_path):
    model = MintForPreTraining(tiny.mint_config())
    with pytest.raises(ValueError, match=r"row 1 of the dataset lasts 18\.8 ms.*clip 1\.wav"):
        cache_audio_features(model, tiny.processor(), dataset, tmp_path / "cache", progress=False)


def test_windows_and_float16_overflow_are_refused(dataset, tmp_path, monkeypatch):
    model = MintForPreTraining(tiny.mint_config())
    with pytest.raises(ValueError, match="long_audio_policy is 'crop', not 'window'"):
        cache_audio_features(model, tiny.processor(long_audio_policy="window"), dataset, tmp_path / "a",
                             progress=False)
    encode = model.get_audio_encoder_features

    def huge(**audio):
        hidden, mask = encode(**audio)
        return hidden * 1e5, mask

    monkeypatch.setattr(model, "get_audio_encoder_features", huge)
    valid = dataset.select([0, 2])
    with pytest.raises(ValueError, match=r"features of row 0 of the dataset .* beyond float16's range"):
        cache_audio_features(model, tiny.processor(), valid, tmp_path / "b", dtype="float16", progress=False)
    cached = cache_audio_features(model, tiny.processor(), valid, tmp_path / "c", dtype="float32", progress=False)
    assert np.isfinite(cached[0]["audio_encoder_features"]).all()
    assert float(np.abs(cached[0]["audio_encoder_features"]).max()) > 65504


def test_non_finite_features_are_never_written(dataset, tmp_path, monkeypatch):
    model = MintForPreTraining(tiny.mint_config())
    encode = model.get_audio_encoder_features

    def poisoned(**audio):
        hidden, mask = encode(**audio)
        hidden[-1, 0, 0] = torch.nan
        return hidden, mask

    monkeypatch.setattr(model, "get_audio_encoder_features", poisoned)
    with pytest.raises(ValueError, match="NaN or infinite features for row 1 of the dataset"):
        cache_audio_features(model, tiny.processor(), dataset.select([0, 2]), tmp_path / "cache", batch_size=2,
                             progress=False)
    assert not list((tmp_path / "cache").glob("*.arrow"))
