# Copyright 2026 The MINT package authors. Licensed under the Apache License, Version 2.0.
"""MINT's speed and memory against the stock-parts baseline, in one process, on identical inputs and sizes.

    python benchmarks/benchmark_mint.py                  # full size (data2vec-base, BERT-base Q-Former, FlanT5-XL T5)
    python benchmarks/benchmark_mint.py --tiny           # CPU smoke size (what CI runs; no speed claims)
    python benchmarks/benchmark_mint.py --batch 64 --output bench.json --length-groups 2 --bridge-autocast \\
        --static-cache --compile                         # the opt-in speed levers, each measured
    python benchmarks/benchmark_mint.py --show bench.json   # the tables of a run (also of one cut short)

The baseline is MINT's stage-2 step composed from stock transformers parts (Data2VecAudio -> InstructBLIP Q-Former ->
Linear -> T5, bf16 frozen parts, autocast Q-Former), as the stock-parts reference computes it. The stock parts,
MINT's stage 1 and MINT's stage 2 are each built, measured and freed in turn, so a peak memory figure is that of one
model. For each it prints samples/s, ms per step, MFU (FLOPs counted with `torch.utils.flop_counter`, against
`--peak-tflops`), peak memory (CUDA max allocated; peak RSS on the CPU) and the ratios:

* stage-2 training step with the audio encoder in the loop, and (package) from the frozen-feature cache;
* 30-token greedy captioning, batched (the package's batched outputs are checked equal to unbatched ones);
* vocabulary ranking over 10 candidates: `score_candidates` against a per-candidate loss loop (scores checked equal);
* stage-1 training step (ALC + ALM + ATG) against the same passes composed from the stock Q-Former.

Every training step is also split into parts (audio encoder, Q-Former forward, LLM forward, LLM backward, Q-Former
backward, optimizer), timed with CUDA events on the GPU and the host clock on the CPU, each with its MFU. The prompts
and targets have mixed lengths (each batch padded to the longest, as the stock parts run them), so that the
length-grouping lever has padding to save. With a lever flag, rows with the levers applied one after another follow
the package's rows, each with its loss next to the plain model's. The figures are written as JSON after every row.
"""

import argparse
import contextlib
import gc
import json
import os
import platform
import sys
import time
import traceback
from collections.abc import Callable

import torch
import transformers
from torch import nn
from torch.utils.flop_counter import FlopCounterMode
from transformers import Data2VecAudioConfig, Data2VecAudioModel, T5Config, T5ForConditionalGeneration
from transformers.models.instructblip.configuration_instructblip import InstructBlipQFormerConfig
from transformers.models.instructblip.modeling_instructblip import InstructBlipQFormerModel


sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from audio_encoder_mint import ENCODER_FEATURES_KEY  # noqa: E402
from configuration_mint import MintConfig, MintQFormerConfig  # noqa: E402
from mint.training.speed import (  # noqa: E402
    CACHED_FEATURES_MASK,
    autocast_bridge,
    compile_regions,
    length_grouped_loss,
    trim_padding,
)
from modeling_mint import MintForConditionalGeneration, MintForPreTraining  # noqa: E402


# A training step's parts, in the order they run; "other" is whatever runs between them (masks, LayerNorm, the loss).
PARTS = ("encoder", "qformer_forward", "llm_forward", "llm_backward", "qformer_backward", "optimizer", "other")
COMPUTE_PARTS = PARTS[:5]
H200_BF16_TFLOPS = 790.0


def sizes(tiny: bool) -> dict:
    """The baseline's sizes: `full` is data2vec-audio base, a BERT-base Q-Former and T5 with FlanT5-XL dimensions."""
    if not tiny:
        return dict(audio=Data2VecAudioConfig(), qformer=dict(encoder_hidden_size=768),
                    t5=dict(d_model=2048, d_kv=64, d_ff=5120, num_layers=24, num_decoder_layers=24, num_heads=32),
                    seconds=10, n_text=30, n_label=10, n_query=32)
    return dict(audio=Data2VecAudioConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                                          intermediate_size=128, conv_dim=(32,) * 7, num_conv_pos_embeddings=16,
                                          num_conv_pos_embedding_groups=4),
                qformer=dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128,
                             encoder_hidden_size=64),
                t5=dict(d_model=64, d_kv=16, d_ff=128, num_layers=2, num_decoder_layers=2, num_heads=4),
                seconds=2, n_text=8, n_label=4, n_query=8)


def t5_config(size: dict) -> T5Config:
    return T5Config(**size["t5"], feed_forward_proj="gated-gelu", vocab_size=32128, tie_word_embeddings=False,
                    decoder_start_token_id=0, pad_token_id=0, eos_token_id=1)


class NaiveMint(nn.Module):
    """The stock-parts baseline: transformers' own modules wired together as MINT's stage 2."""

    def __init__(self, size: dict, device: str):
        super().__init__()
        self.device_type = device
        self.enc = Data2VecAudioModel(size["audio"]).eval().requires_grad_(False)
        self.qformer = InstructBlipQFormerModel(InstructBlipQFormerConfig(**size["qformer"]))
        self.query_tokens = nn.Parameter(torch.randn(1, size["n_query"], self.qformer.config.hidden_size) * 0.02)
        self.proj = nn.Linear(self.qformer.config.hidden_size, size["t5"]["d_model"])
        self.lm = T5ForConditionalGeneration(t5_config(size)).eval().requires_grad_(False)

    def audio(self, wav):
        with torch.no_grad():
            return self.enc(wav).last_hidden_state

    def bridge(self, feats, qids, qmask):
        q = self.query_tokens.expand(feats.shape[0], -1, -1)
        mask = torch.cat([torch.ones(q.shape[:2], dtype=qmask.dtype, device=q.device), qmask], 1)
        out = self.qformer(input_ids=qids, attention_mask=mask, query_embeds=q, encoder_hidden_states=feats)
        return self.proj(out.last_hidden_state[:, : q.shape[1]])

    def lm_inputs(self, prefix, ids, mask):
        emb = torch.cat([prefix.to(self.lm.dtype), self.lm.get_input_embeddings()(ids)], 1)
        m = torch.cat([torch.ones(prefix.shape[:2], dtype=mask.dtype, device=mask.device), mask], 1)
        return emb, m

    def forward(self, wav, qids, qmask, ids, mask, labels):
        feats = self.audio(wav)
        with torch.autocast(self.device_type, dtype=torch.bfloat16):
            prefix = self.bridge(feats, qids, qmask)
        emb, m = self.lm_inputs(prefix, ids, mask)
        return self.lm(inputs_embeds=emb, attention_mask=m, labels=labels).loss

    @torch.no_grad()
    def caption(self, wav, qids, qmask, ids, mask, tokens=30):
        with torch.autocast(self.device_type, dtype=torch.bfloat16):
            prefix = self.bridge(self.audio(wav), qids, qmask)
        emb, m = self.lm_inputs(prefix, ids, mask)
        return self.lm.generate(inputs_embeds=emb, attention_mask=m, max_new_tokens=tokens, min_new_tokens=tokens,
                                num_beams=1, do_sample=False)

    def stage1_step(self, wav, qids, qmask):
        """ALC + ALM + ATG passes composed from the stock Q-Former (text alone, queries alone, 3B matching pairs,
        queries + causal text), the work of one stage-1 step without MINT's shared masks and negative mining."""
        feats = self.audio(wav)
        with torch.autocast(self.device_type, dtype=torch.bfloat16):
            q = self.query_tokens.expand(feats.shape[0], -1, -1)
            queries = self.qformer(input_ids=None, query_embeds=q, encoder_hidden_states=feats).last_hidden_state
            text = self.qformer(input_ids=qids, attention_mask=qmask).last_hidden_state
            pairs = [torch.cat([t, t, t]) for t in (qids, qmask)]
            matching = self.bridge(torch.cat([feats, feats.roll(1, 0), feats]), *pairs)
            generation = self.bridge(feats, qids, qmask)
            return queries.float().mean() + text.float().mean() + matching.float().mean() + generation.float().mean()


def package_model(size: dict, device: str, stage: int, bf16: bool) -> nn.Module:
    """MINT at the baseline's sizes; with `bf16`, frozen parts in bf16 and Bridge-Net in fp32, as in the baseline."""
    qformer = MintQFormerConfig(**size["qformer"])
    config = MintConfig(audio_config=size["audio"], qformer_config=qformer, text_config=t5_config(size),
                        num_query_tokens=size["n_query"], max_text_length=size["n_text"],
                        audio_token_id=AUDIO_TOKEN_ID)
    with torch.device(device):
        model = (MintForConditionalGeneration if stage == 2 else MintForPreTraining)(config)
    if bf16:
        model.audio_model.to(torch.bfloat16)
        if stage == 2:
            model.language_model.to(torch.bfloat16)
    return model


# A row of T5's 32128 that the random prompts (ids 1000-20000) never use: MINT's audio placeholder here.
AUDIO_TOKEN_ID = 32100


def with_audio_placeholders(text: dict[str, torch.Tensor], num_queries: int) -> dict[str, torch.Tensor]:
    """MINT's LLM inputs: `num_queries` audio placeholders in front of each prompt, as `MintProcessor` builds them
    (the baseline prepends its soft prompt by hand, so both LLMs see the same lengths)."""
    ids, mask = text["input_ids"], text["attention_mask"]
    placeholders = torch.full((ids.shape[0], num_queries), AUDIO_TOKEN_ID, dtype=ids.dtype, device=ids.device)
    return {**text, "input_ids": torch.cat([placeholders, ids], 1),
            "attention_mask": torch.cat([torch.ones_like(placeholders), mask], 1)}


def text_batch(size: dict, batch: int, device: str, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """
    Random prompts (LLM and Q-Former vocabularies) and targets of mixed lengths, right-padded: prompts of a quarter to
    all of `n_text` tokens, targets of 2 to `n_label`; the first example has both at full length, so the padded batch
    has the baseline's shapes.
    """
    n_text, n_label = size["n_text"], size["n_label"]
    prompt_length = torch.randint(max(n_text // 4, 1), n_text + 1, (batch,), generator=generator)
    target_length = torch.randint(2, n_label + 1, (batch,), generator=generator)
    prompt_length[0], target_length[0] = n_text, n_label
    mask = (torch.arange(n_text) < prompt_length[:, None]).long()
    ids, qids = (torch.randint(1000, 20000, (batch, n_text), generator=generator) * mask for _ in range(2))
    labels = torch.randint(1000, 20000, (batch, n_label), generator=generator)
    labels = labels.masked_fill(torch.arange(n_label) >= target_length[:, None], -100)
    tensors = dict(qformer_input_ids=qids, qformer_attention_mask=mask, input_ids=ids, attention_mask=mask,
                   labels=labels)
    return {k: v.to(device) for k, v in tensors.items()}


class PartClock:
    """
    Splits a training step into contiguous parts: each `enter(part)` ends the running part and starts `part`, so the
    parts add up to the step. At each mark it reads `read()` (a CUDA event, the host clock, or the FLOPs counted so
    far); `difference(start, end)` is a part's share.
    """

    def __init__(self, read: Callable, difference: Callable, has_llm: bool, sync: Callable = lambda: None):
        self.read, self.difference, self.has_llm, self.sync = read, difference, has_llm, sync
        self.marks: list = []

    def enter(self, part: str | None) -> None:
        self.marks.append((part, self.read()))

    def enter_backward(self) -> None:
        self.enter("llm_backward" if self.has_llm else "qformer_backward")

    def totals(self) -> dict[str, float]:
        """Each part's share over the marks so far; then starts over."""
        self.sync()
        totals = dict.fromkeys(PARTS, 0.0)
        for (part, start), (_, end) in zip(self.marks, self.marks[1:]):
            totals[part] += self.difference(start, end)
        self.marks = []
        return totals


def _cuda_event() -> torch.cuda.Event:
    event = torch.cuda.Event(enable_timing=True)
    event.record()
    return event


def time_clock(device: str, has_llm: bool) -> PartClock:
    """Milliseconds per part: CUDA events on the GPU (nothing waits inside the step), the host clock on the CPU."""
    if device == "cuda":
        return PartClock(_cuda_event, lambda start, end: start.elapsed_time(end), has_llm, torch.cuda.synchronize)
    return PartClock(time.perf_counter, lambda start, end: 1000 * (end - start), has_llm)


class NoClock:
    """What an untimed step marks its parts on."""

    def enter(self, part: str | None) -> None:
        pass

    def enter_backward(self) -> None:
        pass


@contextlib.contextmanager
def watch_parts(clock: PartClock, encoder: nn.Module, bridge: nn.Module, llm: nn.Module | None):
    """
    Hooks that mark the parts on `clock`: the encoder's forward, the Q-Former's, the LLM's forward (from its call to
    the next part); in backward the LLM from the gradient of its logits to that of its input embeddings, the rest of
    backward (the soft prompt's way back to the Q-Former) as Q-Former backward. Marks each micro-batch alike.
    """

    def llm_inputs(module, args, kwargs):
        clock.enter("llm_forward")
        embeds = kwargs.get("inputs_embeds")
        if embeds is not None and embeds.requires_grad:
            embeds.register_hook(lambda grad: clock.enter("qformer_backward"))

    def llm_outputs(module, args, output):
        if output.logits.requires_grad:
            output.logits.register_hook(lambda grad: clock.enter("llm_backward"))

    handles = [encoder.register_forward_pre_hook(lambda *_: clock.enter("encoder")),
               encoder.register_forward_hook(lambda *_: clock.enter("other")),
               bridge.register_forward_pre_hook(lambda *_: clock.enter("qformer_forward"))]
    if llm is not None:
        handles += [llm.register_forward_pre_hook(llm_inputs, with_kwargs=True),
                    llm.register_forward_hook(llm_outputs)]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def adamw(model: nn.Module) -> torch.optim.Optimizer:
    """
    AdamW over the trainable parameters at rate 0: a step does all of its work while the weights stay as they are, so
    the losses of the rows with levers are on the plain model's weights.
    """
    return torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=0.0)


def train_step(loss_fn: Callable[[], torch.Tensor], optimizer, device: str, autocast: bool):
    """One optimizer step on `loss_fn()` (under bf16 autocast when `autocast`), its parts marked on a clock."""

    def step(clock: PartClock | NoClock | None = None):
        clock = clock or NoClock()
        clock.enter("other")
        with torch.autocast(device, dtype=torch.bfloat16, enabled=autocast):
            loss = loss_fn()
        clock.enter_backward()
        loss.backward()
        clock.enter("optimizer")
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        clock.enter(None)

    return step


def count_flops(step, encoder: nn.Module, bridge: nn.Module, llm: nn.Module | None) -> dict[str, float]:
    """TFLOP of one training step (`torch.utils.flop_counter`): in all, and in each part, marked as for the times."""
    with FlopCounterMode(display=False) as counter:
        clock = PartClock(counter.get_total_flops, lambda start, end: (end - start) / 1e12, llm is not None)
        with watch_parts(clock, encoder, bridge, llm):
            step(clock)
    return {"total": counter.get_total_flops() / 1e12, **clock.totals()}


def _status_gib(field: str) -> float:
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith(field))
    return int(line.split()[1]) / 2**20


class Bench:
    """Times, counts and records the figures; writes them as JSON after each row."""

    def __init__(self, args, device: str):
        self.args, self.device = args, device
        self.repeats = args.repeats or (10 if device == "cuda" else 2)
        self.peak = args.peak_tflops
        name = torch.cuda.get_device_name() if device == "cuda" else platform.processor() or "cpu"
        self.results = {"device": name, "torch": torch.__version__, "transformers": transformers.__version__,
                        "size": "tiny" if args.tiny else "full", "peak_tflops": self.peak,
                        "memory": "CUDA max allocated" if device == "cuda" else "peak RSS of the process",
                        "cpu_threads": torch.get_num_threads()}

    def sync(self):
        if self.device == "cuda":
            torch.cuda.synchronize()

    def wall_ms(self, fn) -> float:
        start = time.perf_counter()
        fn()
        self.sync()
        return 1000 * (time.perf_counter() - start)

    def median_ms(self, fn) -> tuple[float, float]:
        """The first call's time (compilation included) and the median of `repeats` calls after one more warm-up."""
        times = [self.wall_ms(fn) for _ in range(self.repeats + 2)]
        return times[0], sorted(times[2:])[len(times[2:]) // 2]

    def peak_gib(self, fn) -> float | None:
        if self.device == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
            fn()
            self.sync()
            return torch.cuda.max_memory_allocated() / 2**30
        try:
            with open("/proc/self/clear_refs", "w") as f:  # restarts the kernel's peak-RSS count (VmHWM)
                f.write("5")
        except OSError:
            return None
        fn()
        return _status_gib("VmHWM:")

    def record(self, key: str, fn, samples: int) -> dict:
        first_ms, ms = self.median_ms(fn)
        entry = {"ms": ms, "per_s": samples / (ms / 1000), "first_ms": first_ms, "peak_gib": self.peak_gib(fn)}
        self.results[key] = entry
        self.write()
        return entry

    def record_train(self, key: str, step, samples: int, encoder: nn.Module, bridge: nn.Module, llm: nn.Module | None,
                     tflop: dict | None = None, **extra) -> dict:
        """
        A training row: time, peak memory, TFLOP and MFU, and the step split into parts with each part's MFU. Timed
        steps alternate with steps whose parts are marked, so both see the same load; the parts are those of the
        marked step of median length (`parts_step_ms`, its wall time).
        """
        tflop = tflop or count_flops(step, encoder, bridge, llm)
        first_ms = self.wall_ms(step)
        self.wall_ms(step)
        clock = time_clock(self.device, llm is not None)
        times, marked = [], []
        for _ in range(self.repeats):
            times.append(self.wall_ms(step))
            with watch_parts(clock, encoder, bridge, llm):
                wall = self.wall_ms(lambda: step(clock))
            marked.append((wall, clock.totals()))
        ms = sorted(times)[len(times) // 2]
        wall, parts = sorted(marked, key=lambda run: run[0])[len(marked) // 2]
        entry = {"ms": ms, "per_s": samples / (ms / 1000), "first_ms": first_ms, "peak_gib": self.peak_gib(step),
                 "tflop": tflop["total"], "mfu": self.mfu(tflop["total"], ms), "parts_ms": parts,
                 "parts_total_ms": sum(parts.values()), "parts_step_ms": wall, "parts_tflop": tflop,
                 "parts_mfu": {part: self.mfu(tflop[part], parts[part]) for part in COMPUTE_PARTS}, **extra}
        self.results[key] = entry
        self.write()
        return entry

    def mfu(self, tflop: float, ms: float) -> float | None:
        return tflop / (ms / 1000) / self.peak if ms > 0 else None

    def write(self) -> None:
        write_results(self.results, self.args.output)


def free(device: str) -> None:
    gc.collect()
    if device == "cuda":
        torch.cuda.empty_cache()


def bench_stock_parts(bench: Bench, size: dict, wav: torch.Tensor, text: dict, bf16: bool) -> None:
    """The baseline: stage-2 step, captioning, and the stage-1 passes, composed from stock parts."""
    device, batch = bench.device, len(wav)
    with torch.device(device):
        naive = NaiveMint(size, device)
    if bf16:
        naive.enc.to(torch.bfloat16)
        naive.lm.to(torch.bfloat16)
    wav = wav.to(naive.enc.dtype)
    inputs = dict(wav=wav, qids=text["qformer_input_ids"], qmask=text["qformer_attention_mask"],
                  ids=text["input_ids"], mask=text["attention_mask"], labels=text["labels"])
    optimizer = adamw(naive)
    step = train_step(lambda: naive(**inputs), optimizer, device, autocast=False)
    bench.record_train("baseline_train", step, batch, naive.enc, naive.qformer, naive.lm)
    caption = [inputs[k] for k in ("wav", "qids", "qmask", "ids", "mask")]
    bench.record("baseline_caption", lambda: naive.caption(*caption, bench.args.caption_tokens), batch)
    naive.lm = None  # stage 1 has no LLM: its peak memory is measured without one, as MINT's
    free(device)
    stage1 = train_step(lambda: naive.stage1_step(wav, inputs["qids"], inputs["qmask"]), optimizer, device,
                        autocast=False)
    bench.record_train("stock_stage1_train", stage1, batch, naive.enc, naive.qformer, None)


def check_captions(model, inputs: dict, batched: torch.Tensor, generate_kwargs: dict, check: int) -> dict:
    """The first `check` clips captioned alone (their prompts without padding) against their batched captions."""
    alone = [model.generate(**trim_padding({k: v[i : i + 1] for k, v in inputs.items()}), **generate_kwargs)[0]
             for i in range(check)]
    same = [torch.equal(batched[i], one) for i, one in enumerate(alone)]
    agreeing = [(batched[i, : len(one)] == one).float().mean().item() for i, one in enumerate(alone)]
    return {"caption_batched_equals_unbatched": all(same), "caption_token_agreement": sum(agreeing) / check,
            "caption_distinct_tokens": len(batched[:, 1:].unique())}


def bench_captioning_and_ranking(bench: Bench, model, wav: torch.Tensor, text: dict,
                                 autocast: bool) -> tuple[Callable, torch.Tensor]:
    """Batched captioning (checked against unbatched) and ranking; returns the captioning call and its output."""
    device, batch, tokens = bench.device, len(wav), bench.args.caption_tokens
    model.eval()
    prompt = {"input_values": wav, **{k: v for k, v in text.items() if k != "labels"}}
    generate_kwargs = dict(max_new_tokens=tokens, min_new_tokens=tokens, num_beams=1, do_sample=False)

    def caption():
        with torch.autocast(device, dtype=torch.bfloat16, enabled=autocast):
            return model.generate(**prompt, **generate_kwargs)

    bench.record("mint_caption", caption, batch)
    batched = caption()
    bench.results.update(check_captions(model, prompt, batched, generate_kwargs, min(batch, 4)))
    generator = torch.Generator().manual_seed(1)
    candidates = torch.randint(1000, 20000, (10, 3), generator=generator).to(device)
    candidate_mask = torch.ones_like(candidates)

    def ranking():
        return model.score_candidates(candidates, candidate_mask, **prompt)

    @torch.no_grad()
    def per_candidate():
        scores = []
        for c in candidates:
            target = c.repeat(batch, 1)
            logprobs = model(**prompt, labels=target).logits.float().log_softmax(-1)
            scores.append(logprobs.gather(-1, target[..., None]).squeeze(-1).sum(-1))
        return torch.stack(scores, dim=1)

    bench.record("mint_rank10", ranking, batch)
    bench.record("loop_rank10", per_candidate, batch)
    bench.results["rank_scores_max_abs_diff"] = float((ranking().float() - per_candidate()).abs().max())
    model.train()
    return caption, batched


def bench_static_cache(bench: Bench, model, caption: Callable, batched: torch.Tensor) -> None:
    """Captioning with a static key/value cache (compiled by transformers on CUDA), checked equal to the default."""
    model.eval()
    model.language_model.generation_config.cache_implementation = "static"
    bench.record("mint_caption_static_cache", caption, len(batched))
    bench.results["static_cache_equals_default"] = torch.equal(caption(), batched)
    model.train()


def eval_loss(model, loss_fn, device: str, autocast: bool) -> float:
    """The loss without dropout: what a lever must leave unchanged."""
    model.eval()
    with torch.no_grad(), torch.autocast(device, dtype=torch.bfloat16, enabled=autocast):
        loss = float(loss_fn())
    model.train()
    return loss


class Stage2Levers:
    """
    The stage-2 model with the levers applied one after another: after each, the cached step (with its loss next to
    the plain model's) and, at the end of a group of levers, the step with the encoder in the loop.
    """

    def __init__(self, bench: Bench, model, in_loop: dict, cached: dict, autocast: bool):
        self.bench, self.model, self.in_loop, self.cached, self.autocast = bench, model, in_loop, cached, autocast
        self.optimizer = adamw(model)
        self.parts = (model.audio_model, model.qformer, model.language_model)
        self.batch = len(cached["labels"])
        self.levers: list[str] = []
        self.length_groups = 1
        self.tflop = None

    def loss_fn(self, inputs: dict):
        if self.length_groups > 1:
            return lambda: length_grouped_loss(self.model, inputs, self.length_groups)
        return lambda: self.model(**inputs).loss

    def step(self, inputs: dict):
        return train_step(self.loss_fn(inputs), self.optimizer, self.bench.device, self.autocast)

    def plain(self) -> None:
        """The package as it is: the step with the encoder in the loop, and from the cache (with its loss)."""
        self.bench.record_train("mint_train", self.step(self.in_loop), self.batch, *self.parts)
        entry = self.bench.record_train("mint_train_cached", self.step(self.cached), self.batch, *self.parts,
                                        loss=self.loss(self.cached))
        self.tflop = entry["parts_tflop"]

    def loss(self, inputs: dict) -> float:
        return eval_loss(self.model, self.loss_fn(inputs), self.bench.device, self.autocast)

    def row(self, lever: str, same_flops: bool = False, check_loss: bool = True) -> None:
        """The cached step with `lever` added; `same_flops`: the lever changes no FLOP count (taken from before)."""
        self.levers.append(lever)
        extra = {}
        if check_loss:
            plain = self.bench.results["mint_train_cached"]["loss"]
            loss = self.loss(self.cached)
            extra = {"loss": loss, "loss_rel_diff": abs(loss - plain) / abs(plain)}
        entry = self.bench.record_train(f"mint_train_cached+{'+'.join(self.levers)}", self.step(self.cached),
                                        self.batch, *self.parts, tflop=self.tflop if same_flops else None, **extra)
        self.tflop = entry["parts_tflop"]

    def in_loop_row(self, tflop: dict | None = None) -> None:
        self.bench.record_train(f"mint_train+{'+'.join(self.levers)}", self.step(self.in_loop), self.batch,
                                *self.parts, tflop=tflop, levers=list(self.levers))

    def cheap(self, length_groups: int, bridge: bool) -> None:
        """Length groups and Bridge-Net autocast: no compilation, measured first."""
        if length_groups > 1:
            self.length_groups = length_groups
            self.row("length_groups")
        if bridge:
            autocast_bridge(self.model)
            self.autocast = False
            self.row("bridge_autocast", same_flops=True)
        if self.levers:
            self.in_loop_row()

    def compiled(self, parts: str, backend: str, mode: str | None) -> None:
        """
        Regional compilation on top of the levers so far. Its losses are not compared here (an eval-mode check would
        compile every layer once more; `tests/test_speed.py` compares compiled and eager losses and gradients), and
        its FLOPs are counted before compiling (the counter does not see into compiled layers; compiling adds none).
        """
        in_loop_tflop = count_flops(self.step(self.in_loop), *self.parts)
        compiled = compile_regions(self.model, parts=tuple(parts.split(",")), backend=backend, mode=mode,
                                   dynamic=True if self.length_groups > 1 else None)
        self.bench.results["compiled_layers"] = len(compiled)
        self.row("compile", same_flops=True, check_loss=False)
        self.in_loop_row(in_loop_tflop)


def bench_stage2(bench: Bench, size: dict, wav: torch.Tensor, text: dict, bf16: bool) -> None:
    """
    MINT's stage-2 step (encoder in the loop, feature cache), captioning, ranking, then the levers asked for: the
    cheap ones, static-cache captioning, and compilation last (the slowest to set up).
    """
    args = bench.args
    model = package_model(size, bench.device, stage=2, bf16=bf16)
    text = with_audio_placeholders(text, model.config.num_query_tokens)
    with torch.no_grad():
        features, frame_mask = model.get_audio_encoder_features(input_values=wav)
    in_loop = {"input_values": wav, **text}
    cached = {**text, ENCODER_FEATURES_KEY: features, CACHED_FEATURES_MASK: frame_mask}
    levers = Stage2Levers(bench, model, in_loop, cached, autocast=bf16)
    levers.plain()
    caption, batched = bench_captioning_and_ranking(bench, model, wav, text, autocast=bf16)
    attempt(bench, "levers", levers.cheap, args.length_groups, args.bridge_autocast)
    if args.static_cache:
        attempt(bench, "static_cache", bench_static_cache, bench, model, caption, batched)
    if args.compile:
        attempt(bench, "compile", levers.compiled, args.compile, args.compile_backend, args.compile_mode)


def attempt(bench: Bench, name: str, fn: Callable, *args) -> None:
    """Runs a lever's rows; a failure is recorded under `errors` (and printed) and the run goes on to the next."""
    try:
        fn(*args)
    except Exception as error:  # one lever failing on a machine must not cost the figures of the others
        traceback.print_exc()
        bench.results.setdefault("errors", {})[name] = f"{type(error).__name__}: {error}"[:2000]
        bench.write()


def bench_stage1(bench: Bench, size: dict, wav: torch.Tensor, text: dict, bf16: bool) -> None:
    model = package_model(size, bench.device, stage=1, bf16=bf16).train()
    optimizer = adamw(model)
    inputs = dict(input_values=wav, qformer_input_ids=text["qformer_input_ids"],
                  qformer_attention_mask=text["qformer_attention_mask"])
    step = train_step(lambda: model(**inputs).loss, optimizer, bench.device, autocast=bf16)
    bench.record_train("mint_stage1_train", step, len(wav), model.audio_model, model.qformer, None)


def _last(results: dict, prefix: str) -> str | None:
    """The last row whose name starts with `prefix` (the one with the most levers)."""
    return next((key for key in reversed(results) if key.startswith(prefix)), None)


def ratios(results: dict) -> dict[str, float]:
    """Throughput of each package row over its reference (and peak memory of the stage-2 step over the baseline's)."""
    pairs = {"train_audio_in_loop": ("mint_train", "baseline_train"),
             "train_from_cache": ("mint_train_cached", "baseline_train"),
             "train_audio_in_loop_levers": (_last(results, "mint_train+"), "baseline_train"),
             "train_from_cache_levers": (_last(results, "mint_train_cached+"), "baseline_train"),
             "captioning": ("mint_caption", "baseline_caption"),
             "captioning_static_cache": ("mint_caption_static_cache", "baseline_caption"),
             "rank10_vs_loop": ("mint_rank10", "loop_rank10"),
             "stage1_vs_stock": ("mint_stage1_train", "stock_stage1_train")}
    out = {name: results[a]["per_s"] / results[b]["per_s"] for name, (a, b) in pairs.items()
           if a in results and b in results}
    if "mint_train" in results and results["baseline_train"]["peak_gib"]:
        out["train_peak_memory_vs_baseline"] = results["mint_train"]["peak_gib"] / results["baseline_train"]["peak_gib"]
    return out


def run(args) -> dict:
    device = "cuda" if torch.cuda.is_available() and not args.cpu else "cpu"
    bf16 = device == "cuda" and not args.fp32
    if args.fp32 and device == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    size = sizes(args.tiny)
    batch = args.batch or (64 if not args.tiny else 2)
    bench = Bench(args, device)
    bench.results.update(batch=batch, seconds=size["seconds"], precision="bf16 frozen parts" if bf16 else "fp32")
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    wav = torch.randn(batch, 16000 * size["seconds"], generator=generator).to(device)
    text = text_batch(size, batch, device, generator)
    for section in (bench_stock_parts, bench_stage1, bench_stage2):
        section(bench, size, wav, text, bf16)
        free(device)
    bench.results["ratios"] = ratios(bench.results)
    bench.write()
    return bench.results


def _fmt(value, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def _lever_label(key: str) -> str:
    """`mint_train_cached+length_groups+compile` -> `stage-2 step, cache, length_groups + compile`."""
    row, levers = key.split("+", 1)
    return f"stage-2 step, {'cache' if row == 'mint_train_cached' else 'audio in loop'}, {levers.replace('+', ' + ')}"


def table(results: dict) -> str:
    """The figures as Markdown (from a finished run or one cut short): throughput against the references, then each
    training step's parts, then the equality checks."""
    levers = [key for key in results if key.startswith(("mint_train+", "mint_train_cached+"))]
    rows = [("stage-2 step, audio in loop", "baseline_train", "mint_train"),
            ("stage-2 step, feature cache", "baseline_train", "mint_train_cached"),
            *[(_lever_label(key), "baseline_train", key) for key in levers],
            ("captioning, batched", "baseline_caption", "mint_caption"),
            ("captioning, static cache", "baseline_caption", "mint_caption_static_cache"),
            ("vocabulary ranking, 10 labels", "loop_rank10", "mint_rank10"),
            ("stage-1 step", "stock_stage1_train", "mint_stage1_train")]
    lines = [f"{results['device']}, torch {results['torch']}, transformers {results['transformers']}, "
             f"{results['size']} size, batch {results['batch']}, {results['seconds']} s clips, "
             f"{results['precision']}, MFU against {results['peak_tflops']:g} TFLOP/s, memory: {results['memory']}",
             "", "| what | reference /s | MINT /s | ratio | MINT ms | MINT MFU | MINT peak GiB | reference peak GiB |",
             "|---|---|---|---|---|---|---|---|"]
    for label, ref, ours in rows:
        if ours in results and ref in results:
            a, b = results[ref], results[ours]
            lines.append(f"| {label} | {a['per_s']:.1f} | {b['per_s']:.1f} | {b['per_s'] / a['per_s']:.2f}x | "
                         f"{b['ms']:.1f} | {_fmt(b.get('mfu'), '.1%')} | {_fmt(b['peak_gib'], '.2f')} | "
                         f"{_fmt(a['peak_gib'], '.2f')} |")
    header = " | ".join(PARTS) + " | sum | step | MFU " + " / ".join(COMPUTE_PARTS)
    lines += ["", f"| training step, ms | {header} |", "|---|" + "---|" * (len(PARTS) + 3)]
    for key, entry in results.items():
        if isinstance(entry, dict) and "parts_ms" in entry:
            mfu = " / ".join(_fmt(entry["parts_mfu"][part], ".1%") for part in COMPUTE_PARTS)
            lines.append(f"| {key} | " + " | ".join(f"{entry['parts_ms'][part]:.1f}" for part in PARTS)
                         + f" | {entry['parts_total_ms']:.1f} | {entry['ms']:.1f} | {mfu} |")
    lines.append("")
    if "caption_batched_equals_unbatched" in results:
        lines.append(f"captions batched == unbatched: {results['caption_batched_equals_unbatched']} (token agreement "
                     f"{results['caption_token_agreement']:.1%}, {results['caption_distinct_tokens']} distinct "
                     f"tokens); ranking scores max |diff| against the loop: {results['rank_scores_max_abs_diff']:.2e}")
    if "static_cache_equals_default" in results:
        lines.append(f"static-cache captions == default: {results['static_cache_equals_default']}")
    lines += [f"{key}: loss {entry['loss']:.6f}, relative difference to the plain model {entry['loss_rel_diff']:.2e}"
              for key, entry in results.items() if isinstance(entry, dict) and "loss_rel_diff" in entry]
    lines += [f"{name} failed: {error}" for name, error in results.get("errors", {}).items()]
    lines.append("ratios: " + ", ".join(f"{k} {v:.2f}" for k, v in ratios(results).items()))
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tiny", action="store_true", help="small sizes that run on CPU in seconds")
    parser.add_argument("--batch", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=None, help="timed calls per row (default 10 on GPU, 2 on CPU)")
    parser.add_argument("--caption-tokens", type=int, default=30)
    parser.add_argument("--cpu", action="store_true", help="stay on the CPU even when a GPU is there")
    parser.add_argument("--fp32", action="store_true",
                        help="everything in fp32, TF32 off (exact equality checks on a GPU; not a speed setting)")
    parser.add_argument("--peak-tflops", type=float, default=H200_BF16_TFLOPS,
                        help="the card's peak for MFU (default: H200/H100 dense bf16, 790)")
    parser.add_argument("--output", default=None, help="write the figures as JSON here (after every row)")
    parser.add_argument("--show", default=None, metavar="JSON", help="print the tables of a results file and exit")
    levers = parser.add_argument_group("levers (mint.training.speed), applied one after another in this order")
    levers.add_argument("--length-groups", type=int, default=1, metavar="N",
                        help="split each batch into N micro-batches of similar text length, padding cut")
    levers.add_argument("--bridge-autocast", action="store_true",
                        help="Bridge-Net alone under bf16 autocast, fp32 master weights (no autocast elsewhere)")
    levers.add_argument("--static-cache", action="store_true", help="captioning with a static key/value cache")
    levers.add_argument("--compile", nargs="?", const="language_model", default=None, metavar="PARTS",
                        help="regional torch.compile of the layers of these parts, comma-separated (default: "
                             "language_model; qformer and audio_model may be added)")
    levers.add_argument("--compile-backend", default="inductor")
    levers.add_argument("--compile-mode", default=None, help="torch.compile mode, e.g. max-autotune-no-cudagraphs")
    args = parser.parse_args(argv)
    if args.show:
        with open(args.show) as f:
            print(table(json.load(f)))
        return None
    results = run(args)
    print(table(results))
    if not args.output:
        print(json.dumps(results, indent=1))
    return results


def write_results(results: dict, path: str | None) -> None:
    """The figures as JSON at `path` (nothing without one): what the README's tables are read from."""
    if path:
        with open(path, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
