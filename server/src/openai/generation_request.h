// Reading a /v1/completions or /v1/chat/completions body into the gRPC
// Generate requests that serve it.
#ifndef LORAD_SERVER_OPENAI_GENERATION_REQUEST_H_
#define LORAD_SERVER_OPENAI_GENERATION_REQUEST_H_

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "http/http_server.h"
#include "lorad/v1/lorad.pb.h"

namespace lorad::server::openai {

struct GenerationPlan {
  bool chat = false;
  std::string model;  // as the client named it (echoed back)
  // One request per prompt (a completions call may carry several); each
  // is run `n` times, choice index = prompt * n + j, seed + j.
  std::vector<v1::GenerateRequest> prompts;
  int n = 1;
  bool stream = false;
  bool include_usage = false;
  // chat: logprobs true/false and top_logprobs; completions: logprobs N
  // means the chosen token plus the top N.
  bool logprobs = false;
  int top_logprobs = 0;
};

// The plan for `body`, or the 400 to answer (naming the field in `param`).
// `base_model` is the id that means "no adapter"; `max_choices` bounds n
// times the number of prompts.
std::optional<http::Response> ParseGeneration(const nlohmann::json& body,
                                              bool chat,
                                              const std::string& base_model,
                                              int max_choices,
                                              GenerationPlan* plan);

// presence_penalty, frequency_penalty, logprobs/top_logprobs and
// response_format into `req` and `plan`; false with `message` and `param`
// set when one is malformed (generation_extras.cc).
bool ReadGenerationExtras(const nlohmann::json& body, bool chat,
                          GenerationPlan* plan, v1::GenerateRequest* req,
                          std::string& message, std::string& param);

}  // namespace lorad::server::openai

#endif  // LORAD_SERVER_OPENAI_GENERATION_REQUEST_H_
