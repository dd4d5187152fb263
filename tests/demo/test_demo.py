"""The demo's pieces that run in seconds (the whole demo takes about half an hour of CPU time: README)."""

import io
import json

import numpy as np
import pytest
import soundfile
import torch
from datasets import Audio, Dataset
from transformers import WhisperConfig, WhisperFeatureExtractor
from transformers.models.whisper.modeling_whisper import WhisperEncoder

import mint.cli
import modeling_mint
from mint.demo import probe, report, run
from mint.demo.corpus import CORPUS_MARKER
from mint.demo.probe import pooled_encoder_states
from mint.demo.settings import PROBE_FILE, RESULTS_FILE, TASKS
from modeling_mint import MintForConditionalGeneration, MintForPreTraining
from tests.utils import tiny


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
    from datasets import DatasetDict

    config = WhisperConfig(d_model=16, encoder_layers=1, encoder_attention_heads=2, encoder_ffn_dim=32,
                           num_mel_bins=80, max_source_positions=150)
    torch.manual_seed(0)
    encoder_dir = tmp_path / "whisper-tiny-en-encoder"  # where the demo keeps its encoder
    WhisperEncoder(config).save_pretrained(encoder_dir)
    WhisperFeatureExtractor(feature_size=80, chunk_length=3).save_pretrained(encoder_dir)

    def split(programs, families, amplitudes, seed):
        audio = [_wav(0.6, seed + i, amplitude) for i, amplitude in enumerate(amplitudes + [0.3, 0.3])]
        columns = {"audio": audio, "program": programs + [None, None], "instrument_family": families + [None, None]}
        for column, _ in TASKS.values():  # the other label types on other clips: not in the program table
            columns.setdefault(column, [None] * len(programs) + ["a", "b"])
        return Dataset.from_dict(columns).cast_column("audio", Audio(decode=False))

    train = split([1, 1, 1, 2, 2, 2], ["piano"] * 3 + ["organ"] * 3, [0.003] * 3 + [0.5] * 3, 0)
    test = split([3, 3, 3, 4, 4], ["piano"] * 3 + ["organ"] * 2, [0.003] * 5, 100)
    monkeypatch.setattr(probe, "build_corpus", lambda *a, **k: DatasetDict(train=train, test=test))
    monkeypatch.setattr(probe, "whisper_encoder_dir", lambda output: str(encoder_dir))
    report.write_results(str(tmp_path), _results())  # a finished demo in the same folder: no probe column yet
    assert "Encoder probe" not in (tmp_path / "results.md").read_text()
    table = probe.probe_encoder(str(tmp_path), progress=False).splitlines()

    assert table[2].startswith("| hidden state 0 | 60.0 |")  # 3 of the 5 held-out instrument clips
    assert table[-5:] == ["| Encoder features | piano (3) | organ (4) |", "|---|---|---|",
                          "| hidden state 0 | 100.0 | 0.0 |", "| hidden state 1 | 100.0 | 0.0 |",
                          "| hidden states 0 and -1 (the demo's) | 100.0 | 0.0 |"]
    written = json.loads((tmp_path / PROBE_FILE).read_text())["accuracy"]
    assert list(written) == ["hidden state 0", "hidden state 1", "hidden states 0 and -1 (the demo's)"]
    assert list(written["hidden state 0"]) == list(TASKS)
    assert written["hidden state 0"]["instrument family"] == pytest.approx(0.6)
    # The demo's results now carry the probe's best accuracy per label type.
    bounds = json.loads((tmp_path / RESULTS_FILE).read_text())["encoder_probe"]
    for name in TASKS:
        assert bounds[name]["accuracy"] == max(accuracy[name] for accuracy in written.values())
        assert bounds[name]["accuracy"] == written[bounds[name]["features"]][name]
    assert "Encoder probe, best features (supervised)" in (tmp_path / "results.md").read_text()


def _results() -> dict:
    """Hand-made demo results: label type i has accuracies 0.5 + i / 100 (summed ranking), 0.6 + i / 100
    (length-normalised), 0.3 + i / 100 (embeddings) over 10 + i clips, with 4 classes."""
    classification = {name: {"vocabulary_ranking": 0.5 + i / 100,
                             "vocabulary_ranking_length_normalised": 0.6 + i / 100,
                             "embedding_zero_shot": 0.3 + i / 100, "chance": 0.25, "clips": 10 + i}
                      for i, name in enumerate(TASKS)}
    return {"classification": classification, "retrieval": {"R@1": 0.1, "R@5": 0.2, "R@10": 0.3, "mAP@10": 0.15},
            "captioning": dict.fromkeys(("bleu_1", "bleu_4", "meteor", "rouge_l", "cider_d", "spice", "spider"), 0.5),
            "timing": {"total_s": 600.0, "stage1_s": 300.0, "stage2_s": 240.0}}


def test_results_report_both_rankings_against_chance_and_the_probe_where_it_ran(tmp_path):
    header = ("| Held-out task | Vocabulary ranking, summed (stage 2) | Vocabulary ranking, length-normalised "
              "(stage 2) | Embedding zero-shot (stage 1) |")
    table = report.write_results(str(tmp_path), _results())
    assert (tmp_path / "results.md").read_text() == table
    lines = table.splitlines()
    assert lines[:3] == [header + " Chance | Clips |", "|---|---|---|---|---|---|",
                         "| instrument family | 50.0 | 60.0 | 30.0 | 25.0 | 10 |"]
    assert lines[6] == "| loudness | 54.0 | 64.0 | 34.0 | 25.0 | 14 |"
    written = json.loads((tmp_path / "results.json").read_text())
    assert written["encoder_probe"] is None
    assert written["classification"]["loudness"]["vocabulary_ranking_length_normalised"] == pytest.approx(0.64)

    probe = {f"hidden state {i}": dict.fromkeys(TASKS, accuracy) for i, accuracy in enumerate((0.7, 0.9))}
    probe["hidden state 0"]["loudness"] = 0.95
    (tmp_path / PROBE_FILE).write_text(json.dumps({"accuracy": probe}))
    lines = report.write_results(str(tmp_path), _results()).splitlines()
    assert lines[:3] == [header + " Encoder probe, best features (supervised) | Probe minus summed ranking (points) | "
                                  "Chance | Clips |",
                         "|---|---|---|---|---|---|---|---|",
                         "| instrument family | 50.0 | 60.0 | 30.0 | 90.0 | +40.0 | 25.0 | 10 |"]
    assert lines[6] == "| loudness | 54.0 | 64.0 | 34.0 | 95.0 | +41.0 | 25.0 | 14 |"
    written = json.loads((tmp_path / "results.json").read_text())
    assert written["encoder_probe"]["loudness"] == {"accuracy": 0.95, "features": "hidden state 0"}
    assert written["encoder_probe"]["register"] == {"accuracy": 0.9, "features": "hidden state 1"}
    # Reported against chance and the probe only: no goals anywhere.
    assert not any(hasattr(module, "goals") for module in (probe, report, run))
    assert "goal" not in (tmp_path / "results.md").read_text().lower()
    assert "goal" not in (tmp_path / "results.json").read_text().lower()


def test_classification_ranks_the_labels_summed_and_length_normalised(monkeypatch):
    """
    With summed log-likelihoods of -(1 + n / 2) for a label of n tokens, the sum ranks the 1-word label (2 tokens with
    the end-of-sequence token, -2, or -1 per token) first and the mean per token the 3-word one (4 tokens, -3, or -0.75
    per token): on clips labelled [short, long, long] the two rankings score 1/3 and 2/3.
    """
    short, long = "dog", "dog bark loudly"

    def by_length(logits, labels):
        return -(1.0 + 0.5 * (labels != -100).sum(-1).to(logits.dtype))

    monkeypatch.setattr(modeling_mint, "_sequence_log_likelihood", by_length)
    audio = [_wav(0.6, seed) for seed in range(4)]
    columns = {column: [short, long, long, None] for column, _ in TASKS.values()}
    test = Dataset.from_dict({"audio": audio, **columns}).cast_column("audio", Audio(decode=False))
    torch.manual_seed(0)
    stage1, stage2 = MintForPreTraining(tiny.mint_config()).eval(), MintForConditionalGeneration(tiny.mint_config())
    results = run.classification_results(stage1, stage2.eval(), tiny.processor(), test, progress=False)
    assert list(results) == list(TASKS)
    for name, result in results.items():
        assert result["vocabulary_ranking"] == pytest.approx(1 / 3), name
        assert result["vocabulary_ranking_length_normalised"] == pytest.approx(2 / 3), name
        assert 0 <= result["embedding_zero_shot"] <= 1 and (result["chance"], result["clips"]) == (0.5, 3)


def test_retrieval_in_pool_counts_as_mint_eval_retrieval():
    """Each distinct caption of the pool is a query, every clip with it relevant, as in `evaluate_retrieval`."""
    from mint.evaluation.retrieval import evaluate_retrieval

    captions = ["a dog barks", "a cat meows", "a dog barks", "rain falls", "a cat meows", "a dog barks"]
    test = Dataset.from_dict({"audio": [_wav(0.6, seed) for seed in range(6)], "caption": captions}).cast_column(
        "audio", Audio(decode=False))
    torch.manual_seed(0)
    model, processor = MintForPreTraining(tiny.mint_config()).eval(), tiny.processor()
    with torch.no_grad():
        metrics, similarity, pool = run.retrieval_in_pool(model, processor, test, pool_size=5, seed=1)
    assert len(pool) == 5 and similarity.shape == (len(set(pool["caption"])), 5)
    expected = evaluate_retrieval(model, processor, pool, ["caption"], progress=False)
    assert expected["num_queries"] == similarity.shape[0]
    assert metrics == pytest.approx(expected["text_to_audio"])


def foreign_file(folder):
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")


def a_dataset(folder):
    Dataset.from_dict({"x": [1]}).save_to_disk(str(folder))


def a_corpus_with_an_empty_marker(folder):
    a_dataset(folder)
    (folder / CORPUS_MARKER).write_text("")


def a_file(folder):
    folder.write_text("not a folder")


# (what the output holds, words the message must hold)
CORPUS_OUTPUTS = [
    (foreign_file, ["holds 'notes.txt', not a dataset folder", "never replaces such a folder"]),
    (a_dataset, ["holds a dataset folder", "overwrite=True (--overwrite)"]),
    (a_corpus_with_an_empty_marker, ["holds a dataset folder", "--overwrite"]),
    (a_file, ["exists and is not a folder"]),
]


@pytest.mark.parametrize("holds, words", CORPUS_OUTPUTS)
def test_mint_corpus_refuses_an_output_that_holds_something_else(tmp_path, capsys, holds, words):
    holds(tmp_path / "out")
    capsys.readouterr()
    before = sorted(p.name for p in (tmp_path / "out").iterdir()) if (tmp_path / "out").is_dir() else None
    assert mint.cli.main(["corpus", "--output", str(tmp_path / "out"), "--quiet"]) == 1
    error = capsys.readouterr().err
    assert error.startswith("error: ") and all(word in error for word in words), error
    assert (sorted(p.name for p in (tmp_path / "out").iterdir()) if before is not None else None) == before


def demo_only(folder):
    (folder / "stage1").mkdir(parents=True)
    (folder / RESULTS_FILE).write_text("{}")
    (folder / ".corpus.partial-x1").mkdir()  # a corpus being written when the last run was stopped


# (what the output holds, words the message must hold; None: the demo's folder)
DEMO_OUTPUTS = [
    (foreign_file, ["holds 'notes.txt', which the demo did not write", "--overwrite"]),
    (a_dataset, ["'dataset_info.json'", "which the demo did not write"]),
    (a_file, ["exists and is not a folder"]),
    (demo_only, None),
]


@pytest.mark.parametrize("holds, words", DEMO_OUTPUTS)
def test_the_demo_and_its_probe_write_only_into_a_folder_of_their_own(tmp_path, capsys, holds, words):
    holds(tmp_path / "out")
    capsys.readouterr()
    if words is None:
        report.claim_demo_folder(tmp_path / "out")
        assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [".corpus.partial-x1", RESULTS_FILE, "stage1"]
        return
    for argv in (["demo"], ["demo", "--probe-encoder"]):
        assert mint.cli.main([*argv, "--output", str(tmp_path / "out"), "--quiet"]) == 1
        error = capsys.readouterr().err
        assert error.startswith("error: ") and all(word in error for word in words), error


def test_overwrite_replaces_the_demos_folder(tmp_path):
    foreign_file(tmp_path / "out")
    report.claim_demo_folder(tmp_path / "out", overwrite=True)
    assert list((tmp_path / "out").iterdir()) == []
    with pytest.raises(ValueError, match="reuse_stage1 .* which overwrite"):
        run.run_demo(str(tmp_path / "out"), reuse_stage1=True, overwrite=True)
