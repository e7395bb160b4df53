// The PEFT LoRA adapter format, with one rule set for the server (which
// checks an adapter before it accepts one) and the worker (which loads and
// writes them): adapter_config.json (peft_type LORA, r, lora_alpha,
// lora_dropout, target_modules, base_model_name_or_path) and
// adapter_model.safetensors with tensors named
// "base_model.model.model.layers.<i>.<path>.lora_A.weight" ([r, in]) and
// "...lora_B.weight" ([out, r]); scale = lora_alpha / r. Torch-free: only the
// config text and the safetensors header are read here.
//
// The rules, once:
//  - r: required, an integer in [1, kMaxLoraRank].
//  - lora_alpha: a finite number > 0; absent means PEFT's default (8).
//  - lora_dropout: a number in [0, 1); absent means 0.
//  - target_modules: "all-linear" or a non-empty list of block linear names
//    (q_proj ... down_proj); duplicates are merged.
//  - peft_type, when present, "LORA"; use_dora and use_rslora, when present,
//    false; rank_pattern and alpha_pattern, when present, empty (lorad has
//    one rank and one scale per adapter).
//  - every tensor a lora_A or lora_B weight (PEFT's ".default" adapter-name
//    segment before ".weight" is accepted) of a target module of an existing
//    layer, F32, F16 or BF16, shaped for r and the base model, both halves
//    present; at least one pair.
#ifndef LORAD_MODEL_PEFT_ADAPTER_H_
#define LORAD_MODEL_PEFT_ADAPTER_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "lorad/model/block_linears.h"
#include "lorad/model/model_config.h"
#include "lorad/model/safetensors.h"

namespace lorad::model {

inline constexpr char kAdapterConfigFile[] = "adapter_config.json";
inline constexpr char kAdapterWeightsFile[] = "adapter_model.safetensors";

// PEFT's LoraConfig default for lora_alpha.
inline constexpr double kPeftDefaultLoraAlpha = 8;
inline constexpr int64_t kMaxLoraRank = 1024;
// Bounds on adapter_config.json before it is parsed.
inline constexpr size_t kMaxAdapterConfigBytes = size_t{1} << 20;
inline constexpr int kMaxAdapterConfigDepth = 16;

enum class LoraHalf { kA, kB };

// Where one tensor of adapter_model.safetensors belongs.
struct PeftTensorKey {
  int64_t layer = 0;
  BlockLinear linear;  // shaped for the base model
  LoraHalf half = LoraHalf::kA;
};

// "base_model.model.<module_key>.lora_<A|B>.weight", the name PEFT saves a
// LoRA half under; `module_key` as BlockLinearKey gives it.
std::string PeftTensorName(std::string_view module_key, LoraHalf half);

// The inverse of PeftTensorName for `base`; also accepts
// "....lora_A.default.weight". InvalidArgument
// "adapter_model.safetensors: key \"<name>\": <why>" (not a LoRA weight of a
// decoder block, no layer number, a layer the base lacks, a module it lacks).
absl::StatusOr<PeftTensorKey> ParsePeftTensorName(std::string_view name,
                                                  const ModelConfig& base);

struct PeftAdapterSpec {
  int64_t rank = 8;
  double alpha = kPeftDefaultLoraAlpha;
  double dropout = 0;
  std::vector<std::string> target_modules;  // short names, sorted, distinct
  std::string base_model_name_or_path;      // "" when absent or null

  double scale() const { return alpha / static_cast<double>(rank); }

  // Parses adapter_config.json text by the rules above. Text over
  // kMaxAdapterConfigBytes or nested deeper than kMaxAdapterConfigDepth is
  // refused before it is parsed. InvalidArgument
  // "adapter_config.json: <why>" naming the key otherwise.
  static absl::StatusOr<PeftAdapterSpec> Parse(std::string_view json);

  // Checks adapter_model.safetensors' tensors against this spec and `base`
  // by the rules above. InvalidArgument
  // "adapter_model.safetensors: key \"<name>\": <why>" otherwise.
  absl::Status Validate(const ModelConfig& base,
                        const std::vector<TensorInfo>& tensors) const;

  // adapter_config.json text as PEFT writes it for this spec (task_type
  // CAUSAL_LM, bias "none", inference_mode true, ...). Parse() reads it back
  // to an equal spec when the spec itself follows the rules.
  std::string ToJson() const;
};

// A PEFT adapter directory, read and checked against a base model.
struct PeftAdapter {
  PeftAdapterSpec spec;
  // Header checked by Validate; the data stays memory-mapped.
  std::unique_ptr<SafetensorsFile> weights;
  int64_t size_bytes = 0;  // of both files
};

// Reads <dir>/adapter_config.json and <dir>/adapter_model.safetensors and
// checks them (Parse, then Validate). NotFound "<file>: missing" when either
// file is missing; InvalidArgument "adapter_model.safetensors: not a valid
// safetensors file (<why>)" or as Parse / Validate say otherwise. Messages
// name the file, never `dir` (callers that want it add it).
absl::StatusOr<PeftAdapter> OpenPeftAdapter(const std::string& dir,
                                            const ModelConfig& base);

}  // namespace lorad::model

#endif  // LORAD_MODEL_PEFT_ADAPTER_H_
