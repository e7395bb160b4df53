"""Peer for lorad's decode benchmark: HF generate on a random-weight
Llama-shaped model in bf16 (no quantization), greedy, KV cache, SDPA.
Decode tokens/s = batch * (new - 1) / (t(new tokens) - t(1 token)), so the
prompt's prefill is not counted. Prints one JSON object per batch size.

  python3 bench/gpu/hf_decode_peer.py --model llama3-8b --batches 1,16
  python3 bench/gpu/hf_decode_peer.py --model tiny --device cpu --new 16
"""

import argparse
import json
import os
import sys
import time

import torch

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

    def timed(ids, new):
        best = float("inf")
        for _ in range(args.reps):
            if cuda:
                torch.cuda.synchronize()
            start = time.perf_counter()
            with torch.no_grad():
                out = model.generate(
                    input_ids=ids, attention_mask=torch.ones_like(ids),
                    max_new_tokens=new, min_new_tokens=new, do_sample=False,
                    eos_token_id=None, pad_token_id=0)
            if cuda:
                torch.cuda.synchronize()
            best = min(best, time.perf_counter() - start)
            assert out.shape[1] == ids.shape[1] + new, out.shape
        return best

    for batch in [int(b) for b in args.batches.split(",")]:
        ids = torch.randint(0, model.config.vocab_size, (batch, args.prompt),
                            generator=gen).to(args.device)
        timed(ids, 2)  # warm-up
        t1 = timed(ids, 1)
        tn = timed(ids, args.new)
        print(json.dumps({
            "bench": "decode", "side": "hf_generate", "model": args.model,
            "device": shapes.device_name(args.device), "dtype": args.dtype,
            "batch": batch, "prompt": args.prompt, "new_tokens": args.new,
            "seconds": round(tn, 4), "prefill_seconds": round(t1, 4),
            "decode_tokens_per_s": round(batch * (args.new - 1) / (tn - t1), 2),
            "peak_bytes": torch.cuda.max_memory_allocated() if cuda else None,
            "torch": torch.__version__,
        }), flush=True)


if __name__ == "__main__":
    main()
