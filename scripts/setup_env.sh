#!/usr/bin/env bash
# Idempotent set-up: a virtual environment (.venv), the dependencies, and the extension built in
# place. Sourced by scripts/test.sh and scripts/bench.sh. With nothing changed it recompiles
# nothing (setup.py keeps its objects in build/ and ninja rebuilds only what changed).
#   LK_SYSTEM_TORCH=1  no venv: use python3 and the torch it has (e.g. a GPU machine with no
#                      network); only this package is built, in place, with no download.
#   LK_BUILD_CUDA=0    CPU-only build (see setup.py).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if [ "${LK_SYSTEM_TORCH:-0}" = 1 ]; then
  # The interpreter that already has torch (it may itself be a venv, whose packages a nested
  # --system-site-packages venv would not see).
  PY="$(command -v python3)"
  OFFLINE=(--no-index)
else
  VENV="${LK_VENV:-.venv}"
  [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
  PY="$VENV/bin/python"
  OFFLINE=()
  if [ requirements.txt -nt "$VENV/.requirements-installed" ]; then
    "$PY" -m pip install -q -r requirements.txt
    touch "$VENV/.requirements-installed"
  fi
fi
# --no-build-isolation: the extension is compiled against the torch installed here.
MAX_JOBS="${MAX_JOBS:-$(nproc)}" "$PY" -m pip install -q "${OFFLINE[@]}" --no-build-isolation \
  --no-deps -e .
