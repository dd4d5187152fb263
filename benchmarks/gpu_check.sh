#!/usr/bin/env bash
# The one script for a lent GPU (device tool): correctness on the GPU at --tiny size, then the full-size benchmark
# against the stock-parts baseline (batch 64, 10 s clips) and the data-path figures. Writes JSON under $OUT.
set -euo pipefail
OUT=${OUT:-benchmark-results}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total --format=csv | tee "$OUT/gpu.txt"
python benchmarks/benchmark_mint.py --tiny --output "$OUT/tiny_gpu.json" | head -12
python benchmarks/benchmark_mint.py --batch 64 --output "$OUT/full_64.json" | head -12
python benchmarks/benchmark_data.py --output "$OUT/data.json"
