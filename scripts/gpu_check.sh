#!/usr/bin/env bash
# The whole verification on a GPU machine, in one call (GPU time is scarce: prepare, run once):
#
#   bash scripts/gpu_check.sh [OUTDIR]        OUTDIR: default $OUT when set, else gpu-check/
#
# Uses the machine's own python3 and torch (no venv, no downloads) and all its cores. Steps:
#   build      the extension with its CUDA kernels required (pip install -e . --no-build-isolation)
#   tests      the whole suite; fails also if any CUDA or Triton-on-GPU test was skipped
#   memcheck racecheck initcheck synccheck
#              compute-sanitizer over a small CUDA-only subset (pytest -k "$LK_SANITIZE_TESTS"),
#              any report fails; the four run in parallel, beside the tests
#   bench      the benchmark table (python -m bench --quick), alone on the GPU
# Writes OUTDIR/<step>.log, OUTDIR/tests.xml and OUTDIR/summary.txt (device, versions, PASS/FAIL
# per step, the bench table: one screen), rewritten after every step, and prints the summary.
# The steps share a deadline (LK_GPU_CHECK_BUDGET_S, default 450 s; the target is < 8 min on an
# H100 with 16 cores), 90 s of it kept for the bench: a step still running at its limit is
# stopped and fails, one that would start after it is not run (and fails).
# Exit status: 0 all passed; 1 a step failed; 2 no CUDA GPU visible (nothing verified).
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
DIR="${1:-${OUT:-gpu-check}}"
mkdir -p "$DIR" && DIR="$(cd "$DIR" && pwd)"
PY="$(command -v python3 || true)"
DEADLINE=$((SECONDS + ${LK_GPU_CHECK_BUDGET_S:-450}))
export MAX_JOBS="$(nproc)" LK_SYSTEM_TORCH=1 LK_BUILD_CUDA=1 LK_EXPECT_CUDA_KERNELS=1
export PIP_BREAK_SYSTEM_PACKAGES=1  # a lent machine's Python may be marked externally managed
# The CUDA backend's tests, less those whose cost is compiling or fp64 gradcheck, and the large
# shape: the sanitizers slow kernels down 10-100x.
SANITIZE_TESTS="${LK_SANITIZE_TESTS:-cuda-cuda and not compile and not opcheck and not gradcheck and not deterministic and not 99x64x64}"
SANITIZERS=(memcheck racecheck initcheck synccheck)
ROWS=()
FAILED=0

revision() {
  if git rev-parse --short HEAD > /dev/null 2>&1; then
    echo "commit $(git rev-parse --short HEAD)$(git diff --quiet HEAD || echo ' + local changes')"
  else echo "not a git checkout"; fi
}

summary() {  # one screen: header, environment, a row per step, the bench table
  {
    echo "landmark-kernels GPU check, $(date -u '+%Y-%m-%d %H:%M UTC'), $(revision)"
    cat "$DIR/env.log" 2>/dev/null
    echo
    printf '%-10s %-6s %6s  %s\n' step result time note
    printf '%s\n' "${ROWS[@]}"
    if [ -s "$DIR/bench.log" ]; then echo; grep -E '^(#|\|)' "$DIR/bench.log" | head -30; fi
    echo
    echo "logs: $DIR"
  } > "$DIR/summary.txt"
}

record() {  # record STEP RC SECONDS NOTE
  local result=PASS
  [ "$2" = 0 ] || { result=FAIL; FAILED=1; }
  ROWS+=("$(printf '%-10s %-6s %5ss  %s' "$1" "$result" "$3" "$4")")
  summary
}

RESERVE=0  # seconds of the deadline kept back for the bench, while tests and sanitizers run
time_left() { echo $((DEADLINE - RESERVE - SECONDS)); }
limit() { timeout "$(time_left)" "$@"; }  # limit COMMAND...: COMMAND under the deadline (124)

run_step() {  # run_step STEP FUNCTION: FUNCTION's output in $DIR/STEP.log
  local t0=$SECONDS rc=0
  if [ "$(time_left)" -le 10 ]; then record "$1" 1 0 "not run: out of time"; return; fi
  "$2" > "$DIR/$1.log" 2>&1 || rc=$?
  record "$1" "$rc" $((SECONDS - t0)) "$(note "$1" "$rc")"
}

first_error() { grep -m1 -i 'error' "$1" || tail -1 "$1"; }
last_pytest_line() { grep -E ' in [0-9.]+s( \(.*\))?( =+)?$' "$1" | tail -1 | tr -d '=' | xargs; }

note() {  # note STEP RC: the line of the step's log worth a glance
  local log="$DIR/$1.log"
  if [ "$2" = 124 ]; then echo "timed out (deadline)"; return; fi
  case $1 in
    tests) echo "$(last_pytest_line "$log"); $(grep -c 'skipped on a GPU machine' "$log")" \
                "CUDA/Triton-GPU tests skipped" ;;
    build) if [ "$2" = 0 ]; then echo "CUDA kernels built"; else first_error "$log"; fi ;;
    bench) if [ "$2" = 0 ]; then echo "table below"; else first_error "$log"; fi ;;
    *) echo "$(grep -E '(ERROR|RACECHECK) SUMMARY' "$log" | tail -1 | sed 's/^=* *//');" \
            "$(last_pytest_line "$log")" ;;
  esac | cut -c1-110
}

environment() {
  "$PY" - <<'PYTHON'
import os, platform
import torch
gpu = "none visible"
if torch.cuda.is_available():
    p = torch.cuda.get_device_properties(0)
    gpu = (f"{torch.cuda.get_device_name(0)} (sm_{p.major}{p.minor}, "
           f"{p.total_memory / 2**30:.0f} GiB) x{torch.cuda.device_count()}")
try:
    import triton
    triton_version = triton.__version__
except ImportError:
    triton_version = "not installed"
print(f"device:   {gpu}; {os.cpu_count()} CPU cores")
print(f"versions: python {platform.python_version()}, torch {torch.__version__} "
      f"(CUDA {torch.version.cuda}), triton {triton_version}")
PYTHON
  local nvcc sanitizer driver
  nvcc=$(nvcc --version 2>/dev/null | grep -o 'release [0-9.]*')
  sanitizer=$(compute-sanitizer --version 2>/dev/null | grep -o 'Version [0-9.]*' | head -1)
  driver=$(nvidia-smi --query-gpu=driver_version --format=csv,noheader 2>/dev/null | head -1)
  echo "tools:    nvcc ${nvcc:-not found}, compute-sanitizer ${sanitizer:-not found}," \
       "driver ${driver:-not found}"
}

build() {
  limit bash scripts/setup_env.sh &&
    (cd / && "$PY" -c "import landmark_kernels as lk; assert lk._extension.HAS_CUDA_KERNELS; print('built:', lk.__file__)")
}

tests() {
  local rc=0
  limit "$PY" -m pytest tests -q -rs -p no:cacheprovider --junitxml="$DIR/tests.xml" || rc=$?
  "$PY" scripts/gpu_skips.py "$DIR/tests.xml" || { [ "$rc" != 0 ] || rc=1; }
  return "$rc"
}

# --quick: one shape per op, to fit the bench's share of the deadline; results in DIR/bench/.
bench() { limit "$PY" -m bench --device cuda --quick --out "$DIR/bench"; }

sanitize() {  # sanitize TOOL: one compute-sanitizer tool over the subset, log in $DIR/TOOL.log
  local log="$DIR/$1.log" rc=0
  # The caching allocator would hide out-of-bounds accesses inside its blocks.
  PYTORCH_NO_CUDA_MEMORY_CACHING=1 limit compute-sanitizer --tool "$1" --error-exitcode 97 \
    "$PY" -m pytest tests -q -p no:cacheprovider -k "$SANITIZE_TESTS" > "$log" 2>&1 || rc=$?
  # Any report fails (racecheck's warnings too); so does no summary line (the tool did not
  # really run) or no test passed (all skipped: nothing was checked).
  if [ "$rc" = 0 ] && { grep -qE '(ERROR|RACECHECK) SUMMARY: [1-9]' "$log" ||
                        ! grep -qE '(ERROR|RACECHECK) SUMMARY' "$log" ||
                        ! last_pytest_line "$log" | grep -q passed; }; then rc=1; fi
  return "$rc"
}

if [ -z "$PY" ] || ! "$PY" -c "import torch" 2> /dev/null; then
  echo "device:   ? (python3 ${PY:-not found} cannot import torch)" > "$DIR/env.log"
  record env 1 0 "needs the machine's python3 with torch (no venv is made)"
  cat "$DIR/summary.txt"
  exit 1
fi
environment > "$DIR/env.log" 2>&1
if ! "$PY" -c "import sys, torch; sys.exit(not torch.cuda.is_available())"; then
  record env 1 0 "no CUDA GPU visible: nothing verified (run this on a GPU machine)"
  cat "$DIR/summary.txt"
  exit 2
fi

# The suite and the sanitizers run side by side (the GPU has room for both; neither is timed),
# then the bench alone on an idle GPU, with time kept for it.
run_step build build
if [ "$FAILED" = 0 ]; then
  RESERVE=90
  if command -v compute-sanitizer > /dev/null; then
    for tool in "${SANITIZERS[@]}"; do
      (t0=$SECONDS; sanitize "$tool"; echo "$? $((SECONDS - t0))" > "$DIR/$tool.rc") &
    done
  fi
  run_step tests tests
  wait
  if ! command -v compute-sanitizer > /dev/null; then
    record sanitizer 1 0 "compute-sanitizer not found"
  else
    for tool in "${SANITIZERS[@]}"; do
      read -r rc secs < "$DIR/$tool.rc" && rm -f "$DIR/$tool.rc"
      record "$tool" "$rc" "$secs" "$(note "$tool" "$rc")"
    done
  fi
  RESERVE=0
  run_step bench bench
fi
cat "$DIR/summary.txt"
exit "$FAILED"
