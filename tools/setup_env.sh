#!/usr/bin/env bash
# Create (or reuse) the local virtual environment .venv with the pinned stack.
#   bash tools/setup_env.sh          # runtime + test requirements, tedloc_mm editable
# Re-running is fast: pip is skipped while the requirement files are unchanged.
# Override the interpreter with PYTHON=/path/to/python3.11, the folder with VENV=.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
VENV=${VENV:-.venv}

if [ ! -x "$VENV/bin/python" ]; then
  echo "[setup] creating $VENV with $($PYTHON --version)"
  "$PYTHON" -m venv "$VENV"
fi

stamp="$VENV/.tedloc_requirements.sha1"
want=$(cat requirements/*.txt setup.cfg pyproject.toml | sha1sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  echo "[setup] $VENV is up to date"
  exit 0
fi

# A local wheel folder (the CPU torch wheel on these machines) if there is one.
extra=()
[ -d /opt/wheels ] && extra+=(--find-links /opt/wheels)
export PIP_DISABLE_PIP_VERSION_CHECK=1
start=$(date +%s)
# The constraints file pins torch to the CPU build and keeps every dependency on the
# versions measured to work together (see requirements/constraints.txt).
"$VENV/bin/python" -m pip install -q "${extra[@]}" -c requirements/constraints.txt \
  -r requirements/runtime.txt -r requirements/tests.txt
"$VENV/bin/python" -m pip install -q "${extra[@]}" -c requirements/constraints.txt \
  --no-build-isolation --no-deps -e .
"$VENV/bin/python" -m pip check
if "$VENV/bin/python" -m pip list 2>/dev/null | grep -qi '^nvidia-'; then
  echo "[setup] error: CUDA packages were installed; check requirements/constraints.txt" >&2
  exit 1
fi
echo "$want" > "$stamp"
echo "[setup] $VENV ready in $(( $(date +%s) - start )) s"
