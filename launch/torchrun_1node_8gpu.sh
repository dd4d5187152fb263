#!/usr/bin/env bash
# One node of 8 GPUs: 8 processes, DDP. The recipe's batch_size is the global batch (the paper's 64 is 8 per GPU).
#   launch/torchrun_1node_8gpu.sh stage1.json [key=value ...]
# NPROC_PER_NODE overrides the number of processes (GPUs) on the node.
set -euo pipefail
export PYTHONPATH="$(cd "$(dirname "$0")/.." && pwd)${PYTHONPATH:+:$PYTHONPATH}"  # MINT's modules, from a clone
exec torchrun --standalone --nproc_per_node "${NPROC_PER_NODE:-8}" -m mint train "$@"
