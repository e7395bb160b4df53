// Chat prompts: a list of {role, content} messages rendered to text the way
// the model's own chat template (tokenizer_config.json "chat_template")
// would. lorad has no Jinja engine; it recognises the common shapes and
// renders them natively:
//   Llama 3  (template mentions <|start_header_id|>):
//     <|start_header_id|>ROLE<|end_header_id|>\n\nCONTENT<|eot_id|> ...
//   ChatML / Qwen2 (template mentions <|im_start|>):
//     <|im_start|>ROLE\nCONTENT<|im_end|>\n ... with the template's default
//     system message when the chat does not start with one.
// A model without a template, or with one of another shape, gets the plain
// fallback "ROLE: CONTENT\n" per message. Every form ends with the opening
// of an assistant turn. BOS is not rendered (generation adds the id).
#ifndef LORAD_MODEL_CHAT_TEMPLATE_H_
#define LORAD_MODEL_CHAT_TEMPLATE_H_

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace lorad::model {

struct ChatTurn {
  std::string role;
  std::string content;
};

struct ChatTemplate {
  enum class Format { kPlain, kLlama3, kChatMl };
  Format format = Format::kPlain;
  std::string default_system;  // ChatML only; may be empty
  // The token that closes a turn ("<|eot_id|>", "<|im_end|>"); empty for
  // plain. Generation stops on it.
  std::string end_of_turn;

  // Recognises the template text (the "chat_template" string).
  static ChatTemplate FromTemplateText(std::string_view text);
  // Reads <dir>/tokenizer_config.json; kPlain when the file or its
  // chat_template is absent or unreadable.
  static ChatTemplate FromModelDir(const std::string& dir);
};

// The prompt text for `turns`. InvalidArgument for an empty list or a turn
// with an empty role (naming its index).
absl::StatusOr<std::string> RenderChat(const ChatTemplate& tmpl,
                                       const std::vector<ChatTurn>& turns);

}  // namespace lorad::model

#endif  // LORAD_MODEL_CHAT_TEMPLATE_H_
