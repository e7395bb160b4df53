// Fuzzes what the OpenAI-compatible API reads from a request body before
// any call is made: the bounded JSON parse, a completions and a chat body
// read into Generate requests, a fine-tuning job body, and a multipart
// upload (the input split at its first NUL into Content-Type and body).
#include <cstddef>
#include <cstdint>
#include <string>

#include "lorad/common/bounded_json.h"
#include "openai/fine_tuning_json.h"
#include "openai/generation_request.h"
#include "openai/multipart.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  const size_t nul = text.find('\0');
  if (nul != std::string::npos) {
    const std::string content_type = text.substr(0, nul);
    const std::string body = text.substr(nul + 1);
    auto parts = lorad::server::openai::ParseMultipart(content_type, body);
    if (parts.ok()) {
      for (const auto& p : *parts) (void)p.data.size();
    }
  }
  auto body = lorad::ParseBoundedJson(text, lorad::kSmallJsonLimits);
  if (!body.ok()) return 0;
  for (bool chat : {false, true}) {
    lorad::server::openai::GenerationPlan plan;
    (void)lorad::server::openai::ParseGeneration(*body, chat, "tiny", 8, &plan);
  }
  if (body->is_object()) {
    lorad::v1::CreateFineTuneJobRequest create;
    std::string message, param;
    (void)lorad::server::openai::ReadCreateJob(*body, "tiny", &create, &message,
                                               &param);
  }
  return 0;
}
