# Copyright 2026 The MINT package authors. Licensed under the Apache License, Version 2.0.
"""Preparing, caching and streaming a dataset without holding it in memory: peak RSS and clips per second.

    python benchmarks/benchmark_scale.py                          # 20,000 clips of 1 s
    python benchmarks/benchmark_scale.py --tiny                   # CI smoke size (200 clips)
    python benchmarks/benchmark_scale.py --clips 100000 --num-proc 4 --output scale.json

A synthetic dataset of `--clips` clips (tones in noise, 16 kHz mono flac, `--seconds` long) is written to disk, then:

1. prepare: an Arrow dataset of audio-caption pairs with the audio bytes embedded (as a Hub dataset holds them), built
   from a generator and saved with `save_to_disk` in shards of `--max-shard-size`;
2. cache: `cache_audio_features` over it in `--num-shards` resumable shards and `--num-proc` processes, then merged;
   the encoder is a tiny data2vec (64-d, 2 layers), so this measures the data path (decoding, feature extraction,
   Arrow writes) rather than the encoder, which the paper-size check measures;
3. stream: a streamed stage-1 recipe over the cache, read through `MintDataCollator` as training reads it.

For each it reports seconds, clips per second, the peak resident memory (RSS, which also counts the pages of the
memory-mapped Arrow files read or written) and the peak of the memory the process allocated (anonymous RSS), the
cache's worker processes separately; and the cache's bytes on disk against the raw feature values, from which the
README's disk costs at WavCaps' and the paper's sizes are computed (`feature_cache_gb_per_hour` x this overhead).
"""

import argparse
import itertools
import os
import resource
import shutil
import sys
import tempfile
import threading
import time

import numpy as np
import soundfile
import torch
from datasets import Audio, Dataset, Features, Value, disable_progress_bars, load_from_disk
from transformers import Data2VecAudioConfig

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmark_data import processor  # noqa: E402  (this folder is on the path when run as a script)
from benchmark_mint import write_results  # noqa: E402
from configuration_mint import MintConfig, MintQFormerConfig  # noqa: E402
from mint.data.cache import cache_audio_features  # noqa: E402
from mint.data.collator import MintDataCollator  # noqa: E402
from modeling_mint import MintForPreTraining  # noqa: E402
from paper_size_check import GIB, PeakRss  # noqa: E402
from mint.training.recipe import MintRecipe  # noqa: E402
from mint.training.train_data import build_train_dataset  # noqa: E402


WORDS = "a dog cat piano flute drum rain bird plays barks sings softly loudly low high note in the room".split()


def write_clips(folder: str, count: int, seconds: float, rate: int = 16000) -> list[str]:
    """`count` flac clips of distinct tones in noise."""
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * rate)) / rate
    paths = []
    for i in range(count):
        audio = 0.3 * np.sin(2 * np.pi * (100 + 7 * (i % 1000)) * t) + 0.05 * rng.standard_normal(t.size)
        paths.append(os.path.join(folder, f"clip{i:07d}.flac"))
        soundfile.write(paths[-1], audio.astype(np.float32), rate)
    return paths


def caption(i: int) -> str:
    return " ".join(WORDS[(i * k + k) % len(WORDS)] for k in range(1, 7))


def prepare(paths: list[str], output: str, work: str, max_shard_size: str) -> Dataset:
    """Audio-caption pairs with embedded audio, written row by row (never all in memory) and saved in shards."""
    def rows():
        for i, path in enumerate(paths):
            with open(path, "rb") as f:
                yield {"audio": {"bytes": f.read(), "path": os.path.basename(path)}, "caption": caption(i)}

    # Written as a plain struct, then cast to an undecoded Audio column (encoding through `Audio` needs torchcodec).
    features = Features({"audio": {"bytes": Value("binary"), "path": Value("string")}, "caption": Value("string")})
    pairs = Dataset.from_generator(rows, features=features, cache_dir=work).cast_column("audio", Audio(decode=False))
    pairs.save_to_disk(output, max_shard_size=max_shard_size)
    return load_from_disk(output)


def tiny_encoder() -> MintForPreTraining:
    audio = Data2VecAudioConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128,
                                conv_dim=(32,) * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4)
    qformer = MintQFormerConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128)
    torch.manual_seed(0)
    return MintForPreTraining(MintConfig(audio_config=audio, qformer_config=qformer, num_query_tokens=8)).eval()


def stream(cache: str, clips: int, batch_size: int) -> int:
    """Reads `clips` examples of a streamed stage-1 recipe over the cache through the collator; returns the count."""
    recipe = MintRecipe(stage=1, datasets=[{"path": cache, "streaming": True}], max_steps=1)
    collate = MintDataCollator(processor(whisper=False), stage=1)
    examples = iter(build_train_dataset(recipe))
    seen = 0
    while seen < clips:
        batch = collate(list(itertools.islice(examples, min(batch_size, clips - seen))))
        seen += batch["qformer_input_ids"].shape[0]
    return seen


def folder_bytes(folder: str) -> int:
    return sum(os.path.getsize(os.path.join(root, f)) for root, _, files in os.walk(folder) for f in files)


def children_peak_gib() -> float:
    """Peak RSS of the largest finished child process (the cache's worker processes)."""
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024 / GIB


class AnonymousPeak:
    """
    Peak of the process's anonymous memory (RssAnon: what it allocated, not the pages of memory-mapped Arrow files that
    RSS also counts, which the kernel reclaims at will), sampled every 10 ms while the block runs (Linux).
    """

    def __enter__(self):
        self.peak, self._stop = 0, threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self):
        while True:
            try:
                with open("/proc/self/status") as f:
                    kib = next(int(line.split()[1]) for line in f if line.startswith("RssAnon"))
                self.peak = max(self.peak, kib * 1024 / GIB)
            except (OSError, StopIteration):
                return
            if self._stop.wait(0.01):
                return

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def timed(phase, clips: int, peak: PeakRss) -> tuple[object, dict]:
    peak.reset()
    start = time.perf_counter()
    with AnonymousPeak() as anonymous:
        result = phase()
    seconds = time.perf_counter() - start
    return result, {"seconds": seconds, "clips_per_s": clips / seconds, "peak_rss_gib": peak.gib(),
                    "peak_anonymous_gib": anonymous.peak}


def run(args, work: str) -> dict:
    clips = args.clips or (200 if args.tiny else 20000)
    peak = PeakRss()
    paths, written = timed(lambda: write_clips(os.path.join(work, "clips"), clips, args.seconds), clips, peak)
    prepared, prepare_figures = timed(lambda: prepare(paths, os.path.join(work, "prepared"), os.path.join(work, "tmp"),
                                                      args.max_shard_size), clips, peak)
    shutil.rmtree(os.path.join(work, "tmp"))
    encoder = tiny_encoder()
    cache = os.path.join(work, "cache")
    cached, cache_figures = timed(lambda: cache_audio_features(
        encoder, processor(whisper=False), prepared, cache, batch_size=args.batch_size, dtype=args.dtype,
        progress=False, num_proc=args.num_proc, num_shards=args.num_shards, max_shard_size=args.max_shard_size),
        clips, peak)
    cache_figures["worker_peak_rss_gib"] = children_peak_gib() if (args.num_proc or 1) > 1 else None
    frames = int(np.sum(cached["audio_length"]))
    raw = frames * encoder.config.audio_feature_size * np.dtype(args.dtype).itemsize
    streamed, stream_figures = timed(lambda: stream(cache, clips, 32), clips, peak)
    return {"clips": clips, "cached_clips": cached.num_rows, "streamed_clips": streamed, "clip_seconds": args.seconds,
            "num_proc": args.num_proc, "num_shards": args.num_shards, "dtype": args.dtype,
            "cpu_count": os.cpu_count(), "write": written, "prepare": prepare_figures,
            "cache": cache_figures, "stream": stream_figures,
            "audio_bytes": folder_bytes(os.path.join(work, "clips")),
            "prepared_bytes": folder_bytes(os.path.join(work, "prepared")), "cache_bytes": folder_bytes(cache),
            "cache_frames": frames, "cache_disk_over_raw": folder_bytes(cache) / raw}


def report(results: dict) -> str:
    lines = [f"{results['clips']:,} clips of {results['clip_seconds']:g} s, cache in {results['num_shards']} shards by "
             f"{results['num_proc']} processes ({results['dtype']}), {results['cpu_count']} CPU cores", "",
             "| phase | seconds | clips / s | peak RSS GiB | peak anonymous GiB |", "|---|---|---|---|---|"]
    for phase in ("write", "prepare", "cache", "stream"):
        f = results[phase]
        lines.append(f"| {phase} | {f['seconds']:.1f} | {f['clips_per_s']:.0f} | {f['peak_rss_gib']:.2f} | "
                     f"{f['peak_anonymous_gib']:.2f} |")
    worker = results["cache"]["worker_peak_rss_gib"]
    lines.append(f"cache worker processes: peak RSS {worker:.2f} GiB each" if worker is not None else "")
    lines.append(f"on disk: audio {results['audio_bytes'] / 1e6:.0f} MB, prepared "
                 f"{results['prepared_bytes'] / 1e6:.0f} MB, cache {results['cache_bytes'] / 1e6:.0f} MB "
                 f"({results['cache_disk_over_raw']:.3f} x the raw feature values)")
    return "\n".join(line for line in lines if line)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tiny", action="store_true", help="200 clips (CI smoke size)")
    parser.add_argument("--clips", type=int, default=None, help="number of clips (default 20,000)")
    parser.add_argument("--seconds", type=float, default=1.0, help="clip length")
    parser.add_argument("--num-proc", type=int, default=2, help="processes that encode the cache")
    parser.add_argument("--num-shards", type=int, default=8, help="resumable shards of the cache")
    parser.add_argument("--batch-size", type=int, default=16, help="clips per encoder batch")
    parser.add_argument("--dtype", choices=["float32", "float16"], default="float16")
    parser.add_argument("--max-shard-size", default="100MB", help="Arrow file size of the saved datasets")
    parser.add_argument("--workdir", default=None, help="where to write the data (default: a temporary folder)")
    parser.add_argument("--output", default=None, help="write the figures as JSON here")
    args = parser.parse_args(argv)
    disable_progress_bars()
    with tempfile.TemporaryDirectory(dir=args.workdir) as work:
        results = run(args, work)
    print(report(results))
    write_results(results, args.output)
    return results


if __name__ == "__main__":
    main()
