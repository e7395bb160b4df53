#!/usr/bin/env bash
# The torch-free half of lorad under AddressSanitizer and
# UndefinedBehaviorSanitizer: builds the libraries (common, model, proto,
# the server's internals, loractl's), their unit tests and the fuzz targets
# with clang into build-san/, runs those unit tests there, then every fuzz
# target under libFuzzer for a fixed time (tests/fuzz/run.sh).
# Usage: scripts/sanitize.sh [core|all] [seconds per fuzz target, default 30]
#   core: common, model, the kernels' CPU references, their unit tests and
#         the fuzz targets of the file parsers (uploaded JSONL, config.json,
#         safetensors, tokenizer.json); what CI runs (minutes on 2 cores).
#   all:  also the server's internals (stores, jobs, batch input, worker
#         link), loractl's library, and their tests and fuzz targets; the
#         gRPC-heavy half, several times longer to build.
# Expects scripts/setup.sh to have run (it installs clang and libFuzzer).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
SCOPE=${1:-core}
SECONDS_PER_TARGET=${2:-30}
CORE_TESTS=(common_test bounded_json_test dataset_test telemetry_test nf4_test peft_adapter_test model_config_test
  adapter_check_test safetensors_test tokenizer_test jinja_test chat_template_test
  model_inspect_test tokenizer_offsets_test jinja_generation_test
  training_data_generation_test dataset_preference_test kernels_nf4_gemv_test
  kernels_lora_test kernels_rmsnorm_test)
CORE_FUZZ=(dataset_fuzz model_config_fuzz safetensors_fuzz tokenizer_fuzz
  adapter_config_fuzz jinja_fuzz json_constraint_fuzz)
# -O1 and line tables only: the build is what costs here, and sanitizer
# reports still name files and lines.
SAN="-O1 -gline-tables-only -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
if [ ! -f build-san/build.ninja ]; then
  CC=clang CXX=clang++ cmake -S . -B build-san -G Ninja \
    -DCMAKE_BUILD_TYPE= \
    -DLORAD_WITH_TORCH=OFF -DLORAD_WITH_CUDA=OFF -DLORAD_BUILD_BENCH=OFF \
    -DLORAD_FUZZ=ON -DPython3_EXECUTABLE="$ROOT/.venv/bin/python" \
    -DCMAKE_C_FLAGS="$SAN" \
    -DCMAKE_CXX_FLAGS="$SAN -fsanitize=fuzzer-no-link" \
    -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined"
fi
JOBS=${LORAD_JOBS:-$(nproc)}
if [ "$SCOPE" = core ]; then
  TESTS=("${CORE_TESTS[@]}")
  FUZZ=("${CORE_FUZZ[@]}")
elif [ "$SCOPE" = all ]; then
  # Everything but the integration tests (they need the worker, which needs
  # LibTorch).
  mapfile -t TESTS < <(ninja -C build-san -t targets all |
    sed -n 's/^tests\/\([a-z0-9_]*_test\): .*/\1/p' | grep -v '^integration_')
  FUZZ=()
  for src in tests/fuzz/*_fuzz.cc; do FUZZ+=("$(basename "$src" .cc)"); done
else
  echo "usage: scripts/sanitize.sh [core|all] [seconds]" >&2
  exit 2
fi
EXTRA=()
[ "$SCOPE" = all ] && EXTRA=(lorad loractl)
ninja -C build-san -j "$JOBS" "${EXTRA[@]}" "${TESTS[@]/#/tests/}" "${FUZZ[@]/#/tests/}"

# Any report fails the test that made it.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:strict_string_checks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$ROOT/tests/fuzz/lsan.supp}
TEST_REGEX="^($(IFS='|'; echo "${TESTS[*]}"))\$"
(cd build-san && ctest --output-on-failure -j "${LORAD_TEST_JOBS:-2}" \
  --timeout 900 -R "$TEST_REGEX")
bash tests/fuzz/run.sh build-san "$SECONDS_PER_TARGET" "${FUZZ[@]}"
