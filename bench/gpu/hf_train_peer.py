"""Peer for lorad's training benchmark: HF transformers + PEFT LoRA training
of a random-weight Llama-shaped model, bf16 base (this host has no
bitsandbytes, so no 4-bit base), gradient checkpointing, AdamW on the
adapter. Prints one JSON object: tokens/s over the timed steps and peak
memory (torch.cuda.max_memory_allocated on CUDA; peak RSS on CPU).

  python3 bench/gpu/hf_train_peer.py --model llama3-8b --seq 2048
  python3 bench/gpu/hf_train_peer.py --model tiny --seq 64 --device cpu
"""

import argparse
import json
import os
import resource
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import shapes  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="llama3-8b", choices=sorted(shapes.SHAPES))
    ap.add_argument("--seq", type=int, default=512)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--steps", type=int, default=10, help="timed steps")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--rank", type=int, default=16)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--dtype", default="bfloat16")
    args = ap.parse_args()

    from peft import LoraConfig, get_peft_model

    dtype = getattr(torch, args.dtype)
    cuda = args.device.startswith("cuda")
    model = shapes.build_model(args.model, args.device, dtype)
    model.config.use_cache = False
    model.gradient_checkpointing_enable(
        gradient_checkpointing_kwargs={"use_reentrant": False})
    model = get_peft_model(model, LoraConfig(
        r=args.rank, lora_alpha=2 * args.rank, lora_dropout=0.0,
        target_modules=shapes.LORA_TARGETS, task_type="CAUSAL_LM"))
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4)

    gen = torch.Generator(device="cpu").manual_seed(1)
    vocab = model.config.vocab_size

    def step():
        ids = torch.randint(0, vocab, (args.batch, args.seq), generator=gen)
        ids = ids.to(args.device)
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss

    for _ in range(args.warmup):
        step()
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    for _ in range(args.steps):
        loss = step()
    if cuda:
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    tokens = args.batch * args.seq * args.steps
    if cuda:
        peak = torch.cuda.max_memory_allocated()
        peak_kind = "torch.cuda.max_memory_allocated"
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        peak_kind = "ru_maxrss"
    print(json.dumps({
        "bench": "train", "side": "hf_peft", "model": args.model,
        "device": shapes.device_name(args.device), "dtype": args.dtype,
        "seq": args.seq, "batch": args.batch, "rank": args.rank,
        "gradient_checkpointing": True, "steps": args.steps,
        "seconds": round(seconds, 4), "tokens_per_s": round(tokens / seconds, 2),
        "peak_bytes": peak, "peak_kind": peak_kind,
        "trainable_params": sum(p.numel() for p in params),
        "final_loss": round(float(loss.detach()), 4),
        "torch": torch.__version__,
    }), flush=True)


if __name__ == "__main__":
    main()
