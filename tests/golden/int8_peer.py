"""bitsandbytes' LLM.int8 as the peer of lorad's int8 base (int8_test).

  quantize IN OUT     IN holds "w" (fp32 [out, in]); OUT gets bitsandbytes'
                      Int8Params bytes of it: "CB" (int8) and "SCB" (fp32)
  matmul IN OUT       IN holds "w", "x" ([..., in]) and "g" (a gradient of
                      the output); OUT gets "y", the output of
                      Linear8bitLt(has_fp16_weights=False, threshold=6.0)
                      in eval mode on the CPU (LLM.int8's mixed
                      decomposition), and "dx", the gradient of x for "g"
  make-model OUT      write a small random Llama to OUT (fp32), one input
                      norm channel scaled so its column crosses the outlier
                      threshold, and to OUT/logits.safetensors the logits of
                      "input_ids": fp32 ("logits") and with transformers'
                      BitsAndBytesConfig(load_in_8bit=True) ("int8_logits")
Everything runs on the CPU; nothing is downloaded.
"""
import sys

import torch
from safetensors.torch import load_file, save_file

INPUT_IDS = [[256, 72, 101, 108, 108, 111, 44, 32, 119, 111, 114, 108],
             [256, 1, 2, 3, 200, 201, 202, 250, 251, 252, 253, 254]]


def quantize(src, out):
    import bitsandbytes as bnb
    w = load_file(src)["w"]
    p = bnb.nn.Int8Params(w.clone(), requires_grad=False,
                          has_fp16_weights=False).to("cpu")
    save_file({"CB": p.CB.contiguous(), "SCB": p.SCB.contiguous()}, out)


def matmul(src, out):
    import bitsandbytes as bnb
    t = load_file(src)
    w, x, g = t["w"], t["x"], t["g"]
    layer = bnb.nn.Linear8bitLt(w.shape[1], w.shape[0], bias=False,
                                has_fp16_weights=False, threshold=6.0)
    layer.weight = bnb.nn.Int8Params(w.clone(), requires_grad=False,
                                     has_fp16_weights=False)
    layer = layer.to("cpu").eval()
    x = x.clone().requires_grad_(True)
    y = layer(x)
    y.backward(g)
    save_file({"y": y.detach().contiguous(), "dx": x.grad.contiguous()}, out)


def make_model(out):
    import transformers
    torch.manual_seed(4321)
    cfg = transformers.LlamaConfig(
        vocab_size=259, hidden_size=64, intermediate_size=128,
        num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
        max_position_embeddings=256, rms_norm_eps=1e-6, bos_token_id=256,
        eos_token_id=257, rope_theta=10000.0, tie_word_embeddings=False)
    model = transformers.LlamaForCausalLM(cfg)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.add_(torch.randn_like(p) * 0.1)
            # Weights of the scale real checkpoints have (HF's init is
            # 0.02), so quantization error shows in the logits.
            if name.endswith("proj.weight"):
                p.normal_(0, 0.15)
        # Channel 7 after every input norm is ~20x the others: an outlier
        # column of q/k/v's input, as LLM.int8 finds in large models.
        for layer in model.model.layers:
            layer.input_layernorm.weight[7] = 20.0
    model = model.float().eval()
    model.save_pretrained(out, safe_serialization=True)
    ids = torch.tensor(INPUT_IDS)
    with torch.no_grad():
        logits = model(ids).logits.float().contiguous()
    q = transformers.BitsAndBytesConfig(load_in_8bit=True,
                                        llm_int8_threshold=6.0)
    int8 = transformers.AutoModelForCausalLM.from_pretrained(
        out, quantization_config=q, device_map="cpu",
        dtype=torch.float32).eval()
    with torch.no_grad():
        int8_logits = int8(ids).logits.float().contiguous()
    save_file({"logits": logits, "int8_logits": int8_logits,
               "input_ids": ids}, f"{out}/logits.safetensors")


if __name__ == "__main__":
    if sys.argv[1] == "quantize":
        quantize(sys.argv[2], sys.argv[3])
    elif sys.argv[1] == "matmul":
        matmul(sys.argv[2], sys.argv[3])
    elif sys.argv[1] == "make-model":
        make_model(sys.argv[2])
    else:
        raise SystemExit(f"unknown command {sys.argv[1]}")
