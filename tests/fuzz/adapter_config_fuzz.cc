// Fuzzes the PEFT adapter_config.json parser (outside input: every adapter
// upload), including its bounds on size and nesting depth.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "lorad/model/peft_adapter.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto spec = lorad::model::PeftAdapterSpec::Parse(text);
  if (spec.ok() && (spec->rank < 1 || spec->rank > lorad::model::kMaxLoraRank ||
                    !(spec->alpha > 0))) {
    __builtin_trap();  // accepted values must be in range
  }
  return 0;
}
