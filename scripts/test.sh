#!/usr/bin/env bash
# Sets everything up (scripts/setup.sh), builds, and runs the whole test
# suite; then the torch-free half again under ASan+UBSan with every fuzz
# target under libFuzzer (scripts/sanitize.sh) for a fixed number of inputs
# from a fixed seed, so that every run tries the same inputs.
# Each phase prints how long it took when it ends.
set -euo pipefail
cd "$(dirname "$0")/.."
phase() {
  local name=$1 start=$SECONDS
  shift
  "$@"
  echo "test.sh: $name took $((SECONDS - start)) s (total $SECONDS s)"
}
phase setup+build bash scripts/setup.sh
phase ctest bash -c 'cd build && ctest --output-on-failure -j "${LORAD_TEST_JOBS:-2}" --timeout 900'
# 50000 inputs per fuzz target, fewer for the three whose inputs are large
# so that each takes about a minute (measured under ASan on 2 cores: the
# tokenizer's 44 inputs/s, the JSON constraint's 81 and the Jinja
# interpreter's 259 would take 19, 10 and 3 minutes for 50000).
phase sanitize env LORAD_FUZZ_RUNS="${LORAD_FUZZ_RUNS:-50000}" \
  LORAD_FUZZ_RUNS_tokenizer_fuzz="${LORAD_FUZZ_RUNS_tokenizer_fuzz:-3000}" \
  LORAD_FUZZ_RUNS_json_constraint_fuzz="${LORAD_FUZZ_RUNS_json_constraint_fuzz:-6000}" \
  LORAD_FUZZ_RUNS_jinja_fuzz="${LORAD_FUZZ_RUNS_jinja_fuzz:-20000}" \
  bash scripts/sanitize.sh core
