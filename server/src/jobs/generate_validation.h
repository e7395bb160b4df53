// Checks a generation request (a Generate call, a batch line, a batch's
// defaults) before any work is done for it, so that a value the sampler
// cannot use (NaN, inf, a huge count) is refused at once with
// InvalidArgument naming the field, instead of reaching the worker.
// Pure functions, thread-safe.
#ifndef LORAD_SERVER_JOBS_GENERATE_VALIDATION_H_
#define LORAD_SERVER_JOBS_GENERATE_VALIDATION_H_

#include <cstddef>
#include <cstdint>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "lorad/v1/lorad.pb.h"

namespace lorad::server {

// The bounds. max_new_tokens 0 means the default (64); temperature 0 means
// greedy; top_k 0, top_p 0 or 1, repetition_penalty 0 or 1 mean off.
inline constexpr int32_t kMaxNewTokens = 32768;
inline constexpr float kMaxTemperature = 100;
inline constexpr int32_t kMaxTopK = 1 << 20;
inline constexpr float kMinRepetitionPenalty = 0.01f;
inline constexpr float kMaxRepetitionPenalty = 100;
inline constexpr int kMaxStops = 16;
inline constexpr size_t kMaxStopBytes = 256;
// The prompt, or all the messages' contents together.
inline constexpr size_t kMaxPromptBytes = size_t{1} << 20;
inline constexpr int kMaxMessages = 1024;
// OpenAI's ranges: presence_penalty and frequency_penalty in [-2, 2],
// top_logprobs in [0, 20] (and only with logprobs).
inline constexpr float kMaxOpenAiPenalty = 2;
inline constexpr int32_t kMaxTopLogprobs = 20;
// response_format.json_schema: JSON text of an object, at most this long.
inline constexpr size_t kMaxJsonSchemaBytes = size_t{64} << 10;

// OK, or InvalidArgument naming the first bad field and what it must be,
// e.g. "temperature must be a finite number in [0, 100], got nan" or
// "messages[2].role must be one of system, user, assistant, tool, got
// \"root\"" (the roles of model::kChatRoles); response_format.type must be
// "", "text", "json_object" or "json_schema", and json_schema is required
// for (and only for) "json_schema". `prefix` goes before every field
// name ("defaults." for a batch header's defaults). User strings are quoted as
// short excerpts.
absl::Status ValidateGenerateRequest(const v1::GenerateRequest& request,
                                     absl::string_view prefix = "");

}  // namespace lorad::server

#endif  // LORAD_SERVER_JOBS_GENERATE_VALIDATION_H_
