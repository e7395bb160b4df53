#include "lorad/model/base_quantization.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace lorad::model {

absl::StatusOr<BaseQuantization> ParseBaseQuantization(absl::string_view name) {
  if (name.empty() || name == "nf4") return BaseQuantization::kNf4;
  if (name == "int8") return BaseQuantization::kInt8;
  return absl::InvalidArgumentError(absl::StrCat(
      "quantization must be nf4 or int8, got \"", name.substr(0, 32), "\""));
}

absl::string_view BaseQuantizationName(BaseQuantization q) {
  return q == BaseQuantization::kInt8 ? "int8" : "nf4";
}

}  // namespace lorad::model
