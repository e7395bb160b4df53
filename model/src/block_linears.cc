#include "lorad/model/block_linears.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace lorad::model {

std::array<BlockLinear, kNumBlockLinears> BlockLinears(const ModelConfig& c) {
  const int64_t h = c.hidden_size, q = c.num_attention_heads * c.head_dim,
                kv = c.num_key_value_heads * c.head_dim,
                inter = c.intermediate_size;
  return {{{kBlockLinearNames[0], "self_attn.q_proj", h, q},
           {kBlockLinearNames[1], "self_attn.k_proj", h, kv},
           {kBlockLinearNames[2], "self_attn.v_proj", h, kv},
           {kBlockLinearNames[3], "self_attn.o_proj", q, h},
           {kBlockLinearNames[4], "mlp.gate_proj", h, inter},
           {kBlockLinearNames[5], "mlp.up_proj", h, inter},
           {kBlockLinearNames[6], "mlp.down_proj", inter, h}}};
}

std::optional<int> BlockLinearIndex(std::string_view name) {
  for (int i = 0; i < kNumBlockLinears; ++i) {
    if (kBlockLinearNames[i] == name) return i;
  }
  return std::nullopt;
}

std::string BlockLinearNameList() {
  return absl::StrJoin(kBlockLinearNames, ", ");
}

std::string BlockLinearKey(int64_t layer, std::string_view path) {
  return absl::StrCat("model.layers.", layer, ".",
                      absl::string_view(path.data(), path.size()));
}

}  // namespace lorad::model
