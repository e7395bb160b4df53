// TEMPORARY until the sampling extras land in the gRPC API.
#ifndef LORAD_SERVER_OPENAI_LOGPROBS_JSON_H_
#define LORAD_SERVER_OPENAI_LOGPROBS_JSON_H_

#include <nlohmann/json.hpp>

#include "lorad/v1/lorad.pb.h"

namespace lorad::server::openai {

inline bool HasLogprobs(const v1::GenerateResponse&) { return false; }
inline nlohmann::json ChatLogprobs(const v1::GenerateResponse&) {
  return nlohmann::json::array();
}
inline void AppendCompletionLogprobs(const v1::GenerateResponse&, size_t,
                                     nlohmann::json*) {}

}  // namespace lorad::server::openai

#endif  // LORAD_SERVER_OPENAI_LOGPROBS_JSON_H_
