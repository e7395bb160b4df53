"""Peer for lorad's decode benchmark: HF generate on a random-weight
Llama-shaped model in bf16 (no quantization), greedy, KV cache, SDPA.
Decode is timed inside each generate call: a stopping criterion stamps the
time after every step, and decode tokens/s = batch * (new - 1) / (time of
the last token - time of the first), so the prompt's prefill is not counted
and no second run (whose warm-up state could differ) is subtracted. Prints
one JSON object per batch size.

  python3 bench/gpu/hf_decode_peer.py --model llama3-8b --batches 1,16
  python3 bench/gpu/hf_decode_peer.py --model tiny --device cpu --new 16
"""

import argparse
import json
import os
import sys
import time

import torch
from transformers import StoppingCriteria, StoppingCriteriaList

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import shapes  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="llama3-8b", choices=sorted(shapes.SHAPES))
    ap.add_argument("--batches", default="1,16")
    ap.add_argument("--prompt", type=int, default=128)
    ap.add_argument("--new", type=int, default=128)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--dtype", default="bfloat16")
    args = ap.parse_args()

    dtype = getattr(torch, args.dtype)
    cuda = args.device.startswith("cuda")
    model = shapes.build_model(args.model, args.device, dtype).eval()
    gen = torch.Generator(device="cpu").manual_seed(2)

    def sync():
        if cuda:
            torch.cuda.synchronize()

    class StepClock(StoppingCriteria):
        """Stamps the time after each generated token; never stops."""

        def __init__(self):
            self.stamps = []

        def __call__(self, input_ids, scores, **kwargs):
            sync()
            self.stamps.append(time.perf_counter())
            return torch.zeros(input_ids.shape[0], dtype=torch.bool,
                               device=input_ids.device)

    def timed(ids, new):
        """Best of --reps: (total, time to first token, decode) seconds."""
        best = None
        for _ in range(args.reps):
            clock = StepClock()
            sync()
            start = time.perf_counter()
            with torch.no_grad():
                out = model.generate(
                    input_ids=ids, attention_mask=torch.ones_like(ids),
                    max_new_tokens=new, min_new_tokens=new, do_sample=False,
                    eos_token_id=None, pad_token_id=0,
                    stopping_criteria=StoppingCriteriaList([clock]))
            sync()
            total = time.perf_counter() - start
            assert out.shape[1] == ids.shape[1] + new, out.shape
            assert len(clock.stamps) == new, (len(clock.stamps), new)
            run = (total, clock.stamps[0] - start,
                   clock.stamps[-1] - clock.stamps[0])
            if best is None or run[2] < best[2]:
                best = run
        return best

    if args.new < 2:
        ap.error("--new must be at least 2 (decode is timed from the first "
                 "token to the last)")
    for batch in [int(b) for b in args.batches.split(",")]:
        ids = torch.randint(0, model.config.vocab_size, (batch, args.prompt),
                            generator=gen).to(args.device)
        timed(ids, 2)  # warm-up
        total, first, decode = timed(ids, args.new)
        print(json.dumps({
            "bench": "decode", "side": "hf_generate", "model": args.model,
            "device": shapes.device_name(args.device), "dtype": args.dtype,
            "batch": batch, "prompt": args.prompt, "new_tokens": args.new,
            "seconds": round(total, 4), "prefill_seconds": round(first, 4),
            "decode_seconds": round(decode, 6),
            "decode_tokens_per_s": round(batch * (args.new - 1) / decode, 2),
            "peak_bytes": torch.cuda.max_memory_allocated() if cuda else None,
            "torch": torch.__version__,
        }), flush=True)


if __name__ == "__main__":
    main()
