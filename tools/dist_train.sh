#!/usr/bin/env bash
# Distributed training with torchrun + MMEngine DDP (nccl on GPUs, gloo on CPU).
#   tools/dist_train.sh CONFIG NUM_PROCESSES [train.py args...]
# One node: torchrun picks a free port itself (--standalone), so concurrent runs
# never collide. A fixed rendezvous (several nodes, or a port of your choice):
# NNODES, NODE_RANK, MASTER_ADDR, PORT in the environment.
set -euo pipefail
CONFIG=$1
GPUS=$2
shift 2
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
MASTER_ADDR=${MASTER_ADDR:-127.0.0.1}
DIR="$(cd "$(dirname "$0")" && pwd)"
# Interpreter: $PYTHON if given; else the active virtual environment's; else the
# project's .venv (made by tools/setup_env.sh); else python on PATH.
if [ -n "${PYTHON:-}" ]; then PY=$PYTHON
elif [ -n "${VIRTUAL_ENV:-}" ]; then PY=python
elif [ -x "$DIR/../.venv/bin/python" ]; then PY="$DIR/../.venv/bin/python"
else PY=python; fi
if [ "$NNODES" = 1 ] && [ -z "${PORT:-}" ]; then
  # a c10d store on port 0 (the OS picks it); the workers use that same store
  RDZV=(--standalone)
else
  RDZV=(--nnodes="$NNODES" --node_rank="$NODE_RANK" --master_addr="$MASTER_ADDR"
        --master_port="${PORT:-29500}")
fi
PYTHONPATH="$DIR/..:${PYTHONPATH:-}" exec "$PY" -m torch.distributed.run \
  "${RDZV[@]}" --nproc_per_node="$GPUS" \
  "$DIR/train.py" "$CONFIG" --launcher pytorch "$@"
