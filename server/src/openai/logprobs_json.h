// Token log-probabilities in the API's two shapes: chat's
// logprobs.content entries, and the completions API's parallel lists.
#ifndef LORAD_SERVER_OPENAI_LOGPROBS_JSON_H_
#define LORAD_SERVER_OPENAI_LOGPROBS_JSON_H_

#include <cstddef>
#include <nlohmann/json.hpp>

#include "lorad/v1/lorad.pb.h"

namespace lorad::server::openai {

inline bool HasLogprobs(const v1::GenerateResponse& m) {
  return m.logprobs_size() > 0;
}

// [{"token", "logprob", "bytes", "top_logprobs": [...]}, ...] for `m`.
nlohmann::json ChatLogprobs(const v1::GenerateResponse& m);

// Appends `m`'s tokens to {"tokens", "token_logprobs", "top_logprobs",
// "text_offset"} (made when null); `offset` is where m's text starts in the
// choice's text.
void AppendCompletionLogprobs(const v1::GenerateResponse& m, size_t offset,
                              nlohmann::json* out);

}  // namespace lorad::server::openai

#endif  // LORAD_SERVER_OPENAI_LOGPROBS_JSON_H_
