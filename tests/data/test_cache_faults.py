"""The frozen-feature cache refuses what it cannot store faithfully, naming the row and the file, or leaves refused
clips out and lists them when asked to."""

import json
import os

import numpy as np
import pytest
import soundfile
import torch
from datasets import Audio, Dataset

from mint.cli import main
from mint.data.cache import SKIPPED_CLIPS_FILE, cache_audio_features
from modeling_mint import MintForPreTraining
from tests.utils import tiny
from tests.utils.audio import clips


@pytest.fixture
def dataset(tmp_path):
    paths = []
    for index, clip in enumerate(clips((16000, 300, 12000))):  # row 1 lasts 19 ms, under the encoder's 25 ms
        paths.append(str(tmp_path / f"clip {index}.wav"))
        soundfile.write(paths[-1], clip, 16000)
    return Dataset.from_dict({"audio": paths, "caption": ["a", "b", "c"]}).cast_column("audio", Audio(decode=False))


def test_a_clip_too_short_for_the_encoder_is_named_by_row_and_file(dataset, tmp_path):
    model = MintForPreTraining(tiny.mint_config())
    with pytest.raises(ValueError, match=r"Row 1 of the dataset \('.*clip 1\.wav'\): lasts 18\.8 ms.*--skip-invalid"):
        cache_audio_features(model, tiny.processor(), dataset, tmp_path / "cache", progress=False)


def test_refused_clips_are_left_out_and_listed_with_skip_invalid(tmp_path):
    """Two shards, a refused clip in each: the cache holds the other rows, as caching them alone gives."""
    paths = []
    for index, clip in enumerate(clips((16000, 300, 12000, 9000, 14000))):  # row 1 lasts 19 ms
        paths.append(str(tmp_path / f"clip{index}.wav"))
        soundfile.write(paths[-1], clip, 16000)
    with open(paths[3], "w") as f:
        f.write("not audio")
    dataset = Dataset.from_dict({"audio": paths, "caption": list("abcde")}).cast_column("audio", Audio(decode=False))
    model = MintForPreTraining(tiny.mint_config())
    cached = cache_audio_features(model, tiny.processor(), dataset, tmp_path / "cache", batch_size=2, num_shards=2,
                                  skip_invalid=True, progress=False)
    expected = cache_audio_features(model, tiny.processor(), dataset.select([0, 2, 4]), tmp_path / "valid",
                                    progress=False)
    assert cached.column_names == expected.column_names
    assert list(cached["caption"]) == ["a", "c", "e"] and list(cached["audio_length"]) == list(expected["audio_length"])
    for got, want in zip(cached["audio_encoder_features"], expected["audio_encoder_features"]):
        assert np.allclose(got, want, atol=1e-5)
    skipped = json.load(open(os.path.join(tmp_path / "cache", SKIPPED_CLIPS_FILE)))
    assert [(clip["row"], clip["path"]) for clip in skipped] == [(1, paths[1]), (3, paths[3])]
    assert skipped[0]["reason"] == "lasts 18.8 ms; the audio encoder needs at least 25 ms."
    assert skipped[1]["reason"].startswith("Could not decode the clip as audio")
    assert not os.path.exists(os.path.join(tmp_path / "valid", SKIPPED_CLIPS_FILE))
    with pytest.raises(ValueError, match=r"Every clip of the dataset \(1\) was refused.*row 0 \('.*clip1\.wav'\)"):
        cache_audio_features(model, tiny.processor(), dataset.select([1]), tmp_path / "none", skip_invalid=True,
                             progress=False)


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


def test_the_command_refuses_bad_numbers_and_shards_before_loading_anything(tmp_path, capsys):
    output = str(tmp_path / "cache")
    for option in (["--num-shards", "0"], ["--batch-size", "0"], ["--num-proc", "0"], ["--shard-index", "-1"],
                   ["--merge", "--shard-index", "0"]):
        with pytest.raises(SystemExit) as refused:
            main(["cache-features", "--output", output, *option])
        assert refused.value.code == 2
        assert option[0] in capsys.readouterr().err
    absent = str(tmp_path / "absent")
    assert main(["cache-features", "--model", absent, "--dataset", absent, "--output", output, "--num-shards", "2",
                 "--shard-index", "0", "2"]) == 1
    assert "--shard-index [2] lies outside the 2 shards of --num-shards" in capsys.readouterr().err
    assert main(["cache-features", "--output", output]) == 1
    assert "needs --model and --dataset (or --merge" in capsys.readouterr().err
    assert main(["cache-features", "--merge", "--output", output]) == 1
    assert "No feature-cache shards" in capsys.readouterr().err
