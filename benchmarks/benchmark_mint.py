# Copyright 2026 The MINT package authors. Licensed under the Apache License, Version 2.0.
"""MINT's speed and memory against the stock-parts baseline, in one process, on identical inputs and sizes.

    python benchmarks/benchmark_mint.py                  # full size (data2vec-base, BERT-base Q-Former, FlanT5-XL T5)
    python benchmarks/benchmark_mint.py --tiny           # CPU smoke size (what CI runs; no speed claims)
    python benchmarks/benchmark_mint.py --batch 64 --output bench.json

The baseline is `shared/bench/naive_hf_mint.py` (stock Data2VecAudio -> InstructBLIP Q-Former -> Linear -> T5, bf16
frozen parts, autocast Q-Former), ported here unchanged in what it computes. For each it prints samples/s, ms per
step, MFU (FLOPs counted with `torch.utils.flop_counter`, against the card's bf16 peak), peak memory, and the ratios:

* stage-2 training step with the audio encoder in the loop, and (package) from the frozen-feature cache;
* 30-token greedy captioning, batched (the package's batched outputs are checked equal to unbatched ones);
* vocabulary ranking over 10 candidates: `score_candidates` against a per-candidate loss loop (scores checked equal);
* stage-1 training step (ALC + ALM + ATG) against the same passes composed from the stock Q-Former.
"""

import argparse
import json
import os
import platform
import sys
import time

import torch
import transformers
from torch import nn
from torch.utils.flop_counter import FlopCounterMode
from transformers import Data2VecAudioConfig, Data2VecAudioModel, T5Config, T5ForConditionalGeneration
from transformers.models.instructblip.configuration_instructblip import InstructBlipQFormerConfig
from transformers.models.instructblip.modeling_instructblip import InstructBlipQFormerModel


sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from configuration_mint import MintConfig, MintQFormerConfig  # noqa: E402
from modeling_mint import MintForConditionalGeneration, MintForPreTraining  # noqa: E402


PEAK_BF16_TFLOPS = {"H200": 790.0, "H100": 790.0, "A100": 312.0}


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
    """The baseline of `shared/bench/naive_hf_mint.py`: stock parts wired together."""

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


def package_model(size: dict, device: str, stage: int) -> nn.Module:
    qformer = MintQFormerConfig(**{k: v for k, v in size["qformer"].items()})
    config = MintConfig(audio_config=size["audio"], qformer_config=qformer, text_config=t5_config(size),
                        num_query_tokens=size["n_query"], max_text_length=size["n_text"])
    with torch.device(device):
        model = (MintForConditionalGeneration if stage == 2 else MintForPreTraining)(config)
    if device == "cuda":  # bf16 frozen parts; Bridge-Net stays fp32 under autocast, as in the baseline
        model.audio_model.to(torch.bfloat16)
        if stage == 2:
            model.language_model.to(torch.bfloat16)
    return model


class Timer:
    def __init__(self, device: str, repeats: int):
        self.device, self.repeats = device, repeats

    def sync(self):
        if self.device == "cuda":
            torch.cuda.synchronize()

    def median(self, fn, warmup: int = 2) -> float:
        for _ in range(warmup):
            fn()
        self.sync()
        times = []
        for _ in range(self.repeats):
            start = time.perf_counter()
            fn()
            self.sync()
            times.append(time.perf_counter() - start)
        return sorted(times)[len(times) // 2]

    def peak_gib(self, fn) -> float | None:
        if self.device != "cuda":
            return None
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        fn()
        self.sync()
        return torch.cuda.max_memory_allocated() / 2**30


def flops(fn) -> float:
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def training_step(model, optimizer, device, **inputs):
    def step():
        with torch.autocast(device, dtype=torch.bfloat16, enabled=device == "cuda"):
            loss = model(**inputs).loss if not isinstance(model, NaiveMint) else model(**inputs)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return step


def run(args) -> dict:
    device = "cuda" if torch.cuda.is_available() and not args.cpu else "cpu"
    size = sizes(args.tiny)
    batch = args.batch or (64 if not args.tiny else 2)
    timer = Timer(device, args.repeats or (10 if device == "cuda" else 2))
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    wav = torch.randn(batch, 16000 * size["seconds"], generator=g).to(device)
    qids, ids = (torch.randint(1000, 20000, (batch, size["n_text"]), generator=g).to(device) for _ in range(2))
    labels = torch.randint(1000, 20000, (batch, size["n_label"]), generator=g).to(device)
    ones = torch.ones(batch, size["n_text"], dtype=torch.long, device=device)
    name = torch.cuda.get_device_name() if device == "cuda" else platform.processor() or "cpu"
    peak = next((v for k, v in PEAK_BF16_TFLOPS.items() if k in name), None)
    results = {"device": name, "torch": torch.__version__, "transformers": transformers.__version__,
               "size": "tiny" if args.tiny else "full", "batch": batch, "seconds": size["seconds"],
               "cpu_threads": torch.get_num_threads()}

    def record(key, fn, samples, count_flops=True):
        entry = {"ms": 1000 * timer.median(fn)}
        entry["per_s"] = samples / (entry["ms"] / 1000)
        if count_flops:
            entry["tflop"] = flops(fn) / 1e12
            entry["mfu"] = entry["tflop"] / (entry["ms"] / 1000) / peak if peak else None
        entry["peak_gib"] = timer.peak_gib(fn)
        results[key] = entry

    # ---- stage-2 training step -------------------------------------------------------------------------------
    with torch.device(device):
        naive = NaiveMint(size, device)
    if device == "cuda":
        naive.enc.to(torch.bfloat16)
        naive.lm.to(torch.bfloat16)
    naive_inputs = dict(wav=wav.to(naive.enc.dtype), qids=qids, qmask=ones, ids=ids, mask=ones, labels=labels)
    naive_opt = torch.optim.AdamW([p for p in naive.parameters() if p.requires_grad], lr=1e-4)
    record("baseline_train", training_step(naive, naive_opt, device, **naive_inputs), batch)

    model = package_model(size, device, stage=2)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    mint_inputs = dict(input_values=wav, qformer_input_ids=qids, qformer_attention_mask=ones, input_ids=ids,
                       attention_mask=ones, labels=labels)
    record("mint_train", training_step(model, optimizer, device, **mint_inputs), batch)
    with torch.no_grad():
        features, frame_mask = model.run_audio_encoder(wav)
    cached = {**{k: v for k, v in mint_inputs.items() if k != "input_values"}, "audio_features": features,
              "audio_attention_mask": frame_mask}
    record("mint_train_cached", training_step(model, optimizer, device, **cached), batch)

    # ---- captioning ------------------------------------------------------------------------------------------
    tokens = args.caption_tokens
    record("baseline_caption", lambda: naive.caption(wav.to(naive.enc.dtype), qids, ones, ids, ones, tokens), batch,
           count_flops=False)
    model.eval()
    caption_inputs = {k: v for k, v in mint_inputs.items() if k != "labels"}

    def caption():
        with torch.autocast(device, dtype=torch.bfloat16, enabled=device == "cuda"):
            return model.generate(**caption_inputs, max_new_tokens=tokens, min_new_tokens=tokens, num_beams=1,
                                  do_sample=False)
    record("mint_caption", caption, batch, count_flops=False)
    batched = caption()
    check = min(batch, 4)
    alone = [model.generate(**{k: v[i : i + 1] for k, v in caption_inputs.items()}, max_new_tokens=tokens,
                            min_new_tokens=tokens, num_beams=1, do_sample=False) for i in range(check)]
    results["caption_batched_equals_unbatched"] = all(torch.equal(batched[i], a[0]) for i, a in enumerate(alone)) \
        if device == "cpu" else None  # bf16 on the GPU: compare in the float32 check of the GPU script instead

    # ---- vocabulary ranking, 10 candidates -------------------------------------------------------------------
    candidates = torch.randint(1000, 20000, (10, 3), generator=g).to(device)
    candidate_mask = torch.ones_like(candidates)
    prompt = {k: v for k, v in caption_inputs.items()}
    ranking = lambda: model.score_candidates(candidates, candidate_mask, **prompt)  # noqa: E731

    @torch.no_grad()
    def per_candidate():
        scores = []
        for c in candidates:
            target = c.repeat(batch, 1)
            out = model(**prompt, labels=target)
            logprobs = out.logits.float().log_softmax(-1)
            scores.append(logprobs.gather(-1, target[..., None]).squeeze(-1).sum(-1))
        return torch.stack(scores, dim=1)
    record("mint_rank10", ranking, batch, count_flops=False)
    record("loop_rank10", per_candidate, batch, count_flops=False)
    results["rank_scores_max_abs_diff"] = float((ranking().float() - per_candidate()).abs().max())

    # ---- stage-1 training step -------------------------------------------------------------------------------
    model = optimizer = None  # free the stage-2 model before measuring stage 1
    stage1 = package_model(size, device, stage=1).train()
    stage1_opt = torch.optim.AdamW([p for p in stage1.parameters() if p.requires_grad], lr=1e-4)
    record("mint_stage1_train", training_step(stage1, stage1_opt, device, input_values=wav, qformer_input_ids=qids,
                                              qformer_attention_mask=ones), batch)

    def stock_stage1():
        naive.stage1_step(wav.to(naive.enc.dtype), qids, ones).backward()
        naive_opt.step()
        naive_opt.zero_grad(set_to_none=True)
    record("stock_stage1_train", stock_stage1, batch)

    results["ratios"] = {
        "train_audio_in_loop": results["mint_train"]["per_s"] / results["baseline_train"]["per_s"],
        "train_from_cache": results["mint_train_cached"]["per_s"] / results["baseline_train"]["per_s"],
        "captioning": results["mint_caption"]["per_s"] / results["baseline_caption"]["per_s"],
        "rank10_vs_loop": results["mint_rank10"]["per_s"] / results["loop_rank10"]["per_s"],
        "stage1_vs_stock": results["mint_stage1_train"]["per_s"] / results["stock_stage1_train"]["per_s"],
    }
    return results


def table(results: dict) -> str:
    rows = [("stage-2 step, audio in loop", "baseline_train", "mint_train"),
            ("stage-2 step, feature cache", "baseline_train", "mint_train_cached"),
            ("captioning, 30 tokens", "baseline_caption", "mint_caption"),
            ("vocabulary ranking, 10 labels", "loop_rank10", "mint_rank10"),
            ("stage-1 step", "stock_stage1_train", "mint_stage1_train")]
    fmt = lambda v, f: "n/a" if v is None else format(v, f)  # noqa: E731
    lines = [f"{results['device']}, torch {results['torch']}, transformers {results['transformers']}, "
             f"{results['size']} size, batch {results['batch']}, {results['seconds']} s clips", "",
             "| what | reference /s | MINT /s | ratio | MINT ms | MINT MFU | MINT peak GiB | reference peak GiB |",
             "|---|---|---|---|---|---|---|---|"]
    for label, ref, ours in rows:
        a, b = results[ref], results[ours]
        lines.append(f"| {label} | {a['per_s']:.1f} | {b['per_s']:.1f} | {b['per_s'] / a['per_s']:.2f}x | "
                     f"{b['ms']:.1f} | {fmt(b.get('mfu'), '.1%')} | {fmt(b['peak_gib'], '.1f')} | "
                     f"{fmt(a['peak_gib'], '.1f')} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tiny", action="store_true", help="small sizes that run on CPU in seconds")
    parser.add_argument("--batch", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--caption-tokens", type=int, default=30)
    parser.add_argument("--cpu", action="store_true", help="stay on the CPU even when a GPU is there")
    parser.add_argument("--output", default=None, help="write the figures as JSON here")
    args = parser.parse_args(argv)
    results = run(args)
    print(table(results))
    print(json.dumps(results, indent=1))
    write_results(results, args.output)
    return results


def write_results(results: dict, path: str | None) -> None:
    """The figures as JSON at `path` (nothing without one): what the README's tables are read from."""
    if path:
        with open(path, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
