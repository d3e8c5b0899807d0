#!/usr/bin/env bash
# The main job: set up (idempotent), then print the benchmark table (GPU when present, else CPU).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/setup_env.sh
exec "$PY" -m bench "$@"
