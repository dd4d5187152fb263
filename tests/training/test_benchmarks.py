"""The benchmark scripts run at --tiny size on CPU (a smoke test: no speed is asserted, only that the figures exist,
that a training step's parts add up, and that the package's fast paths and the levers give the same outputs as the
slow ones)."""

import json
import os
import subprocess
import sys

import pytest
from tests.utils import ROOT


pytestmark = pytest.mark.slow


PARTS = ("encoder", "qformer_forward", "llm_forward", "llm_backward", "qformer_backward", "optimizer", "other")
TRAINING = ("baseline_train", "mint_train", "mint_train_cached", "mint_train_cached+length_groups",
            "mint_train_cached+length_groups+bridge_autocast", "mint_train+length_groups+bridge_autocast",
            "stock_stage1_train", "mint_stage1_train")


def run(script, tmp_path, *args):
    output = tmp_path / f"{script}.json"
    result = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", script), "--tiny", "--output",
                             str(output), *args], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(output.read_text()), result.stdout


@pytest.fixture(scope="module")
def model_benchmark(tmp_path_factory):
    return run("benchmark_mint.py", tmp_path_factory.mktemp("benchmark"), "--cpu", "--repeats", "1",
               "--caption-tokens", "4", "--length-groups", "2", "--bridge-autocast", "--static-cache")


def test_model_benchmark_tiny_figures(model_benchmark):
    results, stdout = model_benchmark
    for key in (*TRAINING, "baseline_caption", "mint_caption", "mint_caption_static_cache", "mint_rank10",
                "loop_rank10"):
        assert results[key]["per_s"] > 0 and results[key]["ms"] > 0 and results[key]["peak_gib"] > 0, key
    assert results["mint_train"]["tflop"] > 0 and results["mint_train"]["mfu"] > 0
    assert set(results["ratios"]) == {
        "train_audio_in_loop", "train_from_cache", "train_audio_in_loop_levers", "train_from_cache_levers",
        "captioning", "captioning_static_cache", "rank10_vs_loop", "stage1_vs_stock", "train_peak_memory_vs_baseline"}
    assert results["caption_batched_equals_unbatched"] is True and results["caption_token_agreement"] == 1.0
    assert results["static_cache_equals_default"] is True and "errors" not in results
    assert results["rank_scores_max_abs_diff"] < 1e-4  # one pass per clip scores like the per-candidate loop
    assert "| stage-2 step, audio in loop |" in stdout and "| mint_train_cached |" in stdout


@pytest.mark.parametrize("key", TRAINING)
def test_training_step_parts_add_up(model_benchmark, key):
    entry = model_benchmark[0][key]
    parts, flops = entry["parts_ms"], entry["parts_tflop"]
    assert set(parts) == set(PARTS) and min(parts.values()) >= 0
    # The parts tile the step they were marked on: between them, its wall time but for the moments before the first
    # mark and after the last. (The median step timed without marks is in `ms`; on a shared CPU the two steps can
    # differ several-fold, so only the marked one is compared.)
    assert entry["parts_total_ms"] == pytest.approx(sum(parts.values()))
    assert entry["parts_total_ms"] == pytest.approx(entry["parts_step_ms"], rel=0.1)
    assert sum(flops[part] for part in PARTS) == pytest.approx(flops["total"], rel=1e-9)  # every FLOP in a part
    assert flops["optimizer"] == flops["other"] == 0
    assert min(parts[p] for p in ("qformer_forward", "qformer_backward", "optimizer")) > 0
    has_llm = "stage1" not in key
    assert (min(parts["llm_forward"], parts["llm_backward"]) > 0) == has_llm
    assert (min(flops["llm_forward"], flops["llm_backward"]) > 0) == has_llm
    from_cache = key.startswith("mint_train_cached")
    assert (parts["encoder"] > 0) != from_cache and (flops["encoder"] > 0) != from_cache
    assert entry["parts_mfu"]["llm_forward"] == (pytest.approx(flops["llm_forward"] / (parts["llm_forward"] / 1000)
                                                               / 790.0) if has_llm else None)


def test_same_parts_count_the_same_flops_and_levers_keep_the_loss(model_benchmark):
    results = model_benchmark[0]
    base, mint, cached = (results[k]["parts_tflop"] for k in ("baseline_train", "mint_train", "mint_train_cached"))
    for part in ("encoder", "llm_forward", "llm_backward"):  # the same stock parts, same inputs
        assert mint[part] == pytest.approx(base[part], rel=1e-9), part
    # MINT's cross-attention folds its key and value projections into the queries: fewer multiply-adds for the
    # same outputs (tests/model/test_audio_index.py)
    assert mint["qformer_forward"] < base["qformer_forward"]
    assert cached["llm_forward"] == mint["llm_forward"]
    grouped = results["mint_train_cached+length_groups"]
    assert grouped["parts_tflop"]["llm_forward"] < 0.95 * cached["llm_forward"]  # padding kept out of the LLM
    assert grouped["loss_rel_diff"] < 1e-5
    assert results["mint_train_cached+length_groups+bridge_autocast"]["loss_rel_diff"] < 1e-2
    assert results["mint_train+length_groups+bridge_autocast"]["levers"] == ["length_groups", "bridge_autocast"]


def test_data_path_benchmark_tiny(tmp_path):
    results, stdout = run("benchmark_data.py", tmp_path)
    assert set(results["seconds_per_clip_one_core"]) == {"decode", "mono_resample", "features"}
    assert results["clips_per_s_one_core"] > 0 and results["cores_for_target"] >= 1
    assert set(results["dataloader_clips_per_s"]) == {"0", "1"}
    assert "needs about" in stdout


def test_cross_attention_benchmark_tiny(tmp_path):
    """Both attentions time the same step: the same batches give the same loss, within bf16 autocast's rounding."""
    results, stdout = run("benchmark_cross_attention.py", tmp_path)
    assert set(results["median_step_s"]) == {"instructblip", "mint"}
    assert all(len(times) == 1 and times[0] > 0 for times in results["median_step_s"].values())
    losses = results["last_loss"]
    assert abs(losses["mint"] - losses["instructblip"]) <= 2e-3 * abs(losses["instructblip"])
    assert "mint cross-attention: stage-2 step" in stdout


@pytest.mark.parametrize("args, words", [
    (["--steps", "2"], ["--steps must be at least 3"]),
    (["--frames", "0"], ["--frames must be at least 1"]),
    (["--batch", "0"], ["--batch must be at least 1"]),
    (["--threads", "0"], ["--threads must be at least 1"]),
    (["--threads", "100000"], ["--threads must be at most 1024"]),
    (["--text-tokens", "0"], ["--text-tokens must be at least 1"]),
    (["--label-tokens", "-1"], ["--label-tokens must be at least 1"]),
    (["--batch", "-5"], ["--batch must be at least 1"]),
    (["--rounds", "0"], ["--rounds must be at least 1"]),
    (["--model", "no-such-folder"], ["--model 'no-such-folder' is not a MINT folder"]),
    (["--model", "x", "--tiny"], ["give --model FOLDER or --tiny"]),
])
def test_cross_attention_benchmark_refuses_bad_arguments(args, words):
    script = [sys.executable, os.path.join(ROOT, "benchmarks", "benchmark_cross_attention.py"),
              *(args if "--model" in args else ["--tiny", *args])]
    result = subprocess.run(script, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2
    for word in words:
        assert word in result.stderr
