"""Writes tests/golden/safetensors/: files made by the Python safetensors
library for the C++ reader's tests.

- dtypes.safetensors: one small tensor per dtype lorad reads (F64, F32, F16,
  BF16, I64, I32, I16, I8, U8, BOOL), a scalar, an empty tensor, and
  __metadata__ {"format": "pt", "note": "golden"}. Values are fixed
  formulas, so the test can recompute them.
- sharded/: a two-shard model (model-00001-of-00002.safetensors,
  model-00002-of-00002.safetensors) with model.safetensors.index.json.

Run: .venv/bin/python tests/golden/make_safetensors_golden.py
"""

import json
import os

import torch
from safetensors.torch import save_file

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "safetensors")


def ramp(n, dtype):
    # -1.5, -1.25, ... : exact in every float dtype.
    return (torch.arange(n, dtype=torch.float64) * 0.25 - 1.5).to(dtype)


def main():
    os.makedirs(os.path.join(OUT, "sharded"), exist_ok=True)
    tensors = {
        "f64": ramp(6, torch.float64).reshape(2, 3),
        "f32": ramp(12, torch.float32).reshape(3, 4),
        "f16": ramp(5, torch.float16),
        "bf16": ramp(7, torch.bfloat16),
        "i64": torch.tensor([-(2**40), 0, 2**40], dtype=torch.int64),
        "i32": torch.tensor([[-7, 8], [9, -10]], dtype=torch.int32),
        "i16": torch.tensor([-300, 300], dtype=torch.int16),
        "i8": torch.tensor([-128, 127, 0], dtype=torch.int8),
        "u8": torch.tensor([0, 1, 255], dtype=torch.uint8),
        "bool": torch.tensor([True, False, True], dtype=torch.bool),
        "scalar": torch.tensor(3.5, dtype=torch.float32),
        "empty": torch.zeros((0, 4), dtype=torch.float32),
    }
    save_file(tensors, os.path.join(OUT, "dtypes.safetensors"),
              metadata={"format": "pt", "note": "golden"})

    shard1 = {"model.embed_tokens.weight": ramp(8, torch.float32).reshape(2, 4),
              "model.layers.0.mlp.up_proj.weight": ramp(6, torch.bfloat16)}
    shard2 = {"lm_head.weight": ramp(4, torch.float16).reshape(2, 2)}
    names = ["model-00001-of-00002.safetensors",
             "model-00002-of-00002.safetensors"]
    save_file(shard1, os.path.join(OUT, "sharded", names[0]),
              metadata={"format": "pt"})
    save_file(shard2, os.path.join(OUT, "sharded", names[1]),
              metadata={"format": "pt"})
    weight_map = {k: names[0] for k in shard1}
    weight_map.update({k: names[1] for k in shard2})
    index = {"metadata": {"total_size": 8 * 4 + 6 * 2 + 4 * 2},
             "weight_map": dict(sorted(weight_map.items()))}
    with open(os.path.join(OUT, "sharded", "model.safetensors.index.json"),
              "w") as f:
        json.dump(index, f, indent=2)
        f.write("\n")


if __name__ == "__main__":
    main()
