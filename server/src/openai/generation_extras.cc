// The sampling parameters of the API beyond the basic ones: OpenAI
// penalties, log-probabilities and response_format (JSON mode).
#include <cmath>

#include "absl/strings/str_cat.h"
#include "openai/generation_request.h"

namespace lorad::server::openai {

bool ReadGenerationExtras(const nlohmann::json& body, bool chat,
                          GenerationPlan* plan, v1::GenerateRequest* req,
                          std::string& message, std::string& param) {
  const auto fail = [&](std::string m, std::string p) {
    message = std::move(m);
    param = std::move(p);
    return false;
  };
  for (const char* key : {"presence_penalty", "frequency_penalty"}) {
    auto it = body.find(key);
    if (it == body.end() || it->is_null()) continue;
    if (!it->is_number() || !std::isfinite(it->get<double>()) ||
        std::abs(it->get<double>()) > 2) {
      return fail(absl::StrCat("'", key, "' must be a number in [-2, 2]"), key);
    }
    const float v = it->get<float>();
    if (std::string(key) == "presence_penalty") {
      req->set_presence_penalty(v);
    } else {
      req->set_frequency_penalty(v);
    }
  }
  auto lp = body.find("logprobs");
  auto top = body.find("top_logprobs");
  if (chat) {
    if (lp != body.end() && !lp->is_null()) {
      if (!lp->is_boolean())
        return fail("'logprobs' must be a boolean", "logprobs");
      plan->logprobs = lp->get<bool>();
    }
    if (top != body.end() && !top->is_null()) {
      if (!top->is_number_integer() || top->get<int>() < 0 ||
          top->get<int>() > 20) {
        return fail("'top_logprobs' must be an integer in [0, 20]",
                    "top_logprobs");
      }
      if (!plan->logprobs) {
        return fail("'top_logprobs' needs 'logprobs': true", "top_logprobs");
      }
      plan->top_logprobs = top->get<int>();
    }
  } else if (lp != body.end() && !lp->is_null()) {
    // The completions API's logprobs: the chosen token plus the top N.
    if (!lp->is_number_integer() || lp->get<int>() < 0 || lp->get<int>() > 5) {
      return fail("'logprobs' must be an integer in [0, 5]", "logprobs");
    }
    plan->logprobs = true;
    plan->top_logprobs = lp->get<int>();
  }
  req->set_logprobs(plan->logprobs);
  req->set_top_logprobs(plan->top_logprobs);

  auto rf = body.find("response_format");
  if (rf == body.end() || rf->is_null()) return true;
  if (!rf->is_object() || !rf->contains("type") || !(*rf)["type"].is_string()) {
    return fail("'response_format' must be an object with a 'type'",
                "response_format");
  }
  const std::string type = (*rf)["type"].get<std::string>();
  if (type == "text") return true;
  if (type == "json_object") {
    req->mutable_response_format()->set_type(type);
    return true;
  }
  if (type != "json_schema") {
    return fail(absl::StrCat("'response_format.type' must be text, "
                             "json_object or json_schema, got \"",
                             type, "\""),
                "response_format.type");
  }
  auto js = rf->find("json_schema");
  if (js == rf->end() || !js->is_object() || !js->contains("schema") ||
      !(*js)["schema"].is_object()) {
    return fail("'response_format.json_schema.schema' must be a JSON object",
                "response_format.json_schema.schema");
  }
  req->mutable_response_format()->set_type(type);
  req->mutable_response_format()->set_json_schema((*js)["schema"].dump());
  return true;
}

}  // namespace lorad::server::openai
