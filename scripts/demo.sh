#!/usr/bin/env bash
# The main job, end to end: set up and build (scripts/setup.sh), start lorad
# on the built-in tiny model, fine-tune an adapter with loractl (the loss
# streams as it trains), then generate with the new adapter and without it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

DATA_DIR=${LORAD_DEMO_DATA_DIR:-$(mktemp -d /tmp/lorad-demo.XXXXXX)}
PORT=${LORAD_DEMO_PORT:-50051}
ADDR=127.0.0.1:$PORT
HTTP=127.0.0.1:${LORAD_DEMO_HTTP_PORT:-8000}
LOG="$DATA_DIR/lorad.log"
mkdir -p "$DATA_DIR"

build/server/lorad --address="$ADDR" --http_address="$HTTP" \
  --data_dir="$DATA_DIR" >"$LOG" 2>&1 &
LORAD_PID=$!
trap 'kill $LORAD_PID 2>/dev/null; wait $LORAD_PID 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  grep -q "listening" "$LOG" 2>/dev/null && break
  kill -0 $LORAD_PID 2>/dev/null || { cat "$LOG"; exit 1; }
  sleep 0.1
done
echo "== lorad is up on $ADDR (data in $DATA_DIR, log in $LOG)"

export LORAD_ADDRESS=$ADDR
LORACTL=build/client/loractl
echo "== fine-tuning tiny on examples/colors.jsonl"
$LORACTL finetune --train examples/colors.jsonl --model tiny --rank 8 \
  --alpha 16 --lr 1e-2 --batch-size 8 --max-steps 60 --checkpoint-every 20 \
  --gradient-checkpointing
JOB=$($LORACTL jobs --json --limit 1 | .venv/bin/python -c \
  'import json,sys; print(json.loads(sys.stdin.readline())["id"])')
$LORACTL get "$JOB"

PROMPT="The color of a clear sky is"
echo "== base model:   $PROMPT"
$LORACTL generate --max-tokens 12 "$PROMPT"
echo
echo "== with adapter: $PROMPT"
$LORACTL generate --adapter "$JOB" --max-tokens 12 "$PROMPT"
echo

echo "== the same adapter through the OpenAI-compatible API (http://$HTTP/v1)"
curl -s "http://$HTTP/v1/completions" -H 'Content-Type: application/json' \
  -d "{\"model\": \"$JOB\", \"prompt\": \"$PROMPT\", \"max_tokens\": 12, \"temperature\": 0}"
echo
