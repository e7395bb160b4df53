#include "jobs/generate_validation.h"

#include <cmath>
#include <string>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "jobs/job_validation.h"
#include "lorad/common/bounded_json.h"
#include "lorad/common/excerpt.h"
#include "lorad/model/chat_roles.h"

namespace lorad::server {
namespace {

template <typename T>
absl::Status Bad(absl::string_view prefix, absl::string_view field,
                 absl::string_view want, const T& got) {
  return absl::InvalidArgumentError(
      absl::StrCat(prefix, field, " must be ", want, ", got ", got));
}

// A float that is finite and in [0, max].
bool InRange(float v, float max) {
  return std::isfinite(v) && v >= 0 && v <= max;
}

std::string Num(float v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  return absl::StrCat(v);
}

absl::Status CheckMessages(const v1::GenerateRequest& r,
                           absl::string_view prefix) {
  if (r.messages_size() > kMaxMessages) {
    return Bad(prefix, "messages", absl::StrCat("at most ", kMaxMessages),
               absl::StrCat(r.messages_size(), " messages"));
  }
  size_t total = 0;
  for (int i = 0; i < r.messages_size(); ++i) {
    const v1::ChatMessage& m = r.messages(i);
    const std::string at = absl::StrCat("messages[", i, "]");
    if (!model::IsChatRole(m.role())) {
      return Bad(
          prefix, at + ".role",
          absl::StrCat("one of ", absl::StrJoin(model::kChatRoles, ", ")),
          QuotedExcerpt(m.role()));
    }
    total += m.content().size();
    if (total > kMaxPromptBytes) {
      return Bad(prefix, at + ".content",
                 absl::StrCat("within ", kMaxPromptBytes,
                              " bytes for all messages together"),
                 absl::StrCat(total, " bytes so far"));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckStops(const v1::GenerateRequest& r,
                        absl::string_view prefix) {
  if (r.stop_size() > kMaxStops) {
    return Bad(prefix, "stop", absl::StrCat("at most ", kMaxStops, " strings"),
               r.stop_size());
  }
  for (int i = 0; i < r.stop_size(); ++i) {
    const std::string& s = r.stop(i);
    if (s.empty() || s.size() > kMaxStopBytes) {
      return Bad(prefix, absl::StrCat("stop[", i, "]"),
                 absl::StrCat("1 to ", kMaxStopBytes, " bytes"),
                 absl::StrCat(s.size(), " bytes"));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckOpenAiSampling(const v1::GenerateRequest& r,
                                 absl::string_view prefix) {
  for (auto [field, v] : {std::pair{"presence_penalty", r.presence_penalty()},
                          {"frequency_penalty", r.frequency_penalty()}}) {
    if (!std::isfinite(v) || v < -kMaxOpenAiPenalty || v > kMaxOpenAiPenalty) {
      return Bad(prefix, field,
                 absl::StrCat("a finite number in [", -kMaxOpenAiPenalty, ", ",
                              kMaxOpenAiPenalty, "] (0: off)"),
                 Num(v));
    }
  }
  if (r.top_logprobs() < 0 || r.top_logprobs() > kMaxTopLogprobs) {
    return Bad(prefix, "top_logprobs",
               absl::StrCat("in [0, ", kMaxTopLogprobs, "]"), r.top_logprobs());
  }
  if (r.top_logprobs() > 0 && !r.logprobs()) {
    return absl::InvalidArgumentError(absl::StrCat(
        prefix, "top_logprobs needs ", prefix, "logprobs set to true"));
  }
  return absl::OkStatus();
}

absl::Status CheckResponseFormat(const v1::GenerateRequest& r,
                                 absl::string_view prefix) {
  const v1::ResponseFormat& f = r.response_format();
  const std::string& type = f.type();
  if (!type.empty() && type != "text" && type != "json_object" &&
      type != "json_schema") {
    return Bad(prefix, "response_format.type",
               "one of text, json_object, json_schema", QuotedExcerpt(type));
  }
  if (type != "json_schema") {
    if (f.json_schema().empty()) return absl::OkStatus();
    return absl::InvalidArgumentError(absl::StrCat(
        prefix, "response_format.json_schema is only for type json_schema, ",
        "got type ", QuotedExcerpt(type)));
  }
  const std::string& schema = f.json_schema();
  if (schema.empty() || schema.size() > kMaxJsonSchemaBytes) {
    return Bad(prefix, "response_format.json_schema",
               absl::StrCat("a JSON object of 1 to ", kMaxJsonSchemaBytes,
                            " bytes for type json_schema"),
               absl::StrCat(schema.size(), " bytes"));
  }
  JsonLimits limits = kSmallJsonLimits;
  limits.max_bytes = kMaxJsonSchemaBytes;
  absl::StatusOr<nlohmann::json> parsed = ParseBoundedJson(schema, limits);
  if (!parsed.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        prefix, "response_format.json_schema: ", parsed.status().message()));
  }
  if (!parsed->is_object()) {
    return Bad(prefix, "response_format.json_schema", "a JSON object",
               absl::StrCat("a JSON ", parsed->type_name()));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateGenerateRequest(const v1::GenerateRequest& r,
                                     absl::string_view prefix) {
  if (!r.adapter().empty()) {
    absl::Status name =
        ValidateName(absl::StrCat(prefix, "adapter"), r.adapter());
    if (!name.ok()) return name;
  }
  if (!r.prompt().empty() && r.messages_size() > 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        prefix, "prompt and ", prefix, "messages: give one of them, not both"));
  }
  if (r.prompt().size() > kMaxPromptBytes) {
    return Bad(prefix, "prompt",
               absl::StrCat("at most ", kMaxPromptBytes, " bytes"),
               absl::StrCat(r.prompt().size(), " bytes"));
  }
  if (absl::Status s = CheckMessages(r, prefix); !s.ok()) return s;
  if (r.max_new_tokens() < 0 || r.max_new_tokens() > kMaxNewTokens) {
    return Bad(prefix, "max_new_tokens",
               absl::StrCat("in [0, ", kMaxNewTokens, "] (0: 64)"),
               r.max_new_tokens());
  }
  if (!InRange(r.temperature(), kMaxTemperature)) {
    return Bad(prefix, "temperature",
               absl::StrCat("a finite number in [0, ", kMaxTemperature, "]"),
               Num(r.temperature()));
  }
  if (r.top_k() < 0 || r.top_k() > kMaxTopK) {
    return Bad(prefix, "top_k", absl::StrCat("in [0, ", kMaxTopK, "]"),
               r.top_k());
  }
  if (!InRange(r.top_p(), 1)) {
    return Bad(prefix, "top_p", "a finite number in [0, 1]", Num(r.top_p()));
  }
  const float penalty = r.repetition_penalty();
  if (!InRange(penalty, kMaxRepetitionPenalty) ||
      (penalty > 0 && penalty < kMinRepetitionPenalty)) {
    return Bad(
        prefix, "repetition_penalty",
        absl::StrCat("0 (off) or a finite number in [", kMinRepetitionPenalty,
                     ", ", kMaxRepetitionPenalty, "]"),
        Num(penalty));
  }
  if (absl::Status s = CheckOpenAiSampling(r, prefix); !s.ok()) return s;
  if (absl::Status s = CheckResponseFormat(r, prefix); !s.ok()) return s;
  return CheckStops(r, prefix);
}

}  // namespace lorad::server
