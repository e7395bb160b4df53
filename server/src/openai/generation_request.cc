#include "openai/generation_request.h"

#include <cmath>
#include <random>

#include "absl/strings/str_cat.h"
#include "openai/errors.h"

namespace lorad::server::openai {
namespace {

using nlohmann::json;

struct Bad {
  std::string message;
  std::string param;
};

// Each reader returns false (and fills `bad`) when `key` is present with
// the wrong type or range; absent or null leaves `out` unchanged.
bool ReadNumber(const json& body, const char* key, double lo, double hi,
                double* out, Bad* bad) {
  auto it = body.find(key);
  if (it == body.end() || it->is_null()) return true;
  if (!it->is_number() || !std::isfinite(it->get<double>()) ||
      it->get<double>() < lo || it->get<double>() > hi) {
    *bad = {
        absl::StrCat("'", key, "' must be a number in [", lo, ", ", hi, "]"),
        key};
    return false;
  }
  *out = it->get<double>();
  return true;
}

bool ReadInt(const json& body, const char* key, int64_t lo, int64_t hi,
             int64_t* out, Bad* bad) {
  auto it = body.find(key);
  if (it == body.end() || it->is_null()) return true;
  if (!it->is_number_integer() || it->get<int64_t>() < lo ||
      it->get<int64_t>() > hi) {
    *bad = {
        absl::StrCat("'", key, "' must be an integer in [", lo, ", ", hi, "]"),
        key};
    return false;
  }
  *out = it->get<int64_t>();
  return true;
}

bool ReadBool(const json& body, const char* key, bool* out, Bad* bad) {
  auto it = body.find(key);
  if (it == body.end() || it->is_null()) return true;
  if (!it->is_boolean()) {
    *bad = {absl::StrCat("'", key, "' must be true or false"), key};
    return false;
  }
  *out = it->get<bool>();
  return true;
}

// "content": a string, or text parts [{"type":"text","text":...}].
bool ReadContent(const json& message, size_t index, std::string* out,
                 Bad* bad) {
  const std::string param = absl::StrCat("messages[", index, "].content");
  auto it = message.find("content");
  if (it == message.end() || it->is_null()) {
    *bad = {absl::StrCat("'", param, "' is required"), param};
    return false;
  }
  if (it->is_string()) {
    *out = it->get<std::string>();
    return true;
  }
  if (!it->is_array()) {
    *bad = {absl::StrCat("'", param,
                         "' must be a string or an array of text "
                         "parts"),
            param};
    return false;
  }
  for (size_t p = 0; p < it->size(); ++p) {
    const json& part = (*it)[p];
    if (!part.is_object() || part.value("type", "") != "text" ||
        !part.contains("text") || !part["text"].is_string()) {
      const std::string where = absl::StrCat(param, "[", p, "]");
      *bad = {absl::StrCat("'", where,
                           "': only {\"type\": \"text\", \"text\": ...} parts "
                           "are supported"),
              where};
      return false;
    }
    out->append(part["text"].get<std::string>());
  }
  return true;
}

bool ReadMessages(const json& body, v1::GenerateRequest* req, Bad* bad) {
  auto it = body.find("messages");
  if (it == body.end() || !it->is_array() || it->empty()) {
    *bad = {"'messages' must be a non-empty array", "messages"};
    return false;
  }
  for (size_t i = 0; i < it->size(); ++i) {
    const json& m = (*it)[i];
    const std::string param = absl::StrCat("messages[", i, "]");
    if (!m.is_object() || !m.contains("role") || !m["role"].is_string()) {
      *bad = {absl::StrCat("'", param, "' must be an object with a 'role'"),
              param};
      return false;
    }
    std::string role = m["role"].get<std::string>();
    if (role == "developer") role = "system";
    if (role == "tool" || role == "function" ||
        (m.contains("tool_calls") && !m["tool_calls"].is_null())) {
      *bad = {absl::StrCat("'", param,
                           "': tool and function messages are not supported"),
              param};
      return false;
    }
    std::string content;
    if (!ReadContent(m, i, &content, bad)) return false;
    v1::ChatMessage* out = req->add_messages();
    out->set_role(role);
    out->set_content(std::move(content));
  }
  return true;
}

bool ReadStop(const json& body, v1::GenerateRequest* req, Bad* bad) {
  auto it = body.find("stop");
  if (it == body.end() || it->is_null()) return true;
  std::vector<std::string> stops;
  if (it->is_string()) {
    stops.push_back(it->get<std::string>());
  } else if (it->is_array() && it->size() <= 4) {
    for (const json& s : *it) {
      if (!s.is_string()) break;
      stops.push_back(s.get<std::string>());
    }
  }
  if (stops.empty() && !(it->is_array() && it->empty())) {
    *bad = {"'stop' must be a string or an array of up to 4 strings", "stop"};
    return false;
  }
  for (std::string& s : stops) {
    if (s.empty()) {
      *bad = {"'stop' strings must not be empty", "stop"};
      return false;
    }
    req->add_stop(std::move(s));
  }
  return true;
}

// Parameters of the API that lorad does not serve: refused, never ignored.
bool RefuseUnsupported(const json& body, bool chat, Bad* bad) {
  const auto present = [&](const char* key) {
    auto it = body.find(key);
    return it != body.end() && !it->is_null() &&
           !(it->is_array() && it->empty()) &&
           !(it->is_object() && it->empty());
  };
  for (const char* key :
       {"tools", "functions", "logit_bias", "audio", "prediction", "suffix"}) {
    if (present(key)) {
      *bad = {absl::StrCat("'", key, "' is not supported by lorad"), key};
      return false;
    }
  }
  for (const char* key : {"tool_choice", "function_call"}) {
    auto it = body.find(key);
    if (it != body.end() && !it->is_null() &&
        !(it->is_string() && it->get<std::string>() == "none")) {
      *bad = {absl::StrCat("'", key, "' is not supported by lorad"), key};
      return false;
    }
  }
  if (!chat) {
    int64_t best_of = 1;
    if (!ReadInt(body, "best_of", 1, 1, &best_of, bad)) {
      bad->message = "'best_of' other than 1 is not supported by lorad";
      return false;
    }
    bool echo = false;
    if (!ReadBool(body, "echo", &echo, bad)) return false;
    if (echo) {
      *bad = {"'echo' is not supported by lorad", "echo"};
      return false;
    }
  }
  return true;
}

bool ReadCommon(const json& body, bool chat, const std::string& base_model,
                GenerationPlan* plan, v1::GenerateRequest* req, Bad* bad) {
  auto model = body.find("model");
  if (model == body.end() || !model->is_string() ||
      model->get<std::string>().empty()) {
    *bad = {"'model' is required: the base model or an adapter's name",
            "model"};
    return false;
  }
  plan->model = model->get<std::string>();
  if (plan->model != base_model) req->set_adapter(plan->model);
  int64_t max_tokens = 0;
  if (!ReadInt(body, "max_tokens", 1, 1 << 20, &max_tokens, bad)) return false;
  if (chat &&
      !ReadInt(body, "max_completion_tokens", 1, 1 << 20, &max_tokens, bad)) {
    return false;
  }
  if (!chat && max_tokens == 0) max_tokens = 16;  // the API's default
  req->set_max_new_tokens(static_cast<int32_t>(max_tokens));
  double temperature = 1.0, top_p = 1.0;
  if (!ReadNumber(body, "temperature", 0, 2, &temperature, bad) ||
      !ReadNumber(body, "top_p", 0, 1, &top_p, bad)) {
    return false;
  }
  req->set_temperature(static_cast<float>(temperature));
  req->set_top_p(static_cast<float>(top_p));
  int64_t seed = -1;
  if (!ReadInt(body, "seed", INT64_MIN, INT64_MAX, &seed, bad)) return false;
  if (!body.contains("seed") || body["seed"].is_null()) {
    seed = static_cast<int64_t>(std::random_device{}() >> 1);
  }
  req->set_seed(static_cast<uint64_t>(seed));
  int64_t n = 1;
  if (!ReadInt(body, "n", 1, 128, &n, bad)) return false;
  plan->n = static_cast<int>(n);
  if (!ReadBool(body, "stream", &plan->stream, bad)) return false;
  auto so = body.find("stream_options");
  if (so != body.end() && !so->is_null()) {
    if (!so->is_object() || !plan->stream) {
      *bad = {
          "'stream_options' is only allowed (as an object) with 'stream': "
          "true",
          "stream_options"};
      return false;
    }
    if (!ReadBool(*so, "include_usage", &plan->include_usage, bad)) {
      bad->param = "stream_options.include_usage";
      return false;
    }
  }
  return ReadStop(body, req, bad) && RefuseUnsupported(body, chat, bad) &&
         ReadGenerationExtras(body, chat, plan, req, bad->message, bad->param);
}

}  // namespace

std::optional<http::Response> ParseGeneration(const json& body, bool chat,
                                              const std::string& base_model,
                                              int max_choices,
                                              GenerationPlan* plan) {
  if (!body.is_object()) {
    return Error(400, "the request body must be a JSON object");
  }
  plan->chat = chat;
  v1::GenerateRequest common;
  Bad bad;
  if (!ReadCommon(body, chat, base_model, plan, &common, &bad)) {
    return Error(400, bad.message, bad.param);
  }
  if (chat) {
    if (!ReadMessages(body, &common, &bad)) {
      return Error(400, bad.message, bad.param);
    }
    plan->prompts.push_back(std::move(common));
  } else {
    auto prompt = body.find("prompt");
    std::vector<std::string> prompts;
    if (prompt != body.end() && prompt->is_string()) {
      prompts.push_back(prompt->get<std::string>());
    } else if (prompt != body.end() && prompt->is_array() && !prompt->empty()) {
      for (const json& p : *prompt) {
        if (!p.is_string()) {
          return Error(400,
                       "'prompt' must be a string or an array of strings "
                       "(token arrays are not supported)",
                       "prompt");
        }
        prompts.push_back(p.get<std::string>());
      }
    } else {
      return Error(400, "'prompt' must be a string or an array of strings",
                   "prompt");
    }
    for (std::string& p : prompts) {
      v1::GenerateRequest r = common;
      r.set_prompt(std::move(p));
      plan->prompts.push_back(std::move(r));
    }
  }
  const int64_t choices = static_cast<int64_t>(plan->prompts.size()) * plan->n;
  if (choices > max_choices) {
    return Error(400,
                 absl::StrCat("n times the number of prompts is ", choices,
                              "; at most ", max_choices, " per request"),
                 "n");
  }
  return std::nullopt;
}

}  // namespace lorad::server::openai
