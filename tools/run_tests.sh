#!/usr/bin/env bash
# Set up (or reuse) .venv, then run the test suite.
# Without arguments: the whole suite on all cores (pytest-xdist; --dist loadgroup keeps
# the tests of an xdist_group, e.g. those sharing the module-scoped pipeline run of
# tests/test_tools/test_demo_pipeline.py, on one worker, so that fixture runs once). With
# arguments they go to pytest instead, e.g.
# `bash tools/run_tests.sh tests/test_package/test_compat.py -m "not slow"`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup_env.sh
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONHASHSEED=0
if [ "$#" -eq 0 ]; then
  set -- -n auto --dist loadgroup --durations=15
fi
exec .venv/bin/python -m pytest "$@"
