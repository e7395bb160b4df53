// TEMPORARY until the sampling extras land in the gRPC API: refuses them.
#include "openai/generation_request.h"

namespace lorad::server::openai {

bool ReadGenerationExtras(const nlohmann::json& body, bool chat,
                          GenerationPlan* plan, v1::GenerateRequest* req,
                          std::string& message, std::string& param) {
  for (const char* key : {"presence_penalty", "frequency_penalty", "logprobs",
                          "top_logprobs", "response_format"}) {
    if (body.contains(key) && !body[key].is_null()) {
      message = std::string("'") + key + "' is not supported yet";
      param = key;
      return false;
    }
  }
  return true;
}

}  // namespace lorad::server::openai
