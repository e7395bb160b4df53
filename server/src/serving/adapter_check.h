// Validation of a PEFT LoRA adapter directory against a base model, done by
// the server before it accepts an adapter. Torch-free: it reads
// adapter_config.json and the safetensors header only.
#ifndef LORAD_SERVER_SERVING_ADAPTER_CHECK_H_
#define LORAD_SERVER_SERVING_ADAPTER_CHECK_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "lorad/model/model_config.h"

namespace lorad::server {

inline constexpr char kAdapterConfigFile[] = "adapter_config.json";
inline constexpr char kAdapterWeightsFile[] = "adapter_model.safetensors";

struct AdapterFacts {
  int32_t rank = 0;
  double alpha = 0;
  std::vector<std::string> target_modules;  // short names, sorted
  std::string base_model_name_or_path;      // as the config says
  int64_t size_bytes = 0;                   // both files
};

// The config of `model` ("tiny" or a HF directory): NotFound /
// InvalidArgument as ModelConfig::FromDir says.
absl::StatusOr<model::ModelConfig> BaseModelConfig(const std::string& model);

// Checks <dir>/adapter_config.json (peft_type LORA, r, lora_alpha,
// target_modules among the block linears) and the header of
// <dir>/adapter_model.safetensors: every tensor a lora_A / lora_B weight of a
// target module of an existing layer, both halves present, dtype F32, F16 or
// BF16, shapes A [r, in] and B [out, r] for `base`. InvalidArgument naming
// the file and the key otherwise (a missing file too).
absl::StatusOr<AdapterFacts> CheckPeftAdapter(const std::string& dir,
                                              const model::ModelConfig& base);

}  // namespace lorad::server

#endif  // LORAD_SERVER_SERVING_ADAPTER_CHECK_H_
