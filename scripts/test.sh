#!/usr/bin/env bash
# Sets everything up (scripts/setup.sh), builds, and runs the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cd build
ctest --output-on-failure -j "${LORAD_TEST_JOBS:-2}" --timeout 900
