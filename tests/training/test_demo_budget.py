"""`benchmarks/benchmark_demo_budget.py` on a tiny demo folder: the demo's step counts, FLOPs that add up, a budget
equal to a hand computation, and its refusals of bad arguments before anything runs."""

import json
import math
import os
import shutil
import sys

import pytest
import torch
from datasets import Array2D, Dataset, Features, Value

from audio_encoder_mint import ENCODER_FEATURES_KEY
from mint.data.templates import INSTRUCTION_TEMPLATES
from modeling_mint import MintForConditionalGeneration, MintForPreTraining
from tests.utils import ROOT, tiny


sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
import benchmark_demo_budget  # noqa: E402


INSTRUMENTS, WORDS = 30, 12  # clips


@pytest.fixture(autouse=True)
def templates_left_as_found():
    """The budget reads the demo's stage-2 examples, which register the demo's instruction templates in the package's
    registry: they are removed after each test, as other tests read the registry."""
    saved = dict(INSTRUCTION_TEMPLATES)
    yield
    INSTRUCTION_TEMPLATES.clear()
    INSTRUCTION_TEMPLATES.update(saved)


@pytest.fixture(scope="module")
def demo_folder(tmp_path_factory):
    """A folder shaped as `mint demo` leaves it: a training feature cache of instrument and speech clips, and tiny
    stage-1 and stage-2 models with their processor."""
    folder = tmp_path_factory.mktemp("demo")
    config, processor = tiny.mint_config(), tiny.processor()
    width = config.audio_feature_size
    rows = []
    for index in range(INSTRUMENTS + WORDS):
        instrument = index < INSTRUMENTS
        frames = 4 + index % 5
        rows.append({"caption": "a piano plays a high note softly" if instrument else "this is a sound of dog",
                     "instrument_family": "piano" if instrument else None,
                     "register": "high" if instrument else None, "loudness": "softly" if instrument else None,
                     "word": None if instrument else "seven", "event": None,
                     ENCODER_FEATURES_KEY: [[(index + f + c) / 100 for c in range(width)] for f in range(frames)]})
    features = Features({**{name: Value("string") for name in ("caption", "instrument_family", "register",
                                                               "loudness", "word", "event")},
                         ENCODER_FEATURES_KEY: Array2D(shape=(None, width), dtype="float32")})
    Dataset.from_list(rows, features=features).save_to_disk(str(folder / "features-train"))
    for stage, model_class in ((1, MintForPreTraining), (2, MintForConditionalGeneration)):
        model_class(config).save_pretrained(folder / f"stage{stage}")
        processor.save_pretrained(folder / f"stage{stage}")
    return folder


@pytest.fixture(scope="module")
def lacking_stage2_weights(demo_folder, tmp_path_factory):
    folder = tmp_path_factory.mktemp("lacking") / "demo"
    shutil.copytree(demo_folder, folder, ignore=lambda at, names: ["model.safetensors"] * at.endswith("stage2"))
    return folder


def test_the_matmul_throughput_times_at_least_one_product():
    assert benchmark_demo_budget.matmul_gflops(torch.float32, 64, 64, 64, 1e-9) > 0


def test_the_budget_counts_the_demos_steps_and_flops(demo_folder, tmp_path):
    output = tmp_path / "budget.json"
    output.write_text("what a previous run left")
    results = benchmark_demo_budget.main(["--demo", str(demo_folder), "--steps", "3", "--matmul-seconds", "0.05",
                                          "--stage2-seeds", "2", "--output", str(output)])
    assert json.loads(output.read_text()) == results  # replaced whole, not appended to
    clips = INSTRUMENTS + WORDS
    # Stage 1: three templated passes over the clips in one epoch; stage 2: an example per (clip, label type it has)
    # and a caption per clip, for three epochs; batches of 32.
    assert (results["stage1"]["examples"], results["stage1"]["steps"]) == (3 * clips, math.ceil(3 * clips / 32))
    stage2_examples = 3 * INSTRUMENTS + WORDS + clips
    assert (results["stage2"]["examples"], results["stage2"]["steps"]) == (stage2_examples,
                                                                           3 * math.ceil(stage2_examples / 32))
    for stage, runs in (("stage1", 1), ("stage2", 2)):
        row = results[stage]
        assert row["gflop_per_step"] > 0 and row["step_s"] > 0 and row["runs"] == runs
        assert row["tflop"] == pytest.approx(row["gflop_per_step"] * row["steps"] * runs / 1e3)
    assert results["training"]["tflop"] == pytest.approx(results["stage1"]["tflop"] + results["stage2"]["tflop"])
    assert set(results["matmul_gflops"]) == {"bfloat16 576x384x1536", "bfloat16 2048x2048x2048",
                                             "float32 576x384x1536", "float32 2048x2048x2048"}
    assert results["bf16_peak_gflops"] == max(v for k, v in results["matmul_gflops"].items() if "bfloat16" in k)


def test_the_budget_is_the_hand_computation():
    stages = {1: {"gflop_per_step": 300.0, "step_s": 2.0, "steps": 261},
              2: {"gflop_per_step": 70.0, "step_s": 0.5, "steps": 843}}
    matmul = {"bfloat16 a": 400.0, "bfloat16 b": 420.0, "float32 a": 900.0}  # fp32 never sets the peak
    results = benchmark_demo_budget.budget(stages, matmul, 3)
    assert results["bf16_peak_gflops"] == 420.0
    assert results["stage1"]["tflop"] == pytest.approx(78.3) and results["stage2"]["tflop"] == pytest.approx(177.03)
    assert results["stage1"]["minutes"] == pytest.approx(2.0 * 261 / 60)
    assert results["stage2"]["minutes"] == pytest.approx(0.5 * 843 * 3 / 60)
    assert results["stage2"]["effective_gflops"] == pytest.approx(140.0)
    assert results["training"]["floor_minutes"] == pytest.approx((78.3 + 177.03) * 1e3 / 420 / 60)


@pytest.mark.parametrize("args, words", [
    ([], ["the following arguments are required: --demo"]),
    (["--demo", "{demo}", "--steps", "2"], ["--steps must be at least 3"]),
    (["--demo", "{demo}", "--steps", "-5"], ["--steps must be at least 3"]),
    (["--demo", "{demo}", "--stage2-seeds", "-1"], ["--stage2-seeds must be in [1, 100]"]),
    (["--demo", "{demo}", "--matmul-seconds", "-1"], ["--matmul-seconds must be in (0, 60]"]),
    (["--demo", "{demo}", "--matmul-seconds", "1e9"], ["--matmul-seconds must be in (0, 60]"]),
    (["--demo", "{demo}", "--stage2-seeds", "0"], ["--stage2-seeds must be in [1, 100]"]),
    (["--demo", "{demo}", "--stage2-seeds", "1" + "0" * 400], ["--stage2-seeds must be in [1, 100]"]),
    (["--demo", "{demo}", "--threads", "0"], ["--threads must be in [1, 1024]"]),
    (["--demo", "{demo}", "--threads", "100000"], ["--threads must be in [1, 1024]"]),
    (["--demo", "{demo}", "--steps", "100"], ["--steps 100 needs 100 batches of 32 stage-1 examples",
                                               "gives 126", "give fewer steps"]),
    (["--demo", "{demo}", "--matmul-seconds", "0"], ["--matmul-seconds must be in (0, 60]"]),
    (["--demo", "{demo}", "--matmul-seconds", "nan"], ["--matmul-seconds must be in (0, 60]"]),
    (["--demo", "{demo}", "--steps", "x"], ["invalid int value"]),
    (["--demo", "{demo}", "--output", "{elsewhere}"], ["must name a file, not a folder"]),
    (["--demo", "{demo}", "--output", ""], ["must name a file, not a folder"]),
    (["--demo", "{demo}", "--output", "{elsewhere}/new/"], ["must name a file, not a folder"]),
    (["--demo", "{demo}", "--output", "{demo}/results.json"], ["is inside the demo folder",
                                                               "write the figures elsewhere"]),
    (["--demo", "{demo}", "--output", "/no/such/folder/b.json"], ["cannot be written", "No such file or directory"]),
    (["--demo", "/no/such/demo"], ["is not a folder `mint demo` has filled", "features-train", "stage1/config.json",
                                   "stage2/model.safetensors"]),
    (["--demo", "{stage1}"], ["is not a folder `mint demo` has filled", "features-train"]),
    (["--demo", "{no_stage2_weights}"], ["is not a folder `mint demo` has filled: it lacks stage2/model.safetensors"]),
])
def test_the_budget_refuses_bad_arguments(demo_folder, lacking_stage2_weights, tmp_path, capsys, args, words):
    argv = [arg.format(demo=demo_folder, stage1=demo_folder / "stage1", elsewhere=tmp_path,
                       no_stage2_weights=lacking_stage2_weights) for arg in args]
    with pytest.raises(SystemExit) as exit_info:
        benchmark_demo_budget.main(argv)
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    for word in words:
        assert word in error
