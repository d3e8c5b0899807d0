#!/usr/bin/env bash
# Idempotent set-up: a virtual environment (.venv), the dependencies, and the extension built in
# place (ninja rebuilds only what changed). Sourced by scripts/test.sh and scripts/bench.sh.
#   LK_SYSTEM_TORCH=1  reuse the torch already installed in python3 (e.g. a GPU machine with no
#                      network): the venv sees system packages and only this package is built.
#   LK_BUILD_CUDA=0    CPU-only build (see setup.py).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
VENV="${LK_VENV:-.venv}"
if [ ! -x "$VENV/bin/python" ]; then
  if [ "${LK_SYSTEM_TORCH:-0}" = 1 ]; then
    python3 -m venv --system-site-packages "$VENV"
  else
    python3 -m venv "$VENV"
  fi
fi
PY="$VENV/bin/python"
if [ "${LK_SYSTEM_TORCH:-0}" != 1 ] && [ requirements.txt -nt "$VENV/.requirements-installed" ]; then
  "$PY" -m pip install -q --upgrade pip
  "$PY" -m pip install -q -r requirements.txt
  touch "$VENV/.requirements-installed"
fi
# torch's cpp_extension guesses CUDA_HOME wrongly without a GPU; nvcc's toolkit is the right one.
if [ -z "${CUDA_HOME:-}" ] && [ -x /usr/local/cuda/bin/nvcc ]; then export CUDA_HOME=/usr/local/cuda; fi
MAX_JOBS="${MAX_JOBS:-$(nproc)}" "$PY" -m pip install -q --no-build-isolation --no-deps -e .
