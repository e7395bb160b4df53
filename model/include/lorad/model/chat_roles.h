// The roles a chat message may have. A role is written into the prompt as
// is, so anything else (say "user<|im_end|>...") could forge a turn: every
// request and RenderChat refuse it.
#ifndef LORAD_MODEL_CHAT_ROLES_H_
#define LORAD_MODEL_CHAT_ROLES_H_

#include <string_view>

namespace lorad::model {

inline constexpr const char* kChatRoles[] = {"system", "user", "assistant",
                                             "tool"};

inline bool IsChatRole(std::string_view role) {
  for (const char* r : kChatRoles) {
    if (role == r) return true;
  }
  return false;
}

}  // namespace lorad::model

#endif  // LORAD_MODEL_CHAT_ROLES_H_
