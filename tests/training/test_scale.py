"""Datasets larger than memory: streamed recipes, the feature cache in shards (several processes or machines, resumed,
merged), fp16 refused for T5, and the paper-size check and scale benchmark at smoke size."""

import itertools
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile
import torch
from datasets import Audio, Dataset, IterableDataset, load_from_disk
from transformers import set_seed

import mint.cli
from audio_encoder_mint import ENCODER_FEATURES_KEY as FEATURES
from mint.data.cache import SHARD_COMPLETE_MARKER, cache_audio_features, feature_cache_shards_dir, merge_feature_cache
from mint.data.collator import MintDataCollator
from mint.data.examples import to_caption_pairs
from mint.training.recipe import check_llm_precision
from mint.training.train_data import build_train_dataset
from mint.training.trainer import load_model, train, training_arguments
from modeling_mint import MintForConditionalGeneration, MintForPreTraining
from tests.utils import ROOT, tiny
from tests.utils.audio import clips
from tests.utils.training import CrashAt, LossRecorder, recipe


CAPTIONS = ["a dog barks", "a cat meows", "a piano plays a low note", "rain on a roof", "a flute plays softly",
            "a drum hits loudly"]


@pytest.fixture(scope="module")
def saved_dataset(tmp_path_factory):
    """Six clips with captions and labels, saved with `save_to_disk` (an undecoded Audio column of paths)."""
    folder = tmp_path_factory.mktemp("clips")
    paths = []
    for i, clip in enumerate(clips((16000, 12000, 9000, 14000, 10000, 11000))):
        paths.append(str(folder / f"clip{i}.wav"))
        soundfile.write(paths[-1], clip, 16000)
    data = Dataset.from_dict({"audio": paths, "caption": CAPTIONS, "label": ["dog", "cat", "piano", "rain", "flute",
                                                                            "drum"]})
    data.cast_column("audio", Audio(decode=False)).save_to_disk(str(folder / "saved"))
    return str(folder / "saved")


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """Tiny stage-1 and stage-2 MINT folders without dropout in Bridge-Net, ALM's negatives the hardest ones."""
    config = tiny.mint_config(qformer_config=tiny.qformer_config(hidden_dropout_prob=0.0,
                                                                 attention_probs_dropout_prob=0.0),
                              alm_negative_sampling="hardest")
    made = {}
    for stage, model_class in ((1, MintForPreTraining), (2, MintForConditionalGeneration)):
        made[stage] = str(tmp_path_factory.mktemp(f"stage{stage}"))
        torch.manual_seed(0)
        model_class(config).save_pretrained(made[stage])
        tiny.processor().save_pretrained(made[stage])
    return made


# ---- streamed recipes -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("stage", [1, 2])
def test_streamed_recipe_trains_on_the_streamed_batches(stage, saved_dataset, folders, tmp_path):
    spec = {"path": saved_dataset, "streaming": True, **({"template": "NSynth"} if stage == 2 else {})}
    run = recipe(folders[stage], tmp_path / "out", stage=stage, datasets=[spec], max_steps=2)
    stream = build_train_dataset(run)
    assert isinstance(stream, IterableDataset)
    first = list(itertools.islice(stream, 2))
    assert {e["caption"] if stage == 1 else e["target"] for e in first} <= set(CAPTIONS) | {
        "dog", "cat", "piano", "rain", "flute", "drum"}
    # The stream repeats: a run longer than the dataset reads it again.
    assert len(list(itertools.islice(stream, 15))) == 15
    set_seed(run.seed)
    batch = MintDataCollator(tiny.processor(), stage=stage)(first)
    expected = load_model(run).train()(**batch).loss.item()
    recorder = LossRecorder()
    trainer = train(run, callbacks=[recorder])
    assert trainer.state.global_step == 2
    # The Trainer's first step ran on the stream's first batch.
    assert recorder.logs[0]["loss"] == pytest.approx(expected, abs=1e-4)


def test_streamed_run_resumes_with_exactly_the_uninterrupted_losses(saved_dataset, folders, tmp_path):
    common = dict(datasets=[{"path": saved_dataset, "streaming": True}], max_steps=6, save_steps=2)
    full = LossRecorder()
    train(recipe(folders[1], tmp_path / "full", **common), callbacks=[full])
    with pytest.raises(KeyboardInterrupt):
        train(recipe(folders[1], tmp_path / "cut", **common), callbacks=[CrashAt(5)])
    resumed = LossRecorder()
    train(recipe(folders[1], tmp_path / "cut", resume=True, **common), callbacks=[resumed])
    assert {log["step"]: log["loss"] for log in resumed.logs} == {
        log["step"]: log["loss"] for log in full.logs if log["step"] > 4}


def test_streamed_mixture_and_its_clear_errors(saved_dataset, folders, tmp_path):
    entries = [{"path": saved_dataset, "template": "NSynth", "streaming": True},
               {"path": saved_dataset, "template": "WavCaps"}]  # a map-style entry joins the stream
    run = recipe(folders[2], tmp_path / "out", stage=2, datasets=entries, max_steps=2)
    mixed = build_train_dataset(run)
    assert isinstance(mixed, IterableDataset)
    prompts = {e["prompt"] for e in itertools.islice(mixed, 24)}
    assert prompts == {"The most prominent instrument in this music is", "Generate audio caption:"}
    with pytest.raises(ValueError, match="set max_steps"):
        build_train_dataset(recipe(folders[2], tmp_path / "o", stage=2, datasets=entries, max_steps=-1))
    with pytest.raises(ValueError, match="group_by_length sorts a dataset by length"):
        build_train_dataset(recipe(folders[2], tmp_path / "o", stage=2, datasets=entries, group_by_length=True))


def test_streamed_feature_cache_reads_numpy_features(saved_dataset, folders, tmp_path):
    model = MintForPreTraining.from_pretrained(folders[1])
    pairs = to_caption_pairs(load_from_disk(saved_dataset))
    cache_audio_features(model, tiny.processor(), pairs, tmp_path / "cache", batch_size=3, progress=False)
    run = recipe(folders[1], tmp_path / "out", datasets=[{"path": str(tmp_path / "cache"), "streaming": True}])
    example = next(iter(build_train_dataset(run)))
    assert isinstance(example[FEATURES], np.ndarray) and example[FEATURES].shape[1] == 32
    assert example[FEATURES].shape[0] == example["audio_length"] and example["caption"] in CAPTIONS


# ---- the feature cache in shards ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def encoder(folders):
    return MintForPreTraining.from_pretrained(folders[1]).eval()


@pytest.fixture(scope="module")
def pairs(saved_dataset):
    return to_caption_pairs(load_from_disk(saved_dataset))


@pytest.fixture(scope="module")
def one_go(encoder, pairs, tmp_path_factory):
    """The cache computed in one shard, by one process."""
    return cache_audio_features(encoder, tiny.processor(), pairs, tmp_path_factory.mktemp("one") / "cache",
                                batch_size=3, progress=False)


def assert_same_cache(a, b, exact=True):
    assert a.column_names == b.column_names and a.num_rows == b.num_rows
    assert a["caption"] == b["caption"] and list(a["audio_length"]) == list(b["audio_length"])
    for x, y in zip(a[FEATURES], b[FEATURES]):
        assert np.array_equal(x, y) if exact else np.allclose(x, y, atol=1e-5)


def test_cache_split_over_two_machines_then_merged_equals_one_go(encoder, pairs, one_go, tmp_path):
    output = tmp_path / "cache"
    for index in (1, 0):  # two machines, each its shard, in any order
        assert cache_audio_features(encoder, tiny.processor(), pairs, output, batch_size=3, num_shards=2,
                                    shard_indices=[index], progress=False) is None
    shards = feature_cache_shards_dir(output)
    assert sorted(os.listdir(shards)) == ["shard-00000-of-00002", "shard-00001-of-00002"]
    merged = merge_feature_cache(output, num_shards=2, progress=False)
    assert_same_cache(merged, one_go)
    assert not os.path.exists(shards)  # merged, then removed
    assert sorted(f for f in os.listdir(output) if f.endswith(".arrow")) == ["data-00000-of-00002.arrow",
                                                                              "data-00001-of-00002.arrow"]


def test_merge_names_the_unfinished_shards(encoder, pairs, tmp_path):
    cache_audio_features(encoder, tiny.processor(), pairs, tmp_path / "c", batch_size=3, num_shards=3,
                         shard_indices=[1], progress=False)
    with pytest.raises(ValueError, match=r"Shards \[0, 2\] of 3 .* are not finished"):
        merge_feature_cache(tmp_path / "c", progress=False)
    with pytest.raises(ValueError, match="No feature-cache shards in"):
        merge_feature_cache(tmp_path / "elsewhere", progress=False)
    with pytest.raises(ValueError, match="must lie in 0..2"):
        cache_audio_features(encoder, tiny.processor(), pairs, tmp_path / "c", num_shards=3, shard_indices=[3])


def test_a_killed_cache_run_resumes_from_its_unfinished_shards(encoder, pairs, one_go, tmp_path, monkeypatch):
    output = tmp_path / "cache"
    cache_audio_features(encoder, tiny.processor(), pairs, output, batch_size=1, num_shards=3, shard_indices=[0],
                         progress=False)
    done = os.path.join(feature_cache_shards_dir(output), "shard-00000-of-00003")
    written = {name: os.stat(os.path.join(done, name)).st_mtime_ns for name in os.listdir(done)}
    cut = os.path.join(feature_cache_shards_dir(output), "shard-00001-of-00003")
    os.makedirs(cut)
    with open(os.path.join(cut, "features.arrow"), "wb") as f:  # a shard the killed run was writing
        f.write(b"truncated")
    calls = []
    run_encoder = encoder.get_audio_encoder_features
    monkeypatch.setattr(encoder, "get_audio_encoder_features", lambda *a, **k: calls.append(1) or run_encoder(*a, **k))
    cache_audio_features(encoder, tiny.processor(), pairs, output, batch_size=1, num_shards=3,
                         shard_indices=[0, 1, 2], progress=False)
    assert len(calls) == 4  # shards 1 and 2, two clips each, one per batch: shard 0 was not recomputed
    assert written == {name: os.stat(os.path.join(done, name)).st_mtime_ns for name in os.listdir(done)}
    assert os.path.isfile(os.path.join(cut, SHARD_COMPLETE_MARKER))
    resumed = merge_feature_cache(output, progress=False)
    assert_same_cache(resumed, one_go, exact=False)  # batches of 1 here, of 3 there: float rounding only


def test_shard_of_another_cache_is_not_reused(encoder, pairs, tmp_path):
    cache_audio_features(encoder, tiny.processor(), pairs, tmp_path / "c", num_shards=2, shard_indices=[0],
                         progress=False)
    with pytest.raises(ValueError, match="belongs to another cache"):
        cache_audio_features(encoder, tiny.processor(), pairs, tmp_path / "c", num_shards=2, shard_indices=[0],
                             dtype="float16", progress=False)


def test_cache_in_two_processes_equals_one_process(encoder, pairs, one_go, tmp_path):
    cached = cache_audio_features(encoder, tiny.processor(), pairs, tmp_path / "cache", batch_size=3, num_proc=2,
                                  progress=False)
    assert cached.num_rows == 6
    assert_same_cache(cached, one_go, exact=False)  # fewer threads per process: float rounding only


def test_cache_features_command_shards_and_merge(saved_dataset, folders, one_go, tmp_path):
    pairs_folder = str(tmp_path / "pairs")
    to_caption_pairs(load_from_disk(saved_dataset)).save_to_disk(pairs_folder)
    common = ["cache-features", "--model", folders[1], "--dataset", pairs_folder, "--output", str(tmp_path / "c"),
              "--batch-size", "3", "--num-shards", "2", "--quiet"]
    assert mint.cli.main(common + ["--shard-index", "0"]) == 0
    marker = os.path.join(feature_cache_shards_dir(tmp_path / "c"), "shard-00000-of-00002", SHARD_COMPLETE_MARKER)
    with open(marker) as f:
        assert json.load(f)["num_rows"] == 3
    assert mint.cli.main(common + ["--shard-index", "1"]) == 0
    assert mint.cli.main(["cache-features", "--merge", "--output", str(tmp_path / "c"), "--max-shard-size", "10MB",
                          "--quiet"]) == 0
    assert_same_cache(load_from_disk(str(tmp_path / "c")).with_format("numpy", columns=[FEATURES],
                                                                      output_all_columns=True), one_go)


# ---- precision ------------------------------------------------------------------------------------------------------

def test_fp16_is_refused_for_a_t5_llm(folders, tmp_path):
    with pytest.raises(ValueError, match=r"T5 overflows in fp16.*Use bf16"):
        training_arguments(recipe(folders[2], tmp_path, stage=2, training_args={"fp16": True}))
    with pytest.raises(ValueError, match="fp16 is refused with a t5 LLM"):
        check_llm_precision("t5", "fp16")
    for llm, precision in (("t5", "bf16"), ("t5", "fp32"), ("opt", "fp16")):
        assert check_llm_precision(llm, precision) is None
    check = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "paper_size_check.py"), "--tiny",
                            "--precision", "fp16"], capture_output=True, text=True, timeout=300)
    assert check.returncode != 0 and "ValueError: fp16 is refused with a t5 LLM: T5 overflows in fp16" in check.stderr


def run_benchmark(name: str, output, *args: str) -> tuple[subprocess.CompletedProcess, dict]:
    """Runs `benchmarks/<name> --tiny <args> --output <output>`; returns the process and the JSON it wrote."""
    script = os.path.join(ROOT, "benchmarks", name)
    result = subprocess.run([sys.executable, script, "--tiny", *args, "--output", str(output)], capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return result, json.loads(output.read_text())


def test_paper_size_check_tiny(tmp_path):
    result, figures = run_benchmark("paper_size_check.py", tmp_path / "paper.json", "--seconds", "1",
                                    "--new-tokens", "5")
    for stage, key in ((1, "train_step"), (2, "train_step"), (2, "generation")):
        entry = figures[f"stage{stage}"][key]
        assert entry["gflop_per_sample"] > 0 and entry["peak_rss_gib"] > 0 and entry["seconds"] > 0
    # The frozen parts are bf16 (2 bytes a weight), Bridge-Net fp32; gradients and AdamW hold 3 x the trainable bytes.
    stage2 = figures["stage2"]
    assert stage2["gradients_and_adamw"] == pytest.approx(3 * stage2["trainable_weights"])
    assert "| stage-2 training step |" in result.stdout


@pytest.mark.slow
def test_scale_benchmark_tiny(tmp_path):
    result, figures = run_benchmark("benchmark_scale.py", tmp_path / "scale.json", "--clips", "60", "--num-shards", "2")
    assert figures["cached_clips"] == figures["streamed_clips"] == 60
    for phase in ("write", "prepare", "cache", "stream"):
        assert figures[phase]["clips_per_s"] > 0, phase
        assert 0 < figures[phase]["peak_anonymous_gib"] <= figures[phase]["peak_rss_gib"], phase
    assert figures["cache"]["worker_peak_rss_gib"] > 0  # two encoder processes
    assert 1.0 < figures["cache_disk_over_raw"] < 1.2  # Arrow's offsets and metadata over the float16 values
    assert "| cache |" in result.stdout
