#!/usr/bin/env bash
# Set up (or reuse) .venv, then run the whole TeD-Loc method on the generated synthetic
# benchmark (CPU, no downloads): tools/run_synthetic_pipeline.py. Outputs go to
# work_dirs/synthetic_demo/; extra arguments go to the pipeline (e.g. --force, --quick).
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
bash tools/setup_env.sh
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
.venv/bin/python tools/run_synthetic_pipeline.py "$@"
echo "run_demo.sh: $(( $(date +%s) - start )) s in all, setup included"
