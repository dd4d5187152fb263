#!/usr/bin/env bash
# Two nodes of 8 GPUs: 16 processes, DDP. Run on both nodes, NODE_RANK=0 on the node at MASTER_ADDR and NODE_RANK=1
# on the other; output_dir must be on a filesystem both nodes share.
#   MASTER_ADDR=10.0.0.1 NODE_RANK=0 launch/torchrun_2nodes_8gpu.sh stage1.json [key=value ...]
set -euo pipefail
export PYTHONPATH="$(cd "$(dirname "$0")/.." && pwd)${PYTHONPATH:+:$PYTHONPATH}"  # MINT's modules, from a clone
exec torchrun --nnodes 2 --nproc_per_node "${NPROC_PER_NODE:-8}" --node_rank "${NODE_RANK:?set NODE_RANK (0 or 1)}" \
    --master_addr "${MASTER_ADDR:?set MASTER_ADDR (the address of node 0)}" --master_port "${MASTER_PORT:-29500}" \
    -m mint train "$@"
