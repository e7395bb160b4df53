// Chat prompts: a list of messages rendered to text by the model's own chat
// template, executed by lorad's Jinja interpreter (jinja.h) the way
// transformers' tokenizer.apply_chat_template(..., tokenize=False) does.
//
// Where the template comes from (ChatTemplate::Load, in this order):
//   <dir>/chat_template.jinja, then tokenizer_config.json's "chat_template"
//   (a string, or a list of {"name", "template"} where "default" is used).
// A template that does not parse is an error, never a silent fallback. Only
// a directory with no template at all (the built-in tiny model) gets the
// plain form "ROLE: CONTENT\n" per message followed by "assistant:".
//
// What the template sees (as transformers passes it): messages (keys whose
// value is null dropped; reasoning under "reasoning_content"/"thinking"/
// "reasoning" copied to the first two), add_generation_prompt, tools and
// documents (none unless given), the special tokens of tokenizer_config.json
// (bos_token, eos_token, unk_token, sep_token, pad_token, cls_token,
// mask_token; strings or AddedToken objects), then any extra variables.
// BOS is rendered only if the template writes it.
#ifndef LORAD_MODEL_CHAT_TEMPLATE_H_
#define LORAD_MODEL_CHAT_TEMPLATE_H_

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "lorad/model/jinja.h"
#include "nlohmann/json.hpp"

namespace lorad::model {

struct ChatTurn {
  std::string role;
  std::string content;
};

// Copyable and immutable once built; rendering is thread-safe.
struct ChatTemplate {
  // The parsed template; null for the plain form.
  std::shared_ptr<const jinja::Template> jinja;
  // Where it came from: "chat_template.jinja", "tokenizer_config.json", or
  // empty for the plain form.
  std::string origin;
  // Named special tokens as strings, in tokenizer_config.json's terms.
  std::vector<std::pair<std::string, std::string>> special_tokens;
  // The token that closes a turn ("<|eot_id|>", "<|im_end|>",
  // "<end_of_turn>", "<|end|>"), found in the template text; empty when
  // none of these. Generation stops on it.
  std::string end_of_turn;

  // Parses `text`; InvalidArgument "chat template line L, column C: ..."
  // when it does not parse.
  static absl::StatusOr<ChatTemplate> FromTemplateText(std::string_view text);
  // The directory's template (see above) and special tokens. The plain form
  // when there is no template; InvalidArgument naming the file when a
  // template or tokenizer_config.json is malformed.
  static absl::StatusOr<ChatTemplate> Load(const std::string& dir);
};

struct ChatRenderOptions {
  bool add_generation_prompt = true;
  // JSON keeps its key order (what tojson writes).
  nlohmann::ordered_json tools;  // null: none (the template sees None)
  nlohmann::ordered_json documents;
  // An object of further template variables (e.g. enable_thinking,
  // date_string); they override special tokens of the same name.
  nlohmann::ordered_json extra = nlohmann::ordered_json::object();
  // When set, receives the byte spans of the rendered text that the
  // template's {% generation %} blocks produced, as transformers reports
  // them (jinja::Template::Render); left empty for the plain form.
  std::vector<std::pair<size_t, size_t>>* generation_spans = nullptr;
};

// The prompt text for `turns` with add_generation_prompt. InvalidArgument
// for an empty list, a turn with an empty role or one that is not a chat
// role (naming its index), a template error or raise_exception (carrying
// the template's message).
absl::StatusOr<std::string> RenderChat(const ChatTemplate& tmpl,
                                       const std::vector<ChatTurn>& turns);

// The general form: `messages` is a JSON array of message objects as the
// OpenAI / transformers format has them (content a string or a list of
// parts, tool_calls, ...). Roles are not checked here beyond being present.
// With the plain form, content parts of type "text" are joined.
absl::StatusOr<std::string> RenderChatMessages(
    const ChatTemplate& tmpl, const nlohmann::ordered_json& messages,
    const ChatRenderOptions& options);

}  // namespace lorad::model

#endif  // LORAD_MODEL_CHAT_TEMPLATE_H_
