// Fuzzes config.json parsing (outside input: any model directory).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "lorad/model/model_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view json(reinterpret_cast<const char*>(data), size);
  auto config = lorad::model::ModelConfig::FromJson(json, "config.json");
  if (config.ok()) {
    (void)config->NumParameters();
    (void)config->ToJson();
  }
  return 0;
}
