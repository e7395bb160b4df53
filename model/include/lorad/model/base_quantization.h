// How the worker holds a base model's frozen block linears: NF4 (QLoRA's
// 4-bit NormalFloat, double quantized; the default) or LLM.int8 (row-wise
// int8 with an fp32 absmax per output row, outlier input columns multiplied
// in 16 bits). Shared by the job's options, the memory estimate and the
// worker's model registry.
#ifndef LORAD_MODEL_BASE_QUANTIZATION_H_
#define LORAD_MODEL_BASE_QUANTIZATION_H_

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace lorad::model {

enum class BaseQuantization { kNf4, kInt8 };

// "" and "nf4" are kNf4, "int8" is kInt8; anything else is InvalidArgument
// naming the value.
absl::StatusOr<BaseQuantization> ParseBaseQuantization(absl::string_view name);

// "nf4" or "int8".
absl::string_view BaseQuantizationName(BaseQuantization q);

}  // namespace lorad::model

#endif  // LORAD_MODEL_BASE_QUANTIZATION_H_
