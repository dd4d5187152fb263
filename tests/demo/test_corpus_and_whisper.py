"""The built-in corpus (held-out splits, labels, determinism) and the real Whisper tiny.en conversion."""

import io
import os
import shutil

import numpy as np
import pytest
import soundfile
import torch

import mint.cli
from mint.demo.corpus import (
    EVENTS,
    HELD_OUT_SOUNDFONT,
    INSTRUMENT_FAMILIES,
    LOUDNESS,
    WORDS,
    CorpusSettings,
    build_corpus,
    rms,
)
from mint.demo.whisper import convert_whisper_ctranslate2, default_model_dir, read_ctranslate2


pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None and not os.environ.get("CI"),
                                reason="espeak-ng is not installed (install.sh installs it, so CI never skips)")


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("corpus")
    build_corpus(folder, progress=False)
    return folder


@pytest.fixture(scope="module")
def corpus(corpus_dir):
    return build_corpus(corpus_dir, progress=False)  # the cached corpus


@pytest.mark.slow
def test_mint_corpus_prints_the_size_of_each_split(corpus_dir, corpus, capsys):
    assert mint.cli.main(["corpus", "--output", str(corpus_dir), "--quiet"]) == 0
    assert capsys.readouterr().out == f"{{'train': {len(corpus['train'])}, 'test': {len(corpus['test'])}}}\n"


def test_corpus_size_labels_and_captions(corpus):
    train, test = corpus["train"], corpus["test"]
    assert len(train) + len(test) >= 2000
    for row in train.select(range(300)):
        if row["source"] == "instrument":
            assert row["instrument_family"] in INSTRUMENT_FAMILIES
            assert row["instrument_family"] in row["caption"] and row["register"] in row["caption"]
            assert row["loudness"] in row["caption"]
        elif row["source"] == "speech":
            assert row["word"] in WORDS and row["caption"].endswith(f"the word {row['word']}")
        else:
            assert row["caption"] == EVENTS[row["event"]]
    audio, rate = soundfile.read(io.BytesIO(train[0]["audio"]["bytes"]))
    assert rate == 16000 and 0.3 < len(audio) / rate < 3.0 and np.abs(audio).max() > 0.01


def test_loudness_is_the_level_one_hears(corpus):
    levels = {name: [] for name in LOUDNESS}
    for split in ("train", "test"):
        notes = corpus[split].filter(lambda source: source == "instrument", input_columns="source")
        for row in notes:
            audio, _ = soundfile.read(io.BytesIO(row["audio"]["bytes"]))
            levels[row["loudness"]].append(rms(audio))
    soft, moderate, loud = (np.array(levels[name]) for name in ("softly", "moderately", "loudly"))
    # The classes do not overlap, whatever the program's own gain; no note is silent (a program without a sample at
    # a pitch is skipped).
    assert soft.max() < moderate.min() and moderate.max() < loud.min()
    assert soft.min() > LOUDNESS["softly"][1] * 10 ** (-2.1 / 20) and np.median(loud) / np.median(soft) > 9


def test_test_split_holds_out_whole_values(corpus):
    train, test = corpus["train"], corpus["test"]
    held_out = {v for v in test["voice"] if v is not None}
    assert held_out and not held_out & {v for v in train["voice"] if v is not None}
    # Programs are held out per soundfont; the held-out soundfont is never heard in training.
    pairs = {split: {(f, p) for f, p in zip(corpus[split]["soundfont"], corpus[split]["program"]) if p is not None}
             for split in ("train", "test")}
    assert pairs["test"] and not pairs["test"] & pairs["train"]
    assert HELD_OUT_SOUNDFONT in test["soundfont"] and HELD_OUT_SOUNDFONT not in train["soundfont"]
    # Every label value of the test split is still seen in training (only the source varies).
    for column in ("instrument_family", "word", "event"):
        assert {v for v in test[column] if v} <= {v for v in train[column] if v}


@pytest.mark.slow
def test_corpus_is_deterministic_and_cached(corpus, tmp_path):
    again = build_corpus(tmp_path / "again", progress=False)
    assert again["train"]["caption"] == corpus["train"]["caption"]
    assert again["train"][5]["audio"]["bytes"] == corpus["train"][5]["audio"]["bytes"]
    assert build_corpus(tmp_path / "again", progress=False)["test"]["caption"] == again["test"]["caption"]
    other = build_corpus(tmp_path / "other", CorpusSettings(seed=1), progress=False)
    assert other["train"]["caption"] != corpus["train"]["caption"]  # another seed, another order


def test_whisper_conversion_matches_ctranslate2_on_real_speech(tmp_path, corpus):
    import ctranslate2  # the reference runtime, a dev extra
    from transformers import WhisperFeatureExtractor
    from transformers.models.whisper.modeling_whisper import WhisperEncoder

    spec, variables = read_ctranslate2(f"{default_model_dir()}/model.bin")
    assert spec == "WhisperSpec" and variables["decoder/projection/weight"] is variables["decoder/embeddings/weight"]
    convert_whisper_ctranslate2(output_dir=tmp_path / "whisper")
    encoder = WhisperEncoder.from_pretrained(tmp_path / "whisper").eval()
    extractor = WhisperFeatureExtractor.from_pretrained(tmp_path / "whisper")
    speech = [r for r in corpus["test"].select(range(40)) if r["source"] == "speech"][:3]
    clips = [soundfile.read(io.BytesIO(r["audio"]["bytes"]), dtype="float32")[0] for r in speech]
    features = extractor(clips, sampling_rate=16000, return_tensors="np").input_features
    with torch.no_grad():
        ours = encoder(torch.from_numpy(features)).last_hidden_state.numpy()
    reference = ctranslate2.models.Whisper(default_model_dir(), device="cpu", compute_type="float32")
    theirs = np.array(reference.encode(ctranslate2.StorageView.from_array(features), to_cpu=True))
    # The weights are float16 upcast; both runtimes compute in float32.
    assert np.linalg.norm(ours - theirs) / np.linalg.norm(theirs) < 1e-4
    assert np.abs(ours - theirs).max() < 1e-2


def test_short_window_encoder_keeps_the_first_positions(tmp_path):
    from transformers.models.whisper.modeling_whisper import WhisperEncoder

    assert mint.cli.main(["convert-whisper", "--output", str(tmp_path / "short"), "--max-source-positions", "150"]) == 0
    encoder = WhisperEncoder.from_pretrained(tmp_path / "short")
    _, variables = read_ctranslate2(f"{default_model_dir()}/model.bin")
    table = torch.from_numpy(variables["encoder/position_encodings/encodings"].astype(np.float32))
    assert torch.equal(encoder.embed_positions.weight, table[:150])
    with pytest.raises(ValueError, match="max_source_positions"):
        convert_whisper_ctranslate2(output_dir=tmp_path / "bad", max_source_positions=2000)


def test_the_assembly_is_the_same_whether_the_encoder_is_converted_or_found(tmp_path, corpus):
    # `mint ablate` reuses the demo's folder, where the encoder is found; the demo converts it first. Converting builds
    # a randomly initialised WhisperEncoder, so the new parts must be drawn after it to be the same in both.
    from safetensors.torch import load_file

    from mint.demo.run import assemble

    converted = assemble(str(tmp_path / "fresh"), corpus)
    shutil.copytree(tmp_path / "fresh" / "whisper-tiny-en-encoder", tmp_path / "found" / "whisper-tiny-en-encoder")
    torch.rand(7)  # whatever the process drew before
    found = assemble(str(tmp_path / "found"), corpus)
    other_seed = assemble(str(tmp_path / "other"), corpus, seed=1)
    weights = [load_file(os.path.join(folder, "model.safetensors")) for folder in (converted, found, other_seed)]
    assert weights[0].keys() == weights[1].keys()
    assert all(torch.equal(weights[0][name], weights[1][name]) for name in weights[0])
    assert not torch.equal(weights[0]["query_tokens"], weights[2]["query_tokens"])


def test_the_demo_assembles_cross_attention_in_every_layer_and_bert_in_the_rest(tmp_path, corpus):
    from safetensors.torch import load_file

    from mint.demo.run import CROSS_ATTENTION_FREQUENCY, assemble, bert_dir

    every = load_file(os.path.join(assemble(str(tmp_path / "every"), corpus), "model.safetensors"))
    second = load_file(os.path.join(assemble(str(tmp_path / "second"), corpus, cross_attention_frequency=2),
                                    "model.safetensors"))
    bert = load_file(os.path.join(bert_dir(), "model.safetensors"))

    def layers(weights):
        return sorted({int(name.split(".")[3]) for name in weights if ".crossattention." in name})

    assert CROSS_ATTENTION_FREQUENCY == 1 and layers(every) == list(range(6)) and layers(second) == [0, 2, 4]
    # The BERT-initialised self-attention is BERT's in both; BERT has no cross-attention to give.
    name = "qformer.encoder.layer.5.attention.attention.query.weight"
    source = next(key for key in bert if key.endswith("encoder.layer.5.attention.self.query.weight"))
    assert torch.equal(every[name], bert[source]) and torch.equal(second[name], bert[source])
    assert not any("crossattention" in key for key in bert)
