"""Model shapes the GPU benchmarks use, as HF LlamaConfig keyword arguments.

Weights are random (config only, nothing is downloaded): speed and memory
depend on shapes, not values.
"""

SHAPES = {
    # Meta-Llama-3-8B.
    "llama3-8b": dict(hidden_size=4096, intermediate_size=14336,
                      num_hidden_layers=32, num_attention_heads=32,
                      num_key_value_heads=8, vocab_size=128256,
                      max_position_embeddings=8192, rope_theta=500000.0,
                      rms_norm_eps=1e-5, tie_word_embeddings=False),
    # Llama-3.2-1B.
    "llama-1b": dict(hidden_size=2048, intermediate_size=8192,
                     num_hidden_layers=16, num_attention_heads=32,
                     num_key_value_heads=8, head_dim=64, vocab_size=128256,
                     max_position_embeddings=8192, rope_theta=500000.0,
                     rms_norm_eps=1e-5, tie_word_embeddings=True),
    # For checking the scripts themselves (CPU, seconds).
    "tiny": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                 num_attention_heads=4, num_key_value_heads=2,
                 vocab_size=256, max_position_embeddings=2048,
                 rms_norm_eps=1e-5, tie_word_embeddings=False),
}

LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj",
                "up_proj", "down_proj"]


def build_model(name, device, dtype):
    """A LlamaForCausalLM of shape `name` with random weights on `device`."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(**SHAPES[name])
    config.attn_implementation = "sdpa"
    torch.manual_seed(0)
    # Initialise directly on the device in the target dtype: an 8B model
    # built in fp32 on the host first would need 32 GB and minutes.
    with torch.device(device):
        model = LlamaForCausalLM._from_config(
            config, torch_dtype=dtype, attn_implementation="sdpa")
    return model


def device_name(device):
    import torch

    if device.startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    return "cpu"
