// The JSONL format of batch inference jobs: requests in, results out.
// Pure functions, thread-safe.
#ifndef LORAD_SERVER_JOBS_BATCH_INPUT_H_
#define LORAD_SERVER_JOBS_BATCH_INPUT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "lorad/v1/lorad.pb.h"

namespace lorad::server {

// One request of a batch: its 0-based position among the non-blank lines,
// the "id" it carried (as JSON text, empty when none) and the request.
struct BatchLine {
  int64_t index = 0;
  int64_t line = 0;  // 1-based line in the file
  std::string id_json;
  v1::GenerateRequest request;
};

inline constexpr int64_t kMaxBatchLines = 1'000'000;
inline constexpr size_t kMaxBatchLineBytes = size_t{1} << 20;

// Parses a batch input. Each non-blank line is an object with "prompt" (a
// string) or "messages" (a non-empty list of {"role", "content"} with a role
// among model::kChatRoles), and optionally "id" (any JSON value), "adapter"
// (string), "max_new_tokens" (1..32768), "temperature" (>= 0), "top_k"
// (>= 0), "top_p" (0..1), "seed" (>= 0), "stop" (string or list of strings)
// and "repetition_penalty" (>= 0). Fields a line leaves out come from
// `defaults`. Each line is a JSON document within kSmallJsonLimits (nesting
// depth, values), and the request it makes must pass
// ValidateGenerateRequest; `defaults` must pass it too.
// InvalidArgument naming the line and field otherwise, e.g.
// `line 3: field "top_p" must be a number in [0, 1]`.
absl::StatusOr<std::vector<BatchLine>> ParseBatchInput(
    absl::string_view contents, const v1::GenerateRequest& defaults);

// {"index":0,"id":...,"text":"...","finish_reason":"stop","usage":{...}}
std::string BatchResultJson(const BatchLine& line, const std::string& text,
                            const std::string& finish_reason,
                            const v1::GenerateUsage& usage);
// {"index":0,"id":...,"error":{"code":"NOT_FOUND","message":"..."}}
std::string BatchErrorJson(const BatchLine& line, const absl::Status& status);
// Whether a result line made by the functions above is an error.
bool IsBatchErrorJson(const std::string& json);

}  // namespace lorad::server

#endif  // LORAD_SERVER_JOBS_BATCH_INPUT_H_
