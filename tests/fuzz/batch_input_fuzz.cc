// Fuzzes the batch inference input parser (outside input: every uploaded
// batch) and the result lines made from what it accepts.
#include <cstddef>
#include <cstdint>
#include <string>

#include "jobs/batch_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  lorad::v1::GenerateRequest defaults;
  defaults.set_max_new_tokens(8);
  auto lines = lorad::server::ParseBatchInput(text, defaults);
  if (!lines.ok()) return 0;
  for (const lorad::server::BatchLine& line : *lines) {
    // Model output may be any bytes; the result line is JSON regardless.
    (void)lorad::server::BatchResultJson(line, line.request.prompt(), "stop",
                                         {});
    (void)lorad::server::BatchErrorJson(line, absl::InternalError(text));
  }
  return 0;
}
