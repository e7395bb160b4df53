"""A LoRA adapter made by PEFT on a small random model, for lorad's serving
parity test.

  make-adapter MODEL OUT R ALPHA TARGETS SEED
      creates a PEFT LoRA adapter (r=R, lora_alpha=ALPHA, target_modules the
      comma-separated TARGETS) on the HF model in MODEL with random A and B,
      saves it to OUT with save_pretrained, and writes the logits of
      INPUT_IDS with the adapter applied to OUT/peft_logits.safetensors.
Nothing is downloaded.
"""
import sys

import torch
from safetensors.torch import save_file

INPUT_IDS = [[256, 72, 101, 108, 108, 111, 44, 32, 119, 111, 114, 108],
             [256, 1, 2, 3, 200, 201, 202, 250, 251, 252, 253, 254]]


def make_adapter(model_dir, out, r, alpha, targets, seed):
    import peft
    import transformers
    torch.manual_seed(seed)
    model = transformers.AutoModelForCausalLM.from_pretrained(
        model_dir, torch_dtype=torch.float32)
    config = peft.LoraConfig(r=r, lora_alpha=alpha, lora_dropout=0.0,
                             target_modules=targets, task_type="CAUSAL_LM",
                             init_lora_weights=False)
    model = peft.get_peft_model(model, config)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name or "lora_A" in name:
                p.copy_(torch.randn_like(p) * 0.1)
    model.eval()
    model.save_pretrained(out)
    with torch.no_grad():
        logits = model(torch.tensor(INPUT_IDS)).logits.float().contiguous()
    save_file({"logits": logits, "input_ids": torch.tensor(INPUT_IDS)},
              f"{out}/peft_logits.safetensors")


if __name__ == "__main__":
    if len(sys.argv) == 8 and sys.argv[1] == "make-adapter":
        make_adapter(sys.argv[2], sys.argv[3], int(sys.argv[4]),
                     float(sys.argv[5]), sys.argv[6].split(","),
                     int(sys.argv[7]))
    else:
        raise SystemExit(__doc__)
