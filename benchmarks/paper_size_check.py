# Copyright 2026 The MINT package authors. Licensed under the Apache License, Version 2.0.
"""Does MINT at the paper's sizes train and generate, and in how much memory? Checked on the CPU before a GPU is rented.

    python benchmarks/paper_size_check.py                      # paper sizes, batch 2, 10 s clips (3-6 min, 2 cores)
    python benchmarks/paper_size_check.py --tiny               # CI smoke size (seconds)
    python benchmarks/paper_size_check.py --seconds 30 --output paper_size.json

The model is built with random weights at the paper's sizes (section 3.2): data2vec-audio base, a BERT-base Q-Former
with 32 queries, and T5 with FlanT5-XL's dimensions (`configuration_mint.FLAN_T5_XL_KWARGS`). The frozen parts (audio
encoder, LLM) are in bf16 and Bridge-Net in fp32, as `from_pretrained(..., dtype=torch.bfloat16)` loads them, and the
steps run under bf16 autocast, as a recipe with `bf16` trains. It runs one stage-1 training step (ALC + ALM + ATG), one
stage-2 training step and one greedy generation, each with an AdamW optimizer like the Trainer's, and prints for each
the peak resident memory (RSS), the FLOPs per sample (counted with `torch.utils.flop_counter.FlopCounterMode`) and
the seconds it took. The memory held by weights, gradients and AdamW state is computed from the tensors; the rest of a
step's peak is activations and temporaries, which grow with the batch.

fp16 is refused for a T5 LLM: T5 overflows in fp16 (use bf16 or fp32).
"""

import argparse
import ctypes
import gc
import os
import resource
import sys
import time
from collections.abc import Callable

import torch
from torch.utils.flop_counter import FlopCounterMode
from transformers import Data2VecAudioConfig, T5Config


sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmark_mint import write_results  # noqa: E402  (this folder is on the path when run as a script)
from configuration_mint import FLAN_T5_XL_KWARGS, MintConfig, MintQFormerConfig  # noqa: E402
from modeling_mint import MintForConditionalGeneration, MintForPreTraining  # noqa: E402
from mint.training.recipe import check_llm_precision  # noqa: E402


GIB = 2**30
DTYPES = {"bf16": torch.bfloat16, "fp32": torch.float32, "fp16": torch.float16}


def paper_config(tiny: bool = False) -> MintConfig:
    """The paper's sizes (section 3.2), or a tiny model of the same structure for a smoke test."""
    if not tiny:
        # FlanT5's tokenizer has 32100 entries for 32128 rows: its added audio placeholder is id 32100.
        return MintConfig(audio_config=Data2VecAudioConfig(), qformer_config=MintQFormerConfig(),
                          text_config=T5Config(**FLAN_T5_XL_KWARGS), num_query_tokens=32, audio_token_id=32100)
    audio = Data2VecAudioConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                                conv_dim=(16,) * 7, num_conv_pos_embeddings=4, num_conv_pos_embedding_groups=4,
                                conv_pos_kernel_size=5, num_conv_pos_embedding_layers=2)
    qformer = MintQFormerConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64)
    text = T5Config(**{**FLAN_T5_XL_KWARGS, "d_model": 32, "d_kv": 8, "d_ff": 64, "num_layers": 2,
                       "num_decoder_layers": 2, "num_heads": 4, "vocab_size": 1000})
    return MintConfig(audio_config=audio, qformer_config=qformer, text_config=text, num_query_tokens=4,
                      audio_token_id=999)


def build(config: MintConfig, stage: int, frozen_dtype: torch.dtype) -> torch.nn.Module:
    """
    A model of the stage with random weights: the frozen parts in `frozen_dtype` (built in it, never held in fp32),
    every trainable part in fp32.
    """
    default = torch.get_default_dtype()
    torch.set_default_dtype(frozen_dtype)
    try:
        model = (MintForPreTraining if stage == 1 else MintForConditionalGeneration)(config)
    finally:
        torch.set_default_dtype(default)
    for child in model.children():
        if any(p.requires_grad for p in child.parameters()):
            child.float()
    for parameter in model.parameters(recurse=False):
        parameter.data = parameter.data.float()
    return model


class PeakRss:
    """
    Peak resident memory of this process since the last `reset()`: Linux's VmHWM, which writing 5 to clear_refs
    resets. Elsewhere, the peak since the process started.
    """

    def reset(self) -> None:
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
        except OSError:
            pass

    @staticmethod
    def gib() -> float:
        try:
            with open("/proc/self/status") as f:
                return next(int(line.split()[1]) for line in f if line.startswith("VmHWM")) * 1024 / GIB
        except (OSError, StopIteration):
            kib_or_bytes = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            return kib_or_bytes / GIB * (1 if sys.platform == "darwin" else 1024)

    @staticmethod
    def release_freed_memory() -> None:
        """Returns the heap's freed memory to the system (glibc), so the next phase starts from what is really held."""
        gc.collect()
        try:
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except (OSError, AttributeError):
            pass


def tensor_gib(model: torch.nn.Module) -> dict[str, float]:
    """Weights by part (frozen / trainable), and what training adds per trainable weight: gradient + AdamW's moments."""
    frozen = sum(p.numel() * p.element_size() for p in model.parameters() if not p.requires_grad)
    trainable = [p for p in model.parameters() if p.requires_grad]
    weights = sum(p.numel() * p.element_size() for p in trainable)
    return {"frozen_weights": frozen / GIB, "trainable_weights": weights / GIB,
            "gradients_and_adamw": 3 * weights / GIB, "trainable_parameters_m": sum(p.numel() for p in trainable) / 1e6,
            "parameters_b": sum(p.numel() for p in model.parameters()) / 1e9}


def inputs(config: MintConfig, stage: int, batch: int, seconds: float, text_tokens: int, target_tokens: int) -> dict:
    """Random audio and token ids of the processor's shapes (all real, no padding)."""
    g = torch.Generator().manual_seed(0)
    audio = 0.1 * torch.randn(batch, int(16000 * seconds), generator=g)
    qformer_vocab = config.qformer_config.vocab_size - 1
    captions = torch.randint(1000, qformer_vocab, (batch, text_tokens), generator=g)
    captions[:, 0] = 101  # [CLS]
    values = {"input_values": audio, "audio_attention_mask": torch.ones_like(audio, dtype=torch.long),
              "qformer_input_ids": captions, "qformer_attention_mask": torch.ones_like(captions)}
    if stage == 2:
        prompt = torch.randint(3, config.audio_token_id, (batch, text_tokens), generator=g)
        placeholders = torch.full((batch, config.num_query_tokens), config.audio_token_id)
        values["input_ids"] = torch.cat([placeholders, prompt], 1)  # as MintProcessor lays them out
        values["attention_mask"] = torch.ones_like(values["input_ids"])
        values["labels"] = torch.randint(3, config.audio_token_id, (batch, target_tokens), generator=g)
    return values


def measured(fn: Callable[[], object], batch: int, peak: PeakRss) -> dict[str, float]:
    """Runs `fn` once under the FLOP counter: seconds, FLOPs per sample and the peak RSS while it ran."""
    peak.reset()
    start = time.perf_counter()
    with FlopCounterMode(display=False) as counter:
        fn()
    return {"seconds": time.perf_counter() - start, "gflop_per_sample": counter.get_total_flops() / batch / 1e9,
            "peak_rss_gib": peak.gib()}


def training_step(model: torch.nn.Module, batch: dict, autocast: bool) -> Callable[[], None]:
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)

    def step():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            loss = model(**batch).loss
        if not torch.isfinite(loss):
            raise RuntimeError(f"The training step's loss is {loss.item()}.")
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return step


def run_stage(config: MintConfig, stage: int, args, peak: PeakRss) -> dict:
    """Builds the stage's model, then measures its training step (and, for stage 2, a generation)."""
    peak.reset()
    start = time.perf_counter()
    model = build(config, stage, DTYPES[args.precision]).train()
    result = {"build_seconds": time.perf_counter() - start, "build_peak_rss_gib": peak.gib(), **tensor_gib(model)}
    batch = inputs(config, stage, args.batch, args.seconds, args.text_tokens, args.target_tokens)
    autocast = args.precision == "bf16"
    peak.reset()
    result["rss_before_step_gib"] = peak.gib()
    result["train_step"] = measured(training_step(model, batch, autocast), args.batch, peak)
    if stage == 2:
        model.eval()
        prompt = {k: v for k, v in batch.items() if k != "labels"}

        def generate():
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
                return model.generate(**prompt, max_new_tokens=args.new_tokens, min_new_tokens=args.new_tokens,
                                      num_beams=1, do_sample=False)
        result["generation"] = measured(generate, args.batch, peak)
    return result


def _peaks(stage: dict) -> list[float]:
    """The peak RSS of each phase of a stage (build, training step, generation)."""
    phases = [stage[key] for key in ("train_step", "generation") if key in stage]
    return [stage["build_peak_rss_gib"]] + [phase["peak_rss_gib"] for phase in phases]


def activations_gib(stage: dict) -> float:
    """What the training step held beyond the weights, their gradients and AdamW's state: activations, temporaries."""
    grown = stage["train_step"]["peak_rss_gib"] - stage["rss_before_step_gib"]
    return max(grown - stage["gradients_and_adamw"], 0.0)


def gpu_estimate_gib(stage: dict, cpu_batch: int, gpu_batch: int) -> float:
    """
    Memory per GPU at `gpu_batch`: weights, gradients and AdamW state as measured, plus the step's activations and
    temporaries scaled linearly from the CPU batch (no CUDA context, allocator cache or DDP buckets: see the README).
    """
    static = stage["frozen_weights"] + stage["trainable_weights"] + stage["gradients_and_adamw"]
    return static + activations_gib(stage) * gpu_batch / cpu_batch


def report(results: dict) -> str:
    lines = [f"MINT at {results['size']} sizes, {results['precision']} frozen parts, batch {results['batch']}, "
             f"{results['seconds']:g} s clips, {results['text_tokens']} text tokens, {results['cpu_threads']} CPU "
             f"threads, torch {results['torch']}", "",
             "| what | seconds | GFLOP / sample | peak RSS GiB |", "|---|---|---|---|"]
    for stage, key, label in ((1, "train_step", "stage-1 training step"), (2, "train_step", "stage-2 training step"),
                              (2, "generation", f"generation, {results['new_tokens']} tokens")):
        entry = results[f"stage{stage}"][key]
        lines.append(f"| {label} | {entry['seconds']:.1f} | {entry['gflop_per_sample']:.4g} | "
                     f"{entry['peak_rss_gib']:.2f} |")
    for stage in (1, 2):
        s = results[f"stage{stage}"]
        lines.append(f"stage {stage}: {s['parameters_b']:.2f} B parameters ({s['trainable_parameters_m']:.0f} M "
                     f"trainable); weights {s['frozen_weights']:.2f} GiB frozen + {s['trainable_weights']:.2f} GiB "
                     f"trainable, gradients + AdamW {s['gradients_and_adamw']:.2f} GiB, activations "
                     f"{s['activations_gib']:.2f} GiB; built in "
                     f"{s['build_seconds']:.0f} s; estimate per GPU at batch {results['gpu_batch']}: "
                     f"{s['gpu_estimate_gib']:.1f} GiB")
    lines.append(f"peak RSS of the whole run: {results['peak_rss_gib']:.2f} GiB; {results['total_seconds']:.0f} s")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tiny", action="store_true", help="a tiny model of the same structure (CI smoke test)")
    parser.add_argument("--precision", choices=sorted(DTYPES), default="bf16",
                        help="dtype of the frozen parts (bf16 also runs the steps under bf16 autocast)")
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=10.0, help="clip length (the paper trains on 3-30 s)")
    parser.add_argument("--text-tokens", type=int, default=30, help="caption / prompt tokens (the paper's maximum)")
    parser.add_argument("--target-tokens", type=int, default=10, help="stage-2 target tokens")
    parser.add_argument("--new-tokens", type=int, default=30, help="tokens generated")
    parser.add_argument("--gpu-batch", type=int, default=8,
                        help="per-GPU batch of the estimate (the paper: 64 over 8 GPUs)")
    parser.add_argument("--output", default=None, help="write the figures as JSON here")
    args = parser.parse_args(argv)
    config = paper_config(args.tiny)
    check_llm_precision(config.text_config.model_type, args.precision)
    start = time.perf_counter()
    peak = PeakRss()
    results = {"size": "tiny" if args.tiny else "paper", "precision": args.precision, "batch": args.batch,
               "seconds": args.seconds, "text_tokens": args.text_tokens, "target_tokens": args.target_tokens,
               "new_tokens": args.new_tokens, "gpu_batch": args.gpu_batch, "cpu_threads": torch.get_num_threads(),
               "torch": torch.__version__}
    for stage in (1, 2):
        peak.release_freed_memory()  # stage 1's model is gone: stage 2 starts from the libraries alone
        figures = run_stage(config, stage, args, peak)
        figures["activations_gib"] = activations_gib(figures)
        figures["gpu_estimate_gib"] = gpu_estimate_gib(figures, args.batch, args.gpu_batch)
        results[f"stage{stage}"] = figures
    results["peak_rss_gib"] = max(max(_peaks(results[f"stage{stage}"])) for stage in (1, 2))
    results["total_seconds"] = time.perf_counter() - start
    print(report(results))
    write_results(results, args.output)
    return results


if __name__ == "__main__":
    main()
