#!/usr/bin/env bash
# The test command: set up (idempotent), then run the whole suite. Extra args go to pytest.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/setup_env.sh
exec "$PY" -m pytest tests "$@"
