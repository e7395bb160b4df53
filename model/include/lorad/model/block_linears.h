// The seven linear layers inside a Llama-family decoder block, the layers
// NF4 quantizes and LoRA adapts. This is the one list of them: their short
// names (PEFT's target_modules), their paths below "model.layers.<i>." and
// their shapes for a given ModelConfig, always in the same order.
#ifndef LORAD_MODEL_BLOCK_LINEARS_H_
#define LORAD_MODEL_BLOCK_LINEARS_H_

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "lorad/model/model_config.h"

namespace lorad::model {

inline constexpr int kNumBlockLinears = 7;

// q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj.
inline constexpr std::array<const char*, kNumBlockLinears> kBlockLinearNames = {
    "q_proj",    "k_proj",  "v_proj",   "o_proj",
    "gate_proj", "up_proj", "down_proj"};

struct BlockLinear {
  const char* name = "";  // "q_proj"
  const char* path = "";  // "self_attn.q_proj" or "mlp.gate_proj"
  int64_t in = 0;         // input features
  int64_t out = 0;        // output features
};

// The seven block linears of `config`, in kBlockLinearNames' order.
std::array<BlockLinear, kNumBlockLinears> BlockLinears(
    const ModelConfig& config);

// The position of `name` in kBlockLinearNames; nullopt when it is none.
std::optional<int> BlockLinearIndex(std::string_view name);

// "q_proj, k_proj, ..., down_proj", for messages.
std::string BlockLinearNameList();

// The base model's name for a block linear:
// "model.layers.<layer>.<path>" (its weight is that + ".weight").
std::string BlockLinearKey(int64_t layer, std::string_view path);

}  // namespace lorad::model

#endif  // LORAD_MODEL_BLOCK_LINEARS_H_
