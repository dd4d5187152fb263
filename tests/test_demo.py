"""The demo's pieces that run in seconds (the whole demo takes ~20 CPU minutes: README, issue 7)."""

import io

import numpy as np
import soundfile
import torch
from datasets import Audio, Dataset
from transformers import WhisperConfig, WhisperFeatureExtractor
from transformers.models.whisper.modeling_whisper import WhisperEncoder

from demo_mint import pooled_encoder_states


def _wav(seconds: float, seed: int, amplitude: float = 0.3) -> dict:
    buffer = io.BytesIO()
    audio = np.random.default_rng(seed).uniform(-amplitude, amplitude, int(16000 * seconds)).astype(np.float32)
    soundfile.write(buffer, audio, 16000, format="WAV", subtype="FLOAT")
    return {"bytes": buffer.getvalue(), "path": None}


def test_probe_features_pool_each_clips_real_frames(tmp_path):
    config = WhisperConfig(d_model=16, encoder_layers=2, encoder_attention_heads=2, encoder_ffn_dim=32,
                           num_mel_bins=80, max_source_positions=150)
    torch.manual_seed(0)
    WhisperEncoder(config).save_pretrained(tmp_path)
    feature_extractor = WhisperFeatureExtractor(feature_size=80, chunk_length=3)
    feature_extractor.save_pretrained(tmp_path)
    seconds = [1.0, 0.4, 2.2]
    split = Dataset.from_dict({"audio": [_wav(s, i) for i, s in enumerate(seconds)]}).cast_column(
        "audio", Audio(decode=False))
    pooled = pooled_encoder_states(str(tmp_path), split, batch_size=2)
    assert pooled.shape == (3, 3, 32)  # 3 hidden states (input embeddings + 2 layers), 3 clips, mean and std
    encoder = WhisperEncoder.from_pretrained(tmp_path).eval()
    for index, s in enumerate(seconds):
        clip = soundfile.read(io.BytesIO(split[index]["audio"]["bytes"]), dtype="float32")[0]
        features = feature_extractor(clip, sampling_rate=16000, padding="max_length", return_tensors="pt")
        with torch.no_grad():
            states = torch.stack(encoder(features.input_features, output_hidden_states=True).hidden_states)
        frames = int(s * 50)  # 100 mel frames per second, stride 2
        expected = torch.cat([states[:, 0, :frames].mean(1), states[:, 0, :frames].std(1, unbiased=False)], -1)
        torch.testing.assert_close(pooled[:, index], expected, rtol=1e-4, atol=1e-5)


def test_probe_encoder_scores_each_held_out_program(tmp_path, monkeypatch):
    """
    The per-program table holds the probe's accuracy on each held-out program's clips and no other clip's: training
    pianos are quiet and organs loud; the held-out organ is quiet too, so the probe calls it a piano.
    """
    import demo_mint
    from datasets import DatasetDict

    config = WhisperConfig(d_model=16, encoder_layers=1, encoder_attention_heads=2, encoder_ffn_dim=32,
                           num_mel_bins=80, max_source_positions=150)
    torch.manual_seed(0)
    WhisperEncoder(config).save_pretrained(tmp_path)
    WhisperFeatureExtractor(feature_size=80, chunk_length=3).save_pretrained(tmp_path)

    def split(programs, families, amplitudes, seed):
        audio = [_wav(0.6, seed + i, amplitude) for i, amplitude in enumerate(amplitudes + [0.3, 0.3])]
        columns = {"audio": audio, "program": programs + [None, None], "instrument_family": families + [None, None]}
        for column, _ in demo_mint.TASKS.values():  # the other label types on other clips: not in the program table
            columns.setdefault(column, [None] * len(programs) + ["a", "b"])
        return Dataset.from_dict(columns).cast_column("audio", Audio(decode=False))

    train = split([1, 1, 1, 2, 2, 2], ["piano"] * 3 + ["organ"] * 3, [0.003] * 3 + [0.5] * 3, 0)
    test = split([3, 3, 3, 4, 4], ["piano"] * 3 + ["organ"] * 2, [0.003] * 5, 100)
    monkeypatch.setattr(demo_mint, "build_corpus", lambda *a, **k: DatasetDict(train=train, test=test))
    monkeypatch.setattr(demo_mint, "whisper_encoder_dir", lambda output: str(tmp_path))
    table = demo_mint.probe_encoder(str(tmp_path), progress=False).splitlines()

    assert table[2].startswith("| hidden state 0 | 60.0 |")  # 3 of the 5 held-out instrument clips
    assert table[-5:] == ["| Encoder features | piano (3) | organ (4) |", "|---|---|---|",
                          "| hidden state 0 | 100.0 | 0.0 |", "| hidden state 1 | 100.0 | 0.0 |",
                          "| hidden states 0 and -1 (the demo's) | 100.0 | 0.0 |"]
