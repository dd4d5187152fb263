# Copyright 2026 The MINT package authors. Licensed under the Apache License, Version 2.0.
"""What the demo's training costs in FLOPs, how fast this machine runs it, and the floor its matmul peak sets.

    python benchmarks/benchmark_demo_budget.py --demo mint-demo                  # a folder `mint demo` has filled
    python benchmarks/benchmark_demo_budget.py --demo mint-demo --stage2-seeds 3 --output budget.json

From a demo folder (its training feature cache `features-train` and its `stage1` and `stage2` models), for each stage:
the demo's own training examples (`mint.demo.run.stage1_pairs`: stage 1's templated caption pairs; `stage2_examples`:
stage 2's instruction examples), the optimizer steps a demo run takes over them, and `--steps` batches drawn from them
at random, on which a training step is taken as the demo takes it (Bridge-Net under bf16 autocast, fused AdamW at rate 0
so the weights stay put, no dropout, PyTorch's plain attention kernel, deterministic kernels, `--threads` threads): its
FLOPs, forward and backward (`torch.utils.flop_counter`), and its seconds, both over the steps after two untimed ones
(FLOPs their mean, seconds their median). Beside them, this machine's matrix-multiply throughput in bf16 and fp32, on
the shape of the Q-Former's feed-forward layer over a stage-2 batch and on a square of 2048. Prints and writes
(`--output`) the demo's training FLOPs with `--stage2-seeds` stage-2 seeds, the minutes they take at the measured step
speed, and the minutes they would take at the best bf16 matmul throughput: a floor no change of kernels lowers, only
fewer FLOPs do. Reading the demo's examples writes `datasets` cache files into its `features-train` where the demo's own
run (with its default seed) has not left them already.
"""

import argparse
import math
import os
import statistics
import sys
import time

import torch
from datasets import concatenate_datasets, load_from_disk
from torch.nn.attention import sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode


sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmark_cross_attention import median_step  # noqa: E402  (this folder is on the path as a script)
from benchmark_mint import write_results  # noqa: E402
from mint.data.collator import MintDataCollator  # noqa: E402
from mint.demo.run import (  # noqa: E402
    ATTENTION_BACKEND,
    DEFAULT_SEED,
    MAX_THREADS,
    STAGE1_EPOCHS,
    STAGE2_EPOCHS,
    TRAINING,
    deterministic,
    stage1_pairs,
    stage2_examples,
)
from mint.demo.settings import GROUP_COLUMN  # noqa: E402
from mint.training.speed import autocast_bridge  # noqa: E402
from modeling_mint import MintForConditionalGeneration, MintForPreTraining  # noqa: E402
from processing_mint import MintProcessor  # noqa: E402


WARMUP_STEPS = 2
MAX_STAGE2_SEEDS = 100
# Draws the batches and stage 1's caption templates: the demo's default seed, with which stage 1's templated pairs are
# read from the cache files its run wrote beside the features.
SEED = DEFAULT_SEED


def demo_stage(folder: str, stage: int, seed: int):
    """Stage `stage`'s model as the demo trains it (no dropout), its training examples and collator, and the optimizer
    steps of a demo run over them (`TRAINING`'s batch size, the demo's epochs)."""
    cached = load_from_disk(os.path.join(folder, "features-train"))
    processor = MintProcessor.from_pretrained(os.path.join(folder, f"stage{stage}"))
    batch = TRAINING["batch_size"]
    if stage == 1:
        examples, epochs = stage1_pairs(cached, STAGE1_EPOCHS, seed)
        model_class, collator = MintForPreTraining, MintDataCollator(processor, stage=1, group_column=GROUP_COLUMN)
    else:
        examples, epochs = concatenate_datasets(stage2_examples(cached)), STAGE2_EPOCHS
        model_class, collator = MintForConditionalGeneration, MintDataCollator(processor, stage=2)
    model = model_class.from_pretrained(os.path.join(folder, f"stage{stage}"))
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    return model, examples, collator, math.ceil(epochs * math.ceil(len(examples) / batch))


def step_cost(model, examples, collator, steps: int, seed: int) -> dict:
    """FLOPs (forward and backward, mean over the timed batches) and median seconds of the demo's training step, over
    `steps` full batches drawn at random from `examples` (at least `steps` batches of them)."""
    batch = TRAINING["batch_size"]
    order = torch.randperm(len(examples), generator=torch.Generator().manual_seed(seed)).tolist()
    batches = [collator([examples[i] for i in order[start:start + batch]])
               for start in range(0, steps * batch, batch)]
    model = autocast_bridge(model.train())
    flops = []
    for inputs in batches[WARMUP_STEPS:]:
        with FlopCounterMode(display=False) as counter:
            model(**inputs).loss.backward()
        flops.append(counter.get_total_flops())
    model.zero_grad(set_to_none=True)
    seconds, _ = median_step(model, batches, WARMUP_STEPS)
    return {"gflop_per_step": statistics.mean(flops) / 1e9, "step_s": seconds}


def matmul_gflops(dtype: torch.dtype, m: int, k: int, n: int, seconds: float) -> float:
    """GFLOP/s of `(m, k) @ (k, n)` in `dtype`, repeated for `seconds` (at least once) after one untimed product."""
    a, b = torch.randn(m, k).to(dtype), torch.randn(k, n).to(dtype)
    a @ b
    count, started = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - started) < seconds or count == 0:
        a @ b
        count += 1
    return 2 * m * k * n * count / elapsed / 1e9


def budget(stages: dict[int, dict], matmul: dict[str, float], stage2_seeds: int) -> dict:
    """Each stage's training FLOPs over a demo run (stage 2 once per seed) and the minutes at the measured step speed
    and at the best bf16 matmul throughput."""
    peak = max(value for key, value in matmul.items() if key.startswith("bfloat16"))
    rows = {}
    for stage, cost in stages.items():
        runs = stage2_seeds if stage == 2 else 1
        tflop = cost["gflop_per_step"] * cost["steps"] * runs / 1e3
        rows[f"stage{stage}"] = {**cost, "runs": runs, "tflop": tflop,
                                 "effective_gflops": cost["gflop_per_step"] / cost["step_s"],
                                 "minutes": cost["step_s"] * cost["steps"] * runs / 60,
                                 "floor_minutes": tflop * 1e3 / peak / 60}
    rows["training"] = {key: sum(row[key] for row in rows.values()) for key in ("tflop", "minutes", "floor_minutes")}
    return {"matmul_gflops": matmul, "bf16_peak_gflops": peak, "stage2_seeds": stage2_seeds, **rows}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--demo", required=True, help="a folder `mint demo` has filled (features-train, stage1, "
                        "stage2)")
    parser.add_argument("--stage2-seeds", type=int, default=3, help="stage-2 runs the budget counts (the README's: 3)")
    parser.add_argument("--steps", type=int, default=8, help="batches per stage, the first two untimed")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--matmul-seconds", type=float, default=2.0, help="seconds each matmul shape is timed")
    parser.add_argument("--output", help="write the figures here as JSON")
    args = parser.parse_args(argv)
    if not 1 <= args.stage2_seeds <= MAX_STAGE2_SEEDS:
        parser.error(f"--stage2-seeds must be in [1, {MAX_STAGE2_SEEDS}], got {args.stage2_seeds}")
    if not 1 <= args.threads <= MAX_THREADS:
        parser.error(f"--threads must be in [1, {MAX_THREADS}], got {args.threads}")
    if args.steps <= WARMUP_STEPS:
        parser.error(f"--steps must be at least {WARMUP_STEPS + 1} (the first {WARMUP_STEPS} are untimed), "
                     f"got {args.steps}")
    if not 0 < args.matmul_seconds <= 60:
        parser.error(f"--matmul-seconds must be in (0, 60], got {args.matmul_seconds}")
    missing = [name for name in ("features-train", *(f"stage{stage}/{name}" for stage in (1, 2)
                                                     for name in ("config.json", "model.safetensors",
                                                                  "processor_config.json")))
               if not os.path.exists(os.path.join(args.demo, name))]
    if missing:
        parser.error(f"--demo {args.demo!r} is not a folder `mint demo` has filled: it lacks {', '.join(missing)}")
    if args.output is not None:
        output = os.path.abspath(args.output)
        if not args.output or args.output.endswith(os.sep) or os.path.isdir(output):
            parser.error(f"--output {args.output!r} must name a file, not a folder")
        if output.startswith(os.path.abspath(args.demo) + os.sep):
            parser.error(f"--output {args.output!r} is inside the demo folder {args.demo!r}, whose files it would "
                         "replace: write the figures elsewhere")
        try:
            open(output, "a").close()  # fails now, not after the measurements; leaves a file's contents as they are
        except OSError as error:
            parser.error(f"--output {args.output!r} cannot be written: {error}")
    with deterministic(args.threads), sdpa_kernel(ATTENTION_BACKEND):
        loaded = {stage: demo_stage(args.demo, stage, SEED) for stage in (1, 2)}
        for stage, (_, examples, _, _) in loaded.items():
            if len(examples) < args.steps * TRAINING["batch_size"]:
                parser.error(f"--steps {args.steps} needs {args.steps} batches of {TRAINING['batch_size']} "
                             f"stage-{stage} examples, and the demo folder's training split gives {len(examples)}: "
                             "give fewer steps")
        stages = {stage: {"steps": steps, "examples": len(examples),
                          **step_cost(model, examples, collator, args.steps, SEED)}
                  for stage, (model, examples, collator, steps) in loaded.items()}
        del loaded
        width, hidden = 384, 1536  # the demo's Q-Former (MiniLM): its feed-forward layer over 32 x 18 tokens
        matmul = {f"{str(dtype).removeprefix('torch.')} {m}x{k}x{n}": matmul_gflops(dtype, m, k, n,
                                                                                     args.matmul_seconds)
                  for dtype in (torch.bfloat16, torch.float32)
                  for m, k, n in ((32 * 18, width, hidden), (2048, 2048, 2048))}
    results = {"threads": args.threads, **budget(stages, matmul, args.stage2_seeds)}
    for name, gflops in matmul.items():
        print(f"matmul {name}: {gflops:.0f} GFLOP/s")
    for stage in ("stage1", "stage2"):
        row = results[stage]
        print(f"{stage}: {row['gflop_per_step']:.1f} GFLOP a step, {row['step_s']:.3f} s a step "
              f"({row['effective_gflops']:.0f} GFLOP/s), {row['steps']} steps x {row['runs']} run(s): "
              f"{row['tflop']:.1f} TFLOP, {row['minutes']:.1f} min at that speed, {row['floor_minutes']:.1f} min at "
              f"the bf16 matmul peak")
    total = results["training"]
    print(f"training with {args.stage2_seeds} stage-2 seed(s): {total['tflop']:.1f} TFLOP, {total['minutes']:.1f} min "
          f"at the measured speed, {total['floor_minutes']:.1f} min at the bf16 matmul peak "
          f"({results['bf16_peak_gflops']:.0f} GFLOP/s)")
    write_results(results, args.output)
    return results


if __name__ == "__main__":
    main()
