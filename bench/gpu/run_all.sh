#!/usr/bin/env bash
# The GPU half of issue 5 in one command, on a GPU host (see
# ../shared/gpu/README.md): build, run the kernel tests on the GPU, run
# kernels_bench, run the HF peers and lorad's side of the training / decode
# comparison, and write bench/results/<device>-<commit>.json.
#
#   bash bench/gpu/run_all.sh                  # every stage, in order
#   bash bench/gpu/run_all.sh build tests      # chosen stages only
# Stages: env build tests kernels peers-train peers-decode ours-train
# ours-decode ours-fused collect ("ours" = ours-train and ours-decode;
# ours-fused: 4 fine-tune jobs one after another vs at once on one base).
# Issue 15 alone: env build-train tests-train ours-fused ours-head collect
# (not in the default list: build-train builds a subset of what build
# builds; ours-head: the chunked head and loss against the whole logits).
# Each stage appends JSON lines under $BUILD/bench-work/ and collect merges
# them, so stages can run in separate calls (e.g. under a per-call time
# limit). Env: BUILD (default build-gpu), WORK ($BUILD/bench-work),
# RESULTS_DIR (bench/results), PYTHON (python3), LORAD_COMMIT (default: git),
# TRAIN_STEPS (10), MODELS ("llama-1b llama3-8b"), SEQS ("512 2048"),
# DECODE_MODEL (llama3-8b), MODELS_DIR ($BUILD/bench-models: random HF models),
# OUT (if set, the results file and logs are copied there too).
set -uo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
BUILD=${BUILD:-build-gpu}
WORK=${WORK:-$BUILD/bench-work}
RESULTS_DIR=${RESULTS_DIR:-bench/results}
MODELS=${MODELS:-"llama-1b llama3-8b"}
SEQS=${SEQS:-"512 2048"}
TRAIN_STEPS=${TRAIN_STEPS:-10}
DECODE_MODEL=${DECODE_MODEL:-llama3-8b}
PY=${PYTHON:-python3}
RUN_TIMEOUT=${RUN_TIMEOUT:-300}  # seconds, per test binary / fused config
mkdir -p "$WORK"

if [ -f .deps/use-deps.sh ]; then
  # shellcheck disable=SC1091
  source .deps/use-deps.sh
fi

device_name() {
  local n
  n=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)
  [ -n "$n" ] || n=no-gpu
  echo "$n" | tr -c 'A-Za-z0-9._\n-' '-' | sed 's/-*$//'
}
commit() {
  if [ -n "${LORAD_COMMIT:-}" ]; then echo "$LORAD_COMMIT"; return; fi
  git rev-parse --short HEAD 2>/dev/null || echo unknown
}
DEVICE=$(device_name)
COMMIT=$(commit)

# One JSON line: {"bench":"<name>","status":"<status>", ...extra JSON fields}
note() {
  "$PY" -c 'import json,sys; d={"bench":sys.argv[1],"status":sys.argv[2]}
for kv in sys.argv[3:]:
    k,v=kv.split("=",1); d[k]=v
print(json.dumps(d))' "$@"
}

# The first line of a log that looks like an error, else its last line.
first_error() {
  local line
  line=$(grep -m1 -E "what\(\)|[Ee]rror|failed" "$1" 2>/dev/null)
  [ -n "$line" ] || line=$(tail -1 "$1" 2>/dev/null)
  echo "${line:0:400}"
}

stage_env() {
  {
    note env ok "device=$DEVICE" "commit=$COMMIT" \
      "nvidia_smi=$(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 | head -1)" \
      "nvcc=$(nvcc --version 2>&1 | tail -2 | head -1)" \
      "gxx=$(g++ --version 2>&1 | head -1)" \
      "torch=$("$PY" -c 'import torch; print(torch.__version__, torch.version.cuda, torch.cuda.is_available())' 2>&1 | tail -1)"
  } > "$WORK/env.jsonl"
  cat "$WORK/env.jsonl"
}

# Configures $BUILD once (CMake 4 needs the policy floor for Debian's
# package configs).
configure() {
  local torch_prefix
  torch_prefix=$("$PY" -c 'import torch; print(torch.utils.cmake_prefix_path)')
  if [ ! -f "$BUILD/build.ninja" ]; then
    cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_POLICY_VERSION_MINIMUM=3.5 \
      -DCMAKE_PREFIX_PATH="${LORAD_PREFIX_PATH:-$torch_prefix}" \
      > "$WORK/configure.log" 2>&1 || { tail -40 "$WORK/configure.log"; return 1; }
  fi
}

stage_build() {
  configure || return 1
  # What the stages below run; train_bench / serving_bench are optional.
  cmake --build "$BUILD" -j "$(nproc)" --target kernels_nf4_gemv_test \
    kernels_lora_test kernels_rmsnorm_test kernels_bridge_test nf4_test \
    kernels_nf4_weight_test kernels_bench > "$WORK/build.log" 2>&1 || { tail -60 "$WORK/build.log"; return 1; }
  for t in train_bench serving_bench fused_train_bench lorad-worker; do
    cmake --build "$BUILD" -j "$(nproc)" --target "$t" >> "$WORK/build.log" 2>&1 \
      || echo "optional target $t did not build (see $WORK/build.log)"
  done
  echo "built in $BUILD"
}

# The GoogleTest binaries of the training options with a CUDA path
# (issue 15): the 8-bit and paged optimizers, the fused AdamW, device memory,
# and the memory estimate against the peak, the last on the GPU.
TRAIN_TESTS="adamw8bit_test paged_optimizer_test fused_adamw_test device_memory_test memory_peak_test"

stage_build_train() {
  configure || return 1
  # shellcheck disable=SC2086
  cmake --build "$BUILD" -j "$(nproc)" --target fused_train_bench train_bench $TRAIN_TESTS \
    > "$WORK/build-train.log" 2>&1 || { tail -60 "$WORK/build-train.log"; return 1; }
  echo "built the training targets in $BUILD"
}

# Runs GoogleTest binaries: run_gtests OUT_NAME BINARY...; one JSON line each.
run_gtests() {
  local name=$1
  shift
  : > "$WORK/$name.jsonl"
  local rc_all=0
  for t in "$@"; do
    local bin="$BUILD/tests/$t"
    if [ ! -x "$bin" ]; then note gpu_test missing "binary=$t" >> "$WORK/$name.jsonl"; continue; fi
    timeout "$RUN_TIMEOUT" "$bin" --gtest_output="json:$WORK/gtest-$t.json" \
      > "$WORK/test-$t.log" 2>&1
    local rc=$?
    [ $rc -eq 0 ] || rc_all=1
    "$PY" - "$WORK/gtest-$t.json" "$t" "$rc" >> "$WORK/$name.jsonl" <<'PYEOF'
import json, sys
path, name, rc = sys.argv[1], sys.argv[2], int(sys.argv[3])
try:
    g = json.load(open(path))
except Exception as e:
    print(json.dumps({"bench": "gpu_test", "binary": name, "status": "no-report", "rc": rc}))
    sys.exit(0)
cases = [c for s in g["testsuites"] for c in s["testsuite"]]
skipped = [c["classname"] + "." + c["name"] for c in cases if c.get("result") == "SKIPPED"]
failed = [c["classname"] + "." + c["name"] for c in cases if c.get("failures")]
print(json.dumps({"bench": "gpu_test", "binary": name, "rc": rc,
                  "status": "pass" if rc == 0 else "fail",
                  "tests": len(cases), "failed": failed, "skipped": skipped}))
PYEOF
  done
  cat "$WORK/$name.jsonl"
  return $rc_all
}

stage_tests() {
  run_gtests tests nf4_test kernels_nf4_gemv_test kernels_lora_test \
    kernels_rmsnorm_test kernels_bridge_test kernels_nf4_weight_test
}

stage_tests_train() {
  # memory_peak_test's jobs on the GPU (bf16, as a user would train there);
  # its per-choice estimate / peak lines are in test-memory_peak_test.log.
  # shellcheck disable=SC2086
  LORAD_PEAK_DEVICE=${PEAK_DEVICE:-cuda} LORAD_PEAK_DTYPE=${PEAK_DTYPE:-bfloat16} \
    run_gtests tests-train $TRAIN_TESTS
  local rc=$?
  "$PY" - "$WORK/test-memory_peak_test.log" "${PEAK_DEVICE:-cuda}" \
    > "$WORK/memory-peak.jsonl" <<'PYEOF'
import json, re, sys
pat = re.compile(r"^(\S+)\s+estimate\s+([\d.]+) MiB\s+peak\s+([\d.]+) MiB\s+ratio ([\d.]+)")
for line in open(sys.argv[1], errors="replace"):
    m = pat.match(line)
    if m:
        print(json.dumps({"bench": "memory_peak", "device": sys.argv[2],
                          "choice": m.group(1), "estimate_mib": float(m.group(2)),
                          "peak_mib": float(m.group(3)), "ratio": float(m.group(4))}))
PYEOF
  cat "$WORK/memory-peak.jsonl"
  return $rc
}

stage_kernels() {
  "$BUILD/bench/kernels_bench" | tee "$WORK/kernels.jsonl"
}

stage_peers_train() {
  : > "$WORK/peers-train.jsonl"
  for m in $MODELS; do
    for s in $SEQS; do
      "$PY" bench/gpu/hf_train_peer.py --model "$m" --seq "$s" --steps "$TRAIN_STEPS" \
        >> "$WORK/peers-train.jsonl" 2>> "$WORK/peers-train.log" \
        || note train failed "side=hf_peft" "model=$m" "seq=$s" >> "$WORK/peers-train.jsonl"
      tail -1 "$WORK/peers-train.jsonl"
    done
  done
}

stage_peers_decode() {
  "$PY" bench/gpu/hf_decode_peer.py --model "$DECODE_MODEL" --batches 1,16 \
    > "$WORK/peers-decode.jsonl" 2> "$WORK/peers-decode.log" \
    || note decode failed "side=hf_generate" "model=$DECODE_MODEL" >> "$WORK/peers-decode.jsonl"
  cat "$WORK/peers-decode.jsonl"
}

# lorad's side: bench binaries written elsewhere in the project; "missing"
# when this build has none.
MODELS_DIR=${MODELS_DIR:-$BUILD/bench-models}
DATA="$WORK/data/train.jsonl"  # not *.jsonl of WORK: collect reads those

# Training data and a byte-level tokenizer (from lorad's built-in tiny
# model) for the random models lorad's side loads; prints the tokenizer's
# folder.
ours_prep() {
  mkdir -p "$WORK/data"
  "$PY" - "$DATA" <<'PYEOF'
import json, sys
words = ["the", "model", "adapter", "river", "quiet", "server", "light", "token",
         "carries", "measures", "remembers", "answers", "seven", "stones", "train"]
with open(sys.argv[1], "w") as f:
    for i in range(4000):
        text = " ".join(words[(i * 7 + k * 3) % len(words)] for k in range(40))
        f.write(json.dumps({"text": text}) + "\n")
PYEOF
  if [ -x "$BUILD/bench/train_bench" ]; then
    "$BUILD/bench/train_bench" --model=tiny --write_model_only \
      --cache_dir="$MODELS_DIR/lorad-cache" > "$WORK/ours-tiny.log" 2>&1
    local tok
    tok=$(find "$MODELS_DIR/lorad-cache" -name tokenizer.json | head -1)
    [ -z "$tok" ] || dirname "$tok"
  fi
}

stage_ours_train() {
  : > "$WORK/ours-train.jsonl"
  local tok_dir models_dir="$MODELS_DIR" data="$DATA"
  tok_dir=$(ours_prep)
  if [ -x "$BUILD/bench/train_bench" ]; then
    for m in $MODELS; do
      "$PY" bench/gpu/make_model.py --model "$m" --out "$models_dir/$m" \
        --tokenizer_from "$tok_dir" >> "$WORK/ours.log" 2>&1
      for s in $SEQS; do
        if "$BUILD/bench/train_bench" --model="$models_dir/$m" --data="$data" \
             --device=cuda --compute_dtype=bfloat16 --seq="$s" --batch=1 --rank=16 \
             --alpha=32 --steps="$TRAIN_STEPS" > "$WORK/ours-train-$m-$s.out" \
             2> "$WORK/ours-train-$m-$s.err"; then
          "$PY" -c 'import json,sys
for line in open(sys.argv[1]):
    line=line.strip()
    if line.startswith("{"):
        d=json.loads(line); d.setdefault("bench","train"); d["side"]="lorad"
        d["model"]=sys.argv[2]; d["seq"]=int(sys.argv[3]); print(json.dumps(d))' \
            "$WORK/ours-train-$m-$s.out" "$m" "$s" >> "$WORK/ours-train.jsonl"
        else
          note train failed "side=lorad" "model=$m" "seq=$s" \
            "error=$(first_error "$WORK/ours-train-$m-$s.err")" >> "$WORK/ours-train.jsonl"
        fi
      done
    done
  else
    note train missing "side=lorad" "binary=$BUILD/bench/train_bench" >> "$WORK/ours-train.jsonl"
  fi
  cat "$WORK/ours-train.jsonl"
}

stage_ours_decode() {
  : > "$WORK/ours-decode.jsonl"
  local tok_dir models_dir="$MODELS_DIR"
  tok_dir=$(ours_prep)
  if [ -x "$BUILD/bench/serving_bench" ]; then
    # Decode on the 8B shape: base alone, one shared adapter and distinct
    # adapters per request (its decode_ratio lines carry distinct / base).
    "$PY" bench/gpu/make_model.py --model "$DECODE_MODEL" --out "$models_dir/$DECODE_MODEL" \
      ${tok_dir:+--tokenizer_from "$tok_dir"} >> "$WORK/ours.log" 2>&1
    if "$BUILD/bench/serving_bench" --model="$models_dir/$DECODE_MODEL" --device=cuda \
         --compute_dtype=bfloat16 --batch=1,16,32 --new_tokens=128 --phases=decode \
         > "$WORK/ours-serving.out" 2> "$WORK/ours-serving.err"; then
      "$PY" -c 'import json,sys
for line in open(sys.argv[1]):
    line=line.strip()
    if line.startswith("{"):
        d=json.loads(line); d["side"]="lorad"; d["model"]=sys.argv[2]
        print(json.dumps(d))' "$WORK/ours-serving.out" "$DECODE_MODEL" >> "$WORK/ours-decode.jsonl"
    else
      note decode failed "side=lorad" \
        "error=$(first_error "$WORK/ours-serving.err")" >> "$WORK/ours-decode.jsonl"
    fi
  else
    note decode missing "side=lorad" "binary=$BUILD/bench/serving_bench" >> "$WORK/ours-decode.jsonl"
  fi
  cat "$WORK/ours-decode.jsonl"
}

# model,batch,seq per config; FUSED_DEVICE=cpu FUSED_DTYPE=float32 dry-runs
# the stage here.
FUSED_CONFIGS=${FUSED_CONFIGS:-"tiny,1,32 tiny,4,128 llama-100m,1,128 llama-100m,1,512 llama-100m,4,128 llama-100m,4,512"}
FUSED_STEPS=${FUSED_STEPS:-20}
FUSED_DEVICE=${FUSED_DEVICE:-cuda}
FUSED_DTYPE=${FUSED_DTYPE:-bfloat16}

stage_ours_fused() {
  : > "$WORK/ours-fused.jsonl"
  if [ -x "$BUILD/bench/fused_train_bench" ]; then
    local cfg
    for cfg in $FUSED_CONFIGS; do
      # shellcheck disable=SC2086
      set -- ${cfg//,/ }
      if timeout "$RUN_TIMEOUT" "$BUILD/bench/fused_train_bench" --model="$1" --batch="$2" --seq="$3" \
           --jobs=4 --steps="$FUSED_STEPS" --rounds=2 --device="$FUSED_DEVICE" \
           --compute_dtype="$FUSED_DTYPE" \
           --cache_dir="$MODELS_DIR/lorad-cache" \
           > "$WORK/ours-fused-$1-$2-$3.out" 2> "$WORK/ours-fused-$1-$2-$3.err"; then
        "$PY" -c 'import json,sys; print(json.dumps(json.load(open(sys.argv[1]))))' \
          "$WORK/ours-fused-$1-$2-$3.out" >> "$WORK/ours-fused.jsonl"
      else
        note fused_train failed "side=lorad" "model=$1" "batch=$2" "seq=$3" \
          "error=$(first_error "$WORK/ours-fused-$1-$2-$3.err")" >> "$WORK/ours-fused.jsonl"
      fi
    done
  else
    note fused_train missing "side=lorad" "binary=$BUILD/bench/fused_train_bench" >> "$WORK/ours-fused.jsonl"
  fi
  cat "$WORK/ours-fused.jsonl"
}

# The head and its loss in chunks (the default) against the whole logits
# (--logits_chunk_bytes=0): model,batch,seq per config, each run twice;
# HEAD_DEVICE=cpu HEAD_DTYPE=float32 dry-runs the stage here.
HEAD_CONFIGS=${HEAD_CONFIGS:-"llama-100m-v128k,8,512 llama-100m-v128k,4,2048"}
HEAD_STEPS=${HEAD_STEPS:-6}
HEAD_DEVICE=${HEAD_DEVICE:-cuda}
HEAD_DTYPE=${HEAD_DTYPE:-bfloat16}

stage_ours_head() {
  : > "$WORK/ours-head.jsonl"
  if [ ! -x "$BUILD/bench/train_bench" ]; then
    note train_head missing "side=lorad" "binary=$BUILD/bench/train_bench" >> "$WORK/ours-head.jsonl"
    cat "$WORK/ours-head.jsonl"
    return
  fi
  ours_prep > /dev/null
  local cfg chunk out extra
  for cfg in $HEAD_CONFIGS; do
    # shellcheck disable=SC2086
    set -- ${cfg//,/ }
    for chunk in default 0; do
      out="$WORK/ours-head-$1-$2-$3-$chunk"
      extra=()
      [ "$chunk" = default ] || extra=(--logits_chunk_bytes="$chunk")
      if timeout "$RUN_TIMEOUT" "$BUILD/bench/train_bench" --model="$1" --batch="$2" --seq="$3" \
           --steps="$HEAD_STEPS" --device="$HEAD_DEVICE" --compute_dtype="$HEAD_DTYPE" \
           --data="$DATA" --cache_dir="$MODELS_DIR/lorad-cache" --work_dir="$WORK/head-job" \
           "${extra[@]}" > "$out.out" 2> "$out.err"; then
        "$PY" -c 'import json,sys
for line in open(sys.argv[1]):
    if line.startswith("{"):
        d=json.loads(line); d["bench"]="train_head"; d["side"]="lorad"; print(json.dumps(d))' \
          "$out.out" >> "$WORK/ours-head.jsonl"
      else
        note train_head failed "side=lorad" "model=$1" "batch=$2" "seq=$3" "chunk=$chunk" \
          "error=$(first_error "$out.err")" >> "$WORK/ours-head.jsonl"
      fi
    done
  done
  cat "$WORK/ours-head.jsonl"
}

stage_collect() {
  local out="$RESULTS_DIR/$DEVICE-$COMMIT.json"
  "$PY" bench/gpu/collect.py --work "$WORK" --out "$out" --device "$DEVICE" \
    --commit "$COMMIT"
  if [ -n "${OUT:-}" ]; then
    mkdir -p "$OUT/logs"
    cp "$out" "$OUT/"
    cp "$WORK"/*.log "$WORK"/*.jsonl "$OUT/logs/" 2>/dev/null || true
  fi
}

stages=("$@")
[ ${#stages[@]} -gt 0 ] || stages=(env build tests kernels peers-train peers-decode ours-train ours-decode ours-fused collect)
status=0
for st in "${stages[@]}"; do
  echo "== $st ($(date -u +%H:%M:%S))"
  case "$st" in
    env) stage_env ;;
    build) stage_build || { echo "build failed"; exit 1; } ;;
    build-train) stage_build_train || { echo "build failed"; exit 1; } ;;
    tests-train) stage_tests_train || status=1 ;;
    tests) stage_tests || status=1 ;;
    kernels) stage_kernels || status=1 ;;
    peers-train) stage_peers_train ;;
    peers-decode) stage_peers_decode ;;
    ours-train) stage_ours_train ;;
    ours-decode) stage_ours_decode ;;
    ours-fused) stage_ours_fused ;;
    ours-head) stage_ours_head ;;
    ours) stage_ours_train; stage_ours_decode ;;
    collect) stage_collect ;;
    *) echo "unknown stage $st"; exit 2 ;;
  esac
done
exit $status
