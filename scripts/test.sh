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
phase sanitize env LORAD_FUZZ_RUNS="${LORAD_FUZZ_RUNS:-50000}" bash scripts/sanitize.sh core
