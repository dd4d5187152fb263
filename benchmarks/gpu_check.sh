#!/usr/bin/env bash
# The one script for a GPU machine: every figure of the benchmark in one short call, at most about
# 7 minutes on an H200 (each run has its own time limit; JSON is written under $OUT after every row, so a run cut at
# its limit keeps what it measured, and its tables are printed from that JSON).
#   1. tiny sizes in fp32, TF32 off (limit 90 s): exact checks on the GPU, batched == unbatched captions and static
#      cache == default (compiled by transformers on CUDA), and the levers' losses against the plain model's;
#   2. the data path on the machine's cores (limit 30 s): how many DataLoader workers feed a training step;
#   3. full size against the stock parts in the same process (limit 300 s): batch 64, 10 s clips, every row with its
#      parts and MFU, then the levers one after another, regional compilation last (the slowest to set up).
# On a machine without the data path's audio packages (soundfile, librosa, datasets), install them (or their wheels
# from .whl) to get figure 2; without them it is reported as skipped.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-benchmark-results}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
if compgen -G ".whl/*.whl" >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH=/tmp/site
fi
{ nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv
  python3 -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__)"
  echo "cpu cores: $(nproc)"; } | tee "$OUT/machine.txt"

bench() {  # name, time limit in seconds, benchmark arguments
  local name=$1 limit=$2 status
  shift 2
  timeout "$limit" python3 benchmarks/benchmark_mint.py --output "$OUT/$name.json" "$@" >"$OUT/$name.log" 2>&1
  status=$?
  echo "== $name (exit $status$([ $status -eq 124 ] && echo ", cut at ${limit} s: the rows measured so far"))"
  [ $status -ne 0 ] && [ $status -ne 124 ] && tail -n 15 "$OUT/$name.log"
  [ -f "$OUT/$name.json" ] && python3 benchmarks/benchmark_mint.py --show "$OUT/$name.json"
}

bench tiny_fp32 90 --tiny --fp32 --repeats 2 --caption-tokens 8 --length-groups 2 --bridge-autocast --static-cache
echo "== data path"
timeout 30 python3 benchmarks/benchmark_data.py --output "$OUT/data.json" 2>"$OUT/data.log" \
  || echo "skipped or failed (exit $?): $(tail -n 1 "$OUT/data.log")"
bench full_64 300 --batch 64 --repeats 5 --length-groups 2 --bridge-autocast --static-cache --compile
