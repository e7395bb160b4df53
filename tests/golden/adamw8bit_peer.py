"""bitsandbytes' AdamW8bit on the CPU, the reference for adamw8bit_test.cc.

Usage: adamw8bit_peer.py OUT_DIR

Seeds torch, draws four parameters (two with 8-bit state: 77x131, whose
element count is not a multiple of the 256-element block, and 4096, exactly
bitsandbytes' min_8bit_size; two small ones that keep 32-bit state) and a
fixed gradient for every step, then runs bnb.optim.AdamW8bit over them.
Step 0 has an all-zero gradient for the 4096 parameter (as LoRA's A matrices
get while B is still zero) and a zero block in the 77x131 one; one small
parameter has no gradient on step 2, so its step count lags.

Writes into OUT_DIR raw little-endian tensors (NAME.bin) and manifest.json
naming them: the two quantisation maps bitsandbytes used, each parameter's
initial value, every gradient, and after the last step every parameter and
its optimizer state (uint8 state1/state2 + float absmax1/absmax2 for 8-bit
state, float state1/state2 otherwise) with its step count.
"""

import json
import os
import sys

import bitsandbytes as bnb
import bitsandbytes.functional as F
import torch

SHAPES = [[77, 131], [4096], [20, 30], [64]]
STEPS = 8
HP = {"lr": 1e-2, "betas": [0.9, 0.995], "eps": 1e-4, "weight_decay": 0.05}
NO_GRAD = [[3, 2]]  # [param, step]


def main(out):
    os.makedirs(out, exist_ok=True)
    files = {}

    def dump(name, t):
        t = t.detach().contiguous().cpu()
        t.numpy().tofile(os.path.join(out, name + ".bin"))
        files[name] = {"dtype": str(t.dtype).replace("torch.", ""),
                       "shape": list(t.shape)}

    torch.manual_seed(1234)
    params = [torch.randn(s) for s in SHAPES]
    for i, p in enumerate(params):
        dump(f"init{i}", p)
    live = [p.clone().requires_grad_(True) for p in params]
    opt = bnb.optim.AdamW8bit(live, lr=HP["lr"], betas=tuple(HP["betas"]),
                              eps=HP["eps"], weight_decay=HP["weight_decay"])
    for step in range(STEPS):
        scale = 3.0 if step % 3 == 0 else 0.05
        for i, shape in enumerate(SHAPES):
            if [i, step] in NO_GRAD:
                live[i].grad = None
                continue
            g = torch.randn(shape) * scale
            if step == 0 and i == 1:
                g.zero_()
            if step == 0 and i == 0:
                g.view(-1)[256:512] = 0
            dump(f"grad{i}_{step}", g)
            live[i].grad = g.clone()
        opt.step()

    states = []
    for i, p in enumerate(live):
        st = opt.state[p]
        dump(f"param{i}", p)
        dump(f"state1_{i}", st["state1"])
        dump(f"state2_{i}", st["state2"])
        quantized = st["state1"].dtype == torch.uint8
        if quantized:
            dump(f"absmax1_{i}", st["absmax1"])
            dump(f"absmax2_{i}", st["absmax2"])
            dump("qmap1", st["qmap1"])
            dump("qmap2", st["qmap2"])
        states.append({"quantized": bool(quantized), "step": int(st["step"])})
    dump("dynamic_signed", F.create_dynamic_map(signed=True))
    dump("dynamic_unsigned", F.create_dynamic_map(signed=False))

    manifest = {"shapes": SHAPES, "steps": STEPS, "hp": HP,
                "no_grad": NO_GRAD, "states": states, "files": files,
                "bitsandbytes": bnb.__version__}
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)


if __name__ == "__main__":
    main(sys.argv[1])
