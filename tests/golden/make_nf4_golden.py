"""Writes tests/golden/nf4/*.safetensors: NF4 quantization by bitsandbytes.

Each case file holds the input `weight` (F32, or BF16 for the largest case),
bitsandbytes' quantize_4bit(nf4, blocksize=64, compress_statistics=True)
state (`packed`, `absmax_codes`, `absmax_scales`, `offset`), the plain fp32
`absmax` from compress_statistics=False, and `dequant`, the fp32 output of
dequantize_4bit. maps.safetensors holds bnb's NF4 codebook and its signed
dynamic map. Inputs come from fixed seeds, so a rerun gives the same bytes
(on the same CPU architecture).

Run: .venv/bin/python tests/golden/make_nf4_golden.py
"""

import os

import bitsandbytes
import bitsandbytes.functional as F
import torch
from safetensors.torch import save_file

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "nf4")


def make_weight(name, shape, seed):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(shape, generator=g, dtype=torch.float32)
    if name == "r17x129":
        w = w * 0.02
        w.view(-1)[64:128] = 0.0  # one all-zero block
    elif name == "r96x200":
        # Row scales over four decades exercise the dynamic map's range.
        w = w * torch.logspace(-4, 0, shape[0]).unsqueeze(1)
    elif name == "r64x1024":
        w = (w * 0.05).to(torch.bfloat16)
    else:
        w = w * 0.05
    return w


def main():
    os.makedirs(OUT, exist_ok=True)
    cases = [("n33", (33,), 1), ("r17x129", (17, 129), 2),
             ("r96x200", (96, 200), 3), ("r64x1024", (64, 1024), 4)]
    for name, shape, seed in cases:
        w = make_weight(name, shape, seed)
        wf = w.float()
        packed, state = F.quantize_4bit(wf, blocksize=64, quant_type="nf4",
                                        compress_statistics=True)
        _, plain = F.quantize_4bit(wf, blocksize=64, quant_type="nf4",
                                   compress_statistics=False)
        dequant = F.dequantize_4bit(packed, state)
        tensors = {
            "weight": w.contiguous(),
            "packed": packed.reshape(-1).contiguous(),
            "absmax_codes": state.absmax.reshape(-1).contiguous(),
            "absmax_scales": state.state2.absmax.reshape(-1).contiguous(),
            "offset": state.offset.reshape(1).float().contiguous(),
            "absmax": plain.absmax.reshape(-1).contiguous(),
            "dequant": dequant.reshape(-1).float().contiguous(),
        }
        save_file(tensors, os.path.join(OUT, name + ".safetensors"),
                  metadata={"source": "bitsandbytes " + bitsandbytes.__version__,
                            "shape": "x".join(map(str, shape))})
    save_file({"nf4": F.get_4bit_type("nf4", device="cpu").float(),
               "dynamic": F.create_dynamic_map(signed=True).float()},
              os.path.join(OUT, "maps.safetensors"))


if __name__ == "__main__":
    main()
