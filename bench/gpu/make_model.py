"""Writes a random-weight Llama-shaped model as a HF directory (config.json,
model.safetensors, tokenizer.json) for lorad's side of the GPU benchmarks,
so both sides see the same shapes. The tokenizer is copied from a directory
given with --tokenizer_from (lorad's built-in tiny model has a byte-level
one); token ids stay far below the vocabulary size.

  python3 bench/gpu/make_model.py --model llama-1b --out /tmp/m --tokenizer_from DIR
"""

import argparse
import os
import shutil
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import shapes  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True, choices=sorted(shapes.SHAPES))
    ap.add_argument("--out", required=True)
    ap.add_argument("--tokenizer_from", default="")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args()
    if os.path.exists(os.path.join(args.out, "config.json")):
        print(f"{args.out} exists")
        return
    model = shapes.build_model(args.model, args.device, torch.bfloat16)
    model.save_pretrained(args.out, safe_serialization=True,
                          max_shard_size="4GB")
    if args.tokenizer_from:
        shutil.copy(os.path.join(args.tokenizer_from, "tokenizer.json"),
                    os.path.join(args.out, "tokenizer.json"))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
