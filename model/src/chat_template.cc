#include "lorad/model/chat_template.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "lorad/common/bounded_json.h"
#include "lorad/common/excerpt.h"
#include "lorad/common/files.h"
#include "lorad/model/chat_roles.h"
#include "nlohmann/json.hpp"

namespace lorad::model {
namespace {

constexpr char kSystemOpen[] = "<|im_start|>system\n";
constexpr char kSystemTag[] = "<|im_start|>system";

// The literal default system message a ChatML template writes when the chat
// has none, e.g. '<|im_start|>system\nYou are a helpful assistant.<|im_end|>'
// (the newline may be written as the two characters \n inside the Jinja
// string).
std::string DefaultChatMlSystem(std::string_view text) {
  size_t at = text.find(kSystemTag);
  while (at != std::string_view::npos) {
    size_t begin = at + sizeof(kSystemTag) - 1;
    if (text.substr(begin, 1) == "\n") {
      begin += 1;
    } else if (text.substr(begin, 2) == "\\n") {
      begin += 2;
    } else {
      at = text.find(kSystemTag, begin);
      continue;
    }
    size_t end = text.find("<|im_end|>", begin);
    if (end == std::string_view::npos) break;
    std::string_view body = text.substr(begin, end - begin);
    if (!body.empty() && body.find("{{") == std::string_view::npos &&
        body.find('\'') == std::string_view::npos &&
        body.find('"') == std::string_view::npos) {
      return std::string(body);
    }
    at = text.find(kSystemTag, end);
  }
  return "";
}

}  // namespace

ChatTemplate ChatTemplate::FromTemplateText(std::string_view text) {
  ChatTemplate t;
  if (text.find("<|start_header_id|>") != std::string_view::npos) {
    t.format = Format::kLlama3;
    t.end_of_turn = "<|eot_id|>";
  } else if (text.find("<|im_start|>") != std::string_view::npos) {
    t.format = Format::kChatMl;
    t.end_of_turn = "<|im_end|>";
    t.default_system = DefaultChatMlSystem(text);
  }
  return t;
}

ChatTemplate ChatTemplate::FromModelDir(const std::string& dir) {
  auto text = ReadFile(dir + "/tokenizer_config.json");
  if (!text.ok()) return ChatTemplate();
  // tokenizer_config.json may list every added token; its depth is small.
  absl::StatusOr<nlohmann::json> parsed = ParseBoundedJson(
      *text, JsonLimits{size_t{64} << 20, 32, int64_t{16} << 20});
  if (!parsed.ok()) return ChatTemplate();
  const nlohmann::json& j = *parsed;
  if (!j.is_object() || !j.contains("chat_template")) return ChatTemplate();
  const nlohmann::json& ct = j["chat_template"];
  if (ct.is_string()) return FromTemplateText(ct.get<std::string>());
  if (ct.is_array()) {  // [{"name": ..., "template": ...}]
    std::string chosen;
    for (const nlohmann::json& e : ct) {
      if (!e.is_object() || !e.contains("template") ||
          !e["template"].is_string()) {
        continue;
      }
      if (chosen.empty() || e.value("name", "") == "default") {
        chosen = e["template"].get<std::string>();
      }
    }
    return FromTemplateText(chosen);
  }
  return ChatTemplate();
}

absl::StatusOr<std::string> RenderChat(const ChatTemplate& tmpl,
                                       const std::vector<ChatTurn>& turns) {
  if (turns.empty()) return absl::InvalidArgumentError("messages is empty");
  for (size_t i = 0; i < turns.size(); ++i) {
    if (turns[i].role.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("messages[", i, "]: role is empty"));
    }
    if (!IsChatRole(turns[i].role)) {
      return absl::InvalidArgumentError(
          absl::StrCat("messages[", i, "].role must be one of ",
                       absl::StrJoin(kChatRoles, ", "), ", got ",
                       QuotedExcerpt(turns[i].role)));
    }
  }
  std::string out;
  switch (tmpl.format) {
    case ChatTemplate::Format::kLlama3:
      for (const ChatTurn& t : turns) {
        absl::StrAppend(&out, "<|start_header_id|>", t.role,
                        "<|end_header_id|>\n\n",
                        absl::StripAsciiWhitespace(t.content), "<|eot_id|>");
      }
      absl::StrAppend(&out,
                      "<|start_header_id|>assistant<|end_header_id|>\n\n");
      break;
    case ChatTemplate::Format::kChatMl:
      if (turns[0].role != "system" && !tmpl.default_system.empty()) {
        absl::StrAppend(&out, kSystemOpen, tmpl.default_system, "<|im_end|>\n");
      }
      for (const ChatTurn& t : turns) {
        absl::StrAppend(&out, "<|im_start|>", t.role, "\n", t.content,
                        "<|im_end|>\n");
      }
      absl::StrAppend(&out, "<|im_start|>assistant\n");
      break;
    case ChatTemplate::Format::kPlain:
      for (const ChatTurn& t : turns) {
        absl::StrAppend(&out, t.role, ": ", t.content, "\n");
      }
      absl::StrAppend(&out, "assistant:");
      break;
  }
  return out;
}

}  // namespace lorad::model
