// The parts of a Hugging Face config.json that a Llama-family decoder needs.
#ifndef LORAD_MODEL_MODEL_CONFIG_H_
#define LORAD_MODEL_MODEL_CONFIG_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace lorad::model {

struct RopeScaling {
  std::string type;  // "" (none), "linear", "dynamic" or "llama3"
  double factor = 1.0;
  double low_freq_factor = 1.0;
  double high_freq_factor = 4.0;
  int64_t original_max_position_embeddings = 8192;
};

struct ModelConfig {
  std::string architecture;  // LlamaForCausalLM, MistralForCausalLM, ...
  std::string model_type;    // llama, mistral, qwen2, qwen3
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t num_hidden_layers = 0;
  int64_t num_attention_heads = 0;
  int64_t num_key_value_heads = 0;
  int64_t head_dim = 0;
  int64_t max_position_embeddings = 2048;
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;
  RopeScaling rope_scaling;
  bool qkv_bias = false;  // Qwen2 always; Llama when attention_bias
  bool o_bias = false;    // Llama when attention_bias
  bool mlp_bias = false;
  bool qk_norm = false;  // Qwen3: an RMSNorm over each head's q and k
  bool tie_word_embeddings = false;
  std::vector<int64_t> eos_token_ids;
  // The ids that end generation: generation_config.json's eos_token_id (an
  // id or a list; Llama 3.x instruct models list several) when FromDir finds
  // one, else eos_token_ids.
  std::vector<int64_t> stop_token_ids;
  // The attention window of the layers that slide (see sliding_layers):
  // Mistral, Qwen2/Qwen3 with use_sliding_window, Gemma; 0 when none does.
  int64_t sliding_window = 0;
  int64_t bos_token_id = -1;
  int64_t pad_token_id = -1;

  // Gemma 2 and Gemma 3 text (Gemma2ForCausalLM, Gemma3ForCausalLM).
  // gemma: every RMSNorm scales by (1 + w) in fp32, embeddings are
  // multiplied by sqrt(hidden_size), and each block has four norms: before
  // and after attention, before and after the MLP.
  bool gemma = false;
  // The MLP's gate activation: "silu" (SwiGLU) or, for Gemma,
  // "gelu_pytorch_tanh" (GeGLU, tanh approximation) or "gelu" (exact).
  std::string activation = "silu";
  // Attention scores are scaled by query_pre_attn_scalar^-0.5 (Gemma); 0:
  // by head_dim^-0.5.
  double query_pre_attn_scalar = 0;
  // cap * tanh(x / cap) applied to attention scores and to the final
  // logits; 0: not applied (Gemma 2 sets both).
  double attn_logit_softcapping = 0;
  double final_logit_softcapping = 0;
  // Per layer, whether it attends only to the last sliding_window positions
  // (transformers' layer_types); empty when no layer slides.
  std::vector<bool> sliding_layers;
  // Gemma 3: the RoPE base of sliding layers, which use no rope scaling;
  // 0 when they rotate like the global ones.
  double local_rope_theta = 0;

  // Parses config.json text. `where` names the file in error messages.
  // InvalidArgument for malformed JSON, a missing field, or an architecture
  // lorad does not run (the message lists the supported ones).
  static absl::StatusOr<ModelConfig> FromJson(std::string_view json,
                                              std::string_view where);
  // Reads <dir>/config.json, and <dir>/generation_config.json when present
  // (its eos_token_id becomes stop_token_ids). NotFound when config.json is
  // missing; InvalidArgument naming the file and field for a bad value.
  static absl::StatusOr<ModelConfig> FromDir(const std::string& dir);

  // Serialises back to HF config.json form (used to write the tiny model).
  std::string ToJson() const;

  // Parameters of every linear layer inside the decoder blocks (those NF4
  // quantizes) and of the whole model.
  int64_t NumBlockLinearParameters() const;
  int64_t NumParameters() const;
};

}  // namespace lorad::model

#endif  // LORAD_MODEL_MODEL_CONFIG_H_
