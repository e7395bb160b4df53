#!/usr/bin/env bash
# Runs every fuzz target under libFuzzer for a fixed time each, from the
# committed seeds. The targets must have been built with -DLORAD_FUZZ=ON by
# clang (scripts/sanitize.sh does that into build-san/).
# Usage: tests/fuzz/run.sh [build dir, default build-san] [seconds, default 30]
#                          [target ... (default: every tests/fuzz/*_fuzz.cc)]
# New inputs libFuzzer finds go to a scratch corpus, never into the repo; a
# crash leaves its input in $LORAD_FUZZ_ARTIFACTS (default /tmp/lorad-fuzz/)
# and fails the script.
# With LORAD_FUZZ_RUNS=N set (what CI does), each target instead runs exactly
# N inputs (LORAD_FUZZ_RUNS_<target> for that target, when set) from a fixed
# seed and a fresh scratch corpus: the same inputs on
# every machine, so a run's verdict does not depend on the machine's speed or
# luck. The timed mode explores further; use it when changing a parser.
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${1:-build-san}
SECONDS_PER_TARGET=${2:-30}
shift $(( $# < 2 ? $# : 2 ))
if [ $# -gt 0 ]; then
  NAMES=("$@")
else
  NAMES=()
  for src in tests/fuzz/*_fuzz.cc; do NAMES+=("$(basename "$src" .cc)"); done
fi
ARTIFACTS=${LORAD_FUZZ_ARTIFACTS:-/tmp/lorad-fuzz}
SEEDS=tests/fuzz/corpus
status=0
for name in "${NAMES[@]}"; do
  bin=$(find "$BUILD" -type f -name "$name" -perm -u+x | head -1)
  if [ -z "$bin" ]; then
    echo "fuzz: $name was not built in $BUILD" >&2
    status=1
    continue
  fi
  corpus=${name%_fuzz}
  scratch="$ARTIFACTS/$name/corpus"
  if [ -n "${LORAD_FUZZ_RUNS:-}" ]; then
    rm -rf "$scratch"
    # LORAD_FUZZ_RUNS_<target> overrides the count for one target (the
    # tokenizer's and the JSON-constraint's inputs are large and slow).
    per_target="LORAD_FUZZ_RUNS_$name"
    runs=${!per_target:-$LORAD_FUZZ_RUNS}
    LIMIT=(-seed=1 -runs="$runs")
    echo "fuzz: $name for $runs inputs from seed 1 (seeds: $SEEDS/$corpus)"
  else
    LIMIT=(-max_total_time="$SECONDS_PER_TARGET")
    echo "fuzz: $name for ${SECONDS_PER_TARGET}s (seeds: $SEEDS/$corpus)"
  fi
  mkdir -p "$scratch"
  if ! "$bin" "${LIMIT[@]}" -timeout=10 \
      -rss_limit_mb=2048 -print_final_stats=1 \
      -artifact_prefix="$ARTIFACTS/$name/" "$scratch" "$SEEDS/$corpus" \
      >"$ARTIFACTS/$name/log" 2>&1; then
    echo "fuzz: $name FAILED; its log and crashing input are in $ARTIFACTS/$name/" >&2
    tail -40 "$ARTIFACTS/$name/log" >&2
    status=1
  else
    grep -E "stat::number_of_executed_units|stat::new_units_added" \
      "$ARTIFACTS/$name/log" | sed "s/^/fuzz: $name /"
  fi
done
exit $status
