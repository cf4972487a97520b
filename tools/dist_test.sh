#!/usr/bin/env bash
# Distributed testing with torchrun + MMEngine DDP (nccl on GPUs, gloo on CPU).
#   tools/dist_test.sh CONFIG CHECKPOINT NUM_PROCESSES [test.py args...]
# One node: torchrun picks a free port itself (--standalone), so concurrent runs
# never collide. A fixed rendezvous (several nodes, or a port of your choice):
# NNODES, NODE_RANK, MASTER_ADDR, PORT in the environment.
set -euo pipefail
CONFIG=$1
CHECKPOINT=$2
GPUS=$3
shift 3
# a missing file is one line and exit 2 before torchrun starts (as tools/test.py alone)
if [[ "$CONFIG" == *.py && ! -f "$CONFIG" ]]; then
  echo "dist_test.sh: error: config file not found: $CONFIG" >&2; exit 2
fi
if [ "$CHECKPOINT" != none ] && [ ! -f "$CHECKPOINT" ]; then
  echo "dist_test.sh: error: checkpoint not found: $CHECKPOINT (give a file, or none)" >&2
  exit 2
fi
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
  "$DIR/test.py" "$CONFIG" "$CHECKPOINT" --launcher pytorch "$@"
