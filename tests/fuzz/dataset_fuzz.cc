// Fuzzes the JSONL dataset parser (outside input: every uploaded dataset).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "lorad/common/dataset.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  // Either a parsed dataset or an error; never a crash.
  (void)lorad::ParseJsonlDataset(text, /*train_on_prompt=*/false);
  (void)lorad::ParseJsonlDataset(text, /*train_on_prompt=*/true);
  return 0;
}
