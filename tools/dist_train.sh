#!/usr/bin/env bash
# Distributed training with torchrun + MMEngine DDP (nccl on GPUs, gloo on CPU).
#   tools/dist_train.sh CONFIG NUM_PROCESSES [train.py args...]
# Multi-node: NNODES, NODE_RANK, MASTER_ADDR, PORT in the environment.
set -euo pipefail
CONFIG=$1
GPUS=$2
shift 2
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-127.0.0.1}
DIR="$(cd "$(dirname "$0")" && pwd)"
# Interpreter: $PYTHON if given; else the active virtual environment's; else the
# project's .venv (made by tools/setup_env.sh); else python on PATH.
if [ -n "${PYTHON:-}" ]; then PY=$PYTHON
elif [ -n "${VIRTUAL_ENV:-}" ]; then PY=python
elif [ -x "$DIR/../.venv/bin/python" ]; then PY="$DIR/../.venv/bin/python"
else PY=python; fi
PYTHONPATH="$DIR/..:${PYTHONPATH:-}" exec "$PY" -m torch.distributed.run \
  --nnodes="$NNODES" --node_rank="$NODE_RANK" --master_addr="$MASTER_ADDR" \
  --nproc_per_node="$GPUS" --master_port="$PORT" \
  "$DIR/train.py" "$CONFIG" --launcher pytorch "$@"
