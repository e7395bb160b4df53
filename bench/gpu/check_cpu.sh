#!/usr/bin/env bash
# Runs the HF peer scripts on the CPU with the tiny shape and checks that
# each prints the JSON fields run_all.sh / collect.py rely on, so they are
# known to work before a GPU host runs them at full size.
#   bash bench/gpu/check_cpu.sh [PYTHON]
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${1:-${PYTHON:-python3}}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
"$PY" bench/gpu/hf_train_peer.py --model tiny --seq 32 --batch 2 --steps 2 \
  --warmup 1 --device cpu --dtype float32 > "$out/train.jsonl" 2> "$out/train.log" \
  || { cat "$out/train.log"; exit 1; }
"$PY" bench/gpu/hf_decode_peer.py --model tiny --device cpu --dtype float32 \
  --batches 1,2 --prompt 8 --new 4 --reps 1 > "$out/decode.jsonl" 2> "$out/decode.log" \
  || { cat "$out/decode.log"; exit 1; }
"$PY" - "$out" <<'PYEOF'
import json, os, sys
d = sys.argv[1]
train = [json.loads(l) for l in open(os.path.join(d, "train.jsonl"))]
decode = [json.loads(l) for l in open(os.path.join(d, "decode.jsonl"))]
assert len(train) == 1 and train[0]["tokens_per_s"] > 0 and train[0]["peak_bytes"] > 0, train
assert train[0]["trainable_params"] > 0 and train[0]["gradient_checkpointing"], train
assert [r["batch"] for r in decode] == [1, 2], decode
assert all(r["decode_tokens_per_s"] > 0 for r in decode), decode
os.makedirs(os.path.join(d, "work"))
for name, rows in (("peers-train", train), ("peers-decode", decode)):
    with open(os.path.join(d, "work", name + ".jsonl"), "w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
PYEOF
"$PY" bench/gpu/collect.py --work "$out/work" --out "$out/r.json" --device cpu \
  --commit check > /dev/null
"$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); c=d["comparisons"]
assert [x["compare"] for x in c] == ["train", "decode", "decode"], c
assert all(x.get("ours") == "missing" for x in c), c' "$out/r.json"
echo "peer scripts OK on CPU"
