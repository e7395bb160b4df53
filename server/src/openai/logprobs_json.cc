#include "openai/logprobs_json.h"

namespace lorad::server::openai {
namespace {

using nlohmann::json;

json Bytes(const std::string& token) {
  json out = json::array();
  for (unsigned char c : token) out.push_back(static_cast<int>(c));
  return out;
}

}  // namespace

json ChatLogprobs(const v1::GenerateResponse& m) {
  json out = json::array();
  for (const v1::TokenLogprob& t : m.logprobs()) {
    json top = json::array();
    for (const v1::TopLogprob& alt : t.top_logprobs()) {
      top.push_back({{"token", alt.token()},
                     {"logprob", alt.logprob()},
                     {"bytes", Bytes(alt.token())}});
    }
    out.push_back({{"token", t.token()},
                   {"logprob", t.logprob()},
                   {"bytes", Bytes(t.token())},
                   {"top_logprobs", top}});
  }
  return out;
}

void AppendCompletionLogprobs(const v1::GenerateResponse& m, size_t offset,
                              json* out) {
  if (out->is_null()) {
    *out = {{"tokens", json::array()},
            {"token_logprobs", json::array()},
            {"top_logprobs", json::array()},
            {"text_offset", json::array()}};
  }
  for (const v1::TokenLogprob& t : m.logprobs()) {
    (*out)["tokens"].push_back(t.token());
    (*out)["token_logprobs"].push_back(t.logprob());
    json top = json::object();
    for (const v1::TopLogprob& alt : t.top_logprobs()) {
      top[alt.token()] = alt.logprob();
    }
    (*out)["top_logprobs"].push_back(top);
    (*out)["text_offset"].push_back(offset);
    offset += t.token().size();
  }
}

}  // namespace lorad::server::openai
