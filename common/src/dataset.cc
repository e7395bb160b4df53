#include "lorad/common/dataset.h"

#include <optional>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "lorad/common/bounded_json.h"
#include "lorad/common/excerpt.h"
#include "lorad/common/status_macros.h"
#include "nlohmann/json.hpp"

namespace lorad {
namespace {

using Json = nlohmann::json;

constexpr char kKnownFormats[] =
    R"(expected one of {"text"}, {"prompt","completion"}, )"
    R"({"instruction","context"?,"response"}, )"
    R"({"messages":[{"role","content"}]}, )"
    R"({"prompt","chosen","rejected"})";

// Error messages quote outside input through Excerpt (short, valid UTF-8).
constexpr size_t kMaxListedKeys = 8;
constexpr size_t kMaxReasonBytes = 200;

std::string Quote(std::string_view s) { return QuotedExcerpt(s); }

// {"a","b"}: the object's keys, sorted (nlohmann objects are ordered maps).
std::string KeySet(const Json& obj) {
  std::vector<std::string> keys;
  for (const auto& [key, value] : obj.items()) {
    if (keys.size() == kMaxListedKeys) {
      keys.push_back("...");
      break;
    }
    keys.push_back(Quote(key));
  }
  return absl::StrCat("{", absl::StrJoin(keys, ","), "}");
}

absl::Status LineError(int64_t line, absl::string_view message) {
  return absl::InvalidArgumentError(absl::StrCat("line ", line, ": ", message));
}

// nlohmann says "[json.exception.parse_error.101] parse error at line 1,
// column 7: ..."; each JSONL line is parsed alone, so keep from "column".
std::string JsonErrorReason(std::string_view what) {
  constexpr std::string_view kLinePrefix = "parse error at line 1, ";
  if (size_t p = what.find(kLinePrefix); p != std::string_view::npos) {
    what.remove_prefix(p + kLinePrefix.size());
  } else if (size_t q = what.find("] "); q != std::string_view::npos) {
    what.remove_prefix(q + 2);
  }
  return Excerpt(what, kMaxReasonBytes);
}

bool Has(const Json& obj, const char* key) { return obj.contains(key); }

// The format whose marker keys `obj` has, or an error for none or several.
absl::StatusOr<DatasetFormat> DetectFormat(const Json& obj, int64_t line) {
  std::vector<DatasetFormat> found;
  const bool preference = Has(obj, "chosen") || Has(obj, "rejected");
  if (Has(obj, "text")) found.push_back(DatasetFormat::kText);
  if ((Has(obj, "prompt") && !preference) || Has(obj, "completion")) {
    found.push_back(DatasetFormat::kPromptCompletion);
  }
  if (Has(obj, "instruction") || Has(obj, "response")) {
    found.push_back(DatasetFormat::kInstruction);
  }
  if (Has(obj, "messages")) found.push_back(DatasetFormat::kChat);
  if (preference) found.push_back(DatasetFormat::kPreference);
  if (found.empty()) {
    return LineError(line, absl::StrCat("unknown format: keys ", KeySet(obj),
                                        "; ", kKnownFormats));
  }
  if (found.size() > 1) {
    std::vector<std::string> names;
    for (DatasetFormat f : found) names.push_back(Quote(DatasetFormatName(f)));
    return LineError(line, absl::StrCat("ambiguous format: keys ", KeySet(obj),
                                        " match ", absl::StrJoin(names, ", ")));
  }
  return found.front();
}

// The string at obj[key]. A missing or null optional field is "".
absl::StatusOr<std::string> StringField(const Json& obj, const char* key,
                                        int64_t line, absl::string_view label,
                                        bool optional = false) {
  auto it = obj.find(key);
  if (it == obj.end() || (optional && it->is_null())) {
    if (optional) return std::string();
    return LineError(line, absl::StrCat("field \"", label, "\" missing"));
  }
  if (!it->is_string()) {
    return LineError(line,
                     absl::StrCat("field \"", label, "\" must be a string"));
  }
  return it->get<std::string>();
}

absl::StatusOr<Example> RenderText(const Json& obj, int64_t line) {
  LORAD_ASSIGN_OR_RETURN(std::string text,
                         StringField(obj, "text", line, "text"));
  Example ex;
  ex.segments.push_back({std::move(text), true});
  return ex;
}

absl::StatusOr<Example> RenderPromptCompletion(const Json& obj, int64_t line) {
  LORAD_ASSIGN_OR_RETURN(std::string prompt,
                         StringField(obj, "prompt", line, "prompt"));
  LORAD_ASSIGN_OR_RETURN(std::string completion,
                         StringField(obj, "completion", line, "completion"));
  Example ex;
  ex.segments.push_back({std::move(prompt), false});
  ex.segments.push_back({std::move(completion), true});
  return ex;
}

absl::StatusOr<Example> RenderInstruction(const Json& obj, int64_t line) {
  LORAD_ASSIGN_OR_RETURN(std::string instruction,
                         StringField(obj, "instruction", line, "instruction"));
  LORAD_ASSIGN_OR_RETURN(
      std::string context,
      StringField(obj, "context", line, "context", /*optional=*/true));
  LORAD_ASSIGN_OR_RETURN(std::string response,
                         StringField(obj, "response", line, "response"));
  std::string prompt = absl::StrCat("### Instruction:\n", instruction, "\n\n");
  if (!context.empty())
    absl::StrAppend(&prompt, "### Input:\n", context, "\n\n");
  absl::StrAppend(&prompt, "### Response:\n");
  Example ex;
  ex.segments.push_back({std::move(prompt), false});
  ex.segments.push_back({std::move(response), true});
  return ex;
}

// The messages at obj[key], each {"role", "content"} with a chat role;
// with `need_assistant`, at least one from the assistant.
absl::StatusOr<std::vector<DatasetMessage>> MessagesField(const Json& obj,
                                                          const char* key,
                                                          int64_t line,
                                                          bool need_assistant) {
  auto it = obj.find(key);
  if (it == obj.end()) {
    return LineError(line, absl::StrCat("field \"", key, "\" missing"));
  }
  const Json& messages = *it;
  if (!messages.is_array()) {
    return LineError(line,
                     absl::StrCat("field \"", key, "\" must be an array"));
  }
  std::vector<DatasetMessage> out;
  bool has_assistant = false;
  for (size_t i = 0; i < messages.size(); ++i) {
    const Json& m = messages[i];
    std::string label = absl::StrCat(key, "[", i, "]");
    if (!m.is_object()) {
      return LineError(line,
                       absl::StrCat("field \"", label, "\" must be an object"));
    }
    LORAD_ASSIGN_OR_RETURN(
        std::string role,
        StringField(m, "role", line, absl::StrCat(label, ".role")));
    if (role != "system" && role != "user" && role != "assistant") {
      return LineError(line,
                       absl::StrCat("field \"", label,
                                    ".role\" must be \"system\", \"user\" or "
                                    "\"assistant\" (found ",
                                    Quote(role), ")"));
    }
    LORAD_ASSIGN_OR_RETURN(
        std::string content,
        StringField(m, "content", line, absl::StrCat(label, ".content")));
    has_assistant = has_assistant || role == "assistant";
    out.push_back({std::move(role), std::move(content)});
  }
  if (need_assistant && !has_assistant) {
    return LineError(line, absl::StrCat("field \"", key,
                                        "\" must contain at least one "
                                        "\"assistant\" message"));
  }
  if (out.empty()) {
    return LineError(line,
                     absl::StrCat("field \"", key, "\" must not be empty"));
  }
  return out;
}

absl::StatusOr<Example> RenderChat(const Json& obj, int64_t line) {
  Example ex;
  LORAD_ASSIGN_OR_RETURN(ex.messages, MessagesField(obj, "messages", line,
                                                    /*need_assistant=*/true));
  for (const auto& [role, content] : ex.messages) {
    ex.segments.push_back({absl::StrCat("<|", role, "|>\n"), false});
    ex.segments.push_back({absl::StrCat(content, "\n"), role == "assistant"});
  }
  return ex;
}

// Text when "prompt" is a string, else messages; "chosen" and "rejected"
// must be of the same kind as "prompt".
absl::StatusOr<Example> RenderPreference(const Json& obj, int64_t line) {
  Example ex;
  PreferencePair& pair = ex.preference;
  auto prompt = obj.find("prompt");
  if (prompt == obj.end()) return LineError(line, "field \"prompt\" missing");
  if (!prompt->is_string() && !prompt->is_array()) {
    return LineError(line,
                     "field \"prompt\" must be a string or an array of "
                     "messages");
  }
  pair.conversational = prompt->is_array();
  for (const char* key : {"chosen", "rejected"}) {
    auto it = obj.find(key);
    if (it == obj.end()) {
      return LineError(line, absl::StrCat("field \"", key, "\" missing"));
    }
    if (it->is_array() != pair.conversational) {
      return LineError(
          line, absl::StrCat(
                    "field \"", key, "\" must be ",
                    pair.conversational ? "an array of messages" : "a string",
                    ", like \"prompt\""));
    }
  }
  if (!pair.conversational) {
    LORAD_ASSIGN_OR_RETURN(pair.prompt,
                           StringField(obj, "prompt", line, "prompt"));
    LORAD_ASSIGN_OR_RETURN(pair.chosen,
                           StringField(obj, "chosen", line, "chosen"));
    LORAD_ASSIGN_OR_RETURN(pair.rejected,
                           StringField(obj, "rejected", line, "rejected"));
    return ex;
  }
  LORAD_ASSIGN_OR_RETURN(pair.prompt_messages,
                         MessagesField(obj, "prompt", line, false));
  LORAD_ASSIGN_OR_RETURN(pair.chosen_messages,
                         MessagesField(obj, "chosen", line, true));
  LORAD_ASSIGN_OR_RETURN(pair.rejected_messages,
                         MessagesField(obj, "rejected", line, true));
  return ex;
}

absl::StatusOr<Example> Render(DatasetFormat format, const Json& obj,
                               int64_t line) {
  switch (format) {
    case DatasetFormat::kText:
      return RenderText(obj, line);
    case DatasetFormat::kPromptCompletion:
      return RenderPromptCompletion(obj, line);
    case DatasetFormat::kInstruction:
      return RenderInstruction(obj, line);
    case DatasetFormat::kChat:
      return RenderChat(obj, line);
    case DatasetFormat::kPreference:
      return RenderPreference(obj, line);
  }
  return absl::InternalError("unhandled dataset format");
}

bool IsBlank(std::string_view line) {
  return line.find_first_not_of(" \t\r\f\v") == std::string_view::npos;
}

const char* JsonTypeName(const Json& j) {
  if (j.is_array()) return "an array";
  if (j.is_string()) return "a string";
  if (j.is_number()) return "a number";
  if (j.is_boolean()) return "a boolean";
  if (j.is_null()) return "null";
  return "a non-object value";
}

}  // namespace

std::string_view DatasetFormatName(DatasetFormat f) {
  switch (f) {
    case DatasetFormat::kText:
      return "text";
    case DatasetFormat::kPromptCompletion:
      return "prompt_completion";
    case DatasetFormat::kInstruction:
      return "instruction";
    case DatasetFormat::kChat:
      return "chat";
    case DatasetFormat::kPreference:
      return "preference";
  }
  return "unknown";
}

absl::StatusOr<ParsedDataset> ParseJsonlDataset(std::string_view contents,
                                                bool train_on_prompt) {
  constexpr std::string_view kBom = "\xEF\xBB\xBF";
  if (contents.substr(0, kBom.size()) == kBom) {
    contents.remove_prefix(kBom.size());
  }

  ParsedDataset out{};
  std::optional<DatasetFormat> format;
  int64_t format_line = 0;
  int64_t line_no = 0;
  size_t pos = 0;
  while (pos < contents.size()) {
    size_t end = contents.find('\n', pos);
    if (end == std::string_view::npos) end = contents.size();
    std::string_view line = contents.substr(pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (line_no > kMaxDatasetLines) {
      return absl::InvalidArgumentError(
          absl::StrCat("dataset has more than ", kMaxDatasetLines, " lines"));
    }
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.size() > kMaxDatasetLineBytes) {
      return LineError(
          line_no, absl::StrCat("longer than 1 MiB (", line.size(), " bytes)"));
    }
    if (IsBlank(line)) continue;

    if (absl::Status shape = CheckJsonShape(line, kSmallJsonLimits);
        !shape.ok()) {
      return LineError(line_no, shape.message());
    }
    Json obj;
    try {
      obj = Json::parse(line);
    } catch (const Json::exception& e) {
      return LineError(line_no, absl::StrCat("not valid JSON (",
                                             JsonErrorReason(e.what()), ")"));
    }
    if (!obj.is_object()) {
      return LineError(line_no, absl::StrCat("expected a JSON object, found ",
                                             JsonTypeName(obj)));
    }

    if (!format.has_value()) {
      LORAD_ASSIGN_OR_RETURN(format, DetectFormat(obj, line_no));
      format_line = line_no;
      out.format = *format;
    } else {
      absl::StatusOr<DatasetFormat> f = DetectFormat(obj, line_no);
      if (!f.ok() || *f != *format) {
        return LineError(
            line_no, absl::StrCat("format ", Quote(DatasetFormatName(*format)),
                                  " expected (like line ", format_line,
                                  ") but found keys ", KeySet(obj)));
      }
    }

    LORAD_ASSIGN_OR_RETURN(Example ex, Render(*format, obj, line_no));
    ex.line = line_no;
    if (train_on_prompt) {
      for (Segment& s : ex.segments) s.trainable = true;
    }
    out.examples.push_back(std::move(ex));
  }
  if (out.examples.empty()) {
    return absl::InvalidArgumentError("dataset is empty");
  }
  return out;
}

}  // namespace lorad
