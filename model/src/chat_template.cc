#include "lorad/model/chat_template.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "lorad/common/bounded_json.h"
#include "lorad/common/excerpt.h"
#include "lorad/common/files.h"
#include "lorad/common/status_macros.h"
#include "lorad/model/chat_roles.h"

namespace lorad::model {
namespace {

constexpr const char* kSpecialTokenNames[] = {
    "bos_token", "eos_token", "unk_token", "sep_token",
    "pad_token", "cls_token", "mask_token"};

// The markers of the common turn formats and the token closing a turn.
constexpr std::pair<const char*, const char*> kEndOfTurn[] = {
    {"<|start_header_id|>", "<|eot_id|>"},
    {"<|im_start|>", "<|im_end|>"},
    {"<start_of_turn>", "<end_of_turn>"},
    {"<|end|>", "<|end|>"},
};

std::string EndOfTurn(std::string_view text) {
  for (const auto& [marker, end] : kEndOfTurn) {
    if (text.find(marker) != std::string_view::npos) return end;
  }
  return "";
}

absl::Status Prefixed(const absl::Status& s, absl::string_view where) {
  return absl::Status(s.code(), absl::StrCat(where, ": ", s.message()));
}

// transformers' message normalisation: keys with null values dropped,
// reasoning copied under "thinking" (first) and "reasoning_content" (last).
jinja::Value Message(const nlohmann::ordered_json& m) {
  if (!m.is_object()) return jinja::Value::FromJson(m);
  std::vector<std::pair<std::string, jinja::Value>> items;
  auto set = [&](const std::string& k, jinja::Value v) {
    for (auto& kv : items) {
      if (kv.first == k) {
        kv.second = std::move(v);
        return;
      }
    }
    items.emplace_back(k, std::move(v));
  };
  const nlohmann::ordered_json* reasoning = nullptr;
  for (const char* k : {"reasoning_content", "thinking", "reasoning"}) {
    auto it = m.find(k);
    if (it != m.end() && !it->is_null()) {
      reasoning = &*it;
      break;
    }
  }
  if (reasoning) set("thinking", jinja::Value::FromJson(*reasoning));
  for (auto it = m.begin(); it != m.end(); ++it) {
    if (it->is_null()) continue;
    set(it.key(), jinja::Value::FromJson(it.value()));
  }
  if (reasoning) set("reasoning_content", jinja::Value::FromJson(*reasoning));
  return jinja::Value::Dict(std::move(items));
}

std::string PlainContent(const nlohmann::ordered_json& content) {
  if (content.is_string()) return content.get<std::string>();
  std::string out;
  if (content.is_array()) {
    for (const nlohmann::ordered_json& part : content) {
      if (part.is_object() && part.value("type", "") == "text" &&
          part.contains("text") && part["text"].is_string()) {
        out += part["text"].get<std::string>();
      }
    }
  }
  return out;
}

absl::StatusOr<std::string> RenderPlain(const nlohmann::ordered_json& messages,
                                        bool add_generation_prompt) {
  std::string out;
  for (size_t i = 0; i < messages.size(); ++i) {
    const nlohmann::ordered_json& m = messages[i];
    if (!m.is_object() || !m.contains("role") || !m["role"].is_string()) {
      return absl::InvalidArgumentError(
          absl::StrCat("messages[", i, "]: role is missing"));
    }
    absl::StrAppend(&out, m["role"].get<std::string>(), ": ",
                    PlainContent(m.value("content", nlohmann::ordered_json())),
                    "\n");
  }
  if (add_generation_prompt) out += "assistant:";
  return out;
}

}  // namespace

absl::StatusOr<ChatTemplate> ChatTemplate::FromTemplateText(
    std::string_view text) {
  auto parsed =
      jinja::Template::Parse(absl::string_view(text.data(), text.size()));
  if (!parsed.ok()) return Prefixed(parsed.status(), "chat template");
  ChatTemplate t;
  t.jinja = std::move(*parsed);
  t.end_of_turn = EndOfTurn(text);
  return t;
}

absl::StatusOr<ChatTemplate> ChatTemplate::Load(const std::string& dir) {
  std::string text, origin;
  auto jinja_file = ReadFile(dir + "/chat_template.jinja");
  if (jinja_file.ok()) {
    text = *std::move(jinja_file);
    origin = "chat_template.jinja";
  } else if (!absl::IsNotFound(jinja_file.status())) {
    return jinja_file.status();
  }
  std::vector<std::pair<std::string, std::string>> special;
  auto config_text = ReadFile(dir + "/tokenizer_config.json");
  if (config_text.ok()) {
    // tokenizer_config.json may list every added token; its depth is small.
    auto parsed = ParseBoundedJson(
        *config_text, JsonLimits{size_t{64} << 20, 32, int64_t{16} << 20});
    if (!parsed.ok()) return Prefixed(parsed.status(), "tokenizer_config.json");
    const nlohmann::json& j = *parsed;
    if (!j.is_object()) {
      return absl::InvalidArgumentError(
          "tokenizer_config.json: not a JSON object");
    }
    for (const char* name : kSpecialTokenNames) {
      auto it = j.find(name);
      if (it == j.end() || it->is_null()) continue;
      if (it->is_string()) {
        special.emplace_back(name, it->get<std::string>());
      } else if (it->is_object() && it->contains("content") &&
                 (*it)["content"].is_string()) {
        special.emplace_back(name, (*it)["content"].get<std::string>());
      } else {
        return absl::InvalidArgumentError(
            absl::StrCat("tokenizer_config.json: \"", name,
                         "\" must be a string or an object with \"content\""));
      }
    }
    auto ct = j.find("chat_template");
    if (origin.empty() && ct != j.end() && !ct->is_null()) {
      origin = "tokenizer_config.json";
      if (ct->is_string()) {
        text = ct->get<std::string>();
      } else if (ct->is_array()) {
        bool found = false;
        for (const nlohmann::json& e : *ct) {
          if (e.is_object() && e.value("name", "") == "default" &&
              e.contains("template") && e["template"].is_string()) {
            text = e["template"].get<std::string>();
            found = true;
          }
        }
        if (!found) {
          return absl::InvalidArgumentError(
              "tokenizer_config.json: \"chat_template\" lists no template "
              "named \"default\"");
        }
      } else {
        return absl::InvalidArgumentError(
            "tokenizer_config.json: \"chat_template\" must be a string or a "
            "list of {\"name\", \"template\"}");
      }
    }
  } else if (!absl::IsNotFound(config_text.status())) {
    return config_text.status();
  }
  ChatTemplate t;
  if (!origin.empty()) {
    auto parsed = FromTemplateText(text);
    if (!parsed.ok()) return Prefixed(parsed.status(), origin);
    t = *std::move(parsed);
    t.origin = origin;
  }
  t.special_tokens = std::move(special);
  return t;
}

absl::StatusOr<std::string> RenderChatMessages(
    const ChatTemplate& tmpl, const nlohmann::ordered_json& messages,
    const ChatRenderOptions& options) {
  if (!messages.is_array() || messages.empty()) {
    return absl::InvalidArgumentError("messages is empty");
  }
  if (options.generation_spans != nullptr) options.generation_spans->clear();
  if (!tmpl.jinja) return RenderPlain(messages, options.add_generation_prompt);
  std::vector<jinja::Value> msgs;
  for (const nlohmann::ordered_json& m : messages) {
    msgs.push_back(Message(m));
  }
  std::vector<std::pair<std::string, jinja::Value>> ctx;
  ctx.emplace_back("messages", jinja::Value::List(std::move(msgs)));
  ctx.emplace_back("tools", jinja::Value::FromJson(options.tools));
  ctx.emplace_back("documents", jinja::Value::FromJson(options.documents));
  ctx.emplace_back("add_generation_prompt",
                   jinja::Value::Bool(options.add_generation_prompt));
  jinja::Value context = jinja::Value::Dict(std::move(ctx));
  for (const auto& [k, v] : tmpl.special_tokens) {
    context.mutable_dict().Set(k, jinja::Value::String(v));
  }
  if (options.extra.is_object()) {
    for (auto it = options.extra.begin(); it != options.extra.end(); ++it) {
      context.mutable_dict().Set(it.key(), jinja::Value::FromJson(*it));
    }
  }
  auto out =
      tmpl.jinja->Render(context, jinja::Limits(), options.generation_spans);
  if (!out.ok()) {
    return Prefixed(out.status(),
                    tmpl.origin.empty()
                        ? std::string("chat template")
                        : absl::StrCat("chat template (", tmpl.origin, ")"));
  }
  return out;
}

absl::StatusOr<std::string> RenderChat(const ChatTemplate& tmpl,
                                       const std::vector<ChatTurn>& turns) {
  if (turns.empty()) return absl::InvalidArgumentError("messages is empty");
  nlohmann::ordered_json messages = nlohmann::ordered_json::array();
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
    nlohmann::ordered_json m = nlohmann::ordered_json::object();
    m["role"] = turns[i].role;
    m["content"] = turns[i].content;
    messages.push_back(std::move(m));
  }
  return RenderChatMessages(tmpl, messages, ChatRenderOptions());
}

}  // namespace lorad::model
