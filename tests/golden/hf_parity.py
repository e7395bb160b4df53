"""Reference outputs from HF transformers and PEFT for lorad's parity tests.

  make-model ARCH OUT   write a small random ARCH (llama | qwen2 | qwen3 |
                        mistral | gemma2 | gemma3) model to OUT
                        (config.json + model.safetensors, fp32) and, to
                        OUT/logits.safetensors, the logits of INPUT_IDS in
                        fp32 and with bitsandbytes' NF4 (double-quantized)
                        block linears, and a greedy continuation
  peft-logits MODEL ADAPTER OUT
                        load MODEL with the PEFT adapter ADAPTER and write
                        its logits of INPUT_IDS to OUT
Nothing is downloaded: models are built from configs with a fixed seed.
"""
import sys

import torch
from safetensors.torch import save_file

INPUT_IDS = [[256, 72, 101, 108, 108, 111, 44, 32, 119, 111, 114, 108],
             [256, 1, 2, 3, 200, 201, 202, 250, 251, 252, 253, 254]]


def make_model(arch, out):
    import transformers
    torch.manual_seed(1234)
    common = dict(vocab_size=259, hidden_size=64, intermediate_size=128,
                  num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=2, max_position_embeddings=256,
                  rms_norm_eps=1e-6, bos_token_id=256, eos_token_id=257)
    if arch == "llama":
        cfg = transformers.LlamaConfig(
            **common, rope_theta=50000.0, tie_word_embeddings=False,
            rope_scaling={"rope_type": "llama3", "factor": 8.0,
                          "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                          "original_max_position_embeddings": 64})
        model = transformers.LlamaForCausalLM(cfg)
    elif arch == "qwen2":
        cfg = transformers.Qwen2Config(**common, rope_theta=1000000.0,
                                       tie_word_embeddings=True)
        model = transformers.Qwen2ForCausalLM(cfg)
    elif arch == "qwen3":
        # head_dim unrelated to hidden_size / heads, as in real Qwen3 models.
        cfg = transformers.Qwen3Config(**common, head_dim=24,
                                       rope_theta=1000000.0,
                                       tie_word_embeddings=True)
        model = transformers.Qwen3ForCausalLM(cfg)
    elif arch == "mistral":
        # A window of 4 inside 12-token rows: every layer slides.
        cfg = transformers.MistralConfig(**common, rope_theta=10000.0,
                                         sliding_window=4,
                                         tie_word_embeddings=False)
        model = transformers.MistralForCausalLM(cfg)
    elif arch == "gemma2":
        # A window of 4 inside 12-token rows, so the sliding layer truly
        # slides; caps low enough that tanh bends the scores and logits.
        cfg = transformers.Gemma2Config(
            **common, head_dim=16, query_pre_attn_scalar=24,
            attn_logit_softcapping=1.0, final_logit_softcapping=0.5,
            sliding_window=4,
            layer_types=["sliding_attention", "full_attention"],
            rope_parameters={"rope_type": "default", "rope_theta": 10000.0})
        model = transformers.Gemma2ForCausalLM(cfg)
    elif arch == "gemma3":
        # Per-head q/k norms, a local RoPE base for the sliding layer and a
        # linearly scaled global one, as in Gemma 3 4B and up.
        cfg = transformers.Gemma3TextConfig(
            **common, head_dim=24, query_pre_attn_scalar=32,
            sliding_window=4,
            layer_types=["sliding_attention", "full_attention"],
            rope_parameters={
                "full_attention": {"rope_type": "linear", "factor": 4.0,
                                   "rope_theta": 1000000.0},
                "sliding_attention": {"rope_type": "default",
                                      "rope_theta": 10000.0}})
        model = transformers.Gemma3ForCausalLM(cfg)
    else:
        raise SystemExit(f"unknown arch {arch}")
    # Random init of HF leaves norms at 1 and biases at 0; perturb them so
    # the test sees them.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight") or name.endswith(".bias"):
                p.add_(torch.randn_like(p) * 0.1)
            # Larger attention scores, so Gemma 2's soft-capping matters.
            if arch == "gemma2" and (name.endswith("q_proj.weight") or
                                     name.endswith("k_proj.weight")):
                p.mul_(8.0)
    model = model.float().eval()
    model.save_pretrained(out, safe_serialization=True)
    with torch.no_grad():
        logits = model(torch.tensor(INPUT_IDS)).logits.float().contiguous()
        # Greedy continuation of the first row (BOS + "Hello, worl"), as
        # generate() stops it (on the model's EOS).
        prompt = torch.tensor(INPUT_IDS[:1])
        out_ids = model.generate(prompt, attention_mask=torch.ones_like(prompt),
                                 max_new_tokens=4, do_sample=False)
    save_file({"logits": logits, "input_ids": torch.tensor(INPUT_IDS),
               "greedy": out_ids[0, prompt.shape[1]:].contiguous(),
               "nf4_logits": nf4_logits(out)},
              f"{out}/logits.safetensors")


def blockwise_dequantize(packed, state):
    """bitsandbytes' NF4 bytes and double-quantized absmax read as its block
    format defines them: element i is code[nibble i] * absmax[i // 64], the
    high nibble of each byte first, blocks running over the flattened
    weight."""
    import bitsandbytes.functional as F
    absmax = state.absmax
    if state.nested:
        absmax = F.dequantize_blockwise(absmax, state.state2) + state.offset
    codes = packed.view(torch.uint8).reshape(-1)
    nibbles = torch.stack([codes >> 4, codes & 0xF], 1).reshape(-1).long()
    n = state.shape.numel()
    values = state.code.float()[nibbles][:n]
    pad = -n % state.blocksize
    values = torch.nn.functional.pad(values, (0, pad))
    values = values.view(-1, state.blocksize) * absmax.float().view(-1, 1)
    return values.reshape(-1)[:n].view(state.shape)


def nf4_logits(model_dir):
    """The logits of INPUT_IDS with the block linears quantized by
    bitsandbytes inside transformers (QLoRA's NF4 + double quantization,
    fp32 compute), on the CPU.

    bitsandbytes' CPU matmul dequantizes and multiplies in fp32, except that
    on a CPU with AVX512 its native dequantize kernel misreads weights whose
    rows are not a whole number of 64-value blocks (a [64, 96] o_proj comes
    back 4x further from the weight than its bytes allow, in 0.49-0.50.2),
    and with AVX512-BF16 inference switches to a repacked bf16 kernel. So
    each of its layers is replaced by an fp32 linear holding its bytes
    dequantized by the block format above; where bitsandbytes' own
    dequantize disagrees, this says so."""
    import bitsandbytes
    import bitsandbytes.functional as F
    import transformers
    q = transformers.BitsAndBytesConfig(
        load_in_4bit=True, bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True, bnb_4bit_compute_dtype=torch.float32)
    model = transformers.AutoModelForCausalLM.from_pretrained(
        model_dir, quantization_config=q, device_map="cpu",
        dtype=torch.float32).eval()
    layers = [(name, module) for name, module in model.named_modules()
              if isinstance(module, bitsandbytes.nn.Linear4bit)]
    assert layers, "transformers quantized no layer"
    for name, module in layers:
        state = module.weight.quant_state
        weight = blockwise_dequantize(module.weight.data, state)
        theirs = F.dequantize_4bit(module.weight.data, state).float()
        if not torch.equal(theirs, weight):
            print(f"{name}: bitsandbytes' CPU dequantize_4bit differs from "
                  f"its block format by {(theirs - weight).abs().max():.3g} "
                  f"(shape {tuple(state.shape)}); using the block format",
                  file=sys.stderr)
        linear = torch.nn.Linear(module.in_features, module.out_features,
                                 bias=module.bias is not None)
        with torch.no_grad():
            linear.weight.copy_(weight)
            if module.bias is not None:
                linear.bias.copy_(module.bias.float())
        parent, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent), child, linear)
    with torch.no_grad():
        return model(torch.tensor(INPUT_IDS)).logits.float().contiguous()


def peft_logits(model_dir, adapter_dir, out):
    import peft
    import transformers
    model = transformers.AutoModelForCausalLM.from_pretrained(
        model_dir, torch_dtype=torch.float32)
    model = peft.PeftModel.from_pretrained(model, adapter_dir).eval()
    with torch.no_grad():
        logits = model(torch.tensor(INPUT_IDS)).logits.float().contiguous()
    save_file({"logits": logits}, out)


if __name__ == "__main__":
    if sys.argv[1] == "make-model":
        make_model(sys.argv[2], sys.argv[3])
    elif sys.argv[1] == "peft-logits":
        peft_logits(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        raise SystemExit(__doc__)
