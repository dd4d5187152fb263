"""The benchmark scripts run at --tiny size on CPU (a smoke test: no speed is asserted, only that the figures exist
and that the package's fast paths give the same outputs as the slow ones)."""

import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(script, tmp_path, *args):
    output = tmp_path / f"{script}.json"
    result = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", script), "--tiny", "--output",
                             str(output), *args], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(output.read_text()), result.stdout


def test_model_benchmark_tiny(tmp_path):
    results, stdout = run("benchmark_mint.py", tmp_path, "--cpu")
    for key in ("baseline_train", "mint_train", "mint_train_cached", "baseline_caption", "mint_caption",
                "mint_rank10", "loop_rank10", "mint_stage1_train", "stock_stage1_train"):
        assert results[key]["per_s"] > 0 and results[key]["ms"] > 0, key
    assert results["mint_train"]["tflop"] > 0 and set(results["ratios"]) == {
        "train_audio_in_loop", "train_from_cache", "captioning", "rank10_vs_loop", "stage1_vs_stock"}
    assert results["caption_batched_equals_unbatched"] is True
    assert results["rank_scores_max_abs_diff"] < 1e-4  # one pass per clip scores like the per-candidate loop
    assert "| stage-2 step, audio in loop |" in stdout


def test_data_path_benchmark_tiny(tmp_path):
    results, stdout = run("benchmark_data.py", tmp_path)
    assert set(results["seconds_per_clip_one_core"]) == {"decode", "mono_resample", "features"}
    assert results["clips_per_s_one_core"] > 0 and results["cores_for_target"] >= 1
    assert set(results["dataloader_clips_per_s"]) == {"0", "1"}
    assert "needs about" in stdout
