#include "jobs/batch_input.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "api/grpc_status.h"
#include "jobs/generate_validation.h"
#include "lorad/common/bounded_json.h"
#include "lorad/common/excerpt.h"
#include "lorad/model/chat_roles.h"
#include "nlohmann/json.hpp"

namespace lorad::server {
namespace {

using Json = nlohmann::ordered_json;

absl::Status LineError(int64_t line, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("line ", line, ": ", what));
}

absl::Status FieldError(int64_t line, absl::string_view field,
                        absl::string_view want) {
  return LineError(line, absl::StrCat("field \"", field, "\" must be ", want));
}

absl::Status ParseMessages(const Json& messages, int64_t line,
                           v1::GenerateRequest& request) {
  if (!messages.is_array() || messages.empty()) {
    return FieldError(line, "messages", "a non-empty list");
  }
  for (size_t i = 0; i < messages.size(); ++i) {
    const Json& m = messages[i];
    const std::string at = absl::StrCat("messages[", i, "]");
    if (!m.is_object()) return FieldError(line, at, "an object");
    auto role = m.find("role");
    auto content = m.find("content");
    if (role == m.end() || !role->is_string() ||
        !model::IsChatRole(role->get<std::string>())) {
      return FieldError(
          line, at + ".role",
          absl::StrCat("one of ", absl::StrJoin(model::kChatRoles, ", ")));
    }
    if (content == m.end() || !content->is_string()) {
      return FieldError(line, at + ".content", "a string");
    }
    v1::ChatMessage* out = request.add_messages();
    out->set_role(role->get<std::string>());
    out->set_content(content->get<std::string>());
  }
  return absl::OkStatus();
}

absl::Status ParseField(const std::string& key, const Json& value, int64_t line,
                        BatchLine& out) {
  v1::GenerateRequest& r = out.request;
  if (key == "id") {
    out.id_json = value.dump();
  } else if (key == "prompt") {
    if (!value.is_string()) return FieldError(line, key, "a string");
    r.set_prompt(value.get<std::string>());
  } else if (key == "messages") {
    return ParseMessages(value, line, r);
  } else if (key == "adapter") {
    if (!value.is_string()) return FieldError(line, key, "a string");
    r.set_adapter(value.get<std::string>());
  } else if (key == "max_new_tokens") {
    if (!value.is_number_integer() || value.get<int64_t>() < 1 ||
        value.get<int64_t>() > 32768) {
      return FieldError(line, key, "an integer in [1, 32768]");
    }
    r.set_max_new_tokens(value.get<int32_t>());
  } else if (key == "temperature") {
    if (!value.is_number() || value.get<double>() < 0) {
      return FieldError(line, key, "a number >= 0");
    }
    r.set_temperature(value.get<float>());
  } else if (key == "top_k") {
    if (!value.is_number_integer() || value.get<int64_t>() < 0 ||
        value.get<int64_t>() > 1'000'000) {
      return FieldError(line, key, "an integer >= 0");
    }
    r.set_top_k(value.get<int32_t>());
  } else if (key == "top_p") {
    if (!value.is_number() || value.get<double>() < 0 ||
        value.get<double>() > 1) {
      return FieldError(line, key, "a number in [0, 1]");
    }
    r.set_top_p(value.get<float>());
  } else if (key == "seed") {
    if (!value.is_number_unsigned()) {
      return FieldError(line, key, "an integer >= 0");
    }
    r.set_seed(value.get<uint64_t>());
  } else if (key == "stop") {
    r.clear_stop();
    if (value.is_string()) {
      r.add_stop(value.get<std::string>());
    } else if (value.is_array()) {
      for (const Json& s : value) {
        if (!s.is_string()) {
          return FieldError(line, key, "a string or a list of strings");
        }
        r.add_stop(s.get<std::string>());
      }
    } else {
      return FieldError(line, key, "a string or a list of strings");
    }
  } else if (key == "repetition_penalty") {
    if (!value.is_number() || value.get<double>() < 0) {
      return FieldError(line, key, "a number >= 0");
    }
    r.set_repetition_penalty(value.get<float>());
  } else {
    return LineError(line, absl::StrCat("unknown field ", QuotedExcerpt(key)));
  }
  return absl::OkStatus();
}

Json WithIndex(const BatchLine& line) {
  Json j = Json::object();
  j["index"] = line.index;
  if (!line.id_json.empty()) {
    j["id"] = Json::parse(line.id_json, nullptr, false);
  }
  return j;
}

}  // namespace

absl::StatusOr<std::vector<BatchLine>> ParseBatchInput(
    absl::string_view contents, const v1::GenerateRequest& defaults) {
  if (absl::Status valid = ValidateGenerateRequest(defaults, "defaults.");
      !valid.ok()) {
    return valid;
  }
  std::vector<BatchLine> lines;
  if (contents.size() >= 3 && contents.substr(0, 3) == "\xEF\xBB\xBF") {
    contents.remove_prefix(3);
  }
  int64_t number = 0;
  while (!contents.empty()) {
    ++number;
    size_t end = contents.find('\n');
    absl::string_view text = contents.substr(0, end);
    contents.remove_prefix(end == absl::string_view::npos ? contents.size()
                                                          : end + 1);
    if (!text.empty() && text.back() == '\r') text.remove_suffix(1);
    if (text.find_first_not_of(" \t") == absl::string_view::npos) continue;
    if (text.size() > kMaxBatchLineBytes) {
      return LineError(
          number, absl::StrCat("longer than 1 MiB (", text.size(), " bytes)"));
    }
    if (static_cast<int64_t>(lines.size()) >= kMaxBatchLines) {
      return LineError(number, absl::StrCat("more than ", kMaxBatchLines,
                                            " requests in one batch"));
    }
    absl::StatusOr<Json> parsed =
        ParseBoundedJson<Json>({text.data(), text.size()}, kSmallJsonLimits);
    if (!parsed.ok()) return LineError(number, parsed.status().message());
    const Json& j = *parsed;
    if (!j.is_object()) return LineError(number, "not a JSON object");
    BatchLine line;
    line.index = static_cast<int64_t>(lines.size());
    line.line = number;
    line.request = defaults;
    line.request.clear_prompt();
    line.request.clear_messages();
    for (const auto& [key, value] : j.items()) {
      absl::Status field = ParseField(key, value, number, line);
      if (!field.ok()) return field;
    }
    const bool has_prompt = j.contains("prompt");
    const bool has_messages = j.contains("messages");
    if (has_prompt == has_messages) {
      return LineError(number,
                       "give exactly one of field \"prompt\" and \"messages\"");
    }
    if (absl::Status valid = ValidateGenerateRequest(line.request);
        !valid.ok()) {
      return LineError(number, valid.message());
    }
    lines.push_back(std::move(line));
  }
  if (lines.empty()) {
    return absl::InvalidArgumentError("the batch has no requests");
  }
  return lines;
}

std::string BatchResultJson(const BatchLine& line, const std::string& text,
                            const std::string& finish_reason,
                            const v1::GenerateUsage& usage) {
  Json j = WithIndex(line);
  j["text"] = text;
  j["finish_reason"] = finish_reason;
  j["usage"] = {
      {"prompt_tokens", usage.prompt_tokens()},
      {"completion_tokens", usage.completion_tokens()},
      {"time_to_first_token_seconds", usage.time_to_first_token_seconds()},
      {"total_seconds", usage.total_seconds()}};
  return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

std::string BatchErrorJson(const BatchLine& line, const absl::Status& status) {
  Json j = WithIndex(line);
  j["error"] = {{"code", StatusCodeName(status.code())},
                {"message", std::string(status.message())}};
  return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

bool IsBatchErrorJson(const std::string& json) {
  Json j = Json::parse(json, nullptr, false);
  return j.is_object() && j.contains("error");
}

}  // namespace lorad::server
