# Copyright 2026 The MINT package authors. Licensed under the Apache License, Version 2.0.
"""A stage-2 training step with MINT's cross-attention (each head's key and value projections folded into the queries,
`modeling_mint.MintQFormerCrossAttention`) against the same step with transformers' InstructBLIP attention, which
computes the same outputs: the two alternate on the same batches, so a machine's drift reaches both alike.

    python benchmarks/benchmark_cross_attention.py --model mint-demo/stage2    # the demo's model, its batch shapes
    python benchmarks/benchmark_cross_attention.py --tiny                      # CI smoke size

A step is the demo's (`mint demo`): cached encoder features of `--frames` frames, Bridge-Net under bf16 autocast
(`autocast_bridge`), fused AdamW at rate 0 (the weights stay put, so every round times the same model), PyTorch's
plain attention kernel, deterministic kernels with `--threads` threads. Inputs are random, of the shapes given: the
step's cost depends on them alone. Prints and writes (`--output`) each round's median step time per attention.
"""

import argparse
import copy
import os
import statistics
import sys
import time

import torch
from torch.nn.attention import sdpa_kernel
from transformers.models.instructblip.modeling_instructblip import InstructBlipQFormerMultiHeadAttention


sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmark_mint import package_model, sizes, write_results  # noqa: E402  (this folder is on the path as a script)
from audio_encoder_mint import ENCODER_FEATURES_KEY  # noqa: E402
from mint.demo.run import ATTENTION_BACKEND, MAX_THREADS, deterministic  # noqa: E402
from mint.training.speed import CACHED_FEATURES_MASK, autocast_bridge  # noqa: E402
from modeling_mint import MintForConditionalGeneration, MintQFormerCrossAttention  # noqa: E402


ATTENTIONS = {"instructblip": InstructBlipQFormerMultiHeadAttention, "mint": MintQFormerCrossAttention}


def random_batch(model: MintForConditionalGeneration, batch: int, frames: int, text_tokens: int, label_tokens: int,
                 generator: torch.Generator) -> dict[str, torch.Tensor]:
    """A stage-2 batch of cached features `(batch, frames, width)` (each clip 60-100 % of `frames` long), instructions
    of `text_tokens` tokens for the Q-Former and the LLM (behind the LLM's audio placeholders) and targets of
    `label_tokens`."""
    config = model.config
    lengths = torch.randint(max(1, int(0.6 * frames)), frames + 1, (batch,), generator=generator)
    lengths[0] = frames
    words = lambda vocab, length: torch.randint(5, vocab, (batch, length), generator=generator)  # noqa: E731
    llm_vocab = min(config.text_config.vocab_size, config.audio_token_id)  # no word is the audio placeholder
    placeholders = torch.full((batch, config.num_query_tokens), config.audio_token_id)
    ids = torch.cat([placeholders, words(llm_vocab, text_tokens)], 1)
    return {ENCODER_FEATURES_KEY: torch.randn(batch, frames, config.audio_feature_size, generator=generator),
            CACHED_FEATURES_MASK: (torch.arange(frames) < lengths[:, None]).long(),
            "qformer_input_ids": words(config.qformer_config.vocab_size, text_tokens),
            "qformer_attention_mask": torch.ones(batch, text_tokens, dtype=torch.long),
            "input_ids": ids, "attention_mask": torch.ones_like(ids),
            "labels": words(llm_vocab, label_tokens)}


def with_attention(model: MintForConditionalGeneration, attention: type) -> MintForConditionalGeneration:
    """A copy of `model` whose Q-Former cross-attends with `attention` (the same weights)."""
    model = copy.deepcopy(model)
    for layer in model.qformer.encoder.layer:
        if layer.has_cross_attention:
            layer.crossattention.attention.__class__ = attention
    return model


def median_step(model: MintForConditionalGeneration, batches: list[dict], warmup: int = 2) -> tuple[float, float]:
    """The median seconds of a training step over `batches` after `warmup` untimed steps, and the last loss."""
    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=0.0, fused=True)
    times = []
    for index, batch in enumerate(batches):
        started = time.perf_counter()
        loss = model(**batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if index >= warmup:
            times.append(time.perf_counter() - started)
    return statistics.median(times), loss.item()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="a MINT folder (a stage-1 folder is converted as stage 2 loads it)")
    parser.add_argument("--tiny", action="store_true", help="a tiny random model, batch 4, 12 frames, 4 steps and one "
                        "round, whatever else is given (CI smoke size)")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--frames", type=int, default=80, help="encoder frames per clip (the demo's: about 80)")
    parser.add_argument("--text-tokens", type=int, default=10)
    parser.add_argument("--label-tokens", type=int, default=4)
    parser.add_argument("--steps", type=int, default=14, help="steps per round, the first two untimed")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--output", help="write the figures here as JSON")
    args = parser.parse_args()
    if (args.model is None) == (not args.tiny):
        parser.error("give --model FOLDER or --tiny")
    for name in ("batch", "frames", "text_tokens", "label_tokens", "rounds", "threads"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}")
    if args.threads > MAX_THREADS:
        parser.error(f"--threads must be at most {MAX_THREADS}, got {args.threads}")
    if args.steps < 3:
        parser.error(f"--steps must be at least 3 (the first two are untimed), got {args.steps}")
    if args.model is not None and not os.path.isfile(os.path.join(args.model, "config.json")):
        parser.error(f"--model {args.model!r} is not a MINT folder (no config.json there)")
    if args.tiny:
        args.batch, args.frames, args.steps, args.rounds = 4, 12, 4, 1
        model = package_model(sizes(True), "cpu", 2, bf16=False)
    else:
        model = MintForConditionalGeneration.from_pretrained(args.model)
    for module in model.modules():  # the demo trains without dropout
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    generator = torch.Generator().manual_seed(0)
    batches = [random_batch(model, args.batch, args.frames, args.text_tokens, args.label_tokens, generator)
               for _ in range(args.steps)]
    models = {name: autocast_bridge(with_attention(model, attention)) for name, attention in ATTENTIONS.items()}
    results = {"steps_timed": args.steps - 2, "batch": args.batch, "frames": args.frames, "threads": args.threads,
               "median_step_s": {name: [] for name in ATTENTIONS}, "last_loss": {}}
    with deterministic(args.threads), sdpa_kernel(ATTENTION_BACKEND):
        for _ in range(args.rounds):
            for name, of_attention in models.items():
                seconds, results["last_loss"][name] = median_step(of_attention, batches)
                results["median_step_s"][name].append(round(seconds, 4))
    for name, seconds in results["median_step_s"].items():
        print(f"{name:>12} cross-attention: stage-2 step {statistics.mean(seconds):.3f} s (mean of {args.rounds} "
              f"medians of {args.steps - 2} steps: {seconds}), last loss {results['last_loss'][name]:.4f}")
    write_results(results, args.output)


if __name__ == "__main__":
    main()
